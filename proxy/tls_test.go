package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/certtest"
	"github.com/consentgate/consentgate/telemetry"
)

// tlsProxy is a proxy serving TLS on a certificate the test made, started from a config
// file that Reload re-reads. It checks the certificate's files every 50 ms.
type tlsProxy struct {
	*testProxy
	up                 *sink
	dir                string
	certFile, keyFile  string // where the certificate in the config is
	configPath, config string
	first              *certtest.Cert
	roots              *x509.CertPool // every certificate the test made
	logs               *syncBuffer
}

const tlsCheckEvery = 50 * time.Millisecond

// startTLSProxy starts one on testConfig with extra, then each edit applied to the text.
func startTLSProxy(t *testing.T, extra string, edits ...func(string) string) *tlsProxy {
	t.Helper()
	tp := &tlsProxy{up: startSink(t), dir: t.TempDir(), roots: x509.NewCertPool(), logs: &syncBuffer{}}
	tp.first = tp.issue(t, "first")
	tp.first.Install(t, filepath.Join(tp.dir, "cert.pem"), filepath.Join(tp.dir, "key.pem"))
	tp.certFile, tp.keyFile = tp.first.CertFile, tp.first.KeyFile
	tp.configPath = filepath.Join(tp.dir, "consentgate.yaml")
	tp.config = strings.Replace(testConfig(tp.up.URL(), tp.tlsSection(tp.certFile, tp.keyFile)+extra), "../testdata", mustAbs(t, "../testdata"), 1)
	for _, edit := range edits {
		tp.config = edit(tp.config)
	}
	writeFile(t, tp.configPath, tp.config)
	cfg, err := testLoader.Load(tp.configPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(tp.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tp.testProxy = startProxyWith(t, cfg, Options{ConfigPath: tp.configPath, Logger: logger, Now: fixedNow,
		Build: telemetry.BuildInfo{Version: "test-build"}, CertCheckInterval: tlsCheckEvery})
	tp.tlsClient = &tls.Config{RootCAs: tp.roots, ServerName: "localhost"}
	tp.public = "https://" + tp.PublicAddr()
	tp.client.Transport = &http.Transport{TLSClientConfig: tp.tlsClient}
	return tp
}

func (tp *tlsProxy) tlsSection(cert, key string) string {
	return "tls:\n  cert_file: " + cert + "\n  key_file: " + key + "\n"
}

// issue makes a certificate the test's clients trust.
func (tp *tlsProxy) issue(t *testing.T, cn string) *certtest.Cert {
	t.Helper()
	c := certtest.New(t, certtest.Options{CommonName: cn})
	tp.roots.AddCert(c.Leaf)
	return c
}

// served opens a new connection and returns the name of the certificate it presents.
func (tp *tlsProxy) served(t *testing.T) string {
	t.Helper()
	c := tp.dialPublic(t)
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
}

// servedWithin waits until new connections present the certificate named cn.
func (tp *tlsProxy) servedWithin(t *testing.T, cn string) {
	t.Helper()
	start := time.Now()
	eventually(t, 10*time.Second, "new handshakes present "+cn, func() bool { return tp.served(t) == cn })
	t.Logf("%s served %v after it was written (files checked every %v)", cn, time.Since(start).Round(time.Millisecond), tlsCheckEvery)
}

// tlsSeries reads one consentgate_tls_* series from /metrics; -1 if it is not there.
func (tp *tlsProxy) tlsSeries(t *testing.T, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(tp.metricsText(t), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func (tp *tlsProxy) reloads(t *testing.T, result string) int {
	t.Helper()
	return int(tp.tlsSeries(t, `consentgate_tls_reloads_total{result="`+result+`"}`))
}

// hit sends a GA4 hit from the EEA without consent: anonymised and sent to the sink.
func (tp *tlsProxy) hit(t *testing.T) {
	t.Helper()
	if r := tp.do("GET", "/g/collect?v=2&tid=G-1&cid=1.2", "", "X-Forwarded-For", ipSE); r.Status != 204 {
		t.Fatalf("hit over TLS: %d %s", r.Status, r.Body)
	}
	tp.up.one(t)
}

// TestTLSServesHits: with tls.cert_file and tls.key_file the public listener speaks
// HTTPS (HTTP/1.1 by ALPN) and hits go through as ever; a plain-HTTP request to it gets a
// 400 in the clear saying so, counted, and reaches nothing; the metrics show the
// certificate and its expiry.
func TestTLSServesHits(t *testing.T) {
	tp := startTLSProxy(t, "")
	tp.hit(t)

	c := tp.dialPublic(t).(*tls.Conn)
	st := c.ConnectionState()
	c.Close()
	if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "" {
		t.Errorf("a default client: version %x, ALPN %q; want TLS 1.3 and no protocol (it offered none)", st.Version, st.NegotiatedProtocol)
	}
	offers := &tls.Config{RootCAs: tp.roots, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}
	c, err := tls.Dial("tcp", tp.PublicAddr(), offers)
	if err != nil {
		t.Fatalf("a client offering h2 and http/1.1: %v", err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN chose %q, want http/1.1: fasthttp speaks no h2", p)
	}
	c.Close()

	before := tp.refused(telemetry.RefusedTLSHandshake)
	plain, err := net.Dial("tcp", tp.PublicAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(plain, "GET /g/collect?v=2&tid=G-1 HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: "+ipSE+"\r\n\r\n")
	got, _ := io.ReadAll(plain)
	if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") || !strings.HasSuffix(string(got), "\r\n\r\nthis port serves HTTPS: send requests to it\n") {
		t.Errorf("plain HTTP to the TLS port: %q, want a 400 saying it serves HTTPS", got)
	}
	if n := tp.refused(telemetry.RefusedTLSHandshake) - before; n != 1 {
		t.Errorf("tls_handshake counted %d, want 1", n)
	}
	tp.up.none(t)

	if n := tp.reloads(t, "ok"); n != 1 {
		t.Errorf(`consentgate_tls_reloads_total{result="ok"} = %d, want 1 (the load at start)`, n)
	}
	if got, want := tp.tlsSeries(t, "consentgate_tls_cert_expiry_timestamp_seconds"), float64(tp.first.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("consentgate_tls_cert_expiry_timestamp_seconds = %v, want %v", got, want)
	}
}

// TestTLSVersions: TLS 1.2 and 1.3 are accepted, 1.0 and 1.1 refused and counted; with
// tls.min_version: "1.3", 1.2 is refused too.
func TestTLSVersions(t *testing.T) {
	def := startTLSProxy(t, "")
	strict := startTLSProxy(t, "  min_version: \"1.3\"\n")
	for _, c := range []struct {
		name   string
		p      *tlsProxy
		client uint16
		ok     bool
	}{
		{"1.0", def, tls.VersionTLS10, false},
		{"1.1", def, tls.VersionTLS11, false},
		{"1.2", def, tls.VersionTLS12, true},
		{"1.3", def, tls.VersionTLS13, true},
		{"1.2 with min_version 1.3", strict, tls.VersionTLS12, false},
		{"1.3 with min_version 1.3", strict, tls.VersionTLS13, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.p.refused(telemetry.RefusedTLSHandshake)
			cfg := &tls.Config{RootCAs: c.p.roots, ServerName: "localhost", MinVersion: c.client, MaxVersion: c.client}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.p.PublicAddr(), cfg)
			if !c.ok {
				if err == nil {
					conn.Close()
					t.Fatalf("a TLS %s client was accepted", c.name)
				}
				eventually(t, 5*time.Second, "the refused handshake counted", func() bool {
					return c.p.refused(telemetry.RefusedTLSHandshake)-before == 1
				})
				return
			}
			if err != nil {
				t.Fatalf("a TLS %s client: %v", c.name, err)
			}
			defer conn.Close()
			if v := conn.ConnectionState().Version; v != c.client {
				t.Errorf("negotiated %x, want %x", v, c.client)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
			if b, _ := io.ReadAll(conn); !strings.HasPrefix(string(b), "HTTP/1.1 404") {
				t.Errorf("a request over TLS %s: %q", c.name, b)
			}
		})
	}
}

// keepAlive is one client connection that sends requests one after another.
type keepAlive struct {
	c  *tls.Conn
	br *bufio.Reader
}

func (k *keepAlive) get(t *testing.T, target string) int {
	t.Helper()
	k.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(k.c, "GET "+target+" HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: "+ipSE+"\r\n\r\n"); err != nil {
		t.Fatalf("keep-alive write: %v", err)
	}
	r, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("keep-alive read: %v", err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}

// TestTLSRotation: a new certificate written over the files (each to a temporary file
// renamed over the old, as certbot and lego do) is presented by new handshakes within
// the check interval, without a restart; a keep-alive connection opened before goes on
// serving hits on the certificate it was opened with.
func TestTLSRotation(t *testing.T) {
	tp := startTLSProxy(t, "")
	conn := tp.dialPublic(t).(*tls.Conn)
	defer conn.Close()
	ka := &keepAlive{c: conn, br: bufio.NewReader(conn)}
	if s := ka.get(t, "/g/collect?v=2&tid=G-1&cid=1.2"); s != 204 {
		t.Fatalf("hit before the rotation: %d", s)
	}
	tp.up.one(t)

	second := tp.issue(t, "second")
	second.Install(t, tp.certFile, tp.keyFile)
	tp.servedWithin(t, "second")
	if s := ka.get(t, "/g/collect?v=2&tid=G-1&cid=1.2"); s != 204 {
		t.Fatalf("hit on the keep-alive connection after the rotation: %d", s)
	}
	tp.up.one(t)
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Errorf("the keep-alive connection's certificate: %s, want first", cn)
	}
	tp.hit(t) // a new connection, on the new certificate
	if n := tp.reloads(t, "ok"); n != 2 {
		t.Errorf(`consentgate_tls_reloads_total{result="ok"} = %d, want 2`, n)
	}
	if got, want := tp.tlsSeries(t, "consentgate_tls_cert_expiry_timestamp_seconds"), float64(second.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("expiry %v, want the new certificate's %v", got, want)
	}
	if !strings.Contains(tp.logs.String(), `"msg":"TLS certificate in force"`) || !strings.Contains(tp.logs.String(), `"subject":"CN=second"`) {
		t.Errorf("no log line for the rotation:\n%s", grep(tp.logs.String(), "TLS"))
	}
}

// TestTLSBadRotation: a rotation that does not load (a key of another certificate,
// garbage, a half-written certificate, a deleted key) leaves the certificate in force
// serving, is counted as an error and logged without key material; the next good one is
// taken.
func TestTLSBadRotation(t *testing.T) {
	tp := startTLSProxy(t, "")
	other := tp.issue(t, "other")
	good := tp.first
	for i, c := range []struct {
		name  string
		write func(t *testing.T)
		why   string
	}{
		{"key of another certificate", func(t *testing.T) { writeFile(t, tp.keyFile, string(other.KeyPEM)) },
			"private key does not match public key"},
		{"garbage certificate", func(t *testing.T) {
			writeFile(t, tp.certFile, "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n")
		},
			"x509: malformed certificate"},
		{"half-written certificate", func(t *testing.T) { writeFile(t, tp.certFile, string(other.CertPEM[:len(other.CertPEM)/2])) },
			"failed to find any PEM data in certificate input"},
		{"key deleted", func(t *testing.T) { os.Remove(tp.keyFile) }, "no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			errors := tp.reloads(t, "error")
			c.write(t)
			eventually(t, 10*time.Second, "the bad rotation counted", func() bool { return tp.reloads(t, "error") == errors+1 })
			if got := tp.served(t); got != good.Leaf.Subject.CommonName {
				t.Errorf("serving %s after a bad rotation, want %s still", got, good.Leaf.Subject.CommonName)
			}
			tp.hit(t)
			if v := tp.tlsSeries(t, "consentgate_tls_last_reload_successful"); v != 0 {
				t.Errorf("consentgate_tls_last_reload_successful = %v, want 0", v)
			}
			if got, want := tp.tlsSeries(t, "consentgate_tls_cert_expiry_timestamp_seconds"), float64(good.Leaf.NotAfter.Unix()); got != want {
				t.Errorf("expiry %v, want the certificate in force's %v", got, want)
			}
			logs := tp.logs.String()
			if !strings.Contains(grep(logs, "did not load"), c.why) {
				t.Errorf("no error log saying %q:\n%s", c.why, grep(logs, "TLS"))
			}
			for _, k := range []*certtest.Cert{good, other} {
				if strings.Contains(logs, string(k.KeyPEM[40:80])) {
					t.Error("the log holds key material")
				}
			}
			// Repaired with a new certificate: taken.
			good = tp.issue(t, fmt.Sprintf("repaired-%d", i))
			good.Install(t, tp.certFile, tp.keyFile)
			tp.servedWithin(t, good.Leaf.Subject.CommonName)
			if v := tp.tlsSeries(t, "consentgate_tls_last_reload_successful"); v != 1 {
				t.Errorf("consentgate_tls_last_reload_successful = %v after a good rotation, want 1", v)
			}
		})
	}
}

// TestTLSReload: SIGHUP and POST /admin/reload read the certificate again: a config that
// names other files puts their certificate in force at once (and they are the ones
// watched from then on); a pair that does not load fails the reload, every problem at
// its position, and the running config and certificate stay; TLS cannot be turned off
// by a reload.
func TestTLSReload(t *testing.T) {
	tp := startTLSProxy(t, "")
	other := filepath.Join(tp.dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	moved := tp.issue(t, "moved")
	moved.Install(t, filepath.Join(other, "tls.crt"), filepath.Join(other, "tls.key"))
	writeFile(t, tp.configPath, strings.Replace(tp.config, tp.tlsSection(tp.certFile, tp.keyFile), tp.tlsSection(moved.CertFile, moved.KeyFile), 1))
	if status, a := tp.reloadAPI(t); status != 200 || !a.Reloaded {
		t.Fatalf("reload naming other files: %d %+v", status, a)
	}
	if got := tp.served(t); got != "moved" {
		t.Errorf("serving %s right after the reload, want moved", got)
	}
	renewed := tp.issue(t, "renewed")
	renewed.Install(t, moved.CertFile, moved.KeyFile)
	tp.servedWithin(t, "renewed")

	// A key that does not match: the watcher keeps the certificate in force, and a reload
	// fails at the files' position, changing nothing.
	version := tp.Config().Version()
	writeFile(t, moved.KeyFile, string(tp.first.KeyPEM))
	eventually(t, 10*time.Second, "the watcher saw the bad key", func() bool { return tp.tlsSeries(t, "consentgate_tls_last_reload_successful") == 0 })
	status, a := tp.reloadAPI(t)
	if status != 400 || a.Reloaded || a.ConfigVersion != version || len(a.Errors) != 1 ||
		!strings.Contains(a.Errors[0], "tls.cert_file, tls.key_file: ") || !strings.Contains(a.Errors[0], "private key does not match public key") {
		t.Errorf("reload with a mismatched key: %d %+v", status, a)
	}
	if got := tp.served(t); got != "renewed" {
		t.Errorf("serving %s after the failed reload, want renewed", got)
	}

	// TLS off by a reload: refused, a restart is needed.
	renewed.Install(t, moved.CertFile, moved.KeyFile)
	writeFile(t, tp.configPath, strings.Replace(tp.config, tp.tlsSection(tp.certFile, tp.keyFile), "", 1))
	status, a = tp.reloadAPI(t)
	if status != 400 || len(a.Errors) != 1 || !strings.Contains(a.Errors[0], "turning TLS on or off") {
		t.Errorf("reload turning TLS off: %d %+v", status, a)
	}
	tp.hit(t)
}

// TestTLSListenerLimits: over TLS the per-address cap counts TCP connections as they
// are accepted, before any handshake (connections that never start one hold their slot),
// and the head bounds count the request's bytes, not the ciphertext: 431 and 414 as over
// plain HTTP, read whole by the client.
func TestTLSListenerLimits(t *testing.T) {
	// testConfig trusts loopback, which the cap exempts: this one trusts another address.
	// The read timeout outlasts the test, so the idle connections hold their slots.
	untrusted := startTLSProxy(t, "max_conns_per_ip: 2\nread_timeout: 1m\n", func(s string) string {
		return strings.Replace(s, `trusted_proxies: ["127.0.0.1/32", "::1/128"]`, `trusted_proxies: ["10.9.9.9"]`, 1)
	})
	pl := untrusted.publicLn.(*publicListener)
	loopback := netip.MustParseAddr("127.0.0.1")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", untrusted.PublicAddr()) // no handshake at all
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	eventually(t, 5*time.Second, "both connections accepted", func() bool { return untrusted.metrics.OpenPublicConns() == 2 })
	before := untrusted.refused(telemetry.RefusedTooManyConnections)
	if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", untrusted.PublicAddr(), untrusted.tlsClient); err == nil {
		c.Close()
		t.Fatal("a third connection from the address completed a handshake over max_conns_per_ip: 2")
	}
	if n := untrusted.refused(telemetry.RefusedTooManyConnections) - before; n != 1 {
		t.Errorf("too_many_connections counted %d, want 1", n)
	}
	held[0].Close()
	eventually(t, 5*time.Second, "the slot freed", func() bool { return pl.open(loopback) == 1 })
	untrusted.hit(t)

	tp := startTLSProxy(t, "")
	for _, c := range []struct {
		name, raw, status string
		reason            telemetry.Refusal
	}{
		{"64 KB cookie header", "GET /g/collect?v=2 HTTP/1.1\r\nHost: t.example.com\r\nCookie: " + fillerCookies(64<<10) + "\r\n\r\n", "431", telemetry.RefusedHeaderTooLarge},
		{"40 KB URL", "GET /g/collect?v=2&dl=" + strings.Repeat("a", 40<<10) + " HTTP/1.1\r\nHost: t.example.com\r\n\r\n", "414", telemetry.RefusedURITooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tp.refused(c.reason)
			resp, closed := tp.exchange(t, c.raw)
			if got := statuses(resp); len(got) != 1 || got[0] != c.status || !closed {
				t.Errorf("statuses %v (closed %v), want one %s and the connection closed\n%.200s", got, closed, c.status, resp)
			}
			if n := tp.refused(c.reason) - before; n != 1 {
				t.Errorf("%s counted %d, want 1", c.reason, n)
			}
			tp.up.none(t)
		})
	}
}

// TestTLSHandshakeTimeout: read_timeout bounds the handshake as it bounds a request's
// head, so a client that opens a connection and stalls before or during the handshake
// (a slowloris on TLS) does not hold the connection, its goroutine or its slot: each is
// closed, and the connection count falls back to zero. As over plain HTTP, a connection
// that never sent a byte, before or after the handshake, is not counted as refused; a
// stalled handshake is (tls_handshake), and a stalled head after a handshake gets 408.
func TestTLSHandshakeTimeout(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	tp := startTLSProxy(t, "read_timeout: 300ms\n")
	for _, c := range []struct {
		name   string
		open   func(t *testing.T) net.Conn
		send   string
		answer string // status line start, "" = nothing
		reason telemetry.Refusal
		counts bool
	}{
		{"TCP only, no byte", func(t *testing.T) net.Conn { return dialTCP(t, tp.PublicAddr()) }, "", "", telemetry.RefusedTLSHandshake, false},
		// A handshake record header announcing 512 bytes, and 10 of them.
		{"half a ClientHello", func(t *testing.T) net.Conn { return dialTCP(t, tp.PublicAddr()) },
			"\x16\x03\x01\x02\x00" + strings.Repeat("\x01", 10), "", telemetry.RefusedTLSHandshake, true},
		{"handshake done, no byte", func(t *testing.T) net.Conn { return tp.dialPublic(t) }, "", "", telemetry.RefusedReadTimeout, false},
		{"handshake done, half a head", func(t *testing.T) net.Conn { return tp.dialPublic(t) },
			"GET /g/collect?v=2 HTTP/1.1\r\nHost: t.example.com\r\nX-Slow: ", "HTTP/1.1 408", telemetry.RefusedReadTimeout, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tp.refused(c.reason)
			start := time.Now()
			conn := c.open(t)
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * readTimeout))
			if c.send != "" {
				io.WriteString(conn, c.send)
			}
			got, err := io.ReadAll(conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the proxy kept the connection open past %v (read_timeout %v)", 20*readTimeout, readTimeout)
			}
			t.Logf("closed by the proxy %v after it was opened (read_timeout %v)", time.Since(start).Round(time.Millisecond), readTimeout)
			if !strings.HasPrefix(string(got), c.answer) || c.answer == "" && len(got) != 0 {
				t.Errorf("answer %q, want %q", got, c.answer)
			}
			want := 0
			if c.counts {
				want = 1
			}
			if n := tp.refused(c.reason) - before; n != want {
				t.Errorf("%s counted %d, want %d", c.reason, n, want)
			}
			eventually(t, 5*time.Second, "the connection released", func() bool { return tp.metrics.OpenPublicConns() == 0 })
		})
	}
	tp.up.none(t)
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
