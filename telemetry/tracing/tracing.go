package tracing

import (
	"context"
	"fmt"
	"maps"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/consentgate/consentgate/telemetry"
	"github.com/consentgate/consentgate/telemetry/internal/otlpurl"
)

// TracerName is the instrumentation scope of consentgate's own spans.
const TracerName = "github.com/consentgate/consentgate"

// DefaultTimeout bounds one export when OTLP.Timeout is zero (the OTLP exporters' default).
const DefaultTimeout = 10 * time.Second

// OTLP says where spans go.
type OTLP struct {
	// Endpoint is the collector's base URL, e.g. http://collector:4318: the scheme decides
	// TLS and an empty path becomes /v1/traces. A bare host:port is accepted too, and then
	// Insecure picks http over https.
	Endpoint string
	// Headers are sent with every export (an API key, a tenant ID).
	Headers map[string]string
	// Insecure picks plain HTTP for an Endpoint given without a scheme; a scheme wins.
	Insecure bool
	// Timeout bounds one export, retries included; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Config turns tracing on and says how much of it to keep.
type Config struct {
	Enabled bool
	// SampleRatio is the share of root spans kept, from 0 to 1.
	SampleRatio float64
	OTLP        OTLP
}

// Tracing owns the tracer provider. Its methods are safe for concurrent use.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when disabled
	tracer   trace.Tracer
}

// New builds the tracer provider. Disabled, it returns a no-op Tracing without looking at
// the rest of cfg, so a half-filled tracing section cannot stop the proxy from starting.
// Enabled, it checks cfg and builds the exporter; no connection is made until the first
// export, so a collector that is down does not fail New either.
func New(ctx context.Context, cfg Config, build telemetry.BuildInfo) (*Tracing, error) {
	if !cfg.Enabled {
		tp := noop.NewTracerProvider()
		return &Tracing{provider: tp, tracer: disabledTracer{}}, nil
	}
	// Written so that NaN fails too.
	if !(cfg.SampleRatio >= 0 && cfg.SampleRatio <= 1) {
		return nil, fmt.Errorf("tracing: sample ratio %v, want 0 to 1", cfg.SampleRatio)
	}
	if cfg.OTLP.Timeout < 0 {
		return nil, fmt.Errorf("tracing: otlp: negative timeout %v", cfg.OTLP.Timeout)
	}
	timeout := cfg.OTLP.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	endpoint, err := otlpurl.Resolve(cfg.OTLP.Endpoint, cfg.OTLP.Insecure, "/v1/traces")
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp: %w", err)
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(endpoint),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithTimeout(timeout),
	}
	if len(cfg.OTLP.Headers) > 0 {
		// Copied: the caller's map may change after New returns.
		opts = append(opts, otlptracehttp.WithHeaders(maps.Clone(cfg.OTLP.Headers)))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp: exporter: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		// The batcher drops spans when its queue is full rather than block the caller: a
		// slow collector must never slow a hit.
		sdktrace.WithBatcher(exp, sdktrace.WithExportTimeout(timeout)),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "consentgate"),
			attribute.String("service.version", build.Version),
		)),
	)
	return &Tracing{
		provider: sdk,
		sdk:      sdk,
		tracer:   sdk.Tracer(TracerName, trace.WithInstrumentationVersion(build.Version)),
	}, nil
}

// Enabled reports whether spans can be recorded at all; a caller with work to do only
// for traces (building attributes) can skip it. span.IsRecording() is the finer check.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Tracer is consentgate's tracer; a no-op one when tracing is disabled.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// TracerProvider is for instrumentation libraries (redisotel.WithTracerProvider), so their
// spans share the sampler, exporter and resource; a no-op provider when disabled.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// ForceFlush exports the spans ended so far and waits for the export; it returns the
// export's error, or ctx's when ctx ends first. A no-op when disabled.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.ForceFlush(ctx); err != nil {
		return fmt.Errorf("tracing: flush: %w", err)
	}
	return nil
}

// Shutdown exports the spans still queued (bounded by ctx) and stops the provider; spans
// started afterwards are not recorded. A no-op when disabled.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// disabledTracer is noop.Tracer without its one allocation per span: for a context with
// no span in it (the proxy's case: hits carry no trace context when tracing is off) it
// returns ctx itself, where noop.Tracer wraps it in a new context holding the no-op span.
// Either way trace.SpanFromContext on the result finds a no-op span, so callers cannot
// tell the difference. With a span in ctx it defers to noop.Tracer, which keeps a remote
// parent's span context visible to children as the API spec requires.
type disabledTracer struct{ noop.Tracer }

// noopSpan is converted to the interface once, so returning it does not allocate.
var noopSpan trace.Span = noop.Span{}

func (d disabledTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	// The same test noop.Tracer makes to decide it has no parent to keep.
	if parent := trace.SpanFromContext(ctx); parent.SpanContext().Equal(trace.SpanContext{}) && !parent.IsRecording() {
		return ctx, noopSpan
	}
	return d.Tracer.Start(ctx, name, opts...)
}
