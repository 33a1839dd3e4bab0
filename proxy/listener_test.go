package proxy

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/telemetry"
)

// exchange writes raw on a fresh connection to the public listener (over TLS when it
// serves TLS) and reads until the proxy closes the connection. closed is false when it
// stayed open (the read gave up after 10 s): a test that expects a keep-alive answer
// ends its last request with "Connection: close". A write error is ignored: the proxy
// may answer and close before the client has sent everything.
func (p *testProxy) exchange(t *testing.T, raw string) (resp string, closed bool) {
	t.Helper()
	c := p.dialPublic(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if raw != "" {
		go io.WriteString(c, raw)
	}
	b, err := io.ReadAll(c)
	return string(b), err == nil
}

// statuses lists the status codes of the responses in resp, in order.
func statuses(resp string) []string {
	var out []string
	for _, part := range strings.Split(resp, "HTTP/1.1 ")[1:] {
		if len(part) >= 3 {
			out = append(out, part[:3])
		}
	}
	return out
}

func (p *testProxy) refused(r telemetry.Refusal) int { return int(p.metrics.RefusedCount(r)) }

// fillerCookies is a Cookie header value of about n bytes, of the analytics and session
// cookies real sites carry.
func fillerCookies(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("_ga_" + strings.Repeat("X", 6) + string(rune('A'+i%26)) + "=GS1.1." + strings.Repeat("1234567890", 10))
	}
	return b.String()
}

// TestRealWorldHeadSizes: a hit carrying a 12 KB cookie header (analytics cookies, a TC
// string, a session) is decided as any other, its consent cookie read from the end of
// the header; a 64 KB head gets 431 and a request line over max_header_size 414, each
// counted, nothing sent upstream, and the answer reaches the client whole rather than as
// a reset.
func TestRealWorldHeadSizes(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	consent := p.consentCookie(`{"statistics":true,"marketing":true}`)
	hit := func(target, cookie string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipSE +
			"\r\nCookie: " + cookie + "\r\nConnection: close\r\n\r\n"
	}

	before := p.hits(t, "ga4", "forward", "consent_granted", "eea")
	resp, _ := p.exchange(t, hit("/g/collect?v=2&tid=G-1&cid=1.2", fillerCookies(12<<10)+"; "+consent))
	if got := statuses(resp); len(got) != 1 || got[0] != "204" {
		t.Fatalf("12 KB cookie header: %v, want one 204\n%.300s", got, resp)
	}
	up.one(t)
	if n := p.hits(t, "ga4", "forward", "consent_granted", "eea") - before; n != 1 {
		t.Errorf("12 KB cookie header: forwarded consent_granted counted %d, want 1 (the consent cookie at its end was read)", n)
	}

	// A long query that fits: decided, not refused.
	resp, _ = p.exchange(t, hit("/g/collect?v=2&tid=G-1&cid=1.2&dl="+strings.Repeat("a", 20<<10), consent))
	if got := statuses(resp); len(got) != 1 || got[0] != "204" {
		t.Errorf("20 KB URL: %v, want one 204", got)
	}
	up.one(t)

	for _, c := range []struct {
		name   string
		raw    string
		status string
		reason telemetry.Refusal
	}{
		{"64 KB cookie header", hit("/g/collect?v=2&tid=G-1", fillerCookies(64<<10)), "431", telemetry.RefusedHeaderTooLarge},
		{"many headers", "GET /g/collect?v=2 HTTP/1.1\r\nHost: t.example.com\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 400) + "\r\n",
			"431", telemetry.RefusedHeaderTooLarge},
		{"40 KB URL", hit("/g/collect?v=2&tid=G-1&dl="+strings.Repeat("a", 40<<10), consent), "414", telemetry.RefusedURITooLong},
		{"40 KB URL, no line end yet", "GET /g/collect?dl=" + strings.Repeat("a", 40<<10), "414", telemetry.RefusedURITooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.refused(c.reason)
			resp, closed := p.exchange(t, c.raw)
			if got := statuses(resp); len(got) != 1 || got[0] != c.status || !closed {
				t.Errorf("statuses %v (closed %v), want one %s and the connection closed\n%.200s", got, closed, c.status, resp)
			}
			if n := p.refused(c.reason) - before; n != 1 {
				t.Errorf("%s counted %d, want 1", c.reason, n)
			}
			up.none(t)
		})
	}
	if m := p.metricsText(t); !strings.Contains(m, `consentgate_requests_refused_total{reason="header_too_large"} 2`) ||
		!strings.Contains(m, `consentgate_requests_refused_total{reason="uri_too_long"} 2`) {
		t.Errorf("/metrics lacks the refusals:\n%s", grep(m, "refused"))
	}
}

// TestMaxHeaderSizeConfigurable: a smaller max_header_size refuses the 12 KB cookie
// header the default takes.
func TestMaxHeaderSizeConfigurable(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "max_header_size: 8192\n"))
	resp, _ := p.exchange(t, "GET /g/collect?v=2 HTTP/1.1\r\nHost: t.example.com\r\nCookie: "+fillerCookies(12<<10)+"\r\n\r\n")
	if got := statuses(resp); len(got) != 1 || got[0] != "431" {
		t.Errorf("12 KB cookie header with max_header_size 8192: %v, want 431", got)
	}
	up.none(t)
}

