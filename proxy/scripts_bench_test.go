package proxy

import (
	"strings"
	"testing"
)

// BenchmarkScriptHit: a Google tag served from the cache, the whole in-process path
// (route, parameters, key, cache, headers), plain and gzipped; the body is handed over
// without a copy.
func BenchmarkScriptHit(b *testing.B) {
	c := startCDN(b)
	c.answer(200, strings.Repeat("window.dataLayer=window.dataLayer||[];", 8000), "Cache-Control", "max-age=600")
	p, _ := startScriptProxy(b, c, "")
	b.Run("plain", func(b *testing.B) {
		serveN(b, p, newHitCtx("GET", "/gtag/js?id=G-ABC123XYZ9&l=dataLayer", ipSE, "_ga=GA1.1.1186384312.1712340000"))
	})
	b.Run("gzip", func(b *testing.B) {
		ctx := withBrowserHeaders(newHitCtx("GET", "/gtag/js?id=G-ABC123XYZ9&l=dataLayer", ipSE, "_ga=GA1.1.1186384312.1712340000"))
		ctx.Request.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		serveN(b, p, ctx)
	})
	if c.count.Load() != 1 {
		b.Fatalf("the CDN was asked %d times, want 1", c.count.Load())
	}
}
