package telemetry

import (
	"context"
	"fmt"
	"maps"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/consentgate/consentgate/telemetry/internal/otlpurl"
)

// DefaultOTLPInterval is the push interval when OTLP.Interval is zero (the OTel SDK's
// default).
const DefaultOTLPInterval = 60 * time.Second

// DefaultOTLPTimeout bounds one push when OTLP.Timeout is zero; it is the OTLP
// exporters' documented default.
const DefaultOTLPTimeout = 10 * time.Second

// OTLP configures pushing the same metrics to an OpenTelemetry collector over OTLP/HTTP
// (protobuf, gzip), next to the Prometheus scrape.
type OTLP struct {
	// Endpoint is the collector's base URL, e.g. http://collector:4318: the scheme decides
	// TLS and an empty path becomes /v1/metrics. A bare host:port is accepted too, and then
	// Insecure picks http over https.
	Endpoint string
	// Headers are sent with every export (an API key, a tenant ID).
	Headers map[string]string
	// Interval between pushes; 0 means DefaultOTLPInterval.
	Interval time.Duration
	// Insecure picks plain HTTP for an Endpoint given without a scheme. A scheme in the
	// Endpoint wins, so the URL alone says what goes over the wire.
	Insecure bool
	// Timeout bounds one push, retries included, and so ForceFlush and Shutdown too; 0
	// means DefaultOTLPTimeout. A collector that accepts and never answers then holds the
	// push goroutine (and a drain) for that long at most.
	Timeout time.Duration
}

// Option configures New.
type Option func(*options)

type options struct {
	otlp    *OTLP
	signals []string
	kinds   []string
}

// WithSignals names the consent signals whose unreadable values are counted, in the index
// order SignalError takes (consent/signals.KindNames): the label values of
// consentgate_signal_errors_total.
func WithSignals(names ...string) Option {
	return func(opts *options) { opts.signals = names }
}

// WithRemovedKinds names the kinds of anonymised values (rules.KindNames), in the index
// order AnonymiseRemoved takes: the kind label values of
// consentgate_anonymise_removed_total.
func WithRemovedKinds(names ...string) Option {
	return func(opts *options) { opts.kinds = names }
}

// WithOTLP adds a periodic OTLP/HTTP push of every metric. Recording stays the same atomic
// add: the push reads the same counters the scrape does, on its own goroutine, so a slow or
// absent collector costs the hit path nothing. Export errors go to the OpenTelemetry error
// handler (otel.SetErrorHandler; by default the standard logger) and, for ForceFlush and
// Shutdown, back to the caller.
func WithOTLP(o OTLP) Option {
	return func(opts *options) {
		// Copied: the caller's map may change after New returns.
		o.Headers = maps.Clone(o.Headers)
		opts.otlp = &o
	}
}

// newOTLPReader returns the periodic reader and the timeout it applies to one push.
func newOTLPReader(o OTLP) (sdkmetric.Reader, time.Duration, error) {
	if o.Interval < 0 || o.Timeout < 0 {
		return nil, 0, fmt.Errorf("telemetry: otlp: negative interval (%v) or timeout (%v)", o.Interval, o.Timeout)
	}
	interval, timeout := o.Interval, o.Timeout
	if interval == 0 {
		interval = DefaultOTLPInterval
	}
	if timeout == 0 {
		timeout = DefaultOTLPTimeout
	}
	endpoint, err := otlpurl.Resolve(o.Endpoint, o.Insecure, "/v1/metrics")
	if err != nil {
		return nil, 0, fmt.Errorf("telemetry: otlp: %w", err)
	}
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpointURL(endpoint),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression),
		otlpmetrichttp.WithTimeout(timeout),
	}
	if len(o.Headers) > 0 {
		opts = append(opts, otlpmetrichttp.WithHeaders(o.Headers))
	}
	// New does no network I/O, so no caller context is needed to bound it.
	exp, err := otlpmetrichttp.New(context.Background(), opts...)
	if err != nil {
		return nil, 0, fmt.Errorf("telemetry: otlp: exporter: %w", err)
	}
	return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval), sdkmetric.WithTimeout(timeout)), timeout, nil
}
