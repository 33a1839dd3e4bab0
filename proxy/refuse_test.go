package proxy

import (
	"bufio"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/telemetry"
)

// forwardedPost is the head of a hit the proxy forwards (GA4 from a US-CA visitor who
// has not objected), for the framing tests to build on.
const forwardedPost = "POST /g/collect?v=2&tid=G-1&cid=1.2 HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipUSCA +
	"\r\nContent-Type: text/plain\r\nUser-Agent: head-agent\r\n"

const smuggled = "GET /g/collect?v=2&tid=G-SMUGGLED HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipUSCA + "\r\n\r\n"

// TestSmugglingRefused: a request whose length two parsers could read differently —
// Content-Length with Transfer-Encoding in either order, a coding other than chunked, two
// lengths — is answered 400 and its connection closed, counted as bad_framing; the
// request smuggled behind it is never answered and nothing reaches the upstream.
func TestSmugglingRefused(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	body := "0\r\n\r\n" + smuggled
	for _, c := range []struct {
		name, raw string
	}{
		{"Content-Length then Transfer-Encoding", forwardedPost + "Content-Length: " + strconv.Itoa(len(body)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + body},
		{"Transfer-Encoding then Content-Length", forwardedPost + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + body},
		{"Content-Length: 0 with chunked", forwardedPost + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + body},
		{"upper-case names", forwardedPost + "CONTENT-LENGTH: 5\r\nTRANSFER-ENCODING: CHUNKED\r\n\r\n" + body},
		{"identity coding", forwardedPost + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nen=" + smuggled},
		{"identity coding alone", forwardedPost + "Transfer-Encoding: identity\r\n\r\n" + smuggled},
		{"a list of codings", forwardedPost + "Transfer-Encoding: gzip, chunked\r\n\r\n" + body},
		{"two Transfer-Encodings", forwardedPost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + body},
		{"two Content-Lengths", forwardedPost + "Content-Length: 3\r\nContent-Length: 40\r\n\r\nen=" + smuggled},
		{"a broken chunk", forwardedPost + "Transfer-Encoding: chunked\r\n\r\n3x\r\nen=\r\n0\r\n\r\n" + smuggled},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.refused(telemetry.RefusedBadFraming)
			resp, closed := p.exchange(t, c.raw)
			if got := statuses(resp); !slices.Equal(got, []string{"400"}) || !closed {
				t.Errorf("statuses %v (closed %v), want one 400 and the connection closed\n%s", got, closed, resp)
			}
			if n := p.refused(telemetry.RefusedBadFraming) - before; n != 1 {
				t.Errorf("bad_framing counted %d, want 1", n)
			}
			up.none(t)
		})
	}
}

// TestWellFramedRequestsServed: what the framing checks must not touch: pipelined hits
// are each answered, and a chunked hit without trailers is forwarded with its body.
func TestWellFramedRequestsServed(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	resp, _ := p.exchange(t, forwardedPost+"Content-Length: 12\r\n\r\nen=page_view"+forwardedPost+"Content-Length: 9\r\nConnection: close\r\n\r\nen=scroll")
	if got := statuses(resp); !slices.Equal(got, []string{"204", "204"}) {
		t.Errorf("pipelined hits: %v, want two 204", got)
	}
	if got := up.take(); len(got) != 2 || got[0].Body != "en=page_view" || got[1].Body != "en=scroll" {
		t.Errorf("pipelined hits upstream: %+v", got)
	}
	resp, _ = p.exchange(t, forwardedPost+"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nen=\r\n9\r\npage_view\r\n0\r\n\r\n")
	if got := statuses(resp); !slices.Equal(got, []string{"204"}) {
		t.Errorf("chunked hit: %v, want 204", got)
	}
	got := up.one(t)
	if got.Body != "en=page_view" || got.Header.Get("User-Agent") != "head-agent" {
		t.Errorf("chunked hit upstream: body %q, User-Agent %q", got.Body, got.Header.Get("User-Agent"))
	}
	if h := got.Header.Get(headEnd); h != "" {
		t.Errorf("the head marker went upstream: %q", h)
	}
}

