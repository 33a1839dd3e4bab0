// The instruments: every metric registered on the meter, and the callbacks that read
// the counters at each scrape.

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// register creates every instrument on meter; each reads its counters by callback at
// scrape time, so the hit path only increments atomics.
func (m *Metrics) register(meter metric.Meter) error {
	counter := func(name, desc, unit string, cb metric.Int64Callback) error {
		_, err := meter.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit), metric.WithInt64Callback(cb))
		if err != nil {
			return fmt.Errorf("telemetry: instrument %s: %w", name, err)
		}
		return nil
	}
	gauge := func(name, desc, unit string, cb metric.Int64Callback) error {
		_, err := meter.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit), metric.WithInt64Callback(cb))
		if err != nil {
			return fmt.Errorf("telemetry: instrument %s: %w", name, err)
		}
		return nil
	}
	timestamp := func(name, desc string, ms *atomic.Int64) error {
		_, err := meter.Float64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit("s"),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				o.Observe(float64(ms.Load()) / 1e3)
				return nil
			}))
		if err != nil {
			return fmt.Errorf("telemetry: instrument %s: %w", name, err)
		}
		return nil
	}
	var err error
	m.duration, err = meter.Float64Histogram("consentgate_upstream_request_duration_seconds",
		metric.WithDescription("Upstream round trip time by vendor and outcome (ok = answered below 500; timeout, connect, status = 5xx, other)."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(upstreamDurationBuckets...))
	if err != nil {
		return fmt.Errorf("telemetry: instrument consentgate_upstream_request_duration_seconds: %w", err)
	}
	return errors.Join(
		m.registerScripts(counter),
		m.registerTLS(counter, gauge),
		timestamp("consentgate_config_last_reload_success_timestamp_seconds",
			"Unix time of the last successful config load or reload; 0 if none yet.", &m.reloadOKAtMs),
		gauge("consentgate_geoip_last_reload_successful", "1 if the last GeoIP database load or reload succeeded, else 0.", "1", observeBool(&m.geoOK)),
		counter("consentgate_geoip_reload_errors_total", "GeoIP database reloads that failed; the database already open stayed in use.", "{reload}",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(clampInt64(m.geoErrors.Load()))
				return nil
			}),
		timestamp("consentgate_geoip_last_reload_success_timestamp_seconds",
			"Unix time of the last successful GeoIP database load or reload; 0 if none yet.", &m.geoOKAtMs),
		timestamp("consentgate_geoip_database_build_timestamp_seconds",
			"Build time of the GeoIP database in use (its metadata), Unix seconds; 0 if unknown. Shows a database that geoipupdate stopped refreshing.", &m.geoBuildAtMs),
		counter("consentgate_hits_total", "Hits by vendor, action taken, reason and jurisdiction group.", "{hit}", m.observeHits),
		counter("consentgate_upstream_requests_total", "Requests sent upstream, by vendor.", "{request}", m.observeRequests),
		counter("consentgate_upstream_errors_total", "Upstream requests that failed, by vendor and kind (timeout, connect, status = 5xx, other).", "{request}", m.observeErrors),
		gauge("consentgate_config_last_reload_successful", "1 if the last config load or reload succeeded, else 0.", "1", observeBool(&m.reloadOK)),
		counter("consentgate_config_reload_errors_total", "Config reloads that failed; the last good config stayed in force.", "{reload}",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(clampInt64(m.reloadErrors.Load()))
				return nil
			}),
		gauge("consentgate_build_info", "Always 1; the labels say which build is running.", "1",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(1, m.buildAttrs)
				return nil
			}),
		counter("consentgate_consent_lookups_total", "Consent lookups by source (cache, redis, memory) and result (hit, miss, error).", "{lookup}",
			func(_ context.Context, o metric.Int64Observer) error {
				for i := range m.lookups {
					o.Observe(clampInt64(m.lookups[i].Load()), lookupAttrs[i])
				}
				return nil
			}),
		counter("consentgate_signal_errors_total", "Consent signals a hit carried that could not be read, by signal; the hit was decided without them or, for tcf, gpp and usp, as the README says (fail closed).", "{signal}",
			func(_ context.Context, o metric.Int64Observer) error {
				for i := range m.signals {
					o.Observe(clampInt64(m.signals[i].Load()), m.signalAttrs[i])
				}
				return nil
			}),
		counter("consentgate_anonymise_salt_fallbacks_total", "Days this instance started hashing with a salt of its own because the salt shared through Redis was not known yet (Redis did not answer); its pseudonyms differ from the other instances' until it is.", "{salt}",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(clampInt64(m.saltFallbacks.Load()))
				return nil
			}),
		counter("consentgate_anonymise_removed_total", "Values of anonymised hits removed because they did not fit the kind their allow-list declares (a currency that is not three letters, a URL that is not one, a counter that is not a number), by vendor and kind.", "{value}",
			func(_ context.Context, o metric.Int64Observer) error {
				for i := range m.removed {
					o.Observe(clampInt64(m.removed[i].Load()), m.removedAttrs[i])
				}
				return nil
			}),
		counter("consentgate_requests_refused_total", "Requests the public listener answered before any route saw them (an unreadable or oversized head, bad framing, a read timeout) and connections it turned away, by reason; routed hits are in consentgate_hits_total.", "{request}", m.observeRefused),
		gauge("consentgate_public_connections", "Connections open on the public listener.", "{connection}", m.observePublicConns),
		counter("consentgate_fleet_stats_publishes_total", "Publishes of this instance's per-minute hit counts to Redis for the fleet dashboard, by result (ok, error); a failed one is retried at the next.", "{publish}", m.observeFleetPublishes),
		gauge("consentgate_fleet_stats_pending_batches", "Batches of per-minute hit counts waiting to be published to Redis: 0 when publishing works, at most one per minute of an outage.", "{batch}",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(m.fleetPending.Load())
				return nil
			}),
		counter("consentgate_fleet_stats_lost_hits_total", "Hits left out of the fleet figures because Redis did not take their per-minute counts within the longest window (24 h).", "{hit}",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(clampInt64(m.fleetLost.Load()))
				return nil
			}),
		gauge("consentgate_consent_store_up", "1 if the consent store answered its last health check, else 0 (hits are then decided fail-closed).", "1", observeBool(&m.storeUp)),
		counter("consentgate_telemetry_dropped_observations_total", "Observations ignored because an index was out of range (a caller bug).", "{observation}",
			func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(clampInt64(m.dropped.Load()))
				return nil
			}),
		m.registerIntegrity(meter),
	)
}

