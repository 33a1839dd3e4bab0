package proxy

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/rules"
)

// A GA4 page_view as gtag.js sends it (https://developers.google.com/tag-platform/devguides/
// and observed gtag.js traffic): cid client ID, uid user ID, a gclid in the page URL.
const ga4Query = "v=2&tid=G-TEST123&gtm=45je4a20v9&_p=1712345678901&cid=1234567890.1712345678" +
	"&uid=user-42&ul=en-us&sr=1920x1080&sid=1712345678&sct=3&seg=1" +
	"&dl=https%3A%2F%2Fwww.example.com%2Fpricing%3Fgclid%3DCj0KCQgclid%26utm_source%3Dnews" +
	"&dr=https%3A%2F%2Fwww.google.com%2F&dt=Pricing&en=page_view&_et=1234&ep.email=jane%40example.com"

func query(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("upstream query %q: %v", raw, err)
	}
	return v
}

func TestForwardOptOutRegimeWithoutObjection(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	r := p.do("GET", "/g/collect?"+ga4Query, "",
		"X-Forwarded-For", "198.51.100.7, "+ipUSCA, "Cookie", "session=site-secret; _ga=GA1.1.123",
		"User-Agent", "Mozilla/5.0 test", "Connection", "keep-alive, X-Hop", "X-Hop", "drop-me")
	if r.Status != 204 {
		t.Fatalf("status %d, want 204 relayed from upstream", r.Status)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("upstream Set-Cookie relayed to the browser: %v", c)
	}
	got := up.one(t)
	if got.Path != "/g/collect" {
		t.Errorf("path %q", got.Path)
	}
	q := query(t, got.Query)
	orig := query(t, ga4Query)
	for k, v := range orig {
		if q.Get(k) != v[0] {
			t.Errorf("forwarded %s = %q, want %q unchanged", k, q.Get(k), v[0])
		}
	}
	if q.Get("_uip") != ipUSCA {
		t.Errorf("_uip = %q, want the client IP %s", q.Get("_uip"), ipUSCA)
	}
	for _, h := range []string{"Cookie", "X-Forwarded-For", "X-Hop"} {
		if v := got.Header.Get(h); v != "" && !(h == "X-Forwarded-For" && v == ipUSCA) {
			t.Errorf("upstream got %s: %q", h, v)
		}
	}
	if got.Header.Get("User-Agent") != "Mozilla/5.0 test" {
		t.Errorf("User-Agent not forwarded: %q", got.Header.Get("User-Agent"))
	}
}

func TestAnonymiseOptInWithoutConsent(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	r := p.do("GET", "/g/collect?"+ga4Query, "", "X-Forwarded-For", ipSE, "Cookie", "session=site-secret",
		"Referer", "https://www.example.com/pricing?gclid=Cj0KCQgclid")
	if r.Status != 204 {
		t.Fatalf("status %d", r.Status)
	}
	got := up.one(t)
	q := query(t, got.Query)
	if cid := q.Get("cid"); cid == "" || cid == "1234567890.1712345678" {
		t.Errorf("cid %q: want a salted hash", cid)
	}
	for _, k := range []string{"uid", "ep.email"} {
		if q.Has(k) {
			t.Errorf("%s survived anonymisation: %q", k, q.Get(k))
		}
	}
	if dl := q.Get("dl"); strings.Contains(dl, "gclid") || !strings.Contains(dl, "utm_source=news") {
		t.Errorf("dl = %q: want the click ID stripped and utm kept", dl)
	}
	if q.Get("_uip") != "89.160.20.0" {
		t.Errorf("_uip = %q, want the /24 89.160.20.0", q.Get("_uip"))
	}
	if q.Get("gcs") != "G100" || q.Get("npa") != "1" {
		t.Errorf("consent params gcs=%q npa=%q, want G100 and 1", q.Get("gcs"), q.Get("npa"))
	}
	for _, h := range []string{"Cookie", "Referer"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("anonymised hit carried %s: %q", h, v)
		}
	}
	for _, leak := range []string{"1234567890.1712345678", "user-42", "Cj0KCQgclid", "jane", "89.160.20.112"} {
		if strings.Contains(got.Query+got.Body+headerText(got), leak) {
			t.Errorf("identifier %q reached the upstream", leak)
		}
	}
	// The salt is fixed for the day: the same visitor hashes alike.
	p.do("GET", "/g/collect?"+ga4Query, "", "X-Forwarded-For", ipSE)
	if again := query(t, up.one(t).Query).Get("cid"); again != q.Get("cid") {
		t.Errorf("hash not stable within a day: %q vs %q", again, q.Get("cid"))
	}
}

