package main

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOpenLoopCountsTheWait: with -rate, a hit is timed from when it was due. The
// fake proxy holds the first request for 100 ms; the hits due meanwhile (every 10 ms
// on the one connection) go out late, and their latency must include the wait. A
// closed loop would time them from when they went out and hide the stall: the
// coordinated omission that makes tail latencies look good.
func TestOpenLoopCountsTheWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 1 {
			time.Sleep(100 * time.Millisecond)
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	spec, err := mixByName("realistic")
	if err != nil {
		t.Fatal(err)
	}
	vp, err := newVisitorPool(spec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lr := &loadRun{hc: &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1}, baseURL: "http://" + ln.Addr().String(),
		templates: spec.templates, visitors: vp, seed: 1, timeout: 5 * time.Second, rate: 100}
	lr.mix, _ = newPicker(templateWeights(spec.templates))
	st := lr.run(context.Background(), 1, 300*time.Millisecond, 1)
	// Due at 0, 10, 20, ... 90 ms, all answered after 100 ms: at least the hits due at
	// 0..40 ms waited 60 ms or more, whatever the machine's speed.
	late := uint64(0)
	for i, c := range st.hist.counts {
		if time.Duration(bucketHigh(i)) >= 60*time.Millisecond {
			late += c
		}
	}
	if late < 5 {
		t.Errorf("%d of %d hits timed at 60 ms or more, want at least 5: the wait for the stalled hit is not counted", late, st.requests())
	}
}