// observeBool reports a flag as a 0/1 gauge.
func observeBool(b *atomic.Bool) metric.Int64Callback {
	return func(_ context.Context, o metric.Int64Observer) error {
		var v int64
		if b.Load() {
			v = 1
		}
		o.Observe(v)
		return nil
	}
}

// observeHits reports every non-zero hit cell. It runs per scrape, so walking all cells
// (tens of thousands of atomic loads) is cheap next to the HTTP round trip.
func (m *Metrics) observeHits(_ context.Context, o metric.Int64Observer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	nJur := int(m.nJur.Load())
	for v := range m.vendors {
		for a := range m.actions {
			for r := range m.reasons {
				base := ((v*int(m.nA)+a)*int(m.nR) + r) << jurisdictionBits
				for j := range nJur {
					i := base | j
					n := m.hits[i].Load()
					if n == 0 {
						continue
					}
					attrs, ok := m.hitAttrs[i]
					if !ok {
						attrs = metric.WithAttributeSet(attribute.NewSet(
							attribute.String("vendor", m.vendors[v]),
							attribute.String("action", m.actions[a]),
							attribute.String("reason", m.reasons[r]),
							attribute.String("jurisdiction", m.jurNames[j]),
						))
						m.hitAttrs[i] = attrs
					}
					o.Observe(clampInt64(n), attrs)
				}
			}
		}
	}
	return nil
}

func (m *Metrics) observeRequests(_ context.Context, o metric.Int64Observer) error {
	for v := range m.requests {
		o.Observe(clampInt64(m.requests[v].Load()), m.requestAttrs[v])
	}
	return nil
}

func (m *Metrics) observeErrors(_ context.Context, o metric.Int64Observer) error {
	for i := range m.errs {
		o.Observe(clampInt64(m.errs[i].Load()), m.errAttrs[i])
	}
	return nil
}

// clampInt64 converts a counter for the int64 OTel API; 2^63 hits will not happen, but a
// wrap to negative would make Prometheus see a counter reset.
func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
