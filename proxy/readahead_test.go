package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReadAheadServesEveryShape: the read-ahead that answers fasthttp's first-byte read
// hands over every byte, whatever shape the requests arrive in on one keep-alive
// connection: two pipelined in one packet, one a byte at a time, one whose head is
// larger than the read-ahead buffer, a body split from its head.
func TestReadAheadServesEveryShape(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	consent := p.consentCookie(`{"statistics":true,"marketing":true}`) // forwarded: en reaches the sink as sent
	c, err := net.DialTimeout("tcp", p.PublicAddr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	hit := func(query string) string {
		return "GET /g/collect?v=2&tid=G-1&cid=1.2&en=" + query + " HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipSE + "\r\nCookie: " + consent + "\r\n\r\n"
	}
	answers := func(n int) {
		t.Helper()
		for i := range n {
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 204") {
				t.Fatalf("answer %d: %q, %v", i, line, err)
			}
			for line != "\r\n" { // a 204 has no body: the head is the answer
				if line, err = br.ReadString('\n'); err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
			}
		}
	}
	write := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	ens := func() []string {
		t.Helper()
		var out []string
		for _, r := range up.take() {
			_, en, _ := strings.Cut(r.Query, "&en=")
			out = append(out, en)
		}
		return out
	}

	write(hit("one") + hit("two"))
	answers(2)
	for _, b := range []byte(hit("three")) {
		write(string(b))
	}
	answers(1)
	big := "big_" + strings.Repeat("x", readAheadSize+1000)
	write(hit(big) + hit("after_big"))
	answers(2)
	body := "en=page_view"
	write("POST /g/collect?v=2&tid=G-1&cid=1.2&en=split HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipSE +
		"\r\nCookie: " + consent + "\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the head is read and waits for its body
	write(body)
	answers(1)

	got := ens()
	want := []string{"one", "two", "three", big, "after_big", "split"}
	if len(got) != len(want) {
		t.Fatalf("upstream got %d hits, want %d: %.200q", len(got), len(want), got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("hit %d upstream: en=%.60q, want %.60q", i, got[i], want[i])
		}
	}
}

// TestReadAheadHoldsNoBufferWhenIdle: a connection waiting for its next request holds
// no buffer (what ReduceMemoryUsage is on for), one that has been handed every byte
// gives its buffer back, and the byte accounting the 414/431 split reads from counts
// what fasthttp was handed.
func TestReadAheadHoldsNoBufferWhenIdle(t *testing.T) {
	client, server, pc := readAheadPair(t)
	one := make([]byte, 1)

	// Idle until a deadline: a timeout, as from the socket itself, and nothing held.
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := pc.Read(one); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle read = %d, %v; want a deadline error", n, err)
	}
	var ne net.Error
	if _, err := pc.Read(one); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("idle read error %v is not a net.Error timeout", err)
	}
	if pc.ahead != nil {
		t.Error("an idle connection holds a read-ahead buffer")
	}

	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(client, "GET /a\nb")
	if n, err := pc.Read(one); n != 1 || err != nil || one[0] != 'G' {
		t.Fatalf("first byte = %d %q, %v", n, one, err)
	}
	if string(pc.pending) != "ET /a\nb" || pc.ahead == nil {
		t.Fatalf("pending %q after the first byte", pc.pending)
	}
	rest := make([]byte, 3)
	if n, _ := pc.Read(rest); string(rest[:n]) != "ET " || pc.ahead == nil {
		t.Fatalf("second read %q", rest[:n])
	}
	rest = make([]byte, 64)
	if n, _ := pc.Read(rest); string(rest[:n]) != "/a\nb" {
		t.Fatalf("third read %q", rest[:n])
	}
	if pc.ahead != nil || pc.pending != nil {
		t.Error("the buffer is held after every byte was handed over")
	}
	if pc.read != 8 || pc.lastLF != 7 || !pc.lineFed(2) || pc.lineFed(1) {
		t.Errorf("accounting: read %d, lastLF %d", pc.read, pc.lastLF)
	}

	// A single-byte request: nothing pending, nothing held.
	io.WriteString(client, "x")
	if n, err := pc.Read(one); n != 1 || err != nil || one[0] != 'x' || pc.ahead != nil {
		t.Fatalf("lone byte = %d %q, %v (held %v)", n, one, err, pc.ahead != nil)
	}

	client.Close()
	if n, err := pc.Read(one); n != 0 || err != io.EOF || pc.ahead != nil {
		t.Errorf("after the peer closed: %d, %v (held %v); want io.EOF and nothing held", n, err, pc.ahead != nil)
	}
}

// readAheadPair is a TCP connection on loopback, its server end as the public listener
// wraps it (no listener: Close is the test's, on server).
func readAheadPair(t *testing.T) (client, server net.Conn, pc *publicConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return client, server, &publicConn{Conn: server, raw: server, sys: raw}
}
