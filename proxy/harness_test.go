package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// received is one request as the upstream sink saw it: parsed, and Raw, the bytes that
// came over the connection for it, unparsed (request line, headers, body).
type received struct {
	Method, Host, Path, Query, Body string
	Header                          http.Header
	Raw                             string
}

// Line is the request line exactly as it arrived, without CRLF.
func (r received) Line() string {
	line, _, _ := strings.Cut(r.Raw, "\r\n")
	return line
}

// Target is the request-target of the request line as it arrived: path and query, not
// decoded or normalised.
func (r received) Target() string {
	parts := strings.Split(r.Line(), " ")
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}

// recordingListener hands fasthttp connections that keep every byte read from them, so
// the sink can record a request as it came over the wire. The proxy's HostClient sends
// one request at a time per connection and waits for the answer, so when the handler
// runs, what a connection has read since the last request is exactly this request.
// A discarding sink (benchmarks) records nothing.
type recordingListener struct {
	net.Listener
	s *sink
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, s: l.s}, nil
}

type recordingConn struct {
	net.Conn
	s   *sink
	mu  sync.Mutex
	buf []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.s.discard {
		return n, err
	}
	c.mu.Lock()
	c.buf = append(c.buf, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// take returns and forgets what was read so far.
func (c *recordingConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.buf = nil
	return b
}

// sink is a real upstream on a loopback port that records what reaches it. It answers
// like a vendor would, with a Set-Cookie the proxy must never relay.
type sink struct {
	t    testing.TB
	addr string
	mu   sync.Mutex
	got  []received
	// status is the answer code; 0 = 204. body and header (name, value pairs) are
	// added to the answer.
	status int
	body   string
	header []string
	// discard counts requests without recording them, so benchmarks measure the proxy
	// and not the sink that shares its process.
	discard bool
	count   atomic.Int64
}

func startSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	s.addr = ln.Addr().String()
	// The read buffer is the proxy's max_header_size default: a vendor's listener takes
	// what the proxy's does (the fasthttp default of 4 KB would answer long hits 431).
	srv := &fasthttp.Server{ReadBufferSize: 32 << 10, NoDefaultContentType: true, Handler: func(ctx *fasthttp.RequestCtx) {
		s.count.Add(1)
		var raw []byte
		if rc, ok := ctx.Conn().(*recordingConn); ok {
			raw = rc.take()
		}
		if s.discard {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		r := received{
			Method: string(ctx.Method()), Host: string(ctx.Host()), Path: string(ctx.Path()),
			Query: string(ctx.URI().QueryString()), Body: string(ctx.PostBody()), Header: http.Header{},
			Raw: string(raw),
		}
		for k, v := range ctx.Request.Header.All() {
			r.Header.Add(string(k), string(v))
		}
		s.mu.Lock()
		s.got = append(s.got, r)
		status, body, header := s.status, s.body, s.header
		s.mu.Unlock()
		ctx.Response.Header.Set("Set-Cookie", "vendor_id=leak; Path=/")
		ctx.Response.Header.Set("X-Vendor-Internal", "1")
		for i := 0; i+1 < len(header); i += 2 {
			ctx.Response.Header.Set(header[i], header[i+1])
		}
		if status == 0 {
			status = fasthttp.StatusNoContent
		}
		ctx.SetStatusCode(status)
		if body != "" {
			ctx.SetBodyString(body)
		}
	}}
	go srv.Serve(recordingListener{ln, s})
	t.Cleanup(func() { srv.Shutdown() })
	return s
}

func (s *sink) URL() string { return "http://" + s.addr }

// answer sets what the sink answers from now on.
func (s *sink) answer(status int, body string, header ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.header = status, body, header
}

// take returns and forgets what arrived so far.
func (s *sink) take() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// one asserts exactly one request arrived and returns it.
func (s *sink) one(t *testing.T) received {
	t.Helper()
	got := s.take()
	if len(got) != 1 {
		t.Fatalf("sink received %d requests, want 1: %+v", len(got), got)
	}
	return got[0]
}

func (s *sink) none(t *testing.T) {
	t.Helper()
	if got := s.take(); len(got) != 0 {
		t.Fatalf("sink received %d requests, want none: %+v", len(got), got)
	}
}

const (
	testToken  = "Tk4vN8qLz2Wx6Rb9Pm3Hc7Yj5Ds1F"
	testSecret = "Sx7Lq2Vn9Kz4Wc8Rm3Tb6Hp5Jd1G"
)

// testConfig points every vendor at the sink and reads visitor IPs from X-Forwarded-For
// set by the test client on loopback.
func testConfig(sinkURL, extra string) string {
	var b strings.Builder
	b.WriteString(`listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
admin_token: "` + testToken + `"
trusted_proxies: ["127.0.0.1/32", "::1/128"]
geo:
  database: "../testdata/geoip/GeoIP2-City-Test.mmdb"
anonymise:
  secret: "` + testSecret + `"
upstream:
  timeout: 2s
upstreams:
`)
	for _, v := range rules.VendorNames() {
		b.WriteString("  " + v + ": \"" + sinkURL + "\"\n")
	}
	b.WriteString(extra)
	return b.String()
}

// fixedNow is the clock of the anonymiser's daily salt in tests.
func fixedNow() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

// pinnedHasher hashes on fixedNow's day with a fixed salt, so pseudonyms in goldens are
// stable; production salts are random.
func pinnedHasher(t testing.TB) *rules.Hasher {
	t.Helper()
	h := rules.NewHasher(fixedNow)
	if !h.SetSalt(fixedNow(), []byte("golden-salt-0123456789abcdefghij"), false) {
		t.Fatal("SetSalt refused the golden salt")
	}
	return h
}

type testProxy struct {
	*Server
	t      testing.TB
	public string // http://host:port, or https:// with TLS
	admin  string
	client *http.Client
	// tlsClient is the clients' TLS configuration when the public listener serves TLS
	// (tls_test.go): dialPublic, and so exchange and rawRequest, speak TLS then.
	tlsClient *tls.Config
}

// dialPublic opens a connection to the public listener, over TLS when it serves TLS.
func (p *testProxy) dialPublic(t testing.TB) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	var c net.Conn
	var err error
	if p.tlsClient != nil {
		c, err = tls.DialWithDialer(d, "tcp", p.PublicAddr(), p.tlsClient)
	} else {
		c, err = d.Dial("tcp", p.PublicAddr())
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func startProxy(t testing.TB, yaml string) *testProxy {
	t.Helper()
	return startProxyLog(t, yaml, io.Discard)
}

// startProxyLog is startProxy with the JSON log (debug level) written to logw.
func startProxyLog(t testing.TB, yaml string, logw io.Writer) *testProxy {
	t.Helper()
	cfg, err := testLoader.LoadBytes("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return startProxyWith(t, cfg, Options{Logger: logger, Now: fixedNow, Build: telemetry.BuildInfo{Version: "test-build"}})
}

// startProxyWith starts a server on a loaded config with opts.
func startProxyWith(t testing.TB, cfg *config.Config, opts Options) *testProxy {
	t.Helper()
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	p := &testProxy{
		Server: srv, t: t,
		public: "http://" + srv.PublicAddr(), admin: "http://" + srv.AdminAddr(),
		client: &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return p
}

type resp struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request to the public listener. headers alternate name, value.
func (p *testProxy) do(method, target, body string, headers ...string) resp {
	p.t.Helper()
	return p.send(p.public, method, target, body, headers...)
}

func (p *testProxy) adminDo(method, target, body string, headers ...string) resp {
	p.t.Helper()
	return p.send(p.admin, method, target, body, headers...)
}

func (p *testProxy) send(base, method, target, body string, headers ...string) resp {
	p.t.Helper()
	r, err := p.try(base, method, target, body, headers...)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// try is send for goroutines other than the test's: it returns the error it cannot
// report.
func (p *testProxy) try(base, method, target, body string, headers ...string) (resp, error) {
	req, err := http.NewRequest(method, base+target, strings.NewReader(body))
	if err != nil {
		return resp{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	r, err := p.client.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return resp{Status: r.StatusCode, Header: r.Header, Body: string(b)}, err
}

// consentCookie posts purposes through the public consent API and returns the cookie.
func (p *testProxy) consentCookie(purposes string) string {
	p.t.Helper()
	r := p.do("POST", "/consent", `{"purposes":`+purposes+`}`, "Content-Type", "application/json")
	if r.Status != 200 {
		p.t.Fatalf("POST /consent: %d %s", r.Status, r.Body)
	}
	for _, c := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "cg_id=") {
			v, _, _ := strings.Cut(strings.TrimPrefix(c, "cg_id="), ";")
			return "cg_id=" + v
		}
	}
	p.t.Fatalf("POST /consent set no cg_id cookie: %v", r.Header)
	return ""
}

// cookieID is the consent ID of a "cg_id=<id>[.<snapshot>]" cookie.
func cookieID(t testing.TB, cookie string) string {
	t.Helper()
	v := strings.TrimPrefix(cookie, "cg_id=")
	if len(v) < 22 {
		t.Fatalf("cookie %q holds no consent ID", cookie)
	}
	return v[:22]
}

// Visitor IPs from the MaxMind GeoIP2-City test database.
const (
	ipSE      = "89.160.20.112"   // SE → eea, opt_in
	ipGB      = "81.2.69.142"     // GB → uk, opt_in
	ipUSCA    = "214.78.120.5"    // US-CA → us-ca, opt_out
	ipUSWA    = "216.160.83.57"   // US-WA → other, none
	ipUnknown = "10.1.2.3"        // not in the DB → unknown, opt_in
	ipCH6     = "2a02:d000::1234" // CH → ch, opt_in
)

func (p *testProxy) metricsText(t *testing.T) string {
	t.Helper()
	r := p.adminDo("GET", "/metrics", "")
	if r.Status != 200 {
		t.Fatalf("/metrics: %d", r.Status)
	}
	return r.Body
}

// hits reads consentgate_hits_total for one label set from the real /metrics output.
func (p *testProxy) hits(t *testing.T, vendor, action, reason, jurisdiction string) int {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(p.metricsText(t)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	fam := fams["consentgate_hits_total"]
	if fam == nil {
		return 0
	}
	want := map[string]string{"vendor": vendor, "action": action, "reason": reason, "jurisdiction": jurisdiction}
	for _, m := range fam.GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if w, ok := want[l.GetName()]; ok && (w == l.GetValue() || w == "") {
				match++ // "" matches any value
			}
		}
		if match == len(want) {
			return int(m.GetCounter().GetValue())
		}
	}
	return 0
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// rawRequest writes bytes on a fresh connection to the public listener and returns the
// status line and headers, for requests net/http will not send (absolute-form URIs).
func (p *testProxy) rawRequest(t *testing.T, raw string) string {
	t.Helper()
	c := p.dialPublic(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 4096)
	n, _ := c.Read(buf)
	return string(buf[:n])
}

// testLoader loads the tests' configs as the product does.
var testLoader = &load.Loader{Vocabulary: rules.Vocabulary()}
