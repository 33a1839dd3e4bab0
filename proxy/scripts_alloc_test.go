//go:build !race

package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestScriptHitAllocationBudget: a script served from the cache allocates nothing, in
// every form it is served: plain, gzipped, 304, HEAD, a Plausible variant, with the
// visitor's headers and undeclared parameters.
func TestScriptHitAllocationBudget(t *testing.T) {
	c := startCDN(t)
	c.answer(200, strings.Repeat("window.dataLayer=window.dataLayer||[];", 2000), "Cache-Control", "max-age=600")
	p, _ := startScriptProxy(t, c, "")
	etag := p.do("GET", "/gtag/js?id=G-ABC123", "").Header.Get("ETag")
	for _, tc := range []struct {
		name string
		ctx  *fasthttp.RequestCtx
	}{
		{"plain", newHitCtx("GET", "/gtag/js?id=G-ABC123&l=dataLayer", ipSE, "_ga=GA1.1.1.2")},
		{"gzip", withBrowserHeaders(newHitCtx("GET", "/gtag/js?id=G-ABC123&utm_source=x&_=1", ipSE, "_ga=GA1.1.1.2"))},
		{"304", newHitCtx("GET", "/gtm.js?id=GTM-X&gtm_auth=abc&gtm_preview=env-2&gtm_cookies_win=x", ipSE, "")},
		{"head", newHitCtx("HEAD", "/en_US/fbevents.js", ipSE, "")},
		{"variant", newHitCtx("GET", "/js/script.outbound-links.hash.js", ipSE, "")},
		{"bad request", newHitCtx("GET", "/gtag/js?id=G%2F1", ipSE, "")},
	} {
		if tc.name == "gzip" {
			tc.ctx.Request.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		}
		if tc.name == "304" {
			tc.ctx.Request.Header.Set("If-None-Match", "W/\"other\", "+etag)
		}
		tc.ctx.Response.Reset()
		p.handlePublic(tc.ctx) // the miss, and warm buffers
		if tc.name == "304" {
			tc.ctx.Request.Header.Set("If-None-Match", string(tc.ctx.Response.Header.Peek("ETag")))
		}
		tc.ctx.Response.Reset()
		p.handlePublic(tc.ctx)
		want := map[string]int{"304": 304, "bad request": 400}[tc.name]
		if want == 0 {
			want = 200
		}
		if got := tc.ctx.Response.StatusCode(); got != want {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, got, want, tc.ctx.Response.Body())
		}
		if tc.name == "bad request" {
			continue // refusals write a message; the budget is for served scripts
		}
		if got := testing.AllocsPerRun(500, func() {
			tc.ctx.Response.Reset()
			p.handlePublic(tc.ctx)
		}); got > 0 {
			t.Errorf("%s: %.1f allocs per script hit, budget 0", tc.name, got)
		}
	}
}
