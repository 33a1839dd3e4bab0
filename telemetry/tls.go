package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// tlsCounters are the public listener's certificate loads. Nothing is exported until the
// first load: without TLS the series would say nothing, and an expiry of 0 would read as
// a certificate that expired in 1970.
type tlsCounters struct {
	on           atomic.Bool
	ok, errs     atomic.Uint64
	lastOK       atomic.Bool
	notAfterSecs atomic.Int64 // NotAfter of the certificate in force, Unix seconds
}

var tlsResultAttrs = [2]metric.ObserveOption{
	metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok"))),
	metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error"))),
}

// TLSReload records one load of the public listener's certificate and key: at start, on
// a config reload, or when the watcher saw the files change. notAfter is the new
// certificate's expiry, used only on success: a failed load leaves the certificate in
// force, and so its expiry, as it was.
func (m *Metrics) TLSReload(success bool, notAfter time.Time) {
	c := &m.tls
	if success {
		c.notAfterSecs.Store(notAfter.Unix())
		c.ok.Add(1)
	} else {
		c.errs.Add(1)
	}
	c.lastOK.Store(success)
	c.on.Store(true)
}

func (m *Metrics) registerTLS(counter, gauge func(name, desc, unit string, cb metric.Int64Callback) error) error {
	c := &m.tls
	if err := counter("consentgate_tls_reloads_total",
		"Loads of the public listener's TLS certificate and key by result (ok, error): at start, on a config reload and when their files change. After an error the certificate already in force keeps serving. Exported once TLS is on.",
		"{reload}", func(_ context.Context, o metric.Int64Observer) error {
			if c.on.Load() {
				o.Observe(clampInt64(c.ok.Load()), tlsResultAttrs[0])
				o.Observe(clampInt64(c.errs.Load()), tlsResultAttrs[1])
			}
			return nil
		}); err != nil {
		return err
	}
	lastOK := observeBool(&c.lastOK)
	if err := gauge("consentgate_tls_last_reload_successful",
		"1 if the last load of the TLS certificate and key succeeded, else 0 (the certificate already in force keeps serving). Exported once TLS is on.",
		"1", func(ctx context.Context, o metric.Int64Observer) error {
			if c.on.Load() {
				return lastOK(ctx, o)
			}
			return nil
		}); err != nil {
		return err
	}
	return gauge("consentgate_tls_cert_expiry_timestamp_seconds",
		"NotAfter of the TLS certificate the public listener serves, Unix seconds: alert on it approaching. Exported once TLS is on.",
		"s", func(_ context.Context, o metric.Int64Observer) error {
			if c.on.Load() && c.ok.Load() > 0 {
				o.Observe(c.notAfterSecs.Load())
			}
			return nil
		})
}
