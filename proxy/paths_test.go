package proxy

import (
	"fmt"
	"strings"
	"testing"
)

// rawHit writes one request on a fresh connection to the public listener, exactly as
// given (request-target and all), and returns the status code the browser got.
func (p *testProxy) rawHit(t *testing.T, method, target string, headers ...string) int {
	t.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: t.example.com\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	resp := p.rawRequest(t, b.String())
	var code int
	if _, err := fmt.Sscanf(resp, "HTTP/1.1 %d", &code); err != nil {
		t.Fatalf("%q: no status line in %q", target, resp)
	}
	return code
}

// TestHostilePathsNeverReachUpstream sends, through the real listener, consented Google
// Ads hits whose path after the conversion ID carries something other than the vendor's
// shape. Each is dropped and counted as bad_path (or refused by the listener before
// routing, for bytes that cannot stand on a request line), the browser gets its pixel,
// and nothing reaches the upstream. A well-formed hit is forwarded with the path rebuilt
// from the catalogue, to show the drops are the path's doing.
func TestHostilePathsNeverReachUpstream(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "routes:\n  - { path: \"/ads/*\", endpoint: google_ads_conversion }\n"))
	cookie := p.consentCookie(`{"marketing":true,"statistics":true}`)
	hdr := []string{"X-Forwarded-For", ipSE, "Cookie", cookie}
	const c = "/pagead/conversion/"

	send := func(t *testing.T, target string) int {
		t.Helper()
		return p.rawHit(t, "GET", target, hdr...)
	}
	if code := send(t, c+"123456789/?label=L&gclid=abc"); code >= 300 {
		t.Fatalf("good hit: %d", code)
	}
	if got := up.one(t); got.Target() != c+"123456789/?label=L&gclid=abc" {
		t.Fatalf("good hit went upstream as %q", got.Line())
	}
	send(t, "/ads/42?label=L")
	if got := up.one(t); got.Target() != c+"42/?label=L" {
		t.Fatalf("configured prefix route went upstream as %q", got.Line())
	}

	for _, tc := range []struct {
		name, target string
		listener     bool // refused by the listener before routing: 400, not counted
	}{
		{"the review's hit: encoded ? & #", c + "123/%3Fgclid%3Dabc%26em%3Dx%23?label=L", false},
		{"encoded ?", c + "123%3F/?label=L", false},
		{"encoded #", c + "123%23x/?label=L", false},
		{"encoded /", c + "123%2F456/?label=L", false},
		{"dot segments", c + "123/../456/?label=L", false},
		{"dot segments escaping the prefix", c + "123/../../conversion/9/?label=L", false},
		{"encoded dot segments", c + "123/%2e%2e/456/?label=L", false},
		{"encoded NUL", c + "123%00/?label=L", false},
		{"encoded space", c + "123%20/?label=L", false},
		{"encoded CRLF and header", c + "123%0D%0AX-Injected:%201/?label=L", false},
		{"overlong ID", c + strings.Repeat("7", 21) + "/?label=L", false},
		{"very long ID", c + strings.Repeat("7", 2000) + "/?label=L", false},
		{"request line over max_header_size", c + strings.Repeat("7", 40000) + "/?label=L", true},
		{"non-ASCII raw", c + "123\xc3\xa9/?label=L", false},
		{"non-ASCII encoded", c + "123%C3%A9/?label=L", false},
		{"double-encoded ?", c + "123/%253Fgclid%253Dabc?label=L", false},
		{"encoded digits", c + "%31%32%33/?label=L", false},
		{"letters", c + "AW-123/?label=L", false},
		{"extra segment", c + "123/gclid/?label=L", false},
		{"empty ID", c + "/?label=L", false},
		{"prefix spelled with an escape", "/pagead/%63onversion/123/?label=L", false},
		{"double slash", "//pagead/conversion/123/?label=L", false},
		{"configured prefix, bad rest", "/ads/123%3Fx/?label=L", false},
		{"raw NUL", c + "123\x00/?label=L", true},
		{"raw space", c + "123 456/?label=L", true},
		{"raw tab", c + "123\t/?label=L", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.hits(t, "google_ads", "drop", "bad_path", "eea")
			code := send(t, tc.target)
			up.none(t)
			got := p.hits(t, "google_ads", "drop", "bad_path", "eea") - before
			switch {
			case tc.listener && code != 400 && code != 414:
				t.Errorf("listener answered %d, want 400 (414 for a request line too long)", code)
			case tc.listener && got != 0:
				t.Errorf("bad_path counted %d for a request never routed", got)
			case !tc.listener && (code != 200 || got != 1):
				t.Errorf("status %d, bad_path counted %d; want the pixel (200) and 1", code, got)
			}
		})
	}
}

// TestForwardedQueryIsEscaped: a consented hit's query goes upstream as sent, but the
// bytes a browser would have escaped (non-ASCII, quotes, angle brackets, a "%" that
// starts no escape) arrive escaped, so the request line carries nothing raw.
func TestForwardedQueryIsEscaped(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	cookie := p.consentCookie(`{"marketing":true,"statistics":true}`)
	p.rawHit(t, "GET", "/tr?id=1&ev=PageView&cd[content_name]=Caf\xc3\xa9\"<b>'&x=100%&y=%41", "X-Forwarded-For", ipSE, "Cookie", cookie)
	got := up.one(t)
	if want := "/tr?id=1&ev=PageView&cd[content_name]=Caf%C3%A9%22%3Cb%3E%27&x=100%25&y=%41"; got.Target() != want {
		t.Errorf("upstream request line %q, want target %q", got.Line(), want)
	}
}

// TestUnreadableRequestsLogNothingPersonal: a request the listener cannot read (a NUL or
// a space in its path) is answered 400 and logged through the server's log by a fixed
// line only. fasthttp's own message, which it writes to stderr unless given a logger,
// would quote the request, its consent cookie and X-Forwarded-For included, and name the
// peer's address.
func TestUnreadableRequestsLogNothingPersonal(t *testing.T) {
	up := startSink(t)
	var logs syncBuffer
	p := startProxyLog(t, testConfig(up.URL(), ""), &logs)
	for _, target := range []string{"/pagead/conversion/1\x00/?gclid=secretclick", "/g/collect?cid=1 2&gclid=secretclick"} {
		if code := p.rawHit(t, "GET", target, "X-Forwarded-For", ipSE, "Cookie", "cg_id=secretconsentid"); code != 400 {
			t.Errorf("%q: %d, want 400", target, code)
		}
	}
	up.none(t)
	out := logs.String()
	if !strings.Contains(out, "a connection could not be served") {
		t.Errorf("the log does not say a request was refused:\n%s", out)
	}
	for _, secret := range []string{ipSE, "secretconsentid", "secretclick", "127.0.0.1"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log carries %q:\n%s", secret, out)
		}
	}
}
