package rules

import (
	"testing"
)

func TestVisitorRead(t *testing.T) {
	mp, ok := EndpointByName("ga4_mp")
	if !ok {
		t.Fatal("no ga4_mp")
	}
	v := &mp.Visitor
	for _, c := range []struct {
		name, body     string
		ip, cc, region string
	}{
		{"ip and location", `{"client_id":"1.2","ip_override":"81.2.69.142","user_location":{"country_id":"GB","region_id":"GB-ENG"}}`, "81.2.69.142", "GB", "GB-ENG"},
		{"location only", `{"user_location":{"city":"Lyon","country_id":"FR"},"events":[]}`, "", "FR", ""},
		{"ipv6, mapped ipv4", `{"ip_override":"::ffff:81.2.69.142"}`, "81.2.69.142", "", ""},
		{"escaped ip is absent", `{"ip_override":"81.2.69.14\u0032"}`, "", "", ""},
		{"zone is absent", `{"ip_override":"fe80::1%eth0"}`, "", "", ""},
		{"not an ip", `{"ip_override":"localhost"}`, "", "", ""},
		{"number is absent", `{"ip_override":12345}`, "", "", ""},
		{"location not an object", `{"user_location":"FR"}`, "", "", ""},
		{"nested ip_override is not the field", `{"events":[{"params":{"ip_override":"1.2.3.4"}}]}`, "", "", ""},
		{"malformed body names no visitor", `{"ip_override":"81.2.69.142",`, "", "", ""},
		{"not an object", `["81.2.69.142"]`, "", "", ""},
		{"empty", ``, "", "", ""},
	} {
		ip, cc, region := v.Read([]byte(c.body))
		gotIP := ""
		if ip.IsValid() {
			gotIP = ip.String()
		}
		if gotIP != c.ip || string(cc) != c.cc || string(region) != c.region {
			t.Errorf("%s: Read = %q %q %q, want %q %q %q", c.name, gotIP, cc, region, c.ip, c.cc, c.region)
		}
	}
	body := []byte(`{"ip_override":"2001:db8::1","user_location":{"country_id":"DE","region_id":"DE-BE"}}`)
	if n := testing.AllocsPerRun(100, func() { v.Read(body) }); n != 0 {
		t.Errorf("Read allocates %v times", n)
	}
}

func FuzzVisitorRead(f *testing.F) {
	f.Add([]byte(`{"ip_override":"81.2.69.142","user_location":{"country_id":"GB","region_id":"GB-ENG"}}`))
	f.Add([]byte(`{"user_location":{"country_id":"FR"}}`))
	mp, _ := EndpointByName("ga4_mp")
	f.Fuzz(func(t *testing.T, body []byte) {
		ip, cc, region := mp.Visitor.Read(body)
		if ip.Zone() != "" || ip.Is4In6() {
			t.Errorf("Read gave %v", ip)
		}
		_, _ = cc, region
	})
}
