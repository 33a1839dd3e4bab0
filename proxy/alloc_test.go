//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation budgets are
// checked without it: `make test` runs this file in a second, race-free pass.

package proxy

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/redistest"
	"github.com/consentgate/consentgate/rules"
)

// TestHitPathAllocationBudget holds the per-hit allocation budget. The decision path
// (everything but the upstream round trip) must not allocate at all.
func TestHitPathAllocationBudget(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	granted := p.consentCookie(`{"statistics":true,"marketing":true}`)
	// A refusal whose record is gone: the signed snapshot is verified on every hit.
	noRecord := p.snapCookie("GGGGGGGGGGGGGGGGGGGGGA", 3, consent.Purposes{consent.Marketing: consent.Denied})
	// A grant whose record went with an older dataset: the snapshot decides in full.
	lost := "cg_id=" + p.rt.Load().snap.Cookie("GGGGGGGGGGGGGGGGGGGGGQ", consent.Snapshot{
		Purposes: consent.Purposes{consent.Statistics: consent.Granted, consent.Marketing: consent.Granted},
		Version:  3, Issued: fixedNow().Add(-time.Hour)})
	lostCtx := newHitCtx("GET", "/tr?id=1&ev=PageView", ipSE, lost)
	// Hit limits on: a bucket per address and per network on every hit.
	lp := startProxy(t, testConfig(up.URL(), "limits:\n  hits:\n    per_ip: { per_minute: 1000000, burst: 1000000 }\n    per_net: { per_minute: 1000000, burst: 1000000 }\n"))
	cases := []struct {
		name   string
		p      *testProxy
		ctx    *fasthttp.RequestCtx
		budget float64
	}{
		{"drop meta eea", p, newHitCtx("GET", "/tr?id=1&ev=PageView&fbp=fb.1.2.3", ipSE, ""), 0},
		{"drop gpc us-ca", p, newHitCtx("GET", "/tr?id=1&ev=PageView", ipUSCA, granted+"; x=1"), 0},
		{"drop unknown", p, newHitCtx("GET", "/tr?id=1&ev=PageView", ipUnknown, ""), 0},
		{"drop us-ca by the snapshot, no record", p, newHitCtx("GET", "/tr?id=1&ev=PageView", ipUSCA, noRecord), 0},
		{"drop meta eea, hit limits on", lp, newHitCtx("GET", "/tr?id=1&ev=PageView", ipSE, ""), 0},
	}
	cases[1].ctx.Request.Header.Set("Sec-GPC", "1")
	// Whole round trips to a counting upstream: at most one allocation, for the rare
	// reconnect inside the client's pool.
	quiet := benchSink()
	q := startProxy(t, testConfig(quiet.URL(), ""))
	qGranted := q.consentCookie(`{"statistics":true,"marketing":true}`)
	for _, c := range []struct {
		name string
		ctx  *fasthttp.RequestCtx
	}{
		{"anonymise ga4 eea round trip", newHitCtx("GET", "/g/collect?"+ga4Query, ipSE, "")},
		{"forward ga4 consented round trip", newHitCtx("GET", "/g/collect?"+ga4Query, ipSE, qGranted)},
		{"anonymise ga4 beacon with browser headers round trip", withBrowserHeaders(newHitCtx("POST", "/g/collect?"+ga4Query, ipSE, ""))},
		{"forward meta with browser headers round trip", withBrowserHeaders(newHitCtx("POST", "/tr/", ipUSWA, qGranted))},
		{"anonymise matomo form eea round trip", newFormHitCtx("/matomo.php", ipSE, "", "application/x-www-form-urlencoded", "", []byte(matomoForm))},
		{"forward google ads conversion round trip", newHitCtx("GET", "/pagead/conversion/123456789/?label=L&value=1&gclid=x", ipSE, qGranted)},
	} {
		q.handlePublic(c.ctx)
		got := testing.AllocsPerRun(200, func() {
			c.ctx.Response.Reset()
			q.handlePublic(c.ctx)
		})
		if got > 1 {
			t.Errorf("%s: %.1f allocs per hit, budget 1", c.name, got)
		}
	}
	// Consent from Redis through a warm local cache: no more allocations than memory.
	rs := redistest.Start(t)
	rp := startProxy(t, redisConfig(quiet.URL(), rs.Addr))
	denied := rp.consentCookie(`{"statistics":true,"marketing":false}`)
	warm := newHitCtx("GET", "/tr?id=1&ev=PageView", ipSE, denied)
	rp.handlePublic(warm)
	if got := testing.AllocsPerRun(200, func() {
		warm.Response.Reset()
		rp.handlePublic(warm)
	}); got > 0 {
		t.Errorf("drop with consent from the Redis cache: %.1f allocs per hit, budget 0", got)
	}
	if quiet.count.Load() < 400 {
		t.Errorf("upstream saw %d hits, want every round trip", quiet.count.Load())
	}
	for _, c := range cases {
		c.ctx.Response.Reset()
		c.p.handlePublic(c.ctx) // warm pools
		got := testing.AllocsPerRun(200, func() {
			c.ctx.Response.Reset()
			c.p.handlePublic(c.ctx)
		})
		if got > c.budget {
			t.Errorf("%s: %.1f allocs per hit, budget %.0f", c.name, got, c.budget)
		}
	}

	// Evaluate + rewrite for forward and anonymise, without the network round trip.
	rt := p.rt.Load()
	for _, c := range []struct {
		name   string
		ctx    *fasthttp.RequestCtx
		budget float64
	}{
		{"anonymise ga4 eea", newHitCtx("GET", "/g/collect?"+ga4Query, ipSE, ""), 0},
		// Every scrubber at work: a title with an address and a phone number, a path
		// with a token, a campaign value with a smuggled click ID, a webmail referrer,
		// values that do not fit their kind (counted).
		{"anonymise ga4 eea scrubbed", newHitCtx("GET", "/g/collect?"+ga4ScrubQuery, ipSE, ""), 0},
		{"forward ga4 consented", newHitCtx("GET", "/g/collect?"+ga4Query, ipSE, granted), 0},
		// Every signal at once: a TC string (decoded once, then from the cache), GPP,
		// US Privacy, Consent Mode gcd/npa and both CMP cookies.
		{"forward ga4 tcf+gpp+usp+gcd+cmp", newHitCtx("GET", "/g/collect?"+ga4Query+"&gdpr_consent="+tcAcceptAll+
			"&gpp="+gppUSNatNoOptOut+"&gpp_sid=7&us_privacy=1YNN&gcd=13v3v3v3v5&npa=0", ipSE,
			"euconsent-v2="+tcAcceptAll+"; CookieConsent="+cookiebotAll+"; "+oneTrust("C0001%3A1%2CC0002%3A1")), 0},
		{"drop meta usp opt-out", newHitCtx("GET", "/tr?id=1&us_privacy=1YYN&gpp="+gppUSNatOptOutGPC, ipUSCA, ""), 0},
		{"anonymise ga4 beacon with browser headers", withBrowserHeaders(newHitCtx("POST", "/g/collect?"+ga4Query, ipSE, "")), 0},
		{"forward meta with browser headers", withBrowserHeaders(newHitCtx("POST", "/tr/", ipUSWA, granted)), 0},
		// Form bodies, the wildcard path check and a hostile path: no allocation either.
		{"anonymise matomo form eea", newFormHitCtx("/matomo.php", ipSE, "", "application/x-www-form-urlencoded", "", []byte(matomoForm)), 0},
		{"forward meta form consented", newFormHitCtx("/tr", ipSE, granted, "application/x-www-form-urlencoded", "", []byte("id=1&ev=Purchase&cd[value]=9")), 0},
		{"forward ga4 beacon consented", newFormHitCtx("/g/collect?"+ga4Query, ipSE, granted, "text/plain", "", []byte("en=page_view&_uip=9.9.9.9\nen=scroll")), 0},
		{"forward google ads conversion", newHitCtx("GET", "/pagead/conversion/123456789/?label=L&value=1", ipSE, granted), 0},
		{"forward meta eea by a snapshot older than the dataset", lostCtx, 0},
		{"drop google ads bad path", newHitCtx("GET", "/pagead/conversion/123/%3Fgclid%3Dx?label=L", ipSE, granted), 0},
	} {
		// The upstream request is built too (headers by the rules, values rebuilt): the
		// whole hit path short of the network.
		idx, tailAt := rt.Router.LookupRoute(c.ctx.Host(), c.ctx.Path())
		run := func() {
			h := acquireHit()
			h.ep, h.tailAt = &rt.Endpoints[idx], tailAt
			p.evaluate(rt, &c.ctx.Request, peerAddr(c.ctx.RemoteIP()), h)
			if h.action != rules.Drop {
				up := fasthttp.AcquireRequest()
				p.buildUpstream(&c.ctx.Request, h, up)
				fasthttp.ReleaseRequest(up)
			}
			releaseHit(h)
		}
		run()
		if c.ctx == lostCtx {
			h := acquireHit()
			h.ep, h.tailAt = &rt.Endpoints[idx], tailAt
			p.evaluate(rt, &c.ctx.Request, peerAddr(c.ctx.RemoteIP()), h)
			if h.action != rules.Forward || h.snapshot != snapshotLost {
				t.Errorf("%s: %s (%s), want forward by the snapshot", c.name, h.action, h.reason)
			}
			releaseHit(h)
		}
		if got := testing.AllocsPerRun(200, run); got > c.budget {
			t.Errorf("%s: %.1f allocs per decision+rewrite, budget %.0f", c.name, got, c.budget)
		}
	}
}

const ga4ScrubQuery = "v=2&tid=G-ABC123XYZ9&cid=1186384312.1712340000&en=page_view&sct=17&_s=4&ul=de-CH&sr=390x844" +
	"&dl=https%3A%2F%2Fshop.example.com%2Faccount%2Freset-password%2F3f9a8c7d6e5f4a3b2c1d0e9f%3Futm_source%3Dnews%26utm_content%3Djohn.doe%2540example.com%3Bgclid%3DSmuggled42" +
	"&dr=https%3A%2F%2Fmail.example.org%2Fmail%2Fu%2F0%2F%23inbox%2FFMfcgzQXJWDtrsMJ" +
	"&dt=Order%20for%20jane%40doe.com%20%E2%80%93%20call%20%2B44%2020%207946%200958&cu=jane%40doe.com"
