package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeConsentProxy answers POST /consent with a new cookie each time and counts the
// hits that carry one; /metrics reports them as consent lookups.
func fakeConsentProxy(t *testing.T) (addr string, seen *sync.Map, lookups *atomic.Uint64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ids atomic.Uint64
	seen, lookups = &sync.Map{}, &atomic.Uint64{}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/consent":
			var c fasthttp.Cookie
			c.SetKey(consentCookieName)
			c.SetValue(fmt.Sprintf("id%020d", ids.Add(1)))
			ctx.Response.Header.SetCookie(&c)
		case "/metrics":
			fmt.Fprintf(ctx, "consentgate_consent_lookups_total{source=\"cache\",result=\"miss\"} %d\n", lookups.Load())
		default:
			if v := ctx.Request.Header.Cookie(consentCookieName); len(v) > 0 {
				lookups.Add(1)
				seen.Store(string(v), true)
			}
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), seen, lookups
}

// TestScaleFillAndPass: the visitors are created in parallel batches, each gets a
// cookie of its own, and a pass sends exactly one hit per visitor.
func TestScaleFillAndPass(t *testing.T) {
	addr, seen, _ := fakeConsentProxy(t)
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 16}
	const n = 1234 // not a multiple of the batch
	cookies, err := createVisitorsParallel(context.Background(), hc, "http://"+addr, n, 8)
	if err != nil {
		t.Fatal(err)
	}
	unique := map[string]bool{}
	for i, c := range cookies {
		if len(c) == 0 {
			t.Fatalf("visitor %d has no cookie", i)
		}
		unique[string(c)] = true
	}
	if len(unique) != n {
		t.Fatalf("%d distinct cookies, want %d", len(unique), n)
	}
	rs, err := startRedis(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	p, err := startPinned([]string{"sleep", "60"}, nil, "0", filepath.Join(t.TempDir(), "log")) // stands in for the proxy process
	if err != nil {
		t.Fatal(err)
	}
	defer p.killGroup(time.Second)
	cr := &compareRun{o: &compareOptions{timeout: 2 * time.Second}, redis: rs}
	lp := &liveProxy{url: "http://" + addr, admin: addr, proc: p}
	fig, err := cr.visitPass(context.Background(), lp, hc, cookies, 8)
	if err != nil {
		t.Fatal(err)
	}
	if fig.Hits != n || fig.NotOK != 0 || fig.RedisCalls != 0 || fig.RedisReads != 0 {
		t.Errorf("pass: %+v, want %d hits, none failed, no Redis call or read", fig, n)
	}
	if fig.Lookups["cache/miss"] != n {
		t.Errorf("lookups %v, want %d cache misses", fig.Lookups, n)
	}
	count := 0
	seen.Range(func(any, any) bool { count++; return true })
	if count != n {
		t.Errorf("the proxy saw %d distinct visitors, want %d", count, n)
	}
}

func TestChartRedrawsFromJSON(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "compare-x")
	if _, err := writeCompareOutputs(base, sampleReport(false)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(base + ".svg"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := chartMain([]string{base + ".json"}, &out); code != 0 {
		t.Fatalf("chart exit %d", code)
	}
	if b, err := os.ReadFile(base + ".svg"); err != nil || !strings.Contains(string(b), "mix: realistic") {
		t.Fatalf("redrawn chart: %v", err)
	}
	// Any other JSON is refused rather than drawn empty.
	other := filepath.Join(dir, "scale.json")
	b, _ := json.Marshal(scaleReport{Tool: "loadgen scale"})
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := chartMain([]string{other}, &out); code == 0 {
		t.Error("a scale report was drawn as a comparison")
	}
}
