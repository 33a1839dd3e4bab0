package main

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// sink stands in for every vendor's collection endpoint. It answers at once so the
// figures measure the proxy, not a remote, and it counts what reached it: that is
// the forwarded plus anonymised hits, whatever the proxy's own metrics say.
type sink struct {
	ln     net.Listener
	srv    *fasthttp.Server
	total  atomic.Uint64
	byPath [len(sinkPaths) + 1]atomic.Uint64 // last slot: anything else
	// A consent cookie reaching a vendor would be a privacy bug, so the sink looks.
	leakedCookie atomic.Uint64
}

// sinkPaths classifies upstream requests by vendor through the path the proxy sends
// upstream. Prefixes, because some vendors put IDs in the path.
var sinkPaths = [...]struct{ name, prefix string }{
	{"ga4", "/g/collect"},
	{"ga4_mp", "/mp/collect"},
	{"meta", "/tr"},
	{"google_ads", "/pagead/"},
	{"bing", "/action/"},
	{"linkedin", "/li/"},
	{"linkedin", "/collect"}, // the proxy restores LinkedIn's own upstream path
	{"tiktok", "/api/v2/pixel"},
	{"matomo", "/matomo.php"},
	{"plausible", "/api/event"},
}

// A 1×1 transparent GIF, for the tags that load the hit as an image.
var gif1x1 = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

var cgCookie = []byte("cg_id=")

func startSink(addr string) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: listen on %s: %w", addr, err)
	}
	s := &sink{ln: ln}
	s.srv = &fasthttp.Server{
		Handler:              s.handle,
		Name:                 "bench-sink",
		ReadTimeout:          30 * time.Second,
		WriteTimeout:         30 * time.Second,
		IdleTimeout:          60 * time.Second,
		NoDefaultDate:        true,
		NoDefaultContentType: true,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) Addr() string { return s.ln.Addr().String() }

func (s *sink) handle(ctx *fasthttp.RequestCtx) {
	s.total.Add(1)
	path := ctx.Path()
	slot := len(sinkPaths)
	for i := range sinkPaths {
		if bytes.HasPrefix(path, []byte(sinkPaths[i].prefix)) {
			slot = i
			break
		}
	}
	s.byPath[slot].Add(1)
	if bytes.Contains(ctx.Request.Header.Peek("Cookie"), cgCookie) {
		s.leakedCookie.Add(1)
	}
	if ctx.IsGet() {
		ctx.Response.Header.SetContentType("image/gif")
		ctx.Response.SetBodyRaw(gif1x1)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

type sinkSnapshot struct {
	Total        uint64            `json:"total"`
	ByVendor     map[string]uint64 `json:"by_vendor"`
	LeakedCookie uint64            `json:"leaked_consent_cookie"`
}

func (s *sink) snapshot() sinkSnapshot {
	snap := sinkSnapshot{Total: s.total.Load(), ByVendor: map[string]uint64{}, LeakedCookie: s.leakedCookie.Load()}
	for i := range sinkPaths {
		snap.ByVendor[sinkPaths[i].name] += s.byPath[i].Load()
	}
	snap.ByVendor["other"] = s.byPath[len(sinkPaths)].Load()
	return snap
}

// sub is what arrived between two snapshots.
func (a sinkSnapshot) sub(b sinkSnapshot) sinkSnapshot {
	d := sinkSnapshot{Total: a.Total - b.Total, ByVendor: map[string]uint64{}, LeakedCookie: a.LeakedCookie - b.LeakedCookie}
	for k, v := range a.ByVendor {
		d.ByVendor[k] = v - b.ByVendor[k]
	}
	return d
}

func (s *sink) Close() error {
	if err := s.srv.Shutdown(); err != nil {
		return fmt.Errorf("sink: shutdown: %w", err)
	}
	return nil
}
