package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"
)

var (
	// testSignals are the signal labels, as consent/signals names them.
	testSignals = []string{"tcf", "gpp", "gpp_sid", "usp", "gcs", "gcd", "mp_consent", "cookiebot", "onetrust"}
	// testKinds are the kinds of anonymised values, as rules names them.
	testKinds   = []string{"enum", "number", "token", "id", "language", "screen", "currency", "url", "text"}
	testVendors = []string{"ga4", "meta_pixel", "matomo"}
	testActions = []string{"forward", "anonymise", "drop"}
	testReasons = []string{"consent_granted", "consent_missing", "gpc_opt_out"}
	testBuild   = BuildInfo{Version: "1.2.3", Commit: "abc123", GoVersion: "go1.26.8"}
)

func newTestMetrics(t testing.TB) *Metrics {
	t.Helper()
	m, err := New(testBuild, testVendors, testActions, testReasons, WithSignals(testSignals...), WithRemovedKinds(testKinds...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

func intern(t testing.TB, m *Metrics, names ...string) []int {
	t.Helper()
	var idx []int
	for _, n := range names {
		i, err := m.Jurisdiction(n)
		if err != nil {
			t.Fatalf("Jurisdiction(%q): %v", n, err)
		}
		idx = append(idx, i)
	}
	return idx
}

// scraper serves m.Handler() on a real fasthttp server bound to a free 127.0.0.1 port,
// the way the admin listener does.
type scraper struct {
	url    string
	client *fasthttp.Client
}

func serve(t testing.TB, m *Metrics) *scraper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: m.Handler()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &scraper{url: "http://" + ln.Addr().String() + "/metrics", client: &fasthttp.Client{}}
}

// scrape is one /metrics response: families by name, and every series as
// `name{k="v",...}` (labels sorted) → value.
type scrape struct {
	families map[string]*dto.MetricFamily
	series   map[string]float64
}

func (s *scraper) scrape(t testing.TB) scrape {
	t.Helper()
	out, err := s.fetch()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fetch is scrape for goroutines other than the test's, where t.Fatal is not allowed.
func (s *scraper) fetch() (scrape, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(s.url)
	// A guard against a hang, not a timing: 21k series under -race on a loaded
	// machine took over 10 s once.
	if err := s.client.DoTimeout(req, resp, 60*time.Second); err != nil {
		return scrape{}, fmt.Errorf("GET %s: %w", s.url, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return scrape{}, fmt.Errorf("GET %s: status %d: %s", s.url, resp.StatusCode(), resp.Body())
	}
	if ct := string(resp.Header.ContentType()); !strings.HasPrefix(ct, "text/plain") {
		return scrape{}, fmt.Errorf("GET %s: content type %q, want text/plain exposition", s.url, ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(resp.Body()))
	if err != nil {
		return scrape{}, fmt.Errorf("parse exposition: %w\n%s", err, resp.Body())
	}
	out := scrape{families: fams, series: map[string]float64{}}
	for name, f := range fams {
		if !strings.HasPrefix(name, "consentgate_") {
			// The Go runtime's and the process's (runtime.go) move by themselves between
			// scrapes; TestRuntimeMetrics checks them.
			continue
		}
		for _, mt := range f.GetMetric() {
			add := func(key string, v float64) error {
				if _, dup := out.series[key]; dup {
					return fmt.Errorf("series %s exported twice", key)
				}
				out.series[key] = v
				return nil
			}
			var err error
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				err = add(seriesKey(name, mt.GetLabel()), mt.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				err = add(seriesKey(name, mt.GetLabel()), mt.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				err = addHistogram(name, mt, add)
			default:
				return scrape{}, fmt.Errorf("family %s: unexpected type %v", name, f.GetType())
			}
			if err != nil {
				return scrape{}, err
			}
		}
	}
	return out, nil
}

// addHistogram flattens one histogram the way the text format spells it (_bucket{le},
// _sum, _count), so expectations read like what a person sees on /metrics.
func addHistogram(name string, mt *dto.Metric, add func(string, float64) error) error {
	h := mt.GetHistogram()
	var errs []error
	for _, b := range h.GetBucket() {
		le := &dto.LabelPair{Name: ptr("le"), Value: ptr(strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))}
		errs = append(errs, add(seriesKey(name+"_bucket", append(slices.Clone(mt.GetLabel()), le)), float64(b.GetCumulativeCount())))
	}
	errs = append(errs,
		add(seriesKey(name+"_sum", mt.GetLabel()), h.GetSampleSum()),
		add(seriesKey(name+"_count", mt.GetLabel()), float64(h.GetSampleCount())),
	)
	return errors.Join(errs...)
}

func ptr[T any](v T) *T { return &v }

func seriesKey(name string, labels []*dto.LabelPair) string {
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return name
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func hitKey(vendor, action, reason, jur string) string {
	return fmt.Sprintf(`consentgate_hits_total{action=%q,jurisdiction=%q,reason=%q,vendor=%q}`, action, jur, reason, vendor)
}

// baseline is what a fresh Metrics exports: every upstream series from zero, no hits.
func baseline() map[string]float64 {
	s := map[string]float64{
		`consentgate_build_info{commit="abc123",goversion="go1.26.8",version="1.2.3"}`: 1,
		`consentgate_config_last_reload_successful`:                                    0,
		`consentgate_config_reload_errors_total`:                                       0,
		`consentgate_config_last_reload_success_timestamp_seconds`:                     0,
		`consentgate_telemetry_dropped_observations_total`:                             0,
		`consentgate_consent_store_up`:                                                 0,
		`consentgate_anonymise_salt_fallbacks_total`:                                   0,
		`consentgate_geoip_last_reload_successful`:                                     0,
		`consentgate_geoip_reload_errors_total`:                                        0,
		`consentgate_geoip_last_reload_success_timestamp_seconds`:                      0,
		`consentgate_geoip_database_build_timestamp_seconds`:                           0,
		`consentgate_consent_store_bytes`:                                              0,
		`consentgate_public_connections`:                                               0,
		`consentgate_fleet_stats_publishes_total{result="ok"}`:                         0,
		`consentgate_fleet_stats_publishes_total{result="error"}`:                      0,
		`consentgate_fleet_stats_pending_batches`:                                      0,
		`consentgate_fleet_stats_lost_hits_total`:                                      0,
	}
	for label, names := range map[string][]string{
		"consentgate_consent_snapshot_used_total{when=%q}":       {"no_record", "store_error", "newer_than_store", "id_proven", "dataset_lost"},
		"consentgate_consent_snapshot_rejected_total{reason=%q}": {"malformed", "unknown_key", "forged", "expired", "future"},
		"consentgate_rate_limited_total{limit=%q}":               {"consent_writes_ip", "consent_writes_net", "new_ids_ip", "new_ids_net", "hits_ip", "hits_net"},
		"consentgate_consent_writes_refused_total{reason=%q}":    {"origin", "null_origin", "referer", "fetch_site"},
		"consentgate_consent_ids_issued_total{why=%q}":           {"new_visitor", "unknown_id"},
	} {
		for _, n := range names {
			s[fmt.Sprintf(label, n)] = 0
		}
	}
	for _, r := range RefusalNames() {
		s[fmt.Sprintf(`consentgate_requests_refused_total{reason=%q}`, r)] = 0
	}
	for _, src := range []string{"cache", "redis", "memory"} {
		for _, res := range []string{"hit", "miss", "error"} {
			s[fmt.Sprintf(`consentgate_consent_lookups_total{result=%q,source=%q}`, res, src)] = 0
		}
	}
	for _, sig := range testSignals {
		s[fmt.Sprintf(`consentgate_signal_errors_total{signal=%q}`, sig)] = 0
	}
	for _, v := range testVendors {
		for _, k := range testKinds {
			s[fmt.Sprintf(`consentgate_anonymise_removed_total{kind=%q,vendor=%q}`, k, v)] = 0
		}
		s[fmt.Sprintf(`consentgate_upstream_requests_total{vendor=%q}`, v)] = 0
		for _, k := range []string{"timeout", "connect", "status", "other"} {
			s[fmt.Sprintf(`consentgate_upstream_errors_total{kind=%q,vendor=%q}`, k, v)] = 0
		}
	}
	return s
}

// durationLE is the histogram's bucket list as it must read on /metrics, written out
// rather than derived from the code so a changed bucket fails here.
var durationLE = []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}

// addDurations adds the series one vendor × outcome histogram exports after observing
// secs, in that order.
func addDurations(s map[string]float64, vendor, outcome string, secs ...float64) {
	labels := fmt.Sprintf(`outcome=%q,vendor=%q`, outcome, vendor)
	for _, le := range durationLE {
		bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses too
		if err != nil {
			panic(err)
		}
		n := 0
		for _, x := range secs {
			if x <= bound { // buckets are upper-inclusive
				n++
			}
		}
		s[fmt.Sprintf(`consentgate_upstream_request_duration_seconds_bucket{le=%q,%s}`, le, labels)] = float64(n)
	}
	var sum float64
	for _, x := range secs {
		sum += x
	}
	s[`consentgate_upstream_request_duration_seconds_sum{`+labels+`}`] = sum
	s[`consentgate_upstream_request_duration_seconds_count{`+labels+`}`] = float64(len(secs))
}

// sameValue compares exactly except for rounding in float sums (a histogram's _sum).
func sameValue(got, want float64) bool {
	return got == want || math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))
}

func assertSeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing series %s (want %v)", k, want[k])
		case !sameValue(g, want[k]):
			t.Errorf("series %s = %v, want %v", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s = %v", k, got[k])
		}
	}
}

func TestScrapeExactSeries(t *testing.T) {
	reloadAt := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	dbBuild := time.Date(2026, 2, 24, 6, 30, 0, 0, time.UTC) // MaxMind build epochs are whole seconds
	tests := []struct {
		name   string
		record func(t *testing.T, m *Metrics)
		want   func() map[string]float64
	}{
		{
			name:   "fresh",
			record: func(*testing.T, *Metrics) {},
			want:   baseline,
		},
		{
			name: "jurisdictions interned but no hits export no hit series",
			record: func(t *testing.T, m *Metrics) {
				intern(t, m, "eea", "uk", "us-ca")
			},
			want: baseline,
		},
		{
			name: "hit mix",
			record: func(t *testing.T, m *Metrics) {
				j := intern(t, m, "eea", "uk", "us-ca")
				for range 3 {
					m.Hit(0, 0, 0, j[0]) // ga4 forward consent_granted eea
				}
				m.Hit(0, 2, 1, j[0])  // ga4 drop consent_missing eea
				m.Hit(1, 1, 2, j[2])  // meta_pixel anonymise gpc_opt_out us-ca
				m.Hit(1, 1, 2, j[2])  //
				m.Hit(2, 0, 0, j[1])  // matomo forward consent_granted uk
				m.Hit(2, 2, 2, j[1])  // matomo drop gpc_opt_out uk (last cell of a jurisdiction row)
				m.Hit(2, 2, 2, j[2])  // matomo drop gpc_opt_out us-ca
				m.Hit(0, 0, 0, 63)    // never handed out: dropped
				m.Hit(-1, 0, 0, j[0]) // dropped
			},
			want: func() map[string]float64 {
				s := baseline()
				s[hitKey("ga4", "forward", "consent_granted", "eea")] = 3
				s[hitKey("ga4", "drop", "consent_missing", "eea")] = 1
				s[hitKey("meta_pixel", "anonymise", "gpc_opt_out", "us-ca")] = 2
				s[hitKey("matomo", "forward", "consent_granted", "uk")] = 1
				s[hitKey("matomo", "drop", "gpc_opt_out", "uk")] = 1
				s[hitKey("matomo", "drop", "gpc_opt_out", "us-ca")] = 1
				s[`consentgate_telemetry_dropped_observations_total`] = 2
				return s
			},
		},
		{
			name: "consent lookups and store health",
			record: func(t *testing.T, m *Metrics) {
				m.ConsentLookup(LookupCache, LookupHit)
				m.ConsentLookup(LookupCache, LookupHit)
				m.ConsentLookup(LookupCache, LookupMiss)
				m.ConsentLookup(LookupRedis, LookupError)
				m.ConsentLookup(LookupSource(9), LookupHit) // dropped
				m.StoreUp(true)
				m.SaltFallback()
				m.FleetPublish(true)
				m.FleetPublish(true)
				m.FleetPublish(false)
				m.FleetPending(3)
				m.FleetLost(9)
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_fleet_stats_publishes_total{result="ok"}`] = 2
				s[`consentgate_fleet_stats_publishes_total{result="error"}`] = 1
				s[`consentgate_fleet_stats_pending_batches`] = 3
				s[`consentgate_fleet_stats_lost_hits_total`] = 9
				s[`consentgate_anonymise_salt_fallbacks_total`] = 1
				s[`consentgate_consent_lookups_total{result="hit",source="cache"}`] = 2
				s[`consentgate_consent_lookups_total{result="miss",source="cache"}`] = 1
				s[`consentgate_consent_lookups_total{result="error",source="redis"}`] = 1
				s[`consentgate_telemetry_dropped_observations_total`] = 1
				s[`consentgate_consent_store_up`] = 1
				return s
			},
		},
		{
			name: "TLS certificate loads: nothing until the first, then the expiry of the one in force",
			record: func(t *testing.T, m *Metrics) {
				m.TLSReload(true, time.Unix(1_893_456_000, 0))
				m.TLSReload(true, time.Unix(1_900_000_000, 0))
				m.TLSReload(false, time.Unix(5, 0)) // a failed load: the expiry stays
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_tls_reloads_total{result="ok"}`] = 2
				s[`consentgate_tls_reloads_total{result="error"}`] = 1
				s[`consentgate_tls_last_reload_successful`] = 0
				s[`consentgate_tls_cert_expiry_timestamp_seconds`] = 1_900_000_000
				return s
			},
		},
		{
			name: "refused requests and open connections",
			record: func(t *testing.T, m *Metrics) {
				m.Refused(RefusedHeaderTooLarge)
				m.Refused(RefusedHeaderTooLarge)
				m.Refused(RefusedTooManyConnections)
				m.CountOverflow(func() uint64 { return 5 }) // the server's own refusals
				m.Refused(numRefusals)                      // dropped
				m.PublicConnOpened()
				m.PublicConnOpened()
				m.PublicConnClosed()
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_requests_refused_total{reason="header_too_large"}`] = 2
				s[`consentgate_requests_refused_total{reason="too_many_connections"}`] = 6
				s[`consentgate_telemetry_dropped_observations_total`] = 1
				s[`consentgate_public_connections`] = 1
				return s
			},
		},
		{
			name: "unreadable signals",
			record: func(t *testing.T, m *Metrics) {
				m.SignalError(0) // tcf
				m.SignalError(0)
				m.SignalError(7)   // cookiebot
				m.SignalError(200) // dropped
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_signal_errors_total{signal="tcf"}`] = 2
				s[`consentgate_signal_errors_total{signal="cookiebot"}`] = 1
				s[`consentgate_telemetry_dropped_observations_total`] = 1
				return s
			},
		},
		{
			name: "anonymised values removed",
			record: func(t *testing.T, m *Metrics) {
				m.AnonymiseRemoved(0, 8, 2) // ga4 text
				m.AnonymiseRemoved(0, 8, 1)
				m.AnonymiseRemoved(2, 6, 1)  // matomo currency
				m.AnonymiseRemoved(0, 9, 1)  // dropped: no such kind
				m.AnonymiseRemoved(3, 0, 1)  // dropped: no such vendor
				m.AnonymiseRemoved(-1, 0, 1) // dropped
				if got := m.AnonymiseRemovedCount(0, 8); got != 3 {
					t.Errorf("AnonymiseRemovedCount = %d, want 3", got)
				}
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_anonymise_removed_total{kind="text",vendor="ga4"}`] = 3
				s[`consentgate_anonymise_removed_total{kind="currency",vendor="matomo"}`] = 1
				s[`consentgate_telemetry_dropped_observations_total`] = 3
				return s
			},
		},
		{
			name: "upstream requests and errors",
			record: func(t *testing.T, m *Metrics) {
				for range 5 {
					m.UpstreamRequest(0)
				}
				m.UpstreamRequest(2)
				m.UpstreamError(0, UpstreamTimeout)
				m.UpstreamError(0, UpstreamTimeout)
				m.UpstreamError(0, UpstreamStatus)
				m.UpstreamError(2, UpstreamConnect)
				m.UpstreamError(2, UpstreamOther)
				m.UpstreamError(1, UpstreamErrorKind(99)) // dropped
				m.UpstreamRequest(3)                      // dropped
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_upstream_requests_total{vendor="ga4"}`] = 5
				s[`consentgate_upstream_requests_total{vendor="matomo"}`] = 1
				s[`consentgate_upstream_errors_total{kind="timeout",vendor="ga4"}`] = 2
				s[`consentgate_upstream_errors_total{kind="status",vendor="ga4"}`] = 1
				s[`consentgate_upstream_errors_total{kind="connect",vendor="matomo"}`] = 1
				s[`consentgate_upstream_errors_total{kind="other",vendor="matomo"}`] = 1
				s[`consentgate_telemetry_dropped_observations_total`] = 2
				return s
			},
		},
		{
			name: "upstream durations",
			record: func(t *testing.T, m *Metrics) {
				for _, d := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 75 * time.Millisecond} {
					m.UpstreamDone(0, UpstreamOK, d)
				}
				m.UpstreamDone(0, UpstreamTimeout.Outcome(), 20*time.Second) // past the last bound
				m.UpstreamDone(1, UpstreamStatus.Outcome(), time.Second)     // on a bound
				m.UpstreamDone(2, UpstreamConnect.Outcome(), 0)
				m.UpstreamDone(2, UpstreamOK, -5*time.Millisecond) // counted as 0
				m.UpstreamDone(2, UpstreamOther.Outcome(), 12*time.Millisecond)
				m.UpstreamDone(3, UpstreamOK, time.Millisecond)                       // dropped: vendor
				m.UpstreamDone(0, UpstreamOutcome(5), time.Millisecond)               // dropped: outcome
				m.UpstreamDone(0, UpstreamErrorKind(200).Outcome(), time.Millisecond) // dropped: kind
			},
			want: func() map[string]float64 {
				s := baseline()
				addDurations(s, "ga4", "ok", 0.0005, 0.003, 0.003, 0.075)
				addDurations(s, "ga4", "timeout", 20)
				addDurations(s, "meta_pixel", "status", 1)
				addDurations(s, "matomo", "connect", 0)
				addDurations(s, "matomo", "ok", 0)
				addDurations(s, "matomo", "other", 0.012)
				s[`consentgate_telemetry_dropped_observations_total`] = 3
				return s
			},
		},
		{
			name: "geoip load",
			record: func(t *testing.T, m *Metrics) {
				m.GeoIPReload(true, reloadAt, dbBuild)
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_geoip_last_reload_successful`] = 1
				s[`consentgate_geoip_last_reload_success_timestamp_seconds`] = float64(reloadAt.UnixMilli()) / 1e3
				s[`consentgate_geoip_database_build_timestamp_seconds`] = float64(dbBuild.Unix())
				return s
			},
		},
		{
			name: "failed geoip reloads keep the database in force",
			record: func(t *testing.T, m *Metrics) {
				m.GeoIPReload(true, reloadAt, dbBuild)
				m.GeoIPReload(false, reloadAt.Add(time.Hour), dbBuild.AddDate(0, 0, 7)) // its build is not in force
				m.GeoIPReload(false, reloadAt.Add(2*time.Hour), time.Time{})
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_geoip_last_reload_successful`] = 0
				s[`consentgate_geoip_reload_errors_total`] = 2
				s[`consentgate_geoip_last_reload_success_timestamp_seconds`] = float64(reloadAt.UnixMilli()) / 1e3
				s[`consentgate_geoip_database_build_timestamp_seconds`] = float64(dbBuild.Unix())
				return s
			},
		},
		{
			name: "geoip recovery with a newer database",
			record: func(t *testing.T, m *Metrics) {
				m.GeoIPReload(true, reloadAt, dbBuild)
				m.GeoIPReload(false, reloadAt.Add(time.Hour), time.Time{})
				m.GeoIPReload(true, reloadAt.Add(2*time.Hour), dbBuild.AddDate(0, 0, 7))
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_geoip_last_reload_successful`] = 1
				s[`consentgate_geoip_reload_errors_total`] = 1
				s[`consentgate_geoip_last_reload_success_timestamp_seconds`] = float64(reloadAt.Add(2*time.Hour).UnixMilli()) / 1e3
				s[`consentgate_geoip_database_build_timestamp_seconds`] = float64(dbBuild.AddDate(0, 0, 7).Unix())
				return s
			},
		},
		{
			name: "geoip database without a build time",
			record: func(t *testing.T, m *Metrics) {
				m.GeoIPReload(true, reloadAt, dbBuild)
				m.GeoIPReload(true, reloadAt.Add(time.Hour), time.Time{})
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_geoip_last_reload_successful`] = 1
				s[`consentgate_geoip_last_reload_success_timestamp_seconds`] = float64(reloadAt.Add(time.Hour).UnixMilli()) / 1e3
				return s
			},
		},
		{
			name: "config and geoip reloads are counted apart",
			record: func(t *testing.T, m *Metrics) {
				m.ConfigReload(false, reloadAt)
				m.GeoIPReload(true, reloadAt, dbBuild)
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_config_reload_errors_total`] = 1
				s[`consentgate_geoip_last_reload_successful`] = 1
				s[`consentgate_geoip_last_reload_success_timestamp_seconds`] = float64(reloadAt.UnixMilli()) / 1e3
				s[`consentgate_geoip_database_build_timestamp_seconds`] = float64(dbBuild.Unix())
				return s
			},
		},
		{
			name: "successful load",
			record: func(t *testing.T, m *Metrics) {
				m.ConfigReload(true, reloadAt)
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_config_last_reload_successful`] = 1
				s[`consentgate_config_last_reload_success_timestamp_seconds`] = float64(reloadAt.UnixMilli()) / 1e3
				return s
			},
		},
		{
			name: "failed reloads keep the last success time",
			record: func(t *testing.T, m *Metrics) {
				m.ConfigReload(true, reloadAt)
				m.ConfigReload(false, reloadAt.Add(time.Hour))
				m.ConfigReload(false, reloadAt.Add(2*time.Hour))
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_config_last_reload_successful`] = 0
				s[`consentgate_config_reload_errors_total`] = 2
				s[`consentgate_config_last_reload_success_timestamp_seconds`] = float64(reloadAt.UnixMilli()) / 1e3
				return s
			},
		},
		{
			name: "recovery after a failed reload",
			record: func(t *testing.T, m *Metrics) {
				m.ConfigReload(false, reloadAt)
				m.ConfigReload(true, reloadAt.Add(time.Minute))
			},
			want: func() map[string]float64 {
				s := baseline()
				s[`consentgate_config_last_reload_successful`] = 1
				s[`consentgate_config_reload_errors_total`] = 1
				s[`consentgate_config_last_reload_success_timestamp_seconds`] = float64(reloadAt.Add(time.Minute).UnixMilli()) / 1e3
				return s
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMetrics(t)
			s := serve(t, m)
			tt.record(t, m)
			assertSeries(t, s.scrape(t).series, tt.want())
		})
	}
}

func TestFamilyTypesAndHelp(t *testing.T) {
	m := newTestMetrics(t)
	intern(t, m, "eea")
	m.Hit(0, 0, 0, 0)
	m.UpstreamDone(0, UpstreamOK, time.Millisecond)
	got := serve(t, m).scrape(t).families
	want := map[string]dto.MetricType{
		"consentgate_upstream_request_duration_seconds":            dto.MetricType_HISTOGRAM,
		"consentgate_geoip_last_reload_successful":                 dto.MetricType_GAUGE,
		"consentgate_geoip_reload_errors_total":                    dto.MetricType_COUNTER,
		"consentgate_geoip_last_reload_success_timestamp_seconds":  dto.MetricType_GAUGE,
		"consentgate_geoip_database_build_timestamp_seconds":       dto.MetricType_GAUGE,
		"consentgate_hits_total":                                   dto.MetricType_COUNTER,
		"consentgate_upstream_requests_total":                      dto.MetricType_COUNTER,
		"consentgate_upstream_errors_total":                        dto.MetricType_COUNTER,
		"consentgate_config_last_reload_successful":                dto.MetricType_GAUGE,
		"consentgate_config_reload_errors_total":                   dto.MetricType_COUNTER,
		"consentgate_config_last_reload_success_timestamp_seconds": dto.MetricType_GAUGE,
		"consentgate_build_info":                                   dto.MetricType_GAUGE,
		"consentgate_telemetry_dropped_observations_total":         dto.MetricType_COUNTER,
		"consentgate_consent_lookups_total":                        dto.MetricType_COUNTER,
		"consentgate_consent_store_up":                             dto.MetricType_GAUGE,
		"consentgate_anonymise_salt_fallbacks_total":               dto.MetricType_COUNTER,
		"consentgate_signal_errors_total":                          dto.MetricType_COUNTER,
		"consentgate_anonymise_removed_total":                      dto.MetricType_COUNTER,
		"consentgate_consent_snapshot_used_total":                  dto.MetricType_COUNTER,
		"consentgate_consent_snapshot_rejected_total":              dto.MetricType_COUNTER,
		"consentgate_rate_limited_total":                           dto.MetricType_COUNTER,
		"consentgate_consent_writes_refused_total":                 dto.MetricType_COUNTER,
		"consentgate_consent_ids_issued_total":                     dto.MetricType_COUNTER,
		"consentgate_consent_store_bytes":                          dto.MetricType_GAUGE,
		"consentgate_requests_refused_total":                       dto.MetricType_COUNTER,
		"consentgate_public_connections":                           dto.MetricType_GAUGE,
		"consentgate_fleet_stats_publishes_total":                  dto.MetricType_COUNTER,
		"consentgate_fleet_stats_pending_batches":                  dto.MetricType_GAUGE,
		"consentgate_fleet_stats_lost_hits_total":                  dto.MetricType_COUNTER,
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		typ, ok := want[name]
		if !ok && !strings.HasPrefix(name, "consentgate_") {
			continue // TestRuntimeMetrics
		}
		if !ok {
			t.Errorf("unexpected family %s", name)
			continue
		}
		if got[name].GetType() != typ {
			t.Errorf("family %s: type %v, want %v", name, got[name].GetType(), typ)
		}
		if got[name].GetHelp() == "" {
			t.Errorf("family %s: no HELP", name)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("missing family %s", name)
		}
	}
}

// TestManySeries guards against the OTel SDK's default cardinality limit (2000 series per
// instrument), which would fold real series into an otel_metric_overflow series.
func TestManySeries(t *testing.T) {
	var vendors, reasons []string
	for i := range 10 {
		vendors = append(vendors, fmt.Sprintf("v%d", i))
	}
	for i := range 11 {
		reasons = append(reasons, fmt.Sprintf("r%d", i))
	}
	m, err := New(testBuild, vendors, testActions, reasons)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	var jurs []string
	for i := range MaxJurisdictions {
		jurs = append(jurs, fmt.Sprintf("j%d", i))
	}
	idx := intern(t, m, jurs...)
	want := 0
	for v := range vendors {
		for a := range testActions {
			for r := range reasons {
				for _, j := range idx {
					for range v + 1 {
						m.Hit(v, a, r, j)
					}
					want++
				}
			}
		}
	}
	got := serve(t, m).scrape(t)
	hits := got.families["consentgate_hits_total"].GetMetric()
	if len(hits) != want {
		t.Fatalf("exported %d hit series, want %d", len(hits), want)
	}
	for k, v := range got.series {
		if strings.Contains(k, "overflow") {
			t.Fatalf("overflow series exported: %s = %v", k, v)
		}
	}
	if k := hitKey("v9", "drop", "r10", "j63"); got.series[k] != 10 {
		t.Errorf("%s = %v, want 10", k, got.series[k])
	}
}

func TestJurisdictionInterning(t *testing.T) {
	t.Run("stable indices", func(t *testing.T) {
		m := newTestMetrics(t)
		first := intern(t, m, "eea", "uk", "ch")
		if !slices.Equal(first, []int{0, 1, 2}) {
			t.Fatalf("first indices %v, want [0 1 2]", first)
		}
		// A reload that reorders, keeps and adds groups.
		again := intern(t, m, "ch", "us-ca", "eea", "uk", "us-ca")
		if !slices.Equal(again, []int{2, 3, 0, 1, 3}) {
			t.Fatalf("after reload %v, want [2 3 0 1 3]", again)
		}
	})

	t.Run("capacity", func(t *testing.T) {
		m := newTestMetrics(t)
		for i := range MaxJurisdictions {
			got, err := m.Jurisdiction(fmt.Sprintf("g%d", i))
			if err != nil || got != i {
				t.Fatalf("Jurisdiction(g%d) = %d, %v; want %d, nil", i, got, err, i)
			}
		}
		_, err := m.Jurisdiction("one-too-many")
		if !errors.Is(err, ErrJurisdictionCapacity) {
			t.Fatalf("65th name: err %v, want ErrJurisdictionCapacity", err)
		}
		if err != nil && !strings.Contains(err.Error(), `"one-too-many"`) {
			t.Errorf("error %q does not name the jurisdiction", err)
		}
		// Known names still resolve once full, so a reload that adds nothing succeeds.
		if got, err := m.Jurisdiction("g63"); err != nil || got != 63 {
			t.Fatalf("Jurisdiction(g63) when full = %d, %v; want 63, nil", got, err)
		}
		m.Hit(0, 0, 0, 63)
		if got := m.HitCount(0, 0, 0, 63); got != 1 {
			t.Fatalf("HitCount in the last slot = %d, want 1", got)
		}
	})

	invalid := []struct {
		name, jur string
	}{
		{"empty", ""},
		{"invalid utf-8", "eea\xff"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMetrics(t)
			if _, err := m.Jurisdiction(tt.jur); err == nil {
				t.Fatalf("Jurisdiction(%q): no error", tt.jur)
			}
			// A rejected name takes no slot.
			if got := intern(t, m, "eea"); got[0] != 0 {
				t.Fatalf("first valid name got index %d, want 0", got[0])
			}
		})
	}
}

func TestOutOfRangeDoesNotPanic(t *testing.T) {
	tests := []struct {
		name                                 string
		vendor, action, reason, jurisdiction int
	}{
		{"negative vendor", -1, 0, 0, 0},
		{"vendor = len", len(testVendors), 0, 0, 0},
		{"huge vendor", 1 << 40, 0, 0, 0},
		{"negative action", 0, -1, 0, 0},
		{"action = len", 0, len(testActions), 0, 0},
		{"negative reason", 0, 0, -5, 0},
		{"reason = len", 0, 0, len(testReasons), 0},
		{"negative jurisdiction", 0, 0, 0, -1},
		{"jurisdiction not interned", 0, 0, 0, 1},
		{"jurisdiction = capacity", 0, 0, 0, MaxJurisdictions},
		{"min int everywhere", -1 << 63, -1 << 63, -1 << 63, -1 << 63},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMetrics(t)
			intern(t, m, "eea")
			m.Hit(tt.vendor, tt.action, tt.reason, tt.jurisdiction)
			if got := m.HitCount(tt.vendor, tt.action, tt.reason, tt.jurisdiction); got != 0 {
				t.Errorf("HitCount = %d, want 0", got)
			}
			m.UpstreamRequest(tt.vendor)
			m.UpstreamError(tt.vendor, UpstreamTimeout)
			wantDropped := uint64(1)
			if uint(tt.vendor) >= uint(len(testVendors)) {
				wantDropped = 3
			}
			if got := m.dropped.Load(); got != wantDropped {
				t.Errorf("dropped = %d, want %d", got, wantDropped)
			}
			var total uint64
			for i := range m.hits {
				total += m.hits[i].Load()
			}
			if total != 0 {
				t.Errorf("an out-of-range hit landed in a counter (total %d)", total)
			}
		})
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	tests := []struct {
		name                      string
		vendors, actions, reasons []string
	}{
		{"no vendors", nil, testActions, testReasons},
		{"no actions", testVendors, []string{}, testReasons},
		{"no reasons", testVendors, testActions, nil},
		{"duplicate vendor", []string{"ga4", "meta", "ga4"}, testActions, testReasons},
		{"empty reason", testVendors, testActions, []string{"ok", ""}},
		{"invalid utf-8 action", testVendors, []string{"forward", "\xc3"}, testReasons},
		{"too many counters", make4096("v"), testActions, make4096("r")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(testBuild, tt.vendors, tt.actions, tt.reasons)
			if err == nil {
				_ = m.Shutdown(context.Background())
				t.Fatal("New: no error")
			}
			if !strings.HasPrefix(err.Error(), "telemetry: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func make4096(prefix string) []string {
	out := make([]string, 4096)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestSeveralInstances checks each Metrics has its own registry: two in one process
// neither collide nor see each other's counts.
func TestSeveralInstances(t *testing.T) {
	a, b := newTestMetrics(t), newTestMetrics(t)
	intern(t, a, "eea")
	intern(t, b, "eea")
	a.Hit(0, 0, 0, 0)
	if got := serve(t, b).scrape(t).series[hitKey("ga4", "forward", "consent_granted", "eea")]; got != 0 {
		t.Fatalf("b sees a's hit: %v", got)
	}
	if got := serve(t, a).scrape(t).series[hitKey("ga4", "forward", "consent_granted", "eea")]; got != 1 {
		t.Fatalf("a's hit = %v, want 1", got)
	}
}

func TestShutdownStopsExport(t *testing.T) {
	m, err := New(testBuild, testVendors, testActions, testReasons, WithSignals(testSignals...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s := serve(t, m)
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := s.scrape(t).series; len(got) != 0 {
		t.Fatalf("after Shutdown exported %d series, want none", len(got))
	}
	// Recording after shutdown must still be safe.
	m.Hit(0, 0, 0, 0)
	m.UpstreamDone(0, UpstreamOK, time.Millisecond)
	m.GeoIPReload(true, time.Now(), time.Now())
}

func TestConcurrentHitsWhileScraping(t *testing.T) {
	m := newTestMetrics(t)
	s := serve(t, m)
	jurs := []string{"eea", "uk", "ch", "us-ca"}
	intern(t, m, jurs...)

	// Workers keep hitting until the scraper has seen enough scrapes, so scrapes really
	// overlap hits however fast or slow the machine is.
	const workers, minPerWorker, minScrapes = 16, 2000, 5
	var wg sync.WaitGroup
	var scrapes atomic.Int64
	var stop, scraperDone atomic.Bool
	scrapeErr := make(chan error, 1)
	go func() {
		defer close(scrapeErr)
		defer scraperDone.Store(true) // a failed scraper must not leave the workers waiting for it
		prev := map[string]float64{}
		for !stop.Load() {
			res, err := s.fetch()
			if err != nil {
				scrapeErr <- err
				return
			}
			for k, v := range res.series {
				if v < prev[k] {
					scrapeErr <- fmt.Errorf("counter %s went back from %v to %v", k, prev[k], v)
					return
				}
			}
			prev = res.series
			scrapes.Add(1)
		}
	}()
	var hits, requests atomic.Uint64
	for w := range workers {
		wg.Go(func() {
			// A reload adding a group while others hit and scrape.
			own, err := m.Jurisdiction(fmt.Sprintf("w%d", w))
			if err != nil {
				t.Errorf("Jurisdiction: %v", err)
				return
			}
			var n, reqs uint64
			for i := 0; i < minPerWorker || scrapes.Load() < minScrapes && !scraperDone.Load(); i++ {
				v, a, r := (w+i)%len(testVendors), i%len(testActions), (w*7+i)%len(testReasons)
				j := i % len(jurs)
				if i%5 == 0 {
					j = own
				}
				m.Hit(v, a, r, j)
				n++
				if i%10 == 0 {
					m.UpstreamRequest(v)
					m.UpstreamError(v, UpstreamErrorKind(i%4))
					m.UpstreamDone(v, UpstreamOutcome(i%int(numUpstreamOutcomes)), time.Duration(i)*time.Microsecond)
					reqs++
				}
				if i%256 == 0 {
					// On a small machine the spinning workers would otherwise starve the
					// scraper and the server.
					runtime.Gosched()
				}
				if i%1000 == 0 {
					// A reload re-interning known names.
					if _, err := m.Jurisdiction(jurs[w%len(jurs)]); err != nil {
						t.Errorf("Jurisdiction: %v", err)
					}
				}
			}
			hits.Add(n)
			requests.Add(reqs)
		})
	}
	wg.Wait()
	stop.Store(true)
	if err := <-scrapeErr; err != nil {
		t.Fatal(err)
	}
	if n := scrapes.Load(); n < minScrapes {
		t.Fatalf("only %d scrapes overlapped the hits, want %d", n, minScrapes)
	}

	final := s.scrape(t)
	sum := func(family string) (total float64) {
		for _, mt := range final.families[family].GetMetric() {
			total += mt.GetCounter().GetValue()
		}
		return total
	}
	if got, want := sum("consentgate_hits_total"), float64(hits.Load()); got != want {
		t.Errorf("scraped %v hits, want %v", got, want)
	}
	if got, want := sum("consentgate_upstream_requests_total"), float64(requests.Load()); got != want {
		t.Errorf("scraped %v upstream requests, want %v", got, want)
	}
	if got, want := sum("consentgate_upstream_errors_total"), float64(requests.Load()); got != want {
		t.Errorf("scraped %v upstream errors, want %v", got, want)
	}
	var durations uint64
	for _, mt := range final.families["consentgate_upstream_request_duration_seconds"].GetMetric() {
		durations += mt.GetHistogram().GetSampleCount()
	}
	if want := requests.Load(); durations != want {
		t.Errorf("scraped %v upstream durations, want %v", durations, want)
	}
	for w := range workers {
		label := fmt.Sprintf(`jurisdiction="w%d"`, w)
		if !slices.ContainsFunc(slices.Collect(maps.Keys(final.series)), func(k string) bool { return strings.Contains(k, label) }) {
			t.Errorf("no hit series for jurisdiction w%d", w)
		}
	}
	if d := final.series["consentgate_telemetry_dropped_observations_total"]; d != 0 {
		t.Errorf("dropped = %v, want 0", d)
	}
}

func TestRecordingAllocatesNothing(t *testing.T) {
	m := newTestMetrics(t)
	intern(t, m, "eea", "uk")
	tests := []struct {
		name string
		f    func()
	}{
		{"Hit", func() { m.Hit(1, 2, 1, 1) }},
		{"Hit out of range", func() { m.Hit(1, 2, 1, 40) }},
		{"UpstreamRequest", func() { m.UpstreamRequest(2) }},
		{"UpstreamError", func() { m.UpstreamError(2, UpstreamStatus) }},
		{"HitCount", func() { _ = m.HitCount(1, 2, 1, 1) }},
		{"ConsentLookup", func() { m.ConsentLookup(LookupCache, LookupHit) }},
		{"SignalError", func() { m.SignalError(1) }},
		{"AnonymiseRemoved", func() { m.AnonymiseRemoved(1, 3, 2) }},
		{"UpstreamDone ok", func() { m.UpstreamDone(2, UpstreamOK, 42*time.Millisecond) }},
		{"UpstreamDone error", func() { m.UpstreamDone(0, UpstreamTimeout.Outcome(), 5*time.Second) }},
		{"UpstreamDone out of range", func() { m.UpstreamDone(7, UpstreamOK, time.Millisecond) }},
		{"ConfigReload", func() { m.ConfigReload(true, time.Unix(1, 0)) }},
		{"GeoIPReload", func() { m.GeoIPReload(true, time.Unix(1, 0), time.Unix(2, 0)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
				t.Fatalf("%s allocates %v per call, want 0", tt.name, n)
			}
		})
	}
}

func BenchmarkHit(b *testing.B) {
	m := newTestMetrics(b)
	intern(b, m, "eea", "uk", "ch", "us-ca")
	// Indices are precomputed so the loop measures Hit, not the arithmetic choosing them.
	type cell struct{ v, a, r, j int }
	var cells [256]cell
	for i := range cells {
		cells[i] = cell{i % 3, (i / 3) % 3, (i / 9) % 3, (i / 27) % 4}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := &cells[i&255]
		m.Hit(c.v, c.a, c.r, c.j)
		i++
	}
}

// BenchmarkHitParallel is the contended case: every goroutine hits the same counter, as
// when one vendor and one outcome dominate the traffic.
func BenchmarkHitParallel(b *testing.B) {
	m := newTestMetrics(b)
	intern(b, m, "eea")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Hit(0, 0, 0, 0)
		}
	})
}

func BenchmarkScrape(b *testing.B) {
	m := newTestMetrics(b)
	var jurs []string
	for i := range 8 {
		jurs = append(jurs, fmt.Sprintf("j%d", i))
	}
	idx := intern(b, m, jurs...)
	for v := range testVendors {
		for a := range testActions {
			for r := range testReasons {
				for _, j := range idx {
					m.Hit(v, a, r, j)
				}
			}
		}
	}
	s := serve(b, m)
	b.ReportAllocs()
	for b.Loop() {
		s.scrape(b)
	}
}

func TestAppendHitsNamesEveryNonZeroCell(t *testing.T) {
	m := newTestMetrics(t)
	j := intern(t, m, "eea", "us-ca")
	m.Hit(0, 2, 1, j[0])
	m.Hit(0, 2, 1, j[0])
	m.Hit(2, 0, 0, j[1])

	got := map[string]uint64{}
	for _, c := range m.AppendHits(nil) {
		v, a, r, jur, ok := m.HitLabels(c.Cell)
		if !ok {
			t.Fatalf("HitLabels(%d) not ok", c.Cell)
		}
		got[v+"/"+a+"/"+r+"/"+jur] = c.Count
	}
	want := map[string]uint64{"ga4/drop/consent_missing/eea": 2, "matomo/forward/consent_granted/us-ca": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("AppendHits = %v, want %v", got, want)
	}
	if _, _, _, _, ok := m.HitLabels(1<<31 | 63); ok {
		t.Fatal("HitLabels accepted an impossible cell")
	}
}

func TestUpstreamOutcomeLabels(t *testing.T) {
	tests := []struct {
		name    string
		outcome UpstreamOutcome
		want    string
	}{
		{"ok is the zero value", UpstreamOutcome(0), "ok"},
		{"timeout", UpstreamTimeout.Outcome(), "timeout"},
		{"connect", UpstreamConnect.Outcome(), "connect"},
		{"status", UpstreamStatus.Outcome(), "status"},
		{"other", UpstreamOther.Outcome(), "other"},
		{"out-of-range kind stays out of range", UpstreamErrorKind(255).Outcome(), "outcome(5)"},
		{"out-of-range outcome", UpstreamOutcome(9), "outcome(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.outcome.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkUpstreamDone is the latency histogram's synchronous record, once per upstream
// round trip; compare with BenchmarkHit's atomic add.
func BenchmarkUpstreamDone(b *testing.B) {
	m := newTestMetrics(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.UpstreamDone(i%len(testVendors), UpstreamOutcome(i%int(numUpstreamOutcomes)), time.Duration(i&1023)*time.Microsecond)
			i++
		}
	})
	b.Run("parallel same series", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.UpstreamDone(0, UpstreamOK, 3*time.Millisecond)
			}
		})
	})
}
