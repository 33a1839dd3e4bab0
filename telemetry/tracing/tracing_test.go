package tracing

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/consentgate/consentgate/internal/otlptest"
	"github.com/consentgate/consentgate/telemetry"
)

var testBuild = telemetry.BuildInfo{Version: "1.2.3", Commit: "abc123", GoVersion: "go1.26.8"}

type traceCollector = otlptest.Collector[*coltracepb.ExportTraceServiceRequest]

func startCollector(t testing.TB) *traceCollector {
	t.Helper()
	return otlptest.Start(t, "/v1/traces",
		func() *coltracepb.ExportTraceServiceRequest { return &coltracepb.ExportTraceServiceRequest{} },
		&coltracepb.ExportTraceServiceResponse{})
}

func newTracing(t testing.TB, cfg Config) *Tracing {
	t.Helper()
	tr, err := New(context.Background(), cfg, testBuild)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A second Shutdown (after a test's own) is harmless; only the first one's
		// error matters, and tests that expect one check it themselves.
		_ = tr.Shutdown(ctx)
	})
	return tr
}

// span is a received span with what the tests look at.
type span struct {
	name     string
	attrs    map[string]string
	resource map[string]string
	scope    string
	traceID  []byte
	parentID []byte
}

func received(t testing.TB, c *traceCollector) []span {
	t.Helper()
	if err := c.Err(); err != nil {
		t.Fatalf("collector rejected a request: %v", err)
	}
	var out []span
	for _, req := range c.Requests() {
		for _, rs := range req.Body.GetResourceSpans() {
			res := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					out = append(out, toSpan(sp, res, ss.GetScope().GetName()))
				}
			}
		}
	}
	return out
}

func toSpan(sp *tracepb.Span, res map[string]string, scope string) span {
	attrs := map[string]string{}
	for _, kv := range sp.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	return span{name: sp.GetName(), attrs: attrs, resource: res, scope: scope, traceID: sp.GetTraceId(), parentID: sp.GetParentSpanId()}
}

// hit starts and ends a span the way the proxy would for one hit.
func hit(ctx context.Context, tr *Tracing) trace.Span {
	_, sp := tr.Tracer().Start(ctx, "hit")
	if sp.IsRecording() {
		sp.SetAttributes(
			attribute.String("vendor", "ga4"),
			attribute.String("action", "forward"),
			attribute.String("reason", "consent_granted"),
		)
	}
	sp.End()
	return sp
}

// remoteParent is a context holding a span context as a propagator would extract it from
// an incoming traceparent.
func remoteParent(sampled bool) context.Context {
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: flags,
		Remote:     true,
	})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc)
}

func TestSampling(t *testing.T) {
	tests := []struct {
		name      string
		ratio     float64
		parent    context.Context
		wantSpans int
	}{
		{"ratio 1 keeps a root span", 1, context.Background(), 1},
		{"ratio 0 drops a root span", 0, context.Background(), 0},
		{"ratio 0 follows a sampled parent", 0, remoteParent(true), 1},
		{"ratio 1 follows an unsampled parent", 1, remoteParent(false), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCollector(t)
			tr := newTracing(t, Config{Enabled: true, SampleRatio: tt.ratio, OTLP: OTLP{Endpoint: c.URL, Headers: map[string]string{"X-Tenant": "shop-42"}}})
			if !tr.Enabled() {
				t.Fatal("Enabled() = false")
			}
			sp := hit(tt.parent, tr)
			if got := sp.SpanContext().IsSampled(); got != (tt.wantSpans > 0) {
				t.Errorf("span sampled = %v, want %v", got, tt.wantSpans > 0)
			}
			// Shutdown, not just ForceFlush: after it nothing can still be on its way, so
			// "nothing arrived" is a fact rather than a race.
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			spans := received(t, c)
			if len(spans) != tt.wantSpans {
				t.Fatalf("collector received %d spans, want %d: %+v", len(spans), tt.wantSpans, spans)
			}
			if tt.wantSpans == 0 {
				return
			}
			got := spans[0]
			if got.name != "hit" {
				t.Errorf("span name %q, want hit", got.name)
			}
			for k, v := range map[string]string{"vendor": "ga4", "action": "forward", "reason": "consent_granted"} {
				if got.attrs[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, got.attrs[k], v)
				}
			}
			if got.resource["service.name"] != "consentgate" || got.resource["service.version"] != "1.2.3" {
				t.Errorf("resource %v, want service.name=consentgate service.version=1.2.3", got.resource)
			}
			if got.scope != TracerName {
				t.Errorf("scope %q, want %q", got.scope, TracerName)
			}
			if psc := trace.SpanContextFromContext(tt.parent); psc.IsValid() {
				if tid := psc.TraceID(); string(got.traceID) != string(tid[:]) {
					t.Errorf("trace ID %x, want the parent's %x", got.traceID, tid)
				}
				if sid := psc.SpanID(); string(got.parentID) != string(sid[:]) {
					t.Errorf("parent span ID %x, want %x", got.parentID, sid)
				}
			}
			reqs := c.Requests()
			if h := reqs[0].Header; h.Get("X-Tenant") != "shop-42" || h.Get("Content-Encoding") != "gzip" {
				t.Errorf("headers X-Tenant %q Content-Encoding %q, want shop-42 and gzip", h.Get("X-Tenant"), h.Get("Content-Encoding"))
			}
		})
	}
}