// TestSlowHeadClosedByReadTimeout: a client that sends a head and never finishes it
// (slowloris) gets 408 and the connection closed once read_timeout has passed, counted;
// a connection that never sends a byte (a browser's preconnect) is closed without an
// answer and without a count.
func TestSlowHeadClosedByReadTimeout(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "read_timeout: 300ms\n"))
	before := p.refused(telemetry.RefusedReadTimeout)
	resp, closed := p.exchange(t, "GET /g/collect?v=2 HTTP/1.1\r\nHost: t.example.com\r\nX-Slow: ")
	if got := statuses(resp); !closed || len(got) != 1 || got[0] != "408" {
		t.Errorf("slow head: %v (closed %v), want one 408 and the connection closed", got, closed)
	}
	if n := p.refused(telemetry.RefusedReadTimeout) - before; n != 1 {
		t.Errorf("read_timeout counted %d, want 1", n)
	}
	resp, closed = p.exchange(t, "")
	if !closed || resp != "" {
		t.Errorf("idle connection: %q (closed %v), want no answer and the connection closed", resp, closed)
	}
	if n := p.refused(telemetry.RefusedReadTimeout) - before; n != 1 {
		t.Errorf("an unused connection was counted as refused (%d)", n-1)
	}
	up.none(t)
}

// TestConnectionCapPerAddress: a client address holds at most max_conns_per_ip
// connections; one more gets 429 and is closed, counted; once one closes, a new one is
// served. Connections from a trusted proxy are not capped: a load balancer's carry every
// visitor.
func TestConnectionCapPerAddress(t *testing.T) {
	up := startSink(t)
	untrusted := strings.Replace(testConfig(up.URL(), "max_conns_per_ip: 3\n"),
		`trusted_proxies: ["127.0.0.1/32", "::1/128"]`, `trusted_proxies: ["10.9.9.9"]`, 1)
	p := startProxy(t, untrusted)
	pl := p.publicLn.(*publicListener)
	loopback := netip.MustParseAddr("127.0.0.1")
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", p.PublicAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Served: each answers a keep-alive request, so each is accepted and counted.
	var held []net.Conn
	for range 3 {
		c := dial()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 404") {
			t.Fatalf("connection under the cap: %q, %v", buf[:n], err)
		}
		held = append(held, c)
	}
	if n := pl.open(loopback); n != 3 {
		t.Fatalf("open connections of 127.0.0.1: %d, want 3", n)
	}
	// Nothing is sent on it: a request that reached the socket before the proxy closed
	// it would turn the close into a reset, which may overtake the 429.
	before := p.refused(telemetry.RefusedTooManyConnections)
	resp, closed := p.exchange(t, "")
	if got := statuses(resp); len(got) != 1 || got[0] != "429" || !closed {
		t.Errorf("connection over the cap: %v (closed %v), want one 429 and the connection closed", got, closed)
	}
	if n := p.refused(telemetry.RefusedTooManyConnections) - before; n != 1 {
		t.Errorf("too_many_connections counted %d, want 1", n)
	}
	held[0].Close()
	eventually(t, 5*time.Second, "the closed connection's slot freed", func() bool { return pl.open(loopback) == 2 })
	if r := p.do("GET", "/g/collect?v=2&tid=G-1", ""); r.Status != 204 {
		t.Errorf("a connection after one closed: %d, want 204", r.Status)
	}
	up.take()

	// From a trusted proxy: no cap.
	q := startProxy(t, testConfig(up.URL(), "max_conns_per_ip: 1\n"))
	for range 3 {
		c, err := net.Dial("tcp", q.PublicAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if r := q.do("GET", "/g/collect?v=2&tid=G-1", ""); r.Status != 204 {
		t.Errorf("trusted proxy's fourth connection: %d, want 204", r.Status)
	}
	if n := q.refused(telemetry.RefusedTooManyConnections); n != 0 {
		t.Errorf("trusted proxy's connections refused %d times", n)
	}
}

// TestConnectionKeyIPv6: an IPv6 client counts by its /64, since every host gets one;
// an IPv4-mapped peer counts as its IPv4 address.
func TestConnectionKeyIPv6(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	pl := p.publicLn.(*publicListener)
	for peer, want := range map[string]string{
		"[2001:db8:1:2:aaaa::1]:5000":  "2001:db8:1:2::",
		"[2001:db8:1:2:bbbb::9]:5000":  "2001:db8:1:2::",
		"[::ffff:198.51.100.7]:5000":   "198.51.100.7",
		"198.51.100.7:5000":            "198.51.100.7",
		"[2001:db8:1:3:aaaa::1]:5000":  "2001:db8:1:3::",
		"[fe80::1%eth0]:5000":          "fe80::",
		"[2001:db8:ffff::12:34]:65535": "2001:db8:ffff::",
	} {
		addr, err := net.ResolveTCPAddr("tcp", peer)
		if err != nil {
			t.Fatal(err)
		}
		key, capped := pl.key(fakeConn{remote: addr})
		if !capped || key.String() != want {
			t.Errorf("key(%s) = %s, %v; want %s, true", peer, key, capped, want)
		}
	}
	if _, capped := pl.key(fakeConn{remote: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}); capped {
		t.Error("a trusted proxy's connection is capped")
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }
