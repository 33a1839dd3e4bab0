package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/telemetry"
)

// cdn is a local stand-in for a vendor's CDN: it records every request that reaches it
// and answers what the test set. Like a real vendor it adds headers the proxy must never
// relay (Set-Cookie, its own).
type cdn struct {
	srv   *httptest.Server
	count atomic.Int64
	mu    sync.Mutex
	reqs  []*http.Request
	// The answer: status (0 = 200), body, headers (name, value pairs), and gzip to send
	// the body gzipped.
	status int
	body   []byte
	header []string
	gzip   bool
	// gate, when set, holds every request until it is closed; arrived is told of each.
	gate    chan struct{}
	arrived chan struct{}
}

func startCDN(t testing.TB) *cdn {
	t.Helper()
	c := &cdn{body: []byte("/* vendor script v1 */"), header: []string{"Cache-Control", "public, max-age=900"}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.count.Add(1)
		c.mu.Lock()
		c.reqs = append(c.reqs, r.Clone(r.Context()))
		status, body, header, gz, gate, arrived := c.status, c.body, c.header, c.gzip, c.gate, c.arrived
		c.mu.Unlock()
		if arrived != nil {
			arrived <- struct{}{}
		}
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("Set-Cookie", "vendor_id=leak; Path=/")
		w.Header().Set("X-Vendor-Internal", "1")
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cdn) answer(status int, body string, header ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.body, c.header = status, []byte(body), header
}

func (c *cdn) last(t *testing.T) *http.Request {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("the CDN saw no request")
	}
	return c.reqs[len(c.reqs)-1]
}

// clock is the scripts' cache clock in tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scriptsYAML points the built-in scripts at the CDN; settings are lines of the scripts
// section (indented two spaces).
func scriptsYAML(cdnURL, settings string) string {
	return "scripts:\n" + settings +
		"  gtag: { upstream: \"" + cdnURL + "/gtag/js\" }\n" +
		"  gtm: { upstream: \"" + cdnURL + "/gtm.js\" }\n" +
		"  plausible: { upstream: \"" + cdnURL + "/js/script.js\" }\n" +
		"  fbevents: { upstream: \"" + cdnURL + "/en_US/fbevents.js\" }\n"
}

// startScriptProxy starts a proxy serving the CDN's scripts on a clock the test moves.
func startScriptProxy(t testing.TB, c *cdn, settings string) (*testProxy, *clock) {
	t.Helper()
	p := startProxy(t, testConfig(c.srv.URL, scriptsYAML(c.srv.URL, settings)))
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	p.scripts.now = clk.Now
	return p, clk
}

// scriptCount reads consentgate_script_requests_total for one script and outcome.
func (p *testProxy) scriptCount(t *testing.T, script string, o telemetry.ScriptOutcome) uint64 {
	t.Helper()
	i, err := p.metrics.Script(script)
	if err != nil {
		t.Fatal(err)
	}
	return p.metrics.ScriptRequestCount(i, o)
}

func (p *testProxy) vendorErrors(t *testing.T, script string, k telemetry.ScriptErrorKind) uint64 {
	t.Helper()
	i, err := p.metrics.Script(script)
	if err != nil {
		t.Fatal(err)
	}
	return p.metrics.ScriptVendorErrorCount(i, k)
}

