package otlptest

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
)

// Request is one export as received.
type Request[T proto.Message] struct {
	Header http.Header
	Body   T
}

// Collector receives exports of one signal at one path.
type Collector[T proto.Message] struct {
	// URL is the server's base URL (http://127.0.0.1:port), the form an operator configures.
	URL string

	path   string
	newMsg func() T
	resp   []byte

	mu      sync.Mutex
	reqs    []Request[T]
	errs    []error
	changed chan struct{} // closed and replaced on every request, so waiters need no polling
}

// Start serves a collector until the test ends. path is the signal path (/v1/metrics);
// newMsg returns an empty request message; resp is the success response message.
func Start[T proto.Message](t testing.TB, path string, newMsg func() T, resp proto.Message) *Collector[T] {
	t.Helper()
	body, err := proto.Marshal(resp)
	if err != nil {
		t.Fatalf("otlptest: marshal response: %v", err)
	}
	c := &Collector[T]{path: path, newMsg: newMsg, resp: body, changed: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *Collector[T]) serve(w http.ResponseWriter, r *http.Request) {
	msg, err := c.decode(r)
	c.mu.Lock()
	if err != nil {
		c.errs = append(c.errs, err)
	} else {
		c.reqs = append(c.reqs, Request[T]{Header: r.Header.Clone(), Body: msg})
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if err != nil {
		// 400 is not retried, so the exporter reports the bad request at once.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(c.resp)
}

func (c *Collector[T]) decode(r *http.Request) (T, error) {
	var zero T
	if r.Method != http.MethodPost || r.URL.Path != c.path {
		return zero, fmt.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, c.path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return zero, fmt.Errorf("content type %q, want application/x-protobuf", ct)
	}
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return zero, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return zero, fmt.Errorf("content encoding %q", enc)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return zero, fmt.Errorf("read body: %w", err)
	}
	msg := c.newMsg()
	if err := proto.Unmarshal(raw, msg); err != nil {
		return zero, fmt.Errorf("unmarshal: %w", err)
	}
	return msg, nil
}

// Requests returns the exports received so far, oldest first.
func (c *Collector[T]) Requests() []Request[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request[T](nil), c.reqs...)
}

// Err returns the decoding errors so far: requests no real collector would accept.
func (c *Collector[T]) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

// Wait blocks until cond holds for the requests received so far, or ctx ends.
func (c *Collector[T]) Wait(ctx context.Context, cond func([]Request[T]) bool) error {
	for {
		c.mu.Lock()
		reqs, changed := append([]Request[T](nil), c.reqs...), c.changed
		c.mu.Unlock()
		if cond(reqs) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("otlptest: %d requests received, condition not met: %w", len(reqs), ctx.Err())
		}
	}
}

// Hanging serves a collector that accepts connections and never answers until the test
// ends: the slow-collector case, worse for a client than a refused connection.
func Hanging(t testing.TB) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last-in first-out: release the handlers, then Close can wait for them.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}

// Refused returns a base URL on 127.0.0.1 where nothing listens: the collector-down case.
func Refused(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	return url
}
