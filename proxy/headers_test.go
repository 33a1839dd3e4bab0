package proxy

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// A visitor's browser behind an auth proxy and a CDN: everything below arrives with the
// hit, and none of it may reach a vendor except the headers the rules allow, rebuilt.
const (
	spoofIP   = "203.0.113.77" // an address the browser (or a CDN header) claims
	chromeUA  = "Mozilla/5.0 (Linux; Android 14; SM-S921B Build/UP1A.231005.007) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Mobile Safari/537.36"
	reducedUA = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	resetURL  = "https://shop.example.com/account/reset?token=8f14e45fceea167a5a36&email=jane%40example.com"
)

// identityHeaders are what auth proxies (oauth2-proxy, Google IAP, AWS ALB, Cloudflare
// Access), TLS terminators with client certificates and CDNs add; values carry the
// markers "jane" or spoofIP so a leak is visible in any header.
var identityHeaders = []string{
	"X-Forwarded-Email", "jane@example.com",
	"X-Forwarded-User", "jane",
	"X-Forwarded-Preferred-Username", "jane",
	"X-Auth-Request-Email", "jane@example.com",
	"Remote-User", "jane",
	"X-Remote-User", "jane",
	"X-Goog-Authenticated-User-Email", "accounts.google.com:jane@example.com",
	"X-Goog-Authenticated-User-Id", "accounts.google.com:jane-1234567890",
	"X-Amzn-Oidc-Identity", "jane-sub",
	"Cf-Access-Authenticated-User-Email", "jane@example.com",
	"X-Client-Cert", "jane-MIIBszCCAVmgAwIBAgIU",
	"X-Ssl-Client-S-Dn", "CN=jane,O=Example",
	"X-Ssl-Client-Cert", "jane-PEM",
	"Ssl-Client-Subject-Dn", "CN=jane",
	"Authorization", "Bearer jane-token",
	"Proxy-Authorization", "Basic amFuZQ==jane",
	"Cloudfront-Viewer-Address", spoofIP + ":46532",
	"Client-Ip", spoofIP,
	"X-Client-Ip", spoofIP,
	"True-Client-Ip", spoofIP,
	"Cf-Connecting-Ip", spoofIP,
	"Fastly-Client-Ip", spoofIP,
	"X-Real-Ip", spoofIP,
	"X-Cluster-Client-Ip", spoofIP,
	"X-Azure-Clientip", spoofIP,
	"X-Envoy-External-Address", spoofIP,
	"X-Original-Forwarded-For", spoofIP,
	"X-Appengine-User-Ip", spoofIP,
	"Fly-Client-Ip", spoofIP,
	"X-Vercel-Forwarded-For", spoofIP,
	"Forwarded", "for=" + spoofIP,
	"X-Visitor-Address", spoofIP, // a name nobody lists: allow-list, not deny-list
	"Via", "1.1 " + spoofIP,
	"Sec-Gpc", "1",
	"Dnt", "1",
}

// browserHeaders are what the browser itself sends with a beacon.
var browserHeaders = []string{
	"User-Agent", chromeUA,
	"Accept", "*/*",
	"Accept-Language", "de-CH,de;q=0.9,en;q=0.8",
	"Origin", "https://Shop.Example.com",
	"Referer", resetURL,
	"Sec-Ch-Ua", `"Chromium";v="131", "Not_A Brand";v="24"`,
	"Sec-Ch-Ua-Mobile", "?1",
	"Sec-Ch-Ua-Platform", `"Android"`,
	"Content-Type", "text/plain; uid=jane@example.com; charset=UTF-8",
	"Cookie", "_ga=GA1.1.1.2; session=jane-session",
}

// withBrowserHeaders adds what a browser, an auth proxy and a CDN send with a beacon
// (harness: identityHeaders, browserHeaders) and a body.
func withBrowserHeaders(ctx *fasthttp.RequestCtx) *fasthttp.RequestCtx {
	for _, hs := range [][]string{identityHeaders, browserHeaders} {
		for i := 0; i+1 < len(hs); i += 2 {
			if hs[i] != "Cookie" {
				ctx.Request.Header.Set(hs[i], hs[i+1])
			}
		}
	}
	ctx.Request.SetBodyString("en=page_view&_et=10\nen=scroll")
	return ctx
}

