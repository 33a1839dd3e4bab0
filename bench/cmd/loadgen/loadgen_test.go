package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestHistogramQuantilesOnKnownData(t *testing.T) {
	var h histogram
	// 1 µs .. 10 ms in 1 µs steps: the q-quantile is q × 10 ms.
	const n = 10000
	for i := 1; i <= n; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	if h.Count() != n {
		t.Fatalf("Count = %d, want %d", h.Count(), n)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5 * time.Millisecond},
		{0.9, 9 * time.Millisecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{1, 10 * time.Millisecond},
	} {
		got := h.Quantile(tc.q)
		// A bucket is 1/128 of its power of two wide, and the top is reported:
		// never below the true value, at most 0.8 % above.
		if got < tc.want || float64(got) > float64(tc.want)*(1+1.0/subCount) {
			t.Errorf("Quantile(%v) = %v, want %v .. +%.1f%%", tc.q, got, tc.want, 100.0/subCount)
		}
	}
	if h.Max() != 10*time.Millisecond || h.Min() != time.Microsecond {
		t.Errorf("Min/Max = %v/%v, want exact 1µs/10ms", h.Min(), h.Max())
	}
	if got := h.Quantile(0); got != time.Microsecond {
		t.Errorf("Quantile(0) = %v, want the minimum", got)
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	var h histogram
	for _, v := range []time.Duration{3, 3, 3, 100, 127} {
		h.Record(v)
	}
	if got := h.Quantile(0.5); got != 3 {
		t.Errorf("p50 = %d, want 3", got)
	}
	if got := h.Quantile(0.8); got != 100 {
		t.Errorf("p80 = %d, want 100", got)
	}
	if got := h.Quantile(1); got != 127 {
		t.Errorf("p100 = %d, want 127", got)
	}
}

func TestHistogramMergeMatchesSingle(t *testing.T) {
	var all, a, b histogram
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 50000 {
		d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, single = %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Errorf("merged count/min/max %d/%v/%v, single %d/%v/%v", a.Count(), a.Min(), a.Max(), all.Count(), all.Min(), all.Max())
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	// Every value must land in the bucket whose top is >= it and whose previous
	// bucket's top is < it; spot-check across the whole range including the ends.
	vals := []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 1<<20 + 1, 1<<40 - 1, math.MaxUint64}
	for _, v := range vals {
		i := bucketOf(v)
		if i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of %d buckets", v, i, histBuckets)
		}
		if bucketHigh(i) < v {
			t.Errorf("bucketHigh(bucketOf(%d)) = %d, below the value", v, bucketHigh(i))
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Errorf("bucket %d before %d's bucket already covers it (top %d)", i-1, v, bucketHigh(i-1))
		}
	}
}

func TestPickerDistribution(t *testing.T) {
	spec, err := mixByName("realistic")
	if err != nil {
		t.Fatal(err)
	}
	templates := spec.templates
	weights := make([]uint64, len(templates))
	var total uint64
	for i, tpl := range templates {
		weights[i] = tpl.weight
		total += tpl.weight
	}
	if total != 1000 {
		t.Fatalf("realistic mix weights add up to %d, want 1000 (per mille)", total)
	}
	p, err := newPicker(weights)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(42, 1))
	const draws = 200000
	got := make([]int, len(weights))
	for range draws {
		got[p.pick(r)]++
	}
	for i, tpl := range templates {
		want := float64(weights[i]) / float64(total)
		share := float64(got[i]) / draws
		// With 200k draws the standard error is under 0.12 points; 0.5 points is
		// a wide margin that a broken picker (off by one slot) still fails.
		if math.Abs(share-want) > 0.005 {
			t.Errorf("%s: share %.4f, want %.4f ± 0.005", tpl.name, share, want)
		}
	}
}

func TestPickerEdgeCases(t *testing.T) {
	if _, err := newPicker([]uint64{0, 0}); err == nil {
		t.Error("newPicker with all-zero weights: want an error")
	}
	p, err := newPicker([]uint64{0, 5, 0})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		if i := p.pick(r); i != 1 {
			t.Fatalf("pick = %d, want only the non-zero slot 1", i)
		}
	}
}

func TestVisitorPoolFoldsMissingCookiesIntoNone(t *testing.T) {
	spec, err := mixByName("realistic")
	if err != nil {
		t.Fatal(err)
	}
	vp, err := newVisitorPool(spec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		if c := vp.consent.pick(r); c != consentNone {
			t.Fatalf("consent class %d picked with no cookies available", c)
		}
	}
	var jw uint64
	for _, jc := range jurisdictionMix {
		jw += jc.weight
	}
	if jw != 100 {
		t.Errorf("jurisdiction weights add up to %d, want 100", jw)
	}
}

