// Package tracing sets up OpenTelemetry traces for consentgate: an SDK tracer provider
// pushing spans over OTLP/HTTP when enabled, a no-op one when not, behind the same
// Tracer(), so the proxy starts spans unconditionally and pays next to nothing when
// tracing is off (BenchmarkSpan: no allocation for a span without a parent).
//
// Sampling is ParentBased(TraceIDRatioBased(SampleRatio)): a span with a parent follows
// the parent's decision, a root span is kept with probability SampleRatio. A parent
// extracted from an incoming request's traceparent counts, so the proxy should extract
// trace context only from callers it trusts: on public hit traffic any browser could
// otherwise force every one of its hits to be sampled.
//
// Attributes cost an allocation each time they are built, sampled or not, so callers set
// them behind span.IsRecording().
//
// Nothing here touches the OpenTelemetry globals (tracer provider, propagator): the
// process decides those, and tests can build several Tracings.
package tracing