// TestUpstreamHeadersEndToEnd sends hits carrying identity, certificate, CDN and IP
// headers, a Referer with a reset token and a Content-Type with parameters through the
// real proxy, forwarded and anonymised, for a vendor that takes the IP as a parameter
// (GA4) and one that takes it by header (Meta), and checks what the sink receives:
// exactly the allowed headers, rebuilt, and only the proxy's own IP.
func TestUpstreamHeadersEndToEnd(t *testing.T) {
	up := startSink(t)
	anonMarketing := "policy:\n  opt_in:\n    unset:\n      marketing: anonymise\n"
	p := startProxy(t, testConfig(up.URL(), anonMarketing))
	cases := []struct {
		name, method, target, body, visitor string
		// want is every header the sink may see, with its exact value ("" = any).
		want map[string]string
	}{
		{"ga4 forward", "POST", "/g/collect?v=2&tid=G-1&cid=1.2&_uip=" + spoofIP, "en=page_view", ipUSCA, map[string]string{
			"Host": "", "Content-Length": "12",
			"User-Agent": chromeUA, "Accept": "*/*", "Accept-Language": "de-CH,de;q=0.9,en;q=0.8",
			"Origin": "https://shop.example.com", "Referer": "https://shop.example.com/",
			"Sec-Ch-Ua": `"Chromium";v="131", "Not_A Brand";v="24"`, "Sec-Ch-Ua-Mobile": "?1", "Sec-Ch-Ua-Platform": `"Android"`,
			"Content-Type": "text/plain; charset=utf-8",
		}},
		{"ga4 anonymise", "POST", "/g/collect?v=2&tid=G-1&cid=1.2&_uip=" + spoofIP, "en=page_view", ipSE, map[string]string{
			"Host": "", "Content-Length": "12",
			"User-Agent": reducedUA, "Accept-Language": "de", "Content-Type": "text/plain; charset=utf-8",
		}},
		// Sec-GPC: 1 opts marketing out in us-ca; "other" does not honour it.
		{"meta forward", "POST", "/tr/", "id=1&ev=PageView", ipUSWA, map[string]string{
			"Host": "", "Content-Length": "16",
			"User-Agent": chromeUA, "Accept": "*/*", "Accept-Language": "de-CH,de;q=0.9,en;q=0.8",
			"Origin": "https://shop.example.com", "Referer": "https://shop.example.com/",
			"Sec-Ch-Ua": `"Chromium";v="131", "Not_A Brand";v="24"`, "Sec-Ch-Ua-Mobile": "?1", "Sec-Ch-Ua-Platform": `"Android"`,
			"Content-Type":    "text/plain; charset=utf-8",
			"X-Forwarded-For": ipUSWA,
		}},
		{"meta anonymise", "POST", "/tr/", "id=1&ev=PageView", ipSE, map[string]string{
			"Host": "", "Content-Length": "16",
			"User-Agent": reducedUA, "Accept-Language": "de", "Content-Type": "text/plain; charset=utf-8",
			"X-Forwarded-For": "89.160.20.0",
		}},
		{"meta anonymise get: no body, no content type", "GET", "/tr?id=1&ev=PageView", "", ipSE, map[string]string{
			"Host": "", "User-Agent": reducedUA, "Accept-Language": "de", "X-Forwarded-For": "89.160.20.0",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := append([]string{"X-Forwarded-For", spoofIP + ", " + c.visitor}, identityHeaders...)
			hdr = append(hdr, browserHeaders...)
			if r := p.do(c.method, c.target, c.body, hdr...); r.Status >= 300 {
				t.Fatalf("browser got %d", r.Status)
			}
			got := up.one(t)
			for name, vs := range got.Header {
				want, ok := c.want[name]
				switch {
				case !ok:
					t.Errorf("upstream got %s: %q", name, vs)
				case len(vs) != 1:
					t.Errorf("upstream got %s %d times: %q", name, len(vs), vs)
				case want != "" && vs[0] != want:
					t.Errorf("upstream %s = %q, want %q", name, vs[0], want)
				}
			}
			for name := range c.want {
				if got.Header.Get(name) == "" {
					t.Errorf("upstream lacks %s", name)
				}
			}
			all := got.Query + "\n" + got.Body + "\n" + headerText(got)
			for _, leak := range []string{spoofIP, "jane", "token", "8f14e45f", "uid=", "reset", "_ga=", "GA1.1"} {
				if strings.Contains(all, leak) {
					t.Errorf("%q reached the upstream:\n%s", leak, all)
				}
			}
		})
	}
}

