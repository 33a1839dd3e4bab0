package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// newHitCtx builds a RequestCtx as the listener would for one hit from a trusted
// loopback peer on behalf of visitor xff.
func newHitCtx(method, uri, xff, cookie string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("t.example.com")
	req.Header.Set("X-Forwarded-For", xff)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}

// benchSink is a sink that only counts what reaches it.
func benchSink() *sink {
	s := startSink(&testing.T{})
	s.discard = true
	return s
}

func serveN(b *testing.B, p *testProxy, ctx *fasthttp.RequestCtx) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		p.handlePublic(ctx)
	}
}

// BenchmarkHitDrop: a Meta pixel from the EEA without consent — the whole in-process
// path (route, client IP, GeoIP, store, decision, metrics, local GIF), no upstream.
func BenchmarkHitDrop(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	serveN(b, p, newHitCtx("GET", "/tr?id=1234567890&ev=PageView&fbp=fb.1.2.3&dl=https%3A%2F%2Fwww.example.com%2F", ipSE, ""))
}

// BenchmarkHitAnonymise: a GA4 page_view from the EEA without consent, rewritten and
// sent to a loopback upstream.
func BenchmarkHitAnonymise(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	serveN(b, p, newHitCtx("GET", "/g/collect?"+ga4Query, ipSE, ""))
	if up.count.Load() == 0 {
		b.Fatal("nothing reached the upstream")
	}
}

// BenchmarkHitForward: a consented GA4 hit (stored consent in the memory store).
func BenchmarkHitForward(b *testing.B) {
	up := benchSink()
	t := &testing.T{}
	p := startProxy(t, testConfig(up.URL(), ""))
	cookie := p.consentCookie(`{"statistics":true,"marketing":true}`)
	serveN(b, p, newHitCtx("GET", "/g/collect?"+ga4Query, ipSE, cookie))
	if up.count.Load() == 0 {
		b.Fatal("nothing reached the upstream")
	}
}
