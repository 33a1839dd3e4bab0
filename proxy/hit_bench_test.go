package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/redistest"
	"github.com/consentgate/consentgate/telemetry"
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

// newFormHitCtx is newHitCtx for a POST with a body of contentType (and, when enc is
// set, that Content-Encoding).
func newFormHitCtx(uri, xff, cookie, contentType, enc string, body []byte) *fasthttp.RequestCtx {
	ctx := newHitCtx("POST", uri, xff, cookie)
	ctx.Request.Header.SetContentType(contentType)
	if enc != "" {
		ctx.Request.Header.Set(fasthttp.HeaderContentEncoding, enc)
	}
	ctx.Request.SetBody(body)
	return ctx
}

// matomoForm is a Matomo form POST (statistics: anonymised in the EEA without consent).
const matomoForm = "idsite=1&rec=1&action_name=Pricing&url=https%3A%2F%2Fwww.example.com%2Fpricing%3Fgclid%3Dx&_id=0123456789abcdef&res=1920x1080&uid=user-42"

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

// BenchmarkHitDropBySnapshot: a Meta pixel from US-CA whose visitor refused marketing
// and whose record is gone (evicted, flushed): the signed snapshot in the cookie is
// verified (an HMAC-SHA256) and decides. BenchmarkHitDropStored is the same visitor with
// the record there, the snapshot only decoded to see it is not newer.
func BenchmarkHitDropBySnapshot(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	cookie := p.snapCookie("GGGGGGGGGGGGGGGGGGGGGA", 3, consent.Purposes{consent.Marketing: consent.Denied})
	serveN(b, p, newHitCtx("GET", "/tr?id=1234567890&ev=PageView", ipUSCA, cookie))
}

func BenchmarkHitDropStored(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	cookie := p.consentCookie(`{"statistics":true,"marketing":false}`)
	serveN(b, p, newHitCtx("GET", "/tr?id=1234567890&ev=PageView", ipUSCA, cookie))
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

// BenchmarkHitRedisWarm: the drop benchmark's hit, but the visitor's consent (marketing
// denied) comes from Redis through the instance's cache, as on a busy instance where
// the cache answers. Allocations must not grow compared with the memory store.
func BenchmarkHitRedisWarm(b *testing.B) {
	rs := redistest.Start(b)
	up := benchSink()
	p := startProxy(&testing.T{}, redisConfig(up.URL(), rs.Addr))
	cookie := p.consentCookie(`{"statistics":true,"marketing":false}`)
	serveN(b, p, newHitCtx("GET", "/tr?id=1234567890&ev=PageView&fbp=fb.1.2.3", ipSE, cookie))
}

// BenchmarkHitRedisCold: every hit carries a consent ID the cache has not seen, so each
// costs one Redis round trip (a miss: nothing stored under it).
func BenchmarkHitRedisCold(b *testing.B) {
	rs := redistest.Start(b)
	up := benchSink()
	cfg := strings.Replace(redisConfig(up.URL(), rs.Addr), "ttl: 30s\n    negative_ttl: 30s", "ttl: 1ms\n    negative_ttl: 1ms", 1)
	p := startProxy(&testing.T{}, cfg)
	ids := make([]string, 4096)
	for i := range ids {
		ids[i], _ = consent.NewID()
	}
	ctxs := make([]*fasthttp.RequestCtx, len(ids))
	for i, id := range ids {
		ctxs[i] = newHitCtx("GET", "/tr?id=1234567890&ev=PageView", ipSE, "cg_id="+id)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ctx := ctxs[i%len(ctxs)]
		i++
		ctx.Response.Reset()
		p.handlePublic(ctx)
	}
	b.ReportMetric(float64(p.metrics.ConsentLookupCount(telemetry.LookupRedis, telemetry.LookupMiss))/float64(i), "redis-calls/hit")
}

// BenchmarkHitTCFDrop: a Google Ads conversion from the EEA carrying a TC string that
// refuses marketing, plus GPP and US Privacy strings; the TC string is decoded once and
// then answered from the per-string cache. No upstream.
func BenchmarkHitTCFDrop(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	serveN(b, p, newHitCtx("GET", "/pagead/conversion/123/?label=abc&gdpr=1&gdpr_consent="+tcStatsOnly+
		"&gpp="+gppUSNatNoOptOut+"&us_privacy=1YNN", ipSE, "euconsent-v2="+tcStatsOnly))
}

// BenchmarkHitTCFForward: a GA4 hit whose TC string grants it, forwarded to a loopback
// upstream: the signal path's cost on top of BenchmarkHitForward.
func BenchmarkHitTCFForward(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	serveN(b, p, newHitCtx("GET", "/g/collect?"+ga4Query+"&gdpr_consent="+tcAcceptAll, ipSE, ""))
	if up.count.Load() == 0 {
		b.Fatal("nothing reached the upstream")
	}
}

// BenchmarkHitAnonymiseBrowserHeaders: BenchmarkHitAnonymise as a real beacon arrives,
// with a browser's, an auth proxy's and a CDN's headers and a body: the User-Agent
// reducer and the rebuilt headers on top of the rewrite.
func BenchmarkHitAnonymiseBrowserHeaders(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	serveN(b, p, withBrowserHeaders(newHitCtx("POST", "/g/collect?"+ga4Query, ipSE, "")))
	if up.count.Load() == 0 {
		b.Fatal("nothing reached the upstream")
	}
}

// BenchmarkHitForwardBrowserHeaders: the same beacon, consented.
func BenchmarkHitForwardBrowserHeaders(b *testing.B) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	cookie := p.consentCookie(`{"statistics":true,"marketing":true}`)
	serveN(b, p, withBrowserHeaders(newHitCtx("POST", "/g/collect?"+ga4Query, ipSE, cookie)))
	if up.count.Load() == 0 {
		b.Fatal("nothing reached the upstream")
	}
}