// TestConnectionListedHeaderIsHopByHop: a header the request's Connection header names
// is meant for the next hop only (RFC 9110 §7.6.1), even one the rules allow.
func TestConnectionListedHeaderIsHopByHop(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	p.do("GET", "/g/collect?v=2&tid=G-1", "", "X-Forwarded-For", ipUSCA, "Connection", "keep-alive, Accept-Language",
		"Accept-Language", "de", "Accept", "*/*")
	got := up.one(t)
	if v := got.Header.Get("Accept-Language"); v != "" {
		t.Errorf("Accept-Language named by Connection went upstream: %q", v)
	}
	if v := got.Header.Get("Accept"); v != "*/*" {
		t.Errorf("Accept = %q, want it forwarded", v)
	}
}

// TestAnonymisedHitAnsweredLocally: whatever the vendor answers — a 200 with a body, a
// response stream, a redirect, cookies, its own headers — an anonymised hit's browser
// gets the endpoint's local response, byte for byte; a forwarded hit still gets the
// vendor's answer (without its cookies) when relay allows it, else the local response
// too (TestRelayedResponses).
func TestAnonymisedHitAnsweredLocally(t *testing.T) {
	up := startSink(t)
	anonMarketing := "policy:\n  opt_in:\n    unset:\n      marketing: anonymise\n"
	p := startProxy(t, testConfig(up.URL(), anonMarketing))
	answers := []struct {
		name    string
		status  int
		body    string
		header  []string
		relayed bool // a forwarded hit gets the vendor's status and body
	}{
		{"200 with a body", 200, `{"vendor":"answer"}`, []string{"Content-Type", "application/json", "X-Vendor-Trace", "abc"}, true},
		{"a response stream", 200, "event: message\ndata: {\"send_pixel\":[\"https://ad.example/p?id=1\"]}\n\n",
			[]string{"Content-Type", "text/event-stream", "Cache-Control", "max-age=3600"}, false},
		{"a redirect", 302, "", []string{"Location", "https://www.google.com/pagead/1p-conversion/1/?id=jane"}, false},
		{"a 404", 404, "not found", []string{"Content-Type", "text/plain"}, true},
	}
	hits := []struct {
		name, target string
		gif          bool
	}{
		{"ga4 (204)", "/g/collect?v=2&tid=G-1&cid=1.2&richsstsse", false},
		{"meta (gif)", "/tr?id=1&ev=PageView", true},
	}
	for _, a := range answers {
		for _, h := range hits {
			t.Run(a.name+"/"+h.name, func(t *testing.T) {
				up.answer(a.status, a.body, a.header...)
				defer up.answer(0, "")
				r := p.do("GET", h.target, "", "X-Forwarded-For", ipSE, "User-Agent", chromeUA)
				up.one(t) // it did go upstream
				assertLocalResponse(t, r, h.gif)

				r = p.do("GET", h.target, "", "X-Forwarded-For", ipUSCA, "User-Agent", chromeUA)
				up.one(t)
				switch {
				case !a.relayed:
					assertLocalResponse(t, r, h.gif)
				case r.Status != a.status || r.Body != a.body:
					t.Errorf("forwarded hit: %d %q, want the vendor's %d %q", r.Status, r.Body, a.status, a.body)
				}
				if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
					t.Errorf("forwarded hit: vendor Set-Cookie relayed: %v", c)
				}
			})
		}
	}
}

func assertLocalResponse(t *testing.T, r resp, gif bool) {
	t.Helper()
	want := http.Header{"Cache-Control": {"no-store"}, "X-Content-Type-Options": {"nosniff"}}
	if gif {
		if r.Status != 200 || r.Body != string(transparentGIF) {
			t.Errorf("anonymised image pixel: %d %q, want 200 and the 1x1 GIF", r.Status, r.Body)
		}
		want["Content-Type"] = []string{"image/gif"}
		want["Content-Length"] = []string{"43"}
	} else if r.Status != 204 || r.Body != "" {
		t.Errorf("anonymised hit: %d %q, want 204 and no body", r.Status, r.Body)
	}
	for name, vs := range r.Header {
		switch name {
		case "Date", "Server":
			continue // the proxy's own
		}
		if w, ok := want[name]; !ok || strings.Join(vs, ",") != strings.Join(w, ",") {
			t.Errorf("anonymised hit's answer has %s: %q", name, vs)
		}
	}
}