func TestParseHits(t *testing.T) {
	text := []byte(`# HELP consentgate_hits_total Hits by decision.
# TYPE consentgate_hits_total counter
consentgate_hits_total{action="forward",jurisdiction="eea",otel_scope_name="x",reason="consent_granted",vendor="ga4"} 12
consentgate_hits_total{action="forward",jurisdiction="eea",otel_scope_name="y",reason="consent_granted",vendor="ga4"} 3
consentgate_hits_total{action="drop",jurisdiction="uk",reason="no \"consent\"",vendor="meta"} 1.5e+01
consentgate_other_total{action="drop"} 99
`)
	got, err := parseHits(text)
	if err != nil {
		t.Fatal(err)
	}
	if v := got[hitCounter{"ga4", "forward", "consent_granted", "eea"}]; v != 15 {
		t.Errorf("ga4 forward = %v, want 15 (summed over extra labels)", v)
	}
	if v := got[hitCounter{"meta", "drop", `no "consent"`, "uk"}]; v != 15 {
		t.Errorf("meta drop = %v, want 15", v)
	}
	if len(got) != 2 {
		t.Errorf("got %d series, want 2: %v", len(got), got)
	}
	if _, err := parseHits([]byte(`consentgate_hits_total{action="forward 1`)); err == nil {
		t.Error("unterminated label: want an error")
	}
}

func TestRequireLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:80", "127.1.2.3:1", "[::1]:8080", "localhost:9"} {
		if err := requireLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:80", "192.168.1.1:80", "example.com:80", "8.8.8.8:53", "[::2]:1", "127.0.0.1"} {
		if err := requireLoopback(bad); err == nil {
			t.Errorf("%s: accepted, want refused", bad)
		}
	}
}

// TestRunAgainstFakeProxy drives the whole generator (consent setup, warm-up,
// measured run, sink, metrics scrape, report) for a fraction of a second against a
// fake proxy in -target mode. The fake forwards every hit with a cookie to the sink
// and drops the rest, so the sink count must equal the cookie-carrying hits.
func TestRunAgainstFakeProxy(t *testing.T) {
	sinkPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	sinkAddr := fmt.Sprintf("127.0.0.1:%d", sinkPort)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var forwarded, dropped atomic.Uint64
	client := &fasthttp.HostClient{Addr: sinkAddr}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/consent":
			var c fasthttp.Cookie
			c.SetKey(consentCookieName)
			c.SetValue("abcdefghijklmnopqrstuv")
			ctx.Response.Header.SetCookie(&c)
			return
		case "/metrics":
			fmt.Fprintf(ctx, "consentgate_hits_total{vendor=\"x\",action=\"forward\",reason=\"consent_granted\",jurisdiction=\"eea\"} %d\n", forwarded.Load())
			fmt.Fprintf(ctx, "consentgate_hits_total{vendor=\"x\",action=\"drop\",reason=\"no_consent\",jurisdiction=\"eea\"} %d\n", dropped.Load())
			return
		}
		if len(ctx.Request.Header.Cookie(consentCookieName)) == 0 {
			dropped.Add(1)
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		forwarded.Add(1)
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		ctx.Request.CopyTo(req)
		req.Header.DelAllCookies()
		req.SetRequestURI("http://" + sinkAddr + string(ctx.RequestURI()))
		if err := client.Do(req, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	out := t.TempDir()
	var report bytes.Buffer
	code, err := run(options{
		target: "http://" + ln.Addr().String(), adminAddr: ln.Addr().String(), sinkListen: sinkAddr,
		duration: 300 * time.Millisecond, warmup: 100 * time.Millisecond, connections: 4,
		mix: "realistic", outDir: out, seed: 1, granted: 7, denied: 3, timeout: 2 * time.Second,
	}, &report)
	if err != nil || code != 0 {
		t.Fatalf("run = %d, %v; output:\n%s", code, err, report.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "loadgen-realistic-*.json"))
	if len(files) != 1 {
		t.Fatalf("summary files %v, want one", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Requests == 0 || s.NotOK != 0 || s.Status5xx != 0 {
		t.Fatalf("requests %d, not OK %d, 5xx %d; output:\n%s", s.Requests, s.NotOK, s.Status5xx, report.String())
	}
	withCookie := s.ByConsent["granted"] + s.ByConsent["denied_marketing"]
	if withCookie == 0 || s.ByConsent["none"] == 0 {
		t.Errorf("consent classes %v: want hits with and without a cookie", s.ByConsent)
	}
	if s.Sink.Total != withCookie {
		t.Errorf("sink received %d, want the %d hits with a cookie", s.Sink.Total, withCookie)
	}
	if s.Sink.LeakedCookie != 0 {
		t.Errorf("sink saw %d consent cookies", s.Sink.LeakedCookie)
	}
	if uint64(s.HitsByAction["forward"]) != withCookie || uint64(s.HitsByAction["drop"]) != s.ByConsent["none"] {
		t.Errorf("metrics deltas %v, want forward %d drop %d", s.HitsByAction, withCookie, s.ByConsent["none"])
	}
	for _, want := range []string{"req/s", "p99", "sink received"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
}
