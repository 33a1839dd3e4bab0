package proxy

import (
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/rules"
)

// FuzzHitSignals: whatever consent strings a hit carries, in parameters or cookies, the
// decision is one of the three actions and nothing panics. The parsers have their own
// targets; this one covers how the proxy combines them.
func FuzzHitSignals(f *testing.F) {
	f.Add(tcAcceptAll, gppUSNatOptOutGPC, "7", "1YYN", "13r3r3r3r5l1", cookiebotAll, "groups=C0002%3A0", "G100", true)
	f.Add(tcTruncated, "DBABMA~"+tcRejectAll, "2", "1---", "11t1t1t1t5", "-1", "", "", false)
	f.Add("", "DBABL~!!", "x", "", "zz", "{necessary:maybe}", "groups=", "G1", true)
	cfg, err := testLoader.LoadBytes("f.yaml", []byte(`geo:
  database: "../testdata/geoip/GeoIP2-City-Test.mmdb"
trusted_proxies: ["127.0.0.1/32"]
signals:
  cmp:
    use_as_state: true
`))
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.store.Close() })
	rt := srv.rt.Load()
	f.Fuzz(func(t *testing.T, tc, gppStr, sid, usp, gcd, cookiebot, onetrust, gcs string, se bool) {
		for _, target := range []string{"/g/collect?v=2&cid=1.2", "/tr?id=1", "/pagead/conversion/1/?x=1", "/li/collect?pid=1"} {
			q := url.Values{"gdpr_consent": {tc}, "gpp": {gppStr}, "gpp_sid": {sid}, "us_privacy": {usp}, "gcd": {gcd}, "gcs": {gcs}, "npa": {"1"}}
			req := fasthttp.AcquireRequest()
			req.SetRequestURI(target + "&" + q.Encode())
			req.Header.SetCookie("euconsent-v2", tc)
			req.Header.SetCookie("__gpp", gppStr)
			req.Header.SetCookie("CookieConsent", cookiebot)
			req.Header.SetCookie("OptanonConsent", onetrust)
			req.Header.SetCookie("usprivacy", usp)
			ip := ipUSCA
			if se {
				ip = ipSE
			}
			req.Header.Set("X-Forwarded-For", ip)
			idx := rt.Router.Lookup(nil, req.URI().Path())
			if idx < 0 {
				t.Fatalf("no route for %s", target)
			}
			h := acquireHit()
			h.ep = &rt.Endpoints[idx]
			srv.evaluate(rt, req, netip.MustParseAddr("127.0.0.1"), h)
			if h.action >= rules.NumActions || h.reason >= rules.NumReasons {
				t.Fatalf("%s: action %d reason %d", target, h.action, h.reason)
			}
			releaseHit(h)
			fasthttp.ReleaseRequest(req)
		}
	})
}
