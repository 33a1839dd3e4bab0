package geo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrusted(t *testing.T) {
	tr, err := ParseTrusted([]string{
		"10.0.0.0/8", " 192.168.1.7 ", "::1/128", "fd00::/8", "172.16.5.4/12", "::ffff:100.64.0.0/106", "::ffff:198.51.100.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(ip string, want bool) {
		t.Helper()
		if got := tr.Contains(mustAddr(t, ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	check("10.1.2.3", true)
	check("::ffff:10.1.2.3", true) // mapped peer, IPv4 prefix
	check("11.0.0.1", false)
	check("192.168.1.7", true) // bare address is a /32
	check("192.168.1.8", false)
	check("::1", true)
	check("::2", false)
	check("fd12:3456::1", true)
	check("fe80::1%eth0", false)
	check("fd00::1%eth0", true)   // zone ignored
	check("172.31.255.255", true) // host bits of 172.16.5.4/12 cleared
	check("172.32.0.0", false)
	check("100.127.255.255", true) // mapped prefix stored as 100.64.0.0/10
	check("198.51.100.9", true)    // mapped bare address stored as IPv4
	check("1.2.3.4", false)
	if tr.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}

	var nilT *Trusted
	if nilT.Contains(mustAddr(t, "10.0.0.1")) {
		t.Error("nil Trusted contains 10.0.0.1")
	}
	empty, err := ParseTrusted(nil)
	if err != nil || empty.Contains(mustAddr(t, "10.0.0.1")) {
		t.Errorf("ParseTrusted(nil) = %v, %v", empty, err)
	}
}

func TestParseTrustedErrors(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "10.0.0/8", "banana", "fe80::1%eth0", "10.0.0.1/", "/8", "::1/129", "1.2.3.4:80"} {
		_, err := ParseTrusted([]string{"10.0.0.0/8", bad})
		if err == nil {
			t.Errorf("ParseTrusted(%q) succeeded", bad)
			continue
		}
		if want := `geo: trusted proxy "` + bad + `": `; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseTrusted(%q) error %q, want prefix %q", bad, err, want)
		}
	}
}

func TestClientIP(t *testing.T) {
	tr, err := ParseTrusted([]string{"10.0.0.0/8", "192.168.0.0/16", "2001:db8:ffff::/48", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		// Untrusted peer: the header is the client's word, ignored entirely.
		{"untrusted peer, spoofed xff", "203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer, trusted-looking xff", "203.0.113.9", []string{"10.0.0.1, 10.0.0.2"}, "203.0.113.9"},
		{"untrusted peer, no xff", "203.0.113.9", nil, "203.0.113.9"},
		{"untrusted mapped peer", "::ffff:203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9"},
		{"untrusted IPv6 peer", "2001:db8:1::5", []string{"1.1.1.1"}, "2001:db8:1::5"},

		// Trusted peer.
		{"one entry", "10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"right-most untrusted wins", "10.0.0.1", []string{"1.1.1.1, 198.51.100.7"}, "198.51.100.7"},
		{"trusted hops skipped", "10.0.0.1", []string{"1.1.1.1, 198.51.100.7, 192.168.3.4, 10.9.9.9"}, "198.51.100.7"},
		{"no spaces", "10.0.0.1", []string{"1.1.1.1,198.51.100.7,10.9.9.9"}, "198.51.100.7"},
		{"tabs and spaces", "10.0.0.1", []string{" \t1.1.1.1 ,\t198.51.100.7 \t"}, "198.51.100.7"},
		{"all trusted: left-most", "10.0.0.1", []string{"10.0.0.7, 192.168.0.1, 10.0.0.3"}, "10.0.0.7"},
		{"no header", "10.0.0.1", nil, "10.0.0.1"},
		{"empty header", "10.0.0.1", []string{""}, "10.0.0.1"},
		{"blank header", "10.0.0.1", []string{"  "}, "10.0.0.1"},
		{"mapped trusted peer", "::ffff:10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},

		// Several header lines form one list, first line left-most.
		{"two headers", "10.0.0.1", []string{"1.1.1.1, 2.2.2.2", "198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		{"two headers, last all trusted", "10.0.0.1", []string{"1.1.1.1, 2.2.2.2", "10.0.0.3, 10.0.0.2"}, "2.2.2.2"},
		{"two headers, empty last", "10.0.0.1", []string{"198.51.100.7", ""}, "198.51.100.7"},
		{"three headers", "10.0.0.1", []string{"3.3.3.3", "10.1.1.1", "192.168.1.1"}, "3.3.3.3"},

		// IPv6.
		{"IPv6 peer and entries", "2001:db8:ffff::1", []string{"2001:db8:1::99, 2001:db8:ffff::2"}, "2001:db8:1::99"},
		{"IPv6 loopback peer", "::1", []string{"2001:db8:1::99"}, "2001:db8:1::99"},
		{"mixed families", "::1", []string{"198.51.100.7, 2001:db8:ffff::9"}, "198.51.100.7"},
		{"mapped entry", "10.0.0.1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"mapped trusted entry", "10.0.0.1", []string{"1.1.1.1, ::ffff:10.0.0.9"}, "1.1.1.1"},
		{"zone dropped", "10.0.0.1", []string{"fe80::1%eth0"}, "fe80::1"},

		// Ports.
		{"IPv4 with port", "10.0.0.1", []string{"198.51.100.7:5678"}, "198.51.100.7"},
		{"IPv6 with port", "10.0.0.1", []string{"[2001:db8:1::99]:443"}, "2001:db8:1::99"},
		{"IPv6 in brackets", "10.0.0.1", []string{"[2001:db8:1::99]"}, "2001:db8:1::99"},
		{"trusted hop with port", "10.0.0.1", []string{"198.51.100.7, 10.0.0.5:80"}, "198.51.100.7"},

		// Garbage stops the walk at the last trusted hop.
		{"garbage right-most", "10.0.0.1", []string{"1.1.1.1, unknown"}, "10.0.0.1"},
		{"garbage behind trusted hop", "10.0.0.1", []string{"1.1.1.1, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"empty field", "10.0.0.1", []string{"1.1.1.1,,10.0.0.5"}, "10.0.0.5"},
		{"trailing comma", "10.0.0.1", []string{"1.1.1.1,"}, "10.0.0.1"},
		{"leading comma", "10.0.0.1", []string{",198.51.100.7"}, "198.51.100.7"},
		{"bad port", "10.0.0.1", []string{"198.51.100.7:99999"}, "10.0.0.1"},
		{"IPv6 without brackets but port", "10.0.0.1", []string{"[2001:db8::1]:"}, "10.0.0.1"},
		{"IPv4 in brackets", "10.0.0.1", []string{"[198.51.100.7]"}, "10.0.0.1"},
		{"leading zeros", "10.0.0.1", []string{"198.051.100.7"}, "10.0.0.1"},
		{"octet too big", "10.0.0.1", []string{"198.51.100.256"}, "10.0.0.1"},
		{"hostname", "10.0.0.1", []string{"example.com"}, "10.0.0.1"},
		{"obfuscated (RFC 7239 style)", "10.0.0.1", []string{"_hidden"}, "10.0.0.1"},
		{"garbage in earlier header", "10.0.0.1", []string{"junk", "198.51.100.7"}, "198.51.100.7"},
		{"garbage in later header", "10.0.0.1", []string{"198.51.100.7", "junk"}, "10.0.0.1"},
	}
	for _, c := range cases {
		var xff [][]byte
		for _, h := range c.xff {
			xff = append(xff, []byte(h))
		}
		peer := mustAddr(t, c.peer)
		if got := tr.ClientIP(peer, xff); got != mustAddr(t, c.want) {
			t.Errorf("%s: ClientIP(%s, %q) = %s, want %s", c.name, c.peer, c.xff, got, c.want)
		}
		// The reference implementation of the fuzz test agrees on every case.
		if got := refClientIP(tr, peer, xff); got != mustAddr(t, c.want) {
			t.Errorf("%s: refClientIP = %s, want %s", c.name, got, c.want)
		}
	}

	// No trusted proxies: always the peer.
	var none *Trusted
	if got := none.ClientIP(mustAddr(t, "10.0.0.1"), [][]byte{[]byte("1.1.1.1")}); got != mustAddr(t, "10.0.0.1") {
		t.Errorf("nil Trusted: ClientIP = %s", got)
	}
	// A zero peer (no socket address) stays zero: it is unknown, not spoofable.
	if got := tr.ClientIP(netip.Addr{}, [][]byte{[]byte("1.1.1.1")}); got.IsValid() {
		t.Errorf("zero peer: ClientIP = %s", got)
	}
}

func TestTruncate(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.77":                          "198.51.100.0",
		"198.51.100.0":                           "198.51.100.0",
		"255.255.255.255":                        "255.255.255.0",
		"::ffff:198.51.100.77":                   "198.51.100.0",
		"2001:db8:abcd:12:1::7":                  "2001:db8:abcd::",
		"2001:db8:abcd:ffff:ffff:ffff:ffff:ffff": "2001:db8:abcd::",
		"fe80::1%eth0":                           "fe80::",
		"::1":                                    "::",
	} {
		if got := Truncate(mustAddr(t, in)); got != mustAddr(t, want) {
			t.Errorf("Truncate(%s) = %s, want %s", in, got, want)
		}
	}
	if got := Truncate(netip.Addr{}); got.IsValid() {
		t.Errorf("Truncate(zero) = %s, want zero", got)
	}
}

func TestParseHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4":               "1.2.3.4",
		"1.2.3.4:0":             "1.2.3.4",
		"1.2.3.4:65535":         "1.2.3.4",
		"1.2.3.4:000080":        "1.2.3.4",
		"::1":                   "::1",
		"[::1]":                 "::1",
		"[::1]:443":             "::1",
		"[fe80::1%eth0]:443":    "fe80::1",
		"[::ffff:1.2.3.4]:80":   "::ffff:1.2.3.4",
		"1::2:80":               "1::2:80", // unbracketed: all of it is the address
		"1.2.3.4:65536":         "",
		"1.2.3.4:":              "",
		"1.2.3.4:x":             "",
		"[1.2.3.4]:80":          "",
		"[::1":                  "",
		"[::1]x":                "",
		"[::1]:":                "",
		"::1]:80":               "",
		"":                      "",
		"1.2.3":                 "",
		"%eth0":                 "",
		"fe80::1%":              "",
		"1:2:3:4:5:6:7:8:9":     "",
		"1:2:3:4:5:6:1.2.3.4":   "1:2:3:4:5:6:102:304",
		"1:2:3:4:5:6:7:1.2.3.4": "",
		"1:2:3:1.2.3.4":         "",
		"1::1.2.3.4":            "1::102:304",
	} {
		got, ok := parseHostPort([]byte(in))
		if want == "" {
			if ok {
				t.Errorf("parseHostPort(%q) = %s, want failure", in, got)
			}
			continue
		}
		if !ok || got != mustAddr(t, want) {
			t.Errorf("parseHostPort(%q) = %s, %v, want %s", in, got, ok, want)
		}
	}
}
