package proxy

import (
	"strings"
	"testing"
)

// TestServerSideDecidedOnVisitor: a Measurement Protocol hit is decided on the visitor the
// body names, never on the backend that sends it, and only a trusted sender may name one.
// The review's case: a backend in a US state without consent rules forwarding an EU
// visitor's user_id, click ID and IP raw.
func TestServerSideDecidedOnVisitor(t *testing.T) {
	const target = "/mp/collect?measurement_id=G-1&api_secret=s"
	body := func(visitor string) string {
		return `{"client_id":"1.2","user_id":"u-canary-42",` + visitor + `"events":[{"name":"purchase","params":{"gclid":"gclid-canary"}}]}`
	}
	trusted := "server_side:\n  trusted_senders: [\"" + ipUSWA + "\"]\n"
	for _, c := range []struct {
		name, config, visitor string
		action, jurisdiction  string
		ipOverride            string // what the vendor gets as ip_override; "" = none
	}{
		{"trusted sender, EU visitor by ip_override", trusted, `"ip_override":"` + ipSE + `",`, "anonymise", "eea", `"ip_override":"89.160.20.0"`},
		{"trusted sender, EU visitor by user_location", trusted, `"user_location":{"country_id":"SE"},`, "anonymise", "eea", ""},
		{"trusted sender, US-WA visitor", trusted, `"ip_override":"` + ipUSWA + `",`, "forward", "other", `"ip_override":"` + ipUSWA + `"`},
		{"trusted sender, no visitor named", trusted, ``, "anonymise", "unknown", ""},
		{"untrusted sender naming a US-WA visitor", "", `"ip_override":"` + ipUSWA + `",`, "anonymise", "unknown", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := startSink(t)
			p := startProxy(t, testConfig(up.URL(), c.config))
			r := p.do("POST", target, body(c.visitor), "X-Forwarded-For", ipUSWA, "Content-Type", "application/json")
			if r.Status >= 500 {
				t.Fatalf("status %d", r.Status)
			}
			got := up.one(t)
			if n := p.hits(t, "ga4", c.action, "", c.jurisdiction); n != 1 {
				t.Errorf("hits{ga4,%s,*,%s} = %d, want 1", c.action, c.jurisdiction, n)
			}
			if c.action != "forward" {
				for _, canary := range []string{"u-canary-42", "gclid-canary", ipSE, ipUSWA} {
					if strings.Contains(got.Body, canary) || strings.Contains(got.Query, canary) {
						t.Errorf("%q reached the vendor: %s", canary, got.Body)
					}
				}
			}
			if c.ipOverride == "" && strings.Contains(got.Body, "ip_override") {
				t.Errorf("an ip_override reached the vendor: %s", got.Body)
			}
			if c.ipOverride != "" && !strings.Contains(got.Body, c.ipOverride) {
				t.Errorf("want %s in %s", c.ipOverride, got.Body)
			}
		})
	}
}