// TestTrailersNeverBecomeHeaders: fasthttp appends a chunked body's trailer fields to
// the request's headers, where a trailer "User-Agent" or client hint would pass for the
// browser's; a hit with trailers is refused (400, bad_header) and nothing goes upstream.
func TestTrailersNeverBecomeHeaders(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	noUA := strings.Replace(forwardedPost, "User-Agent: head-agent\r\n", "", 1)
	for _, c := range []struct {
		name, raw string
		reason    telemetry.Refusal
	}{
		{"a trailer filling in a missing header", noUA + "Transfer-Encoding: chunked\r\nTrailer: User-Agent\r\n\r\n3\r\nen=\r\n0\r\nUser-Agent: trailer-agent\r\nSec-Ch-Ua: trailer\r\n\r\n", telemetry.RefusedBadHeader},
		{"a trailer repeating a header", forwardedPost + "Transfer-Encoding: chunked\r\n\r\n3\r\nen=\r\n0\r\nAccept-Language: xx\r\n\r\n", telemetry.RefusedBadHeader},
		{"an undeclared harmless-looking trailer", forwardedPost + "Transfer-Encoding: chunked\r\n\r\n3\r\nen=\r\n0\r\nX-Checksum: 1\r\n\r\n", telemetry.RefusedBadHeader},
		{"a trailer named like the marker", forwardedPost + "Transfer-Encoding: chunked\r\n\r\n3\r\nen=\r\n0\r\n" + headEnd + ": 1\r\nUser-Agent: x\r\n\r\n", telemetry.RefusedBadHeader},
		{"a forbidden trailer", forwardedPost + "Transfer-Encoding: chunked\r\n\r\n3\r\nen=\r\n0\r\nHost: evil.example\r\n\r\n", telemetry.RefusedBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.refused(c.reason)
			resp, closed := p.exchange(t, c.raw)
			if got := statuses(resp); !slices.Equal(got, []string{"400"}) || !closed {
				t.Errorf("statuses %v (closed %v), want one 400 and the connection closed", got, closed)
			}
			if n := p.refused(c.reason) - before; n != 1 {
				t.Errorf("%s counted %d, want 1", c.reason, n)
			}
			up.none(t)
		})
	}
}

// TestBadHeaderNamesRefused: a header name that is not a token (a space in it, which
// fasthttp keeps as part of the name), a folded line, a space before the colon, a NUL:
// 400 and the connection closed, each counted; odd but valid names pass.
func TestBadHeaderNamesRefused(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	get := "GET /g/collect?v=2&tid=G-1 HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipUSCA + "\r\n"
	for _, c := range []struct {
		name, header string
		reason       telemetry.Refusal
	}{
		{"a space in the name", "User Agent: x\r\n", telemetry.RefusedBadHeader},
		{"a tab in the name", "User\tAgent: x\r\n", telemetry.RefusedBadRequest}, // fasthttp's own refusal
		{"a folded line", "Accept-Language: de\r\n  X-Injected: 1\r\n", telemetry.RefusedBadHeader},
		{"a slash in the name", "Sec-Ch-Ua/x: 1\r\n", telemetry.RefusedBadRequest},
		{"a quote in the name", "Sec-\"Ch: 1\r\n", telemetry.RefusedBadRequest},
		{"a space before the colon", "Accept-Language : de\r\n", telemetry.RefusedBadRequest},
		{"a NUL in the name", "Acc\x00ept: x\r\n", telemetry.RefusedBadRequest},
		{"non-ASCII in the name", "Accept-Läng: x\r\n", telemetry.RefusedBadRequest},
		{"no colon", "Accept-Language de\r\n", telemetry.RefusedBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.refused(c.reason)
			resp, closed := p.exchange(t, get+c.header+"\r\n")
			if got := statuses(resp); !slices.Equal(got, []string{"400"}) || !closed {
				t.Errorf("statuses %v (closed %v), want one 400 and the connection closed", got, closed)
			}
			if n := p.refused(c.reason) - before; n != 1 {
				t.Errorf("%s counted %d, want 1", c.reason, n)
			}
			up.none(t)
		})
	}
	resp, _ := p.exchange(t, get+"X-!#$%&'*+-.^_`|~: 1\r\nConnection: close\r\n\r\n")
	if got := statuses(resp); !slices.Equal(got, []string{"204"}) {
		t.Errorf("a name of every token character: %v, want 204", got)
	}
	up.one(t)
}