func TestForceFlushDelivers(t *testing.T) {
	c := startCollector(t)
	tr := newTracing(t, Config{Enabled: true, SampleRatio: 1, OTLP: OTLP{Endpoint: c.URL}})
	for range 3 {
		hit(context.Background(), tr)
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	if n := len(received(t, c)); n != 3 {
		t.Fatalf("after ForceFlush the collector has %d spans, want 3", n)
	}
}

func TestDisabled(t *testing.T) {
	// An endpoint that would receive anything sent proves nothing is.
	c := startCollector(t)
	tr := newTracing(t, Config{Enabled: false, SampleRatio: 1, OTLP: OTLP{Endpoint: c.URL}})
	if tr.Enabled() {
		t.Fatal("Enabled() = true")
	}
	if _, ok := tr.TracerProvider().(noop.TracerProvider); !ok {
		t.Errorf("TracerProvider() is %T, want noop.TracerProvider", tr.TracerProvider())
	}
	tests := []struct {
		name   string
		parent context.Context
	}{
		{"no parent", context.Background()},
		{"fasthttp request", &fasthttp.RequestCtx{}},
		{"remote parent", remoteParent(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, sp := tr.Tracer().Start(tt.parent, "hit")
			if sp.IsRecording() {
				t.Error("span is recording")
			}
			// As with noop.Tracer: no span context of its own, the parent's kept.
			want := trace.SpanContextFromContext(tt.parent)
			if got := sp.SpanContext(); !got.Equal(want) {
				t.Errorf("span context %v, want the parent's %v", got, want)
			}
			if got := trace.SpanContextFromContext(ctx); !got.Equal(want) {
				t.Errorf("context's span context %v, want the parent's %v", got, want)
			}
			sp.SetAttributes(attribute.String("vendor", "ga4"))
			sp.End()
		})
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush: %v", err)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if len(c.Requests()) != 0 {
		t.Errorf("disabled tracing sent %d requests", len(c.Requests()))
	}
}

// TestDisabledIgnoresConfig: a half-written tracing section must not stop the proxy while
// tracing is off.
func TestDisabledIgnoresConfig(t *testing.T) {
	if _, err := New(context.Background(), Config{SampleRatio: 7, OTLP: OTLP{Endpoint: "grpc://nowhere"}}, testBuild); err != nil {
		t.Fatalf("New disabled with a bad config: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := OTLP{Endpoint: "http://127.0.0.1:4318"}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"ratio below 0", Config{Enabled: true, SampleRatio: -0.1, OTLP: ok}},
		{"ratio above 1 (a percentage)", Config{Enabled: true, SampleRatio: 10, OTLP: ok}},
		{"ratio NaN", Config{Enabled: true, SampleRatio: math.NaN(), OTLP: ok}},
		{"no endpoint", Config{Enabled: true, SampleRatio: 1}},
		{"grpc endpoint", Config{Enabled: true, SampleRatio: 1, OTLP: OTLP{Endpoint: "grpc://collector:4317"}}},
		{"negative timeout", Config{Enabled: true, SampleRatio: 1, OTLP: OTLP{Endpoint: ok.Endpoint, Timeout: -time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := New(context.Background(), tt.cfg, testBuild)
			if err == nil {
				_ = tr.Shutdown(context.Background())
				t.Fatal("New: no error")
			}
			if !strings.HasPrefix(err.Error(), "tracing: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestCollectorDown(t *testing.T) {
	tests := []struct {
		name     string
		endpoint func(testing.TB) string
	}{
		{"connection refused", otlptest.Refused},
		{"collector never answers", otlptest.Hanging},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracing(t, Config{Enabled: true, SampleRatio: 1, OTLP: OTLP{Endpoint: tt.endpoint(t), Timeout: 200 * time.Millisecond}})
			// Ending spans only queues them; more than the queue holds are dropped, not
			// waited for.
			for range 5000 {
				hit(context.Background(), tr)
			}
			// A backstop so a regression fails the test instead of hanging it; the
			// configured Timeout is what must end a hanging export.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// The batcher may already have exported (and failed, and reported) every
			// span in the background, leaving the flush nothing to fail on, so its error
			// is not asserted: returning is the point.
			_ = tr.ForceFlush(ctx)
			_ = tr.Shutdown(ctx)
			if ctx.Err() != nil {
				t.Error("ForceFlush and Shutdown ran into the backstop; OTLP.Timeout did not bound them")
			}
		})
	}
}

// TestRedisInstrumentation keeps redisotel in go.mod and checks the provider fits it: the
// proxy instruments its go-redis client with the same provider. No command is sent, so no
// Redis is needed.
func TestRedisInstrumentation(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		c := startCollector(t)
		tr := newTracing(t, Config{Enabled: enabled, SampleRatio: 1, OTLP: OTLP{Endpoint: c.URL}})
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tr.TracerProvider())); err != nil {
			t.Errorf("enabled=%v: InstrumentTracing: %v", enabled, err)
		}
		if err := rdb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

// TestDisabledAllocatesNothing guards the promise that the proxy may start spans
// unconditionally: with tracing off a hit's span costs no allocation.
func TestDisabledAllocatesNothing(t *testing.T) {
	tr := newTracing(t, Config{})
	for _, parent := range []context.Context{context.Background(), &fasthttp.RequestCtx{}} {
		n := testing.AllocsPerRun(1000, func() {
			_, sp := tr.Tracer().Start(parent, "hit")
			if sp.IsRecording() {
				sp.SetAttributes(attribute.String("vendor", "ga4"))
			}
			sp.End()
		})
		if n != 0 {
			t.Errorf("parent %T: disabled span allocates %v per hit, want 0", parent, n)
		}
	}
}

func BenchmarkSpan(b *testing.B) {
	c := startCollector(b)
	cases := []struct {
		name   string
		tracer trace.Tracer
	}{
		{"disabled", newTracing(b, Config{}).Tracer()},
		{"noop.Tracer (reference)", noop.NewTracerProvider().Tracer("")},
		{"ratio 0", newTracing(b, Config{Enabled: true, SampleRatio: 0, OTLP: OTLP{Endpoint: c.URL}}).Tracer()},
		{"ratio 1", newTracing(b, Config{Enabled: true, SampleRatio: 1, OTLP: OTLP{Endpoint: c.URL}}).Tracer()},
	}
	attrs := []attribute.KeyValue{
		attribute.String("vendor", "ga4"),
		attribute.String("action", "forward"),
		attribute.String("reason", "consent_granted"),
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, sp := tc.tracer.Start(ctx, "hit")
				if sp.IsRecording() {
					sp.SetAttributes(attrs...)
				}
				sp.End()
			}
		})
	}
}
