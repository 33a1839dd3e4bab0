package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Hit is one request as a vendor would have received it from the proxy.
type Hit struct {
	Seq    int       `json:"seq"`
	Time   time.Time `json:"time"`
	Vendor string    `json:"vendor"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query"`
	Body   string    `json:"body"`
	// ForwardedFor and UserAgent are what the vendor learns of the visitor's address and
	// browser beyond the parameters (GA4 passes the address as _uip instead).
	ForwardedFor string `json:"forwarded_for,omitempty"`
	UserAgent    string `json:"user_agent,omitempty"`
	// Cookie is true when a cookie reached the vendor, which the proxy never lets happen.
	Cookie bool `json:"cookie,omitempty"`
}

// Param is the first value of a query parameter of the hit, or of its body when the body
// is a form or one of GA4's event lines.
func (h Hit) Param(name string) string {
	if q, err := url.ParseQuery(h.Query); err == nil && q.Has(name) {
		return q.Get(name)
	}
	for _, line := range strings.Split(h.Body, "\n") {
		if q, err := url.ParseQuery(line); err == nil && q.Has(name) {
			return q.Get(name)
		}
	}
	return ""
}

// JSON decodes the body as a JSON object (Plausible's events), or nil.
func (h Hit) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(h.Body), &m) != nil {
		return nil
	}
	return m
}

// vendorPaths names the vendor of an upstream request by the path the proxy sends it to.
var vendorPaths = []struct{ vendor, prefix string }{
	{"ga4", "/g/collect"},
	{"ga4_mp", "/mp/collect"},
	{"meta", "/tr"},
	{"google_ads", "/pagead/"},
	{"bing", "/action/"},
	{"linkedin", "/collect"},
	{"tiktok", "/api/v2/pixel"},
	{"matomo", "/matomo.php"},
	{"plausible", "/api/event"},
}

// gif is the 1×1 GIF an image pixel expects.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// Sink stands in for every vendor: it records each request, prints a line for it, and
// answers as a collection endpoint does.
type Sink struct {
	srv *http.Server
	ln  net.Listener
	out io.Writer

	mu      sync.Mutex
	hits    []Hit
	changed chan struct{} // closed and replaced on every hit
}

// StartSink listens on addr ("127.0.0.1:0" for any port) and prints a line per hit to
// out (nil: nothing).
func StartSink(addr string, out io.Writer) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: listen on %s: %w", addr, err)
	}
	s := &Sink{ln: ln, out: out, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/hits", s.serveHits)
	mux.HandleFunc("/", s.record)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the sink's base URL, the upstream of every vendor in the demo config.
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }

func (s *Sink) record(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	h := Hit{
		Time: time.Now(), Vendor: "unknown", Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body),
		ForwardedFor: r.Header.Get("X-Forwarded-For"), UserAgent: r.Header.Get("User-Agent"), Cookie: r.Header.Get("Cookie") != "",
	}
	for _, v := range vendorPaths {
		if strings.HasPrefix(r.URL.Path, v.prefix) {
			h.Vendor = v.vendor
			break
		}
	}
	s.mu.Lock()
	h.Seq = len(s.hits) + 1
	s.hits = append(s.hits, h)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.out != nil {
		fmt.Fprintf(s.out, "sink: %-9s %s %s%s\n", h.Vendor, h.Method, h.Path, summary(h))
	}
	if r.Method == http.MethodGet && h.Vendor != "plausible" {
		w.Header().Set("Content-Type", "image/gif")
		w.Write(gif)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// summary is what a newcomer looks at in a hit: who it says the visitor is.
func summary(h Hit) string {
	var b strings.Builder
	for _, p := range []string{"en", "ev", "cid", "fbp", "_uip", "dl"} {
		if v := h.Param(p); v != "" {
			fmt.Fprintf(&b, " %s=%s", p, v)
		}
	}
	if m := h.JSON(); m != nil {
		fmt.Fprintf(&b, " n=%v u=%v", m["n"], m["u"])
	}
	if h.ForwardedFor != "" {
		fmt.Fprintf(&b, " (X-Forwarded-For %s)", h.ForwardedFor)
	}
	return b.String()
}

// Hits returns the hits recorded so far, oldest first.
func (s *Sink) Hits() []Hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Hit(nil), s.hits...)
}

// Wait returns the first hit after seq that match accepts, waiting for it until ctx ends.
func (s *Sink) Wait(ctx context.Context, after int, match func(Hit) bool) (Hit, error) {
	for {
		s.mu.Lock()
		for _, h := range s.hits[min(after, len(s.hits)):] {
			if match(h) {
				s.mu.Unlock()
				return h, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Hit{}, fmt.Errorf("sink: no matching hit after #%d: %w", after, ctx.Err())
		}
	}
}

// serveHits answers GET /hits?after=N with the hits after seq N, for the shop's panel.
func (s *Sink) serveHits(w http.ResponseWriter, r *http.Request) {
	after := 0
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	hits := s.Hits()
	out := hits[min(max(after, 0), len(hits)):]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}