// BenchmarkHitForwardGzip: BenchmarkHitForward's visitor sends a GA4 sendBeacon POST of
// 20 events, gzip-compressed: the body is decoded (bounded by max_body_size), the IP
// parameter rewritten in every line and the decoded body sent. Compare with
// BenchmarkHitForwardBeacon, the same body uncompressed.
func BenchmarkHitForwardGzip(b *testing.B) {
	benchBeacon(b, "gzip")
}

// BenchmarkHitForwardBeacon: the body of BenchmarkHitForwardGzip, sent plain.
func BenchmarkHitForwardBeacon(b *testing.B) {
	benchBeacon(b, "")
}

func benchBeacon(b *testing.B, enc string) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	cookie := p.consentCookie(`{"statistics":true,"marketing":true}`)
	body := []byte(strings.Repeat("en=page_view&_et=1234&dl=https%3A%2F%2Fwww.example.com%2Fpricing&dt=Pricing\n", 20))
	if enc == "gzip" {
		body = gzipOf(b, string(body))
	}
	serveN(b, p, newFormHitCtx("/g/collect?"+ga4Query, ipSE, cookie, "text/plain;charset=UTF-8", enc, body))
	if up.count.Load() == 0 {
		b.Fatal("nothing reached the upstream")
	}
}

// benchPrepare measures the in-process half of a hit that goes upstream: decision,
// rewrite and the upstream request with its headers built, without the round trip
// (whose loopback timing would drown the difference).
func benchPrepare(b *testing.B, ctx *fasthttp.RequestCtx, consented bool) {
	up := benchSink()
	p := startProxy(&testing.T{}, testConfig(up.URL(), ""))
	if consented {
		ctx.Request.Header.SetCookie("cg_id", strings.TrimPrefix(p.consentCookie(`{"statistics":true,"marketing":true}`), "cg_id="))
	}
	rt := p.rt.Load()
	idx, tailAt := rt.Router.LookupRoute(ctx.Host(), ctx.Path())
	ep := &rt.Endpoints[idx]
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	b.ReportAllocs()
	for b.Loop() {
		h := acquireHit()
		h.ep, h.tailAt = ep, tailAt
		p.evaluate(rt, &ctx.Request, peerAddr(ctx.RemoteIP()), h)
		p.buildUpstream(&ctx.Request, h, req)
		req.Reset()
		releaseHit(h)
	}
}

func BenchmarkPrepareAnonymiseBrowserHeaders(b *testing.B) {
	benchPrepare(b, withBrowserHeaders(newHitCtx("POST", "/g/collect?"+ga4Query, ipSE, "")), false)
}

func BenchmarkPrepareForwardBrowserHeaders(b *testing.B) {
	benchPrepare(b, withBrowserHeaders(newHitCtx("POST", "/g/collect?"+ga4Query, ipSE, "")), true)
}
