package telemetry

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/consentgate/consentgate/internal/otlptest"
)

type metricsCollector = otlptest.Collector[*colmetricpb.ExportMetricsServiceRequest]

func startMetricsCollector(t testing.TB) *metricsCollector {
	t.Helper()
	return otlptest.Start(t, "/v1/metrics",
		func() *colmetricpb.ExportMetricsServiceRequest { return &colmetricpb.ExportMetricsServiceRequest{} },
		&colmetricpb.ExportMetricsServiceResponse{})
}

func newOTLPMetrics(t testing.TB, o OTLP) *Metrics {
	t.Helper()
	m, err := New(testBuild, testVendors, testActions, testReasons, WithOTLP(o))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// shutdownOK shuts m down at the end of a test whose collector is up, so the last push
// must succeed.
func shutdownOK(t testing.TB, m *Metrics) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// pushed is one OTLP export flattened: the resource's attributes, and every data point as
// `name{k="v",...}` → value (sums and gauges) or → histogram point.
type pushed struct {
	resource   map[string]string
	values     map[string]float64
	histograms map[string]*metricpb.HistogramDataPoint
	metrics    map[string]*metricpb.Metric
}

func flatten(t testing.TB, req *colmetricpb.ExportMetricsServiceRequest) pushed {
	t.Helper()
	p := pushed{resource: map[string]string{}, values: map[string]float64{}, histograms: map[string]*metricpb.HistogramDataPoint{}, metrics: map[string]*metricpb.Metric{}}
	add := func(key string, v float64) {
		if _, dup := p.values[key]; dup {
			t.Errorf("data point %s pushed twice", key)
		}
		p.values[key] = v
	}
	for _, rm := range req.GetResourceMetrics() {
		for _, kv := range rm.GetResource().GetAttributes() {
			p.resource[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, mt := range sm.GetMetrics() {
				p.metrics[mt.GetName()] = mt
				switch d := mt.GetData().(type) {
				case *metricpb.Metric_Sum:
					for _, dp := range d.Sum.GetDataPoints() {
						add(pointKey(mt.GetName(), dp.GetAttributes()), numberValue(dp))
					}
				case *metricpb.Metric_Gauge:
					for _, dp := range d.Gauge.GetDataPoints() {
						add(pointKey(mt.GetName(), dp.GetAttributes()), numberValue(dp))
					}
				case *metricpb.Metric_Histogram:
					for _, dp := range d.Histogram.GetDataPoints() {
						p.histograms[pointKey(mt.GetName(), dp.GetAttributes())] = dp
					}
				default:
					t.Errorf("metric %s: unexpected data %T", mt.GetName(), d)
				}
			}
		}
	}
	return p
}

func numberValue(dp *metricpb.NumberDataPoint) float64 {
	if v, ok := dp.GetValue().(*metricpb.NumberDataPoint_AsInt); ok {
		return float64(v.AsInt)
	}
	return dp.GetAsDouble()
}

func pointKey(name string, attrs []*commonpb.KeyValue) string {
	parts := make([]string, 0, len(attrs))
	for _, kv := range attrs {
		parts = append(parts, fmt.Sprintf("%s=%q", kv.GetKey(), kv.GetValue().GetStringValue()))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return name
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// lastPush flattens the newest export: the values are cumulative, so it holds everything.
func lastPush(t testing.TB, c *metricsCollector) pushed {
	t.Helper()
	if err := c.Err(); err != nil {
		t.Fatalf("collector rejected a request: %v", err)
	}
	reqs := c.Requests()
	if len(reqs) == 0 {
		t.Fatal("collector received nothing")
	}
	return flatten(t, reqs[len(reqs)-1].Body)
}

// recordMix records a few hits and upstream round trips; wantMix is what they push.
func recordMix(t testing.TB, m *Metrics) {
	t.Helper()
	j := intern(t, m, "eea", "uk")
	for range 3 {
		m.Hit(0, 0, 0, j[0])
	}
	m.Hit(1, 2, 2, j[1])
	m.UpstreamRequest(0)
	m.UpstreamRequest(0)
	m.UpstreamDone(0, UpstreamOK, 3*time.Millisecond)
	m.UpstreamError(0, UpstreamTimeout)
	m.UpstreamDone(0, UpstreamTimeout.Outcome(), 2*time.Second)
}

func assertMix(t *testing.T, p pushed) {
	t.Helper()
	hits := map[string]float64{}
	for k, v := range p.values {
		if strings.HasPrefix(k, "consentgate_hits_total") {
			hits[k] = v
		}
	}
	wantHits := map[string]float64{
		hitKey("ga4", "forward", "consent_granted", "eea"): 3,
		hitKey("meta_pixel", "drop", "gpc_opt_out", "uk"):  1,
	}
	if !maps.Equal(hits, wantHits) {
		t.Errorf("pushed hits %v, want %v", hits, wantHits)
	}
	if sum := p.metrics["consentgate_hits_total"].GetSum(); !sum.GetIsMonotonic() || sum.GetAggregationTemporality() != metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
		t.Errorf("consentgate_hits_total: monotonic %v, temporality %v; want a cumulative counter", sum.GetIsMonotonic(), sum.GetAggregationTemporality())
	}
	for key, want := range map[string]float64{
		`consentgate_upstream_requests_total{vendor="ga4"}`:                            2,
		`consentgate_upstream_requests_total{vendor="matomo"}`:                         0, // from zero, as on /metrics
		`consentgate_upstream_errors_total{kind="timeout",vendor="ga4"}`:               1,
		`consentgate_build_info{commit="abc123",goversion="go1.26.8",version="1.2.3"}`: 1,
	} {
		if got, ok := p.values[key]; !ok || got != want {
			t.Errorf("pushed %s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	h := p.histograms[`consentgate_upstream_request_duration_seconds{outcome="timeout",vendor="ga4"}`]
	if h == nil {
		t.Fatalf("no pushed histogram for ga4 timeout; have %v", slices.Sorted(maps.Keys(p.histograms)))
	}
	if h.GetCount() != 1 || h.GetSum() != 2 {
		t.Errorf("ga4 timeout histogram count %d sum %v, want 1 and 2", h.GetCount(), h.GetSum())
	}
	if got := h.GetExplicitBounds(); !slices.Equal(got, upstreamDurationBuckets) {
		t.Errorf("pushed bounds %v, want %v", got, upstreamDurationBuckets)
	}
	// OTLP bucket counts are per bucket, not cumulative: 2s falls in (1, 2.5].
	wantCounts := make([]uint64, len(upstreamDurationBuckets)+1)
	wantCounts[slices.Index(upstreamDurationBuckets, 2.5)] = 1
	if got := h.GetBucketCounts(); !slices.Equal(got, wantCounts) {
		t.Errorf("pushed bucket counts %v, want %v", got, wantCounts)
	}
	if p.resource["service.name"] != "consentgate" || p.resource["service.version"] != "1.2.3" {
		t.Errorf("resource %v, want service.name=consentgate service.version=1.2.3", p.resource)
	}
}

func TestOTLPPush(t *testing.T) {
	tests := []struct {
		name string
		// interval of the push; an hour means only ForceFlush or Shutdown sends.
		interval time.Duration
		// deliver makes the push happen and waits for it.
		deliver func(t *testing.T, m *Metrics, c *metricsCollector)
	}{
		{
			name:     "ForceFlush",
			interval: time.Hour,
			deliver: func(t *testing.T, m *Metrics, c *metricsCollector) {
				shutdownOK(t, m)
				if err := m.ForceFlush(context.Background()); err != nil {
					t.Fatalf("ForceFlush: %v", err)
				}
			},
		},
		{
			name:     "Shutdown flushes",
			interval: time.Hour,
			deliver: func(t *testing.T, m *Metrics, c *metricsCollector) {
				if err := m.Shutdown(context.Background()); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			},
		},
		{
			name:     "periodic",
			interval: 20 * time.Millisecond,
			deliver: func(t *testing.T, m *Metrics, c *metricsCollector) {
				shutdownOK(t, m)
				// A bound on waiting, not a timing assertion: any push after the
				// recording carries it.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := c.Wait(ctx, func(reqs []otlptest.Request[*colmetricpb.ExportMetricsServiceRequest]) bool {
					return len(reqs) > 0 && flatten(t, reqs[len(reqs)-1].Body).values[hitKey("meta_pixel", "drop", "gpc_opt_out", "uk")] == 1
				})
				if err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startMetricsCollector(t)
			m := newOTLPMetrics(t, OTLP{Endpoint: c.URL, Headers: map[string]string{"X-Tenant": "shop-42"}, Interval: tt.interval})
			recordMix(t, m)
			tt.deliver(t, m, c)
			assertMix(t, lastPush(t, c))
			last := c.Requests()[len(c.Requests())-1]
			if got := last.Header.Get("X-Tenant"); got != "shop-42" {
				t.Errorf("X-Tenant header %q, want shop-42", got)
			}
			if got := last.Header.Get("Content-Encoding"); got != "gzip" {
				t.Errorf("Content-Encoding %q, want gzip", got)
			}
		})
	}
}

// TestOTLPAndScrapeAgree checks the two readers see the same counters: adding the push
// must not take anything from /metrics.
func TestOTLPAndScrapeAgree(t *testing.T) {
	c := startMetricsCollector(t)
	m := newOTLPMetrics(t, OTLP{Endpoint: c.URL, Interval: time.Hour})
	shutdownOK(t, m)
	recordMix(t, m)
	scraped := serve(t, m).scrape(t).series
	if err := m.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	p := lastPush(t, c)
	for k, v := range p.values {
		if got, ok := scraped[k]; !ok || got != v {
			t.Errorf("%s: pushed %v, scraped %v (present %v)", k, v, got, ok)
		}
	}
	for k := range scraped {
		if strings.HasPrefix(k, "consentgate_upstream_request_duration_seconds") {
			continue // flattened differently; assertMix checks the pushed histogram
		}
		if _, ok := p.values[k]; !ok {
			t.Errorf("%s scraped but not pushed", k)
		}
	}
}

// errorLog collects what the OTel SDK reports through its global error handler, where a
// background push's failure goes. It is installed once: the handler is process-wide.
var errorLog = struct {
	once sync.Once
	n    atomic.Int64
}{}

func countOTelErrors(t testing.TB) *atomic.Int64 {
	t.Helper()
	errorLog.once.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			errorLog.n.Add(1)
			log.Printf("otel: %v", err) // what the default handler would have said
		}))
	})
	return &errorLog.n
}