// wantScript checks a served script's answer: the body and the proxy's own headers,
// nothing of the vendor's.
func wantScript(t *testing.T, r resp, body, cacheControl string) {
	t.Helper()
	if r.Status != 200 || r.Body != body {
		t.Fatalf("status %d body %q, want 200 %q", r.Status, r.Body, body)
	}
	for k, want := range map[string]string{
		"Content-Type":                 "application/javascript; charset=utf-8",
		"X-Content-Type-Options":       "nosniff",
		"Cache-Control":                cacheControl,
		"Vary":                         "Accept-Encoding",
		"Cross-Origin-Resource-Policy": "cross-origin",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if et := r.Header.Get("ETag"); !strings.HasPrefix(et, `W/"`) {
		t.Errorf("ETag %q", et)
	}
	for _, k := range []string{"Set-Cookie", "X-Vendor-Internal", "Expires", "Age"} {
		if v := r.Header.Values(k); len(v) > 0 {
			t.Errorf("the vendor's %s reached the browser: %v", k, v)
		}
	}
}

func TestScriptMissThenHit(t *testing.T) {
	c := startCDN(t)
	p, _ := startScriptProxy(t, c, "")
	r := p.do("GET", "/gtag/js?id=G-ABC123", "", "X-Forwarded-For", ipSE)
	wantScript(t, r, "/* vendor script v1 */", "public, max-age=900")
	r = p.do("GET", "/gtag/js?id=G-ABC123", "", "X-Forwarded-For", ipSE)
	wantScript(t, r, "/* vendor script v1 */", "public, max-age=900")
	if n := c.count.Load(); n != 1 {
		t.Errorf("CDN fetched %d times, want 1", n)
	}
	if p.scriptCount(t, "gtag", telemetry.ScriptMiss) != 1 || p.scriptCount(t, "gtag", telemetry.ScriptHit) != 1 {
		t.Errorf("miss %d hit %d, want 1 and 1", p.scriptCount(t, "gtag", telemetry.ScriptMiss), p.scriptCount(t, "gtag", telemetry.ScriptHit))
	}
	// Another ID is another script.
	p.do("GET", "/gtag/js?id=G-OTHER", "")
	if n := c.count.Load(); n != 2 {
		t.Errorf("CDN fetched %d times, want 2", n)
	}
	m := p.metricsText(t)
	for _, want := range []string{
		`consentgate_script_requests_total{outcome="hit",script="gtag"} 1`,
		`consentgate_script_requests_total{outcome="miss",script="gtag"} 2`,
		`consentgate_script_requests_total{outcome="stale",script="fbevents"} 0`,
		`consentgate_script_vendor_errors_total{kind="timeout",script="plausible"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics has no %s:\n%s", want, grep(m, "consentgate_script"))
		}
	}
}

// TestScriptNoVisitorDataReachesVendor: the request to the CDN is built, not copied:
// none of the visitor's headers, cookies or address, and only the declared parameters.
func TestScriptNoVisitorDataReachesVendor(t *testing.T) {
	c := startCDN(t)
	p, _ := startScriptProxy(t, c, "")
	const canary = "CANARY7q3z"
	visitor := []string{
		"Cookie", "_ga=GA1.1." + canary + "; cg_id=" + canary,
		"User-Agent", "Mozilla/5.0 " + canary,
		"X-Forwarded-For", ipSE + ", 10.9.8.7",
		"X-Real-IP", ipSE,
		"Forwarded", "for=" + ipSE,
		"Referer", "https://www.example.com/account?email=" + canary,
		"Accept-Language", "de-CH," + canary,
		"Authorization", "Bearer " + canary,
		"Origin", "https://www.example.com",
		"Sec-CH-UA", canary,
		"Sec-GPC", "1",
		"If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT",
	}
	for _, target := range []string{
		"/gtm.js?id=GTM-ABC&l=dl&gtm_auth=aZ_9-x&gtm_preview=env-5&gtm_cookies_win=x&utm_source=" + canary + "&cid=" + canary + "&gclid=" + canary,
		"/js/script.outbound-links.hash.js?domain=" + canary,
		"/en_US/fbevents.js?id=" + canary,
	} {
		if r := p.do("GET", target, "", visitor...); r.Status != 200 {
			t.Fatalf("%s: %d %s", target, r.Status, r.Body)
		}
		up := c.last(t)
		var names []string
		for k, vs := range up.Header {
			names = append(names, k)
			for _, v := range vs {
				if strings.Contains(v, canary) || strings.Contains(v, ipSE) {
					t.Errorf("%s: header %s carries the visitor's %q", target, k, v)
				}
			}
		}
		slices.Sort(names)
		if want := []string{"Accept", "Accept-Encoding", "User-Agent"}; !slices.Equal(names, want) {
			t.Errorf("%s: the CDN got headers %v, want %v", target, names, want)
		}
		if ua := up.Header.Get("User-Agent"); ua != "consentgate" {
			t.Errorf("User-Agent %q", ua)
		}
		if strings.Contains(up.URL.RawQuery, canary) {
			t.Errorf("%s: query %q carries the visitor's values", target, up.URL.RawQuery)
		}
		if !strings.HasPrefix(up.RemoteAddr, "127.0.0.1:") {
			t.Errorf("remote %s", up.RemoteAddr)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, want := range []string{
		"/gtm.js?id=GTM-ABC&l=dl&gtm_auth=aZ_9-x&gtm_preview=env-5&gtm_cookies_win=x",
		"/js/script.hash.outbound-links.js", // the extensions in the catalogue's order
		"/en_US/fbevents.js",
	} {
		if got := c.reqs[i].URL.RequestURI(); got != want {
			t.Errorf("CDN request %d: %s, want %s", i, got, want)
		}
	}
}

func TestScriptBadRequests(t *testing.T) {
	c := startCDN(t)
	p, _ := startScriptProxy(t, c, "")
	p2 := startProxy(t, testConfig(c.srv.URL, scriptsYAML(c.srv.URL, "")+"  custom: { path: /c.js, upstream: \""+c.srv.URL+"/c.js\", params: [id, v], ids: [C-1] }\n"))
	for _, tc := range []struct {
		p            *testProxy
		method, path string
		status       int
		script, msg  string
	}{
		{p, "GET", "/gtag/js", 400, "gtag", "parameter id is required"},
		{p, "GET", "/gtag/js?l=dl", 400, "gtag", "parameter id is required"},
		{p, "GET", "/gtag/js?id=G-1&id=G-2", 400, "gtag", "parameter id is given twice"},
		{p, "GET", "/gtag/js?id=G-1%2F..%2Fx", 400, "gtag", "parameter id must be"},
		{p, "GET", "/gtag/js?id=G-1%26cx%3Dc", 400, "gtag", "parameter id must be"},
		{p, "GET", "/gtag/js?id=G+1", 400, "gtag", "parameter id must be"},
		{p, "GET", "/gtag/js?id=" + strings.Repeat("A", 129), 400, "gtag", "parameter id must be"},
		{p, "GET", "/gtag/js?id=G-1&l=", 400, "gtag", "parameter l must be"},
		{p, "POST", "/gtag/js?id=G-1", 405, "gtag", "method not allowed"},
		{p2, "GET", "/c.js?id=C-2", 400, "custom", "parameter id is not one of the IDs"},
		{p2, "GET", "/c.js?v=1", 400, "custom", ""}, // not required: custom scripts declare none
	} {
		r := tc.p.do(tc.method, tc.path, "")
		if tc.msg == "" {
			continue
		}
		if r.Status != tc.status || !strings.Contains(r.Body, tc.msg) || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: %d %q (%s), want %d %q", tc.method, tc.path, r.Status, r.Body, r.Header.Get("Cache-Control"), tc.status, tc.msg)
		}
		if strings.Contains(r.Body, "..") || strings.Contains(r.Body, "cx=") {
			t.Errorf("%s: the answer repeats the value: %q", tc.path, r.Body)
		}
	}
	if got := p.do("POST", "/gtag/js?id=G-1", "").Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
	if n := p.scriptCount(t, "gtag", telemetry.ScriptBadRequest); n != 10 {
		t.Errorf("bad requests counted %d, want 10", n)
	}
	if n := c.count.Load(); n != 1 { // only p2's /c.js?v=1
		t.Errorf("the CDN was asked %d times, want 1", n)
	}
	// What is not declared is ignored, not refused, and not passed on.
	if r := p.do("GET", "/gtag/js?id=G-1&cx=c&_=123", ""); r.Status != 200 || c.last(t).URL.RawQuery != "id=G-1" {
		t.Errorf("undeclared parameters: %d, CDN query %q", r.Status, c.last(t).URL.RawQuery)
	}
}

func TestScriptFreshness(t *testing.T) {
	for _, tc := range []struct {
		name     string
		header   []string
		fresh    time.Duration // still a hit just before
		browser  string        // Cache-Control answered on the miss
		settings string
	}{
		{"max-age", []string{"Cache-Control", "public, max-age=120"}, 120 * time.Second, "public, max-age=120", ""},
		{"s-maxage wins", []string{"Cache-Control", "private, max-age=900, s-maxage=300"}, 300 * time.Second, "public, max-age=300", ""},
		{"floor", []string{"Cache-Control", "max-age=5"}, time.Minute, "public, max-age=60", ""},
		{"no-store gets the floor", []string{"Cache-Control", "no-store"}, time.Minute, "public, max-age=60", ""},
		{"ceiling", []string{"Cache-Control", "max-age=31536000"}, 6 * time.Hour, "public, max-age=900", ""},
		{"huge max-age saturates", []string{"Cache-Control", "max-age=99999999999999999999"}, 6 * time.Hour, "public, max-age=900", ""},
		{"bad max-age is stale", []string{"Cache-Control", "max-age=soon"}, time.Minute, "public, max-age=60", ""},
		{"browser cap", []string{"Cache-Control", "max-age=3600"}, time.Hour, "public, max-age=600", "  cache: { browser_max_age: 10m }\n"},
		{"browser cap 0", []string{"Cache-Control", "max-age=3600"}, time.Hour, "no-cache", "  cache: { browser_max_age: 0s }\n"},
		{"expires", []string{"Cache-Control", "", "Date", "Tue, 01 Dec 2026 12:00:00 GMT", "Expires", "Tue, 01 Dec 2026 12:10:00 GMT"}, 10 * time.Minute, "public, max-age=600", ""},
		{"nothing said: the floor", []string{"Cache-Control", ""}, time.Minute, "public, max-age=60", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCDN(t)
			c.answer(200, "v1", tc.header...)
			p, clk := startScriptProxy(t, c, tc.settings)
			wantScript(t, p.do("GET", "/js/script.js", ""), "v1", tc.browser)
			c.answer(200, "v2", tc.header...)
			clk.Add(tc.fresh - time.Second)
			if r := p.do("GET", "/js/script.js", ""); r.Body != "v1" || c.count.Load() != 1 {
				t.Fatalf("1s before expiry: %q, %d fetches", r.Body, c.count.Load())
			}
			clk.Add(time.Second)
			if r := p.do("GET", "/js/script.js", ""); r.Body != "v2" || c.count.Load() != 2 {
				t.Fatalf("at expiry: %q, %d fetches", r.Body, c.count.Load())
			}
		})
	}
	t.Run("remaining freshness", func(t *testing.T) {
		c := startCDN(t)
		c.answer(200, "v1", "Cache-Control", "max-age=300")
		p, clk := startScriptProxy(t, c, "")
		p.do("GET", "/js/script.js", "")
		clk.Add(100 * time.Second)
		wantScript(t, p.do("GET", "/js/script.js", ""), "v1", "public, max-age=200")
	})
}

func TestScriptStaleOnError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  func(c *cdn)
		kind  telemetry.ScriptErrorKind
		extra string
	}{
		{"5xx", func(c *cdn) { c.answer(503, "<html>down</html>", "Content-Type", "text/html") }, telemetry.ScriptVendorStatus, ""},
		{"redirect", func(c *cdn) { c.answer(302, "", "Location", "https://evil.example/x.js") }, telemetry.ScriptVendorStatus, ""},
		{"html with 200", func(c *cdn) { c.answer(200, "<html>captive portal</html>", "Content-Type", "text/html") }, telemetry.ScriptVendorOther, ""},
		{"too large", func(c *cdn) { c.answer(200, strings.Repeat("x", 20<<10), "Cache-Control", "max-age=60") }, telemetry.ScriptVendorTooLarge, "  max_size: 16384\n"},
		{"gzip bomb", func(c *cdn) {
			c.answer(200, strings.Repeat("x", 1<<20), "Cache-Control", "max-age=60")
			c.mu.Lock()
			c.gzip = true
			c.mu.Unlock()
		}, telemetry.ScriptVendorTooLarge, "  max_size: 16384\n"},
		{"timeout", func(c *cdn) {
			c.mu.Lock()
			c.gate = make(chan struct{}) // never opened: the CDN hangs until the test ends
			c.mu.Unlock()
		}, telemetry.ScriptVendorTimeout, "  timeout: 200ms\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCDN(t)
			c.answer(200, "good", "Cache-Control", "max-age=60")
			p, clk := startScriptProxy(t, c, tc.extra+"  cache: { stale_if_error: 1h, negative_ttl: 30s }\n")
			wantScript(t, p.do("GET", "/gtm.js?id=GTM-1", ""), "good", "public, max-age=60")
			tc.fail(c)
			clk.Add(2 * time.Minute)
			wantScript(t, p.do("GET", "/gtm.js?id=GTM-1", ""), "good", "no-cache")
			if p.vendorErrors(t, "gtm", tc.kind) != 1 || p.scriptCount(t, "gtm", telemetry.ScriptStale) != 1 {
				t.Fatalf("vendor errors %d, stale %d; want 1, 1", p.vendorErrors(t, "gtm", tc.kind), p.scriptCount(t, "gtm", telemetry.ScriptStale))
			}
			// Within negative_ttl the vendor is not asked again.
			fetches := c.count.Load()
			clk.Add(29 * time.Second)
			wantScript(t, p.do("GET", "/gtm.js?id=GTM-1", ""), "good", "no-cache")
			if c.count.Load() != fetches {
				t.Fatalf("the failing vendor was asked again within negative_ttl")
			}
			clk.Add(time.Second)
			wantScript(t, p.do("GET", "/gtm.js?id=GTM-1", ""), "good", "no-cache")
			if c.count.Load() != fetches+1 {
				t.Fatalf("the vendor was not asked again after negative_ttl")
			}
			// Past stale_if_error nothing stands in.
			clk.Add(time.Hour)
			if r := p.do("GET", "/gtm.js?id=GTM-1", ""); r.Status != 502 || r.Body != "script unavailable\n" || r.Header.Get("Set-Cookie") != "" {
				t.Fatalf("past stale_if_error: %d %q", r.Status, r.Body)
			}
			if p.scriptCount(t, "gtm", telemetry.ScriptError) != 1 {
				t.Errorf("errors counted %d, want 1", p.scriptCount(t, "gtm", telemetry.ScriptError))
			}
			if tc.kind == telemetry.ScriptVendorTimeout {
				close(c.gate)
			}
		})
	}
}

// TestScriptColdFailure: with nothing cached, a failing vendor gets the page a 502, and
// is not asked again by every page view for negative_ttl; a vendor's 404 is a 404.
func TestScriptColdFailure(t *testing.T) {
	c := startCDN(t)
	p, clk := startScriptProxy(t, c, "  cache: { negative_ttl: 30s }\n")
	c.answer(500, "boom")
	for range 3 {
		if r := p.do("GET", "/en_US/fbevents.js", ""); r.Status != 502 || r.Body != "script unavailable\n" {
			t.Fatalf("%d %q", r.Status, r.Body)
		}
	}
	if n := c.count.Load(); n != 1 {
		t.Errorf("asked %d times within negative_ttl, want 1", n)
	}
	c.answer(404, "no such container")
	clk.Add(30 * time.Second)
	for range 2 {
		if r := p.do("GET", "/en_US/fbevents.js", ""); r.Status != 404 || strings.Contains(r.Body, "container") {
			t.Fatalf("%d %q", r.Status, r.Body)
		}
	}
	c.answer(200, "ok", "Cache-Control", "max-age=60")
	clk.Add(30 * time.Second)
	wantScript(t, p.do("GET", "/en_US/fbevents.js", ""), "ok", "public, max-age=60")
	if n := c.count.Load(); n != 3 {
		t.Errorf("asked %d times, want 3", n)
	}
	if e, s := p.scriptCount(t, "fbevents", telemetry.ScriptError), p.vendorErrors(t, "fbevents", telemetry.ScriptVendorStatus); e != 5 || s != 2 {
		t.Errorf("errors %d, vendor errors %d; want 5, 2", e, s)
	}
}

// TestScriptCoalescing: many requests missing on one script at once make one fetch.
func TestScriptCoalescing(t *testing.T) {
	c := startCDN(t)
	p, _ := startScriptProxy(t, c, "")
	c.mu.Lock()
	c.gate, c.arrived = make(chan struct{}), make(chan struct{}, 100)
	c.mu.Unlock()
	const n = 20
	waiting := make(chan struct{}, n)
	p.scripts.waiting = func() { waiting <- struct{}{} }
	var wg sync.WaitGroup
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each on a connection of its own: a shared keep-alive connection would
			// line the requests up.
			cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			r, err := cl.Get(p.public + "/gtag/js?id=G-ABC123")
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Body.Close()
			b, _ := io.ReadAll(r.Body)
			bodies[i] = fmt.Sprint(r.StatusCode, " ", string(b))
		}()
	}
	// Hang guards, not timings: a broken coalescing fails here instead of hanging.
	recv := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s within 60s", what)
		}
	}
	recv(c.arrived, "fetch")
	for range n {
		recv(waiting, "waiting request")
	}
	close(c.gate)
	wg.Wait()
	for i, b := range bodies {
		if b != "200 /* vendor script v1 */" {
			t.Errorf("request %d: %q", i, b)
		}
	}
	if got := c.count.Load(); got != 1 {
		t.Errorf("%d concurrent misses made %d fetches, want 1", n, got)
	}
	if got := p.scriptCount(t, "gtag", telemetry.ScriptMiss); got != n {
		t.Errorf("misses counted %d, want %d", got, n)
	}
}

func TestScriptEncodingsAndRevalidation(t *testing.T) {
	c := startCDN(t)
	body := strings.Repeat("window.dataLayer=window.dataLayer||[];", 100)
	c.answer(200, body, "Cache-Control", "max-age=600")
	c.mu.Lock()
	c.gzip = true // the vendor sends gzip; the proxy decodes it, and gzips for browsers itself
	c.mu.Unlock()
	p, _ := startScriptProxy(t, c, "")
	r := p.do("GET", "/gtag/js?id=G-1", "", "Accept-Encoding", "identity")
	wantScript(t, r, body, "public, max-age=600")
	etag := r.Header.Get("ETag")

	// net/http's client decodes gzip only when it asked for it itself; ask explicitly
	// and decode here, to see the bytes the proxy sent.
	for _, ae := range []string{"gzip", "br, gzip;q=0.5", "*"} {
		req, _ := http.NewRequest("GET", p.public+"/gtag/js?id=G-1", nil)
		req.Header.Set("Accept-Encoding", ae)
		res, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%q: Content-Encoding %q", ae, res.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if string(plain) != body || len(raw) >= len(body) || res.Header.Get("ETag") != etag {
			t.Errorf("%q: gzipped %d of %d bytes, etag %q", ae, len(raw), len(body), res.Header.Get("ETag"))
		}
	}
	for _, ae := range []string{"gzip;q=0", "br", "GZIP;Q=0.000, identity"} {
		if r := p.do("GET", "/gtag/js?id=G-1", "", "Accept-Encoding", ae); r.Header.Get("Content-Encoding") != "" || r.Body != body {
			t.Errorf("%q: Content-Encoding %q", ae, r.Header.Get("Content-Encoding"))
		}
	}
	for _, inm := range []string{etag, strings.TrimPrefix(etag, "W/"), `"x", ` + etag, "*"} {
		r := p.do("GET", "/gtag/js?id=G-1", "", "If-None-Match", inm)
		if r.Status != 304 || r.Body != "" || r.Header.Get("ETag") != etag || r.Header.Get("Cache-Control") != "public, max-age=600" {
			t.Errorf("If-None-Match %q: %d %q %v", inm, r.Status, r.Body, r.Header)
		}
	}
	if r := p.do("GET", "/gtag/js?id=G-1", "", "If-None-Match", `W/"other"`); r.Status != 200 {
		t.Errorf("another ETag: %d", r.Status)
	}
	if r := p.do("HEAD", "/gtag/js?id=G-1", ""); r.Status != 200 || r.Body != "" || r.Header.Get("Content-Type") != "application/javascript; charset=utf-8" {
		t.Errorf("HEAD: %d %q", r.Status, r.Body)
	}
	if n := c.count.Load(); n != 1 {
		t.Errorf("fetched %d times, want 1", n)
	}
}

// TestScriptPrefixPaths: with a prefix, the scripts are served under it and only there;
// a variant's extensions go to the vendor's file name; a script is served whatever the
// visitor's consent.
func TestScriptPrefixPaths(t *testing.T) {
	c := startCDN(t)
	p, _ := startScriptProxy(t, c, "  prefix: /assets/x9\n")
	for _, tc := range []struct {
		path, cdnPath string
		status        int
	}{
		{"/assets/x9/gtag/js?id=G-1", "/gtag/js?id=G-1", 200},
		{"/assets/x9/js/script.file-downloads.outbound-links.js", "/js/script.file-downloads.outbound-links.js", 200},
		{"/assets/x9/en_US/fbevents.js", "/en_US/fbevents.js", 200},
		{"/gtag/js?id=G-1", "", 404},
		{"/js/script.js", "", 404},
		{"/assets/x9/js/script.nope.js", "", 404},
		{"/assets/x9/js/script.hash.hash.js", "", 404},
		{"/assets/x9/gtag/js/", "", 404},
		{"/assets/x9/../x9/gtag/js?id=G-1", "/gtag/js?id=G-1", 200}, // the listener resolves ".." first
	} {
		before := c.count.Load()
		r := p.do("GET", tc.path, "", "X-Forwarded-For", ipSE) // EEA, no consent
		if r.Status != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, r.Status, tc.status)
			continue
		}
		if tc.cdnPath != "" && c.count.Load() > before && c.last(t).URL.RequestURI() != tc.cdnPath {
			t.Errorf("%s: CDN got %s, want %s", tc.path, c.last(t).URL.RequestURI(), tc.cdnPath)
		}
	}
}

// TestScriptTLSVerified: a vendor whose certificate does not verify gets no request.
func TestScriptTLSVerified(t *testing.T) {
	var reached atomic.Int64
	tlsCDN := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/javascript")
		w.Write([]byte("evil"))
	}))
	tlsCDN.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake, expected
	tlsCDN.StartTLS()
	defer tlsCDN.Close()
	p := startProxy(t, testConfig(tlsCDN.URL, "scripts:\n  fbevents: { upstream: \""+tlsCDN.URL+"/en_US/fbevents.js\" }\n"))
	if r := p.do("GET", "/en_US/fbevents.js", ""); r.Status != 502 || r.Body != "script unavailable\n" {
		t.Fatalf("%d %q", r.Status, r.Body)
	}
	if reached.Load() != 0 {
		t.Error("a request reached a vendor whose certificate did not verify")
	}
	if n := p.vendorErrors(t, "fbevents", telemetry.ScriptVendorConnect); n != 1 {
		t.Errorf("connect errors %d, want 1", n)
	}
}

// TestScriptsOff: scripts.enabled false serves nothing; a disabled entry is not served.
func TestScriptsOff(t *testing.T) {
	c := startCDN(t)
	off := startProxy(t, testConfig(c.srv.URL, "scripts:\n  enabled: false\n"))
	if r := off.do("GET", "/gtag/js?id=G-1", ""); r.Status != 404 {
		t.Errorf("enabled: false: %d", r.Status)
	}
	p, _ := startScriptProxy(t, c, "")
	p2 := startProxy(t, testConfig(c.srv.URL, "scripts:\n  gtag: { disabled: true }\n"))
	if r := p2.do("GET", "/gtag/js?id=G-1", ""); r.Status != 404 {
		t.Errorf("disabled: %d", r.Status)
	}
	if r := p.do("GET", "/gtag/js?id=G-1", ""); r.Status != 200 {
		t.Errorf("enabled: %d", r.Status)
	}
}

// TestScriptCacheSurvivesReload: a reload keeps what was fetched.
func TestScriptCacheSurvivesReload(t *testing.T) {
	c := startCDN(t)
	p, _ := startScriptProxy(t, c, "")
	p.do("GET", "/gtag/js?id=G-1", "")
	cfg, err := testLoader.LoadBytes("r.yaml", []byte(testConfig(c.srv.URL, scriptsYAML(c.srv.URL, "  prefix: /s\n"))))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.AdminListen = p.Config().Listen, p.Config().AdminListen
	if err := p.apply(cfg); err != nil {
		t.Fatal(err)
	}
	if r := p.do("GET", "/s/gtag/js?id=G-1", ""); r.Status != 200 || c.count.Load() != 1 {
		t.Errorf("after reload: %d, %d fetches", r.Status, c.count.Load())
	}
}