// TestExplainShowsTheWire: for forwarded and anonymised hits, explain's upstream
// headers are exactly what the sink receives, header for header.
func TestExplainShowsTheWire(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	hdr := append(append([]string{}, identityHeaders...), browserHeaders...)
	for _, c := range []struct {
		name, method, target, body, visitor string
	}{
		{"forward post", "POST", "/g/collect?v=2&tid=G-1&cid=1.2", "en=page_view\nen=scroll", ipUSCA},
		{"anonymise post", "POST", "/g/collect?v=2&tid=G-1&cid=1.2", "en=page_view\nen=scroll", ipSE},
		{"forward get by header ip", "GET", "/tr?id=1&ev=PageView", "", ipUSWA},
		{"forward post without content type", "POST", "/mp/collect?measurement_id=G-1&api_secret=s", `{"client_id":"1.2","events":[{"name":"x"}]}`, ipUSCA},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := append([]string{"X-Forwarded-For", c.visitor}, hdr...)
			if strings.HasPrefix(c.target, "/mp/") {
				h = withoutHeader(h, "Content-Type")
			}
			p.do(c.method, c.target, c.body, h...)
			got := up.one(t)
			// The host the live hit was sent to: pseudonyms are kept apart per site.
			req := ExplainRequest{Method: c.method, URL: c.target, Body: c.body, RemoteAddr: "127.0.0.1", Headers: map[string]string{"Host": p.PublicAddr()}}
			for i := 0; i+1 < len(h); i += 2 {
				req.Headers[h[i]] = h[i+1]
			}
			code, out := p.Explain(t.Context(), req)
			if code != 200 {
				t.Fatalf("explain: %d %s", code, out)
			}
			var ex struct {
				Upstream struct {
					Headers map[string]string `json:"headers"`
					Body    string            `json:"body"`
				} `json:"upstream"`
			}
			if err := json.Unmarshal(out, &ex); err != nil {
				t.Fatal(err)
			}
			wire := map[string]string{}
			for k, vs := range got.Header {
				wire[k] = strings.Join(vs, ",")
			}
			if a, b := flat(ex.Upstream.Headers), flat(wire); a != b {
				t.Errorf("explain shows\n%s\nthe wire had\n%s", a, b)
			}
			if ex.Upstream.Body != got.Body {
				t.Errorf("explain body %q, wire %q", ex.Upstream.Body, got.Body)
			}
		})
	}
}

func withoutHeader(h []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(h); i += 2 {
		if !strings.EqualFold(h[i], name) {
			out = append(out, h[i], h[i+1])
		}
	}
	return out
}

func flat(m map[string]string) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, http.CanonicalHeaderKey(k)+": "+v)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestControlCharactersNeverGoUpstream: a header value with a control character never
// reaches a vendor, whether the listener refuses the request (fasthttp rejects most)
// or lets it through, and whether the hit is live or explained.
func TestControlCharactersNeverGoUpstream(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	for _, c := range []byte{0x00, 0x01, 0x0b, 0x1b, 0x7f} {
		bad := "Mozilla/5.0 (X11; Linux x86_64)" + string(c) + "X-Injected: 1"
		for _, name := range []string{"User-Agent", "Accept", "Accept-Language", "Sec-Ch-Ua", "Origin", "Referer", "Content-Type"} {
			raw := "POST /g/collect?v=2&tid=G-1 HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipUSCA +
				"\r\nContent-Length: 12\r\n" + name + ": " + bad + "\r\n\r\nen=page_view"
			p.rawRequest(t, raw)
			for _, got := range up.take() {
				for k, vs := range got.Header {
					for _, v := range vs {
						if strings.IndexByte(v, c) >= 0 || strings.Contains(v, "X-Injected") {
							t.Errorf("%#x in %s reached the upstream as %s: %q", c, name, k, v)
						}
					}
				}
			}
			code, out := p.Explain(t.Context(), ExplainRequest{Method: "POST", URL: "/g/collect?v=2&tid=G-1", Body: "en=page_view",
				RemoteAddr: "127.0.0.1", Headers: map[string]string{"X-Forwarded-For": ipUSCA, name: bad}})
			if code != 200 {
				t.Fatalf("explain: %d %s", code, out)
			}
			var ex struct {
				Upstream struct{ Headers map[string]string } `json:"upstream"`
			}
			if err := json.Unmarshal(out, &ex); err != nil {
				t.Fatal(err)
			}
			for k, v := range ex.Upstream.Headers {
				if strings.IndexByte(v, c) >= 0 || strings.Contains(v, "X-Injected") {
					t.Errorf("explain: %#x in %s would go upstream as %s: %q", c, name, k, v)
				}
			}
		}
	}
}