func TestOTLPCollectorDown(t *testing.T) {
	tests := []struct {
		name     string
		endpoint func(t testing.TB) string
	}{
		{"connection refused", otlptest.Refused},
		// Only OTLP.Timeout can end this push: the collector never will, and the flush
		// context below is far longer.
		{"collector never answers", otlptest.Hanging},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := countOTelErrors(t)
			before := errs.Load()
			// A short interval so background pushes fail while the hits below run, and a
			// short timeout so a hanging push gives up (and reports) within the test.
			m := newOTLPMetrics(t, OTLP{Endpoint: tt.endpoint(t), Interval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond})
			j := intern(t, m, "eea")
			const n = 20_000
			for i := range n {
				m.Hit(0, 1, 1, j[0])
				if i%100 == 0 {
					m.UpstreamDone(1, UpstreamOK, time.Millisecond)
				}
			}
			if got := m.HitCount(0, 1, 1, j[0]); got != n {
				t.Fatalf("HitCount = %d, want %d", got, n)
			}

			// A backstop so a regression fails the test instead of hanging it.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := m.ForceFlush(ctx)
			if err == nil {
				t.Fatal("ForceFlush to a collector that is down: no error")
			}
			if !strings.HasPrefix(err.Error(), "telemetry: flush: ") {
				t.Errorf("error %q lacks context", err)
			}
			if ctx.Err() != nil {
				t.Errorf("ForceFlush ran into the backstop (%v); OTLP.Timeout did not bound it", err)
			}

			// The scrape is unaffected.
			if got := serve(t, m).scrape(t).series[hitKey("ga4", "anonymise", "consent_missing", "eea")]; got != n {
				t.Errorf("scraped %v hits, want %d", got, n)
			}

			// Background pushes report their failures rather than panicking or piling up.
			wait, stop := context.WithTimeout(context.Background(), 30*time.Second)
			defer stop()
			for errs.Load() == before && wait.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			if errs.Load() == before {
				t.Error("no background push failure reached the OTel error handler")
			}

			// The same backstop: the caller's deadline is long, as a drain's would be, and
			// OTLP.Timeout must still bound the last push.
			shut, cancelShut := context.WithTimeout(context.Background(), time.Minute)
			defer cancelShut()
			if err := m.Shutdown(shut); err == nil {
				t.Error("Shutdown with a collector that is down: no error from its last push")
			}
			if shut.Err() != nil {
				t.Error("Shutdown ran into the backstop; OTLP.Timeout did not bound it")
			}
			m.Hit(0, 1, 1, j[0]) // still safe after a failed shutdown
		})
	}
}

func TestWithOTLPRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		o    OTLP
	}{
		{"no endpoint", OTLP{}},
		{"negative interval", OTLP{Endpoint: "http://127.0.0.1:4318", Interval: -time.Second}},
		{"negative timeout", OTLP{Endpoint: "http://127.0.0.1:4318", Timeout: -time.Second}},
		{"unknown scheme", OTLP{Endpoint: "grpc://127.0.0.1:4317"}},
		{"no host", OTLP{Endpoint: "http:///v1/metrics"}},
		{"query", OTLP{Endpoint: "http://127.0.0.1:4318/v1/metrics?x=1"}},
		{"credentials in URL", OTLP{Endpoint: "https://user:s3cret@collector:4318"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(testBuild, testVendors, testActions, testReasons, WithOTLP(tt.o))
			if err == nil {
				_ = m.Shutdown(context.Background())
				t.Fatal("New: no error")
			}
			if !strings.HasPrefix(err.Error(), "telemetry: otlp: ") {
				t.Errorf("error %q lacks context", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// TestOTLPEndpointPath checks the spellings an operator may use all reach the collector's
// /v1/metrics, and that a custom path is kept.
func TestOTLPEndpointPath(t *testing.T) {
	tests := []struct {
		name     string
		endpoint func(base string) string
		insecure bool
	}{
		{"base URL", func(b string) string { return b }, false},
		{"base URL with slash", func(b string) string { return b + "/" }, false},
		{"full URL", func(b string) string { return b + "/v1/metrics" }, false},
		{"host:port with Insecure", func(b string) string { return strings.TrimPrefix(b, "http://") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startMetricsCollector(t)
			m := newOTLPMetrics(t, OTLP{Endpoint: tt.endpoint(c.URL), Interval: time.Hour, Insecure: tt.insecure})
			shutdownOK(t, m)
			if err := m.ForceFlush(context.Background()); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRecordingAllocatesNothingWithOTLP repeats the allocation check with both readers
// installed: the histogram is recorded into each reader's aggregation.
func TestRecordingAllocatesNothingWithOTLP(t *testing.T) {
	c := startMetricsCollector(t)
	m := newOTLPMetrics(t, OTLP{Endpoint: c.URL, Interval: time.Hour})
	shutdownOK(t, m)
	intern(t, m, "eea")
	tests := []struct {
		name string
		f    func()
	}{
		{"Hit", func() { m.Hit(1, 2, 1, 0) }},
		{"UpstreamDone", func() { m.UpstreamDone(2, UpstreamStatus.Outcome(), 300*time.Millisecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
				t.Fatalf("%s allocates %v per call, want 0", tt.name, n)
			}
		})
	}
}

func BenchmarkUpstreamDoneWithOTLP(b *testing.B) {
	c := startMetricsCollector(b)
	m := newOTLPMetrics(b, OTLP{Endpoint: c.URL, Interval: time.Hour})
	shutdownOK(b, m)
	b.ReportAllocs()
	for b.Loop() {
		m.UpstreamDone(0, UpstreamOK, 3*time.Millisecond)
	}
}