// TestExpectNotForwarded: Expect is between the browser and the proxy, which answers
// "100 Continue" itself; the vendor never sees it, whatever its value.
func TestExpectNotForwarded(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	for _, expect := range []string{"100-continue", "something-else"} {
		resp, _ := p.exchange(t, forwardedPost+"Expect: "+expect+"\r\nContent-Length: 12\r\nConnection: close\r\n\r\nen=page_view")
		if got := statuses(resp); got[len(got)-1] != "204" {
			t.Errorf("Expect: %s: %v, want the hit answered 204", expect, got)
		}
		got := up.one(t)
		if v := got.Header.Get("Expect"); v != "" || strings.Contains(strings.ToLower(got.Raw), "expect") {
			t.Errorf("Expect: %s went upstream:\n%s", expect, got.Raw)
		}
		if got.Body != "en=page_view" {
			t.Errorf("Expect: %s: body %q upstream", expect, got.Body)
		}
	}
}

// TestCheckHeadAllocatesNothing: the head checks run on every request.
func TestCheckHeadAllocatesNothing(t *testing.T) {
	var req fasthttp.Request
	raw := forwardedPost + "Content-Length: 3\r\nCookie: a=1; b=2\r\nAccept-Language: de\r\n\r\nen="
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	if _, ok := checkHead(&req); !ok {
		t.Fatal("a good head refused")
	}
	if n := testing.AllocsPerRun(100, func() { checkHead(&req) }); n != 0 {
		t.Errorf("checkHead: %.1f allocations, want 0", n)
	}
}

// BenchmarkCheckHead: the head checks over a browser's head of about 1.5 KB (client
// hints, a cookie header with analytics cookies and a consent ID).
func BenchmarkCheckHead(b *testing.B) {
	var req fasthttp.Request
	raw := "GET /g/collect?v=2&tid=G-1&cid=1.2 HTTP/1.1\r\nHost: t.example.com\r\n" +
		"User-Agent: " + chromeUA + "\r\nAccept: */*\r\nAccept-Language: de-CH,de;q=0.9,en;q=0.8\r\n" +
		"Sec-Ch-Ua: \"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\"\r\nSec-Ch-Ua-Mobile: ?0\r\nSec-Ch-Ua-Platform: \"macOS\"\r\n" +
		"Referer: https://www.example.com/pricing\r\nOrigin: https://www.example.com\r\nSec-Fetch-Site: same-site\r\n" +
		"Cookie: " + fillerCookies(800) + "; cg_id=0123456789abcdef0123456789abcdef\r\n\r\n"
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := checkHead(&req); !ok {
			b.Fatal("refused")
		}
	}
}

// FuzzCheckHead: any head fasthttp reads is judged without a panic, exactly as a plain
// reading of RFC 9112 judges it: every field name a token, no folded line, and
// Transfer-Encoding only alone and only as chunked.
func FuzzCheckHead(f *testing.F) {
	for _, h := range []string{
		"Host: x\r\n", "Host: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n", "Host: x\r\nTransfer-Encoding: identity\r\n",
		"Host: x\r\nFoo Bar: 1\r\n", "Host: x\r\nA: 1\r\n  b\r\n", "Host: x\r\nTransfer-Encoding:  CHUNKED \r\n", "Host: x\r\nX-!#$%&'*+-.^_`|~: 1\r\n",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, hdrs string) {
		var req fasthttp.Request
		raw := "POST /g/collect HTTP/1.1\r\n" + hdrs + "\r\n"
		if req.Header.Read(bufio.NewReader(strings.NewReader(raw))) != nil {
			return
		}
		_, ok := checkHead(&req)
		if want := plainHeadOK(string(req.Header.RawHeaders())); ok != want {
			t.Errorf("checkHead(%q) = %v, the plain reading says %v", req.Header.RawHeaders(), ok, want)
		}
	})
}

// plainHeadOK is checkHead written for reading, not speed (no body, so no trailers).
func plainHeadOK(raw string) bool {
	var te, cl bool
	chunked := false
	for line := range strings.Lines(raw) {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			break
		}
		name, value, found := strings.Cut(line, ":")
		if !found || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r > 0x7f || !tchar[r] }) {
			return false
		}
		switch strings.ToLower(name) {
		case "transfer-encoding":
			te, chunked = true, strings.EqualFold(strings.Trim(value, " \t"), "chunked")
		case "content-length":
			cl = true
		}
	}
	return !te || !cl && chunked
}