// TestAnonymiseTruncatesEmbeddedIPv4: a visitor whose IPv6 address carries an IPv4
// address (6to4, Teredo, NAT64) reaches the vendor as that IPv4 address's /24, by
// parameter (GA4 _uip) and by header (Matomo X-Forwarded-For); a native IPv6 address
// as its anonymise.ipv6_prefix. 81.2.69.142 is a GB address of the test database.
func TestAnonymiseTruncatesEmbeddedIPv4(t *testing.T) {
	up := startSink(t)
	for _, c := range []struct {
		name, ip string
		prefix   int
		want     string
	}{
		{"6to4", "2002:5102:458e::1", 48, "81.2.69.0"},
		{"6to4 at /64", "2002:5102:458e:1:2:3:4:5", 64, "81.2.69.0"},
		{"Teredo", "2001:0:4136:e378:8000:63bf:aefd:ba71", 48, "81.2.69.0"},
		{"NAT64", "64:ff9b::5102:458e", 48, "81.2.69.0"},
		{"mapped", "::ffff:81.2.69.142", 48, "81.2.69.0"},
		{"native /48", "2001:db8:abcd:12:1::7", 48, "2001:db8:abcd::"},
		{"native /32", "2001:db8:abcd:12:1::7", 32, "2001:db8::"},
		{"native /64", "2001:db8:abcd:12:1::7", 64, "2001:db8:abcd:12::"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := strings.Replace(testConfig(up.URL(), ""), "anonymise:\n", fmt.Sprintf("anonymise:\n  ipv6_prefix: %d\n", c.prefix), 1)
			p := startProxy(t, cfg)
			p.do("GET", "/g/collect?"+ga4Query, "", "X-Forwarded-For", c.ip)
			got := up.one(t)
			if uip := query(t, got.Query).Get("_uip"); uip != c.want {
				t.Errorf("ga4 _uip = %q, want %s", uip, c.want)
			}
			p.do("GET", "/matomo.php?idsite=1&rec=1&_id=0123456789abcdef", "", "X-Forwarded-For", c.ip)
			got = up.one(t)
			if xff := got.Header.Get("X-Forwarded-For"); xff != c.want {
				t.Errorf("matomo X-Forwarded-For = %q, want %s", xff, c.want)
			}
			for _, leak := range []string{"81.2.69.142", "458e", "ba71", c.ip} {
				if strings.Contains(got.Query+got.Body+headerText(got), leak) {
					t.Errorf("%q reached the upstream", leak)
				}
			}
		})
	}
}

func headerText(r received) string {
	var b strings.Builder
	for k, vs := range r.Header {
		b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	return b.String()
}

func TestDropMarketingOptInWithoutConsent(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	r := p.do("GET", "/tr?id=1234567890&ev=PageView&fbp=fb.1.1712345678901.999&dl=https%3A%2F%2Fwww.example.com%2F", "",
		"X-Forwarded-For", ipGB)
	if r.Status != 200 || r.Header.Get("Content-Type") != "image/gif" || len(r.Body) != len(transparentGIF) {
		t.Fatalf("drop of an image pixel: status %d type %q len %d, want the 1x1 GIF", r.Status, r.Header.Get("Content-Type"), len(r.Body))
	}
	up.none(t)
	if n := p.hits(t, "meta", "drop", "consent_missing", "uk"); n != 1 {
		t.Errorf("hits counter = %d, want 1", n)
	}
}

func TestConsentAPIThenForward(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	cookie := p.consentCookie(`{"statistics":true,"marketing":true}`)
	p.do("GET", "/tr?id=1&ev=PageView&fbp=fb.1.2.3", "", "X-Forwarded-For", ipSE, "Cookie", cookie)
	got := up.one(t)
	if q := query(t, got.Query); q.Get("fbp") != "fb.1.2.3" {
		t.Errorf("consented Meta hit not forwarded as is: %q", got.Query)
	}
	if got.Header.Get("X-Forwarded-For") != ipSE {
		t.Errorf("Meta X-Forwarded-For = %q, want %s", got.Header.Get("X-Forwarded-For"), ipSE)
	}
	if got.Header.Get("Cookie") != "" {
		t.Errorf("the consent cookie went upstream: %q", got.Header.Get("Cookie"))
	}
	// Withdraw: the next hit is dropped again.
	r := p.do("DELETE", "/consent", "", "Cookie", cookie)
	if r.Status != 200 || !strings.Contains(r.Body, `"withdrawn":true`) {
		t.Fatalf("DELETE /consent: %d %s", r.Status, r.Body)
	}
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", cookie)
	up.none(t)
}

func TestSignalsTighten(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	granted := p.consentCookie(`{"statistics":true,"marketing":true}`)

	// Sec-GPC in California opts out of marketing, even with stored consent.
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipUSCA, "Sec-GPC", "1", "Cookie", granted)
	up.none(t)
	if n := p.hits(t, "meta", "drop", "gpc_opt_out", "us-ca"); n != 1 {
		t.Errorf("gpc_opt_out drops = %d, want 1", n)
	}
	// GPC is not a statistics opt-out: GA4 still forwards.
	p.do("GET", "/g/collect?v=2&tid=G-1&cid=1.2", "", "X-Forwarded-For", ipUSCA, "Sec-GPC", "1")
	if q := query(t, up.one(t).Query); q.Get("cid") != "1.2" {
		t.Errorf("GA4 under GPC: cid %q, want forwarded", q.Get("cid"))
	}
	// Consent Mode analytics denied tightens stored consent: anonymised in opt_out.
	p.do("GET", "/g/collect?v=2&tid=G-1&cid=1.2&gcs=G100", "", "X-Forwarded-For", ipUSCA, "Cookie", granted)
	if q := query(t, up.one(t).Query); q.Get("cid") == "1.2" {
		t.Errorf("gcs=G100 did not tighten: cid forwarded")
	}
	if n := p.hits(t, "ga4", "anonymise", "consent_mode_denied", "us-ca"); n != 1 {
		t.Errorf("consent_mode_denied anonymise = %d, want 1", n)
	}
	// Consent Mode granted never upgrades: opt_in without stored consent still anonymises.
	p.do("GET", "/g/collect?v=2&tid=G-1&cid=1.2&gcs=G111", "", "X-Forwarded-For", ipSE)
	if q := query(t, up.one(t).Query); q.Get("cid") == "1.2" || q.Get("gcs") != "G100" {
		t.Errorf("gcs=G111 upgraded consent: %v", q)
	}
}

func TestUpstreamFailureAnswers204(t *testing.T) {
	up := startSink(t)
	up.status = 503
	p := startProxy(t, testConfig(up.URL(), "")+"  \n")
	r := p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipUSCA)
	if r.Status != 204 {
		t.Errorf("upstream 503: browser got %d, want 204", r.Status)
	}
	dead := startProxy(t, strings.Replace(testConfig(up.URL(), ""), up.URL(), "http://127.0.0.1:1", -1))
	r = dead.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipUSCA)
	if r.Status != 204 {
		t.Errorf("upstream unreachable: browser got %d, want 204", r.Status)
	}
	if m := dead.metricsText(t); !strings.Contains(m, `consentgate_upstream_errors_total{kind="connect",vendor="ga4"} 1`) {
		t.Errorf("upstream connect error not counted:\n%s", grep(m, "upstream"))
	}
}

func TestNoRouteAndNoOpenProxy(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	if r := p.do("GET", "/nothing-here", ""); r.Status != 404 {
		t.Errorf("unknown path: %d, want 404", r.Status)
	}
	// An absolute-form request URI or an odd Host never chooses the upstream.
	r := p.rawRequest(t, "GET http://evil.example:1/g/collect?v=2&cid=1.2 HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-For: "+ipUSCA+"\r\n\r\n")
	if !strings.HasPrefix(r, "HTTP/1.1 204") {
		t.Errorf("absolute-form hit: %q", r)
	}
	got := up.one(t)
	if got.Host != up.addr {
		t.Errorf("upstream Host %q, want the configured %s", got.Host, up.addr)
	}
}

func TestMethodNotAllowedIsCounted(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	r := p.do("PUT", "/g/collect?v=2", "x", "X-Forwarded-For", ipSE)
	if r.Status != 405 {
		t.Fatalf("PUT /g/collect: %d, want 405", r.Status)
	}
	up.none(t)
	if n := p.hits(t, "ga4", "drop", "method_not_allowed", "eea"); n != 1 {
		t.Errorf("method_not_allowed = %d, want 1", n)
	}
}

func TestUnknownLocationIsOptIn(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipUnknown)
	up.none(t)
	if n := p.hits(t, "meta", "drop", "consent_missing", "unknown"); n != 1 {
		t.Errorf("unknown-location drop = %d, want 1", n)
	}
	// IPv6 visitor in Switzerland: opt_in too.
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipCH6)
	up.none(t)
	if n := p.hits(t, "meta", "drop", "consent_missing", "ch"); n != 1 {
		t.Errorf("ch drop = %d, want 1", n)
	}
	// Regime none: forwarded.
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipUSWA)
	up.one(t)
}

func TestBodyTooLargeIsCountedNot5xx(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "max_body_size: 1024\n"))
	r := p.do("POST", "/g/collect?v=2&cid=1.2", strings.Repeat("en=page_view&x=1\n", 200), "X-Forwarded-For", ipSE)
	if r.Status != 413 {
		t.Errorf("oversize body: %d, want 413", r.Status)
	}
	up.none(t)
	if n := p.hits(t, "ga4", "drop", "body_too_large", "unknown"); n != 1 {
		t.Errorf("body_too_large = %d, want 1", n)
	}
}

// TestPanicFailsClosed simulates a bug in the hit path (an endpoint without its
// anonymiser): the process survives, nothing goes upstream, the browser gets the local
// answer and the hit is counted as internal_error.
func TestPanicFailsClosed(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	rt := p.rt.Load()
	broken := *rt
	snap := *rt.Snapshot
	broken.Snapshot = &snap
	snap.Endpoints = append([]rules.CompiledEndpoint(nil), rt.Endpoints...)
	for i := range snap.Endpoints {
		snap.Endpoints[i].Anon = nil
	}
	p.rt.Store(&broken)
	r := p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipSE)
	if r.Status != 204 {
		t.Errorf("after a panic the browser got %d, want 204", r.Status)
	}
	up.none(t)
	if n := p.hits(t, "ga4", "drop", "internal_error", "unknown"); n != 1 {
		t.Errorf("internal_error = %d, want 1", n)
	}
	p.rt.Store(rt)
	p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipSE)
	up.one(t) // still serving
}
