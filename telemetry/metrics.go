package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
)

// MaxJurisdictions is how many distinct jurisdiction group names one Metrics can hold over
// its lifetime. It is a power of two so the jurisdiction is the low bits of a hit's cell.
const MaxJurisdictions = 64

const jurisdictionBits = 6 // log2(MaxJurisdictions)

// maxCells bounds vendors × actions × reasons × MaxJurisdictions. It is far above any
// real catalogue (20 vendors × 3 actions × 16 reasons × 64 ≈ 61k) and keeps a typo in
// the caller from allocating gigabytes.
const maxCells = 1 << 22

// ErrJurisdictionCapacity is returned by Jurisdiction once MaxJurisdictions names have
// been interned. Names are never forgotten (an index must keep meaning the same group
// for the life of the counters), so only a restart frees slots.
var ErrJurisdictionCapacity = errors.New("telemetry: jurisdiction capacity reached")

const meterName = "github.com/consentgate/consentgate/telemetry"

// BuildInfo labels consentgate_build_info.
type BuildInfo struct{ Version, Commit, GoVersion string }

// Metrics holds the counters and the exporter. All methods are safe for concurrent use.
type Metrics struct {
	vendors, actions, reasons []string
	// nV, nA, nR are the list lengths as uint so one unsigned compare also rejects
	// negative indices.
	nV, nA, nR uint

	hits     []atomic.Uint64 // ((vendor*nA+action)*nR+reason)<<jurisdictionBits | jurisdiction
	requests []atomic.Uint64 // vendor
	errs     []atomic.Uint64 // vendor*numUpstreamKinds + kind
	dropped  atomic.Uint64   // observations with an out-of-range index
	lookups  [int(numLookupSources) * int(numLookupResults)]atomic.Uint64
	signals  []atomic.Uint64 // unreadable signals, by WithSignals index
	// signalAttrs label the signals; every one is exported from zero.
	signalAttrs []metric.ObserveOption
	storeUp     atomic.Bool

	// removed counts anonymised values removed for not fitting their kind, by
	// vendor*nK + kind (WithRemovedKinds); removedAttrs label them, every one from zero.
	removed      []atomic.Uint64
	removedAttrs []metric.ObserveOption
	nK           uint

	// nJur is read by Hit so an index not (yet) handed out by Jurisdiction cannot
	// count into a cell that has no name.
	nJur atomic.Uint32

	reloadOK     atomic.Bool
	reloadErrors atomic.Uint64
	reloadOKAtMs atomic.Int64 // Unix milliseconds of the last successful reload, 0 = never

	geoOK        atomic.Bool
	geoErrors    atomic.Uint64
	geoOKAtMs    atomic.Int64 // Unix milliseconds of the last successful GeoIP (re)load, 0 = never
	geoBuildAtMs atomic.Int64 // build time of the database in force, Unix milliseconds, 0 = unknown

	saltFallbacks atomic.Uint64 // local anonymiser salts made while the shared one was unknown

	tls tlsCounters // tls.go

	integrity      integrity                  // integrity.go
	refused        [numRefusals]atomic.Uint64 // by Refusal (refused.go)
	publicConns    atomic.Int64               // open public connections
	overflow       atomic.Pointer[func() uint64]
	scripts        scriptCounters   // tag script requests and vendor errors (scripts.go)
	fleetPublishes [2]atomic.Uint64 // fleet figure publishes: ok, error (fleet.go)
	fleetPending   atomic.Int64     // batches of fleet figures waiting
	fleetLost      atomic.Uint64    // hits whose fleet figures were given up

	// duration is synchronous: it is recorded per upstream round trip, and measured at 0
	// allocations with a precomputed attribute set (see UpstreamDone).
	duration metric.Float64Histogram
	// durationOpts holds one option per vendor*numUpstreamOutcomes + outcome; UpstreamDone
	// passes a one-element subslice, so the variadic call builds no slice.
	durationOpts []metric.RecordOption

	mu       sync.Mutex // guards jurNames, jurIndex, hitAttrs
	jurNames [MaxJurisdictions]string
	jurIndex map[string]int
	// hitAttrs caches the label set of each hit cell seen non-zero, so a scrape does not
	// rebuild thousands of attribute sets. Counters never go back to zero and an index
	// never changes name, so an entry never goes stale.
	hitAttrs map[int]metric.ObserveOption

	requestAttrs []metric.ObserveOption // vendor
	errAttrs     []metric.ObserveOption // vendor*numUpstreamKinds + kind
	buildAttrs   metric.ObserveOption

	registry    *prometheus.Registry
	provider    *sdkmetric.MeterProvider
	handler     fasthttp.RequestHandler
	otlpTimeout time.Duration // OTLP.Timeout, 0 without OTLP (see boundOTLP)
}

// New builds the counters and a meter provider exporting them through the OpenTelemetry
// Prometheus exporter on a private registry (never the global one, so tests and
// `consentgate check` can build several) and, with WithOTLP, an OTLP/HTTP push. vendors,
// actions and reasons are fixed for the life of the Metrics; a name's position is the
// index the proxy passes.
func New(build BuildInfo, vendors, actions, reasons []string, opts ...Option) (*Metrics, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for _, l := range []struct {
		what  string
		names []string
	}{{"vendors", vendors}, {"actions", actions}, {"reasons", reasons}} {
		if err := checkNames(l.names); err != nil {
			return nil, fmt.Errorf("telemetry: %s: %w", l.what, err)
		}
	}
	cells := uint64(len(vendors)) * uint64(len(actions)) * uint64(len(reasons)) * MaxJurisdictions
	if cells > maxCells {
		return nil, fmt.Errorf("telemetry: %d vendors × %d actions × %d reasons × %d jurisdictions is %d counters, over the limit of %d",
			len(vendors), len(actions), len(reasons), MaxJurisdictions, cells, maxCells)
	}

	m := &Metrics{
		vendors:  append([]string(nil), vendors...),
		actions:  append([]string(nil), actions...),
		reasons:  append([]string(nil), reasons...),
		nV:       uint(len(vendors)),
		nA:       uint(len(actions)),
		nR:       uint(len(reasons)),
		hits:     make([]atomic.Uint64, cells),
		requests: make([]atomic.Uint64, len(vendors)),
		errs:     make([]atomic.Uint64, len(vendors)*int(numUpstreamKinds)),
		jurIndex: make(map[string]int),
		hitAttrs: make(map[int]metric.ObserveOption),
		registry: prometheus.NewRegistry(),
	}
	if len(o.signals) > 0 { // none is allowed: nothing is counted by signal
		if err := checkNames(o.signals); err != nil {
			return nil, fmt.Errorf("telemetry: signals: %w", err)
		}
	}
	m.signals = make([]atomic.Uint64, len(o.signals))
	for _, name := range o.signals {
		m.signalAttrs = append(m.signalAttrs, metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", name))))
	}
	if len(o.kinds) > 0 { // none is allowed: nothing is counted by kind
		if err := checkNames(o.kinds); err != nil {
			return nil, fmt.Errorf("telemetry: removed kinds: %w", err)
		}
	}
	m.nK = uint(len(o.kinds))
	m.removed = make([]atomic.Uint64, len(vendors)*len(o.kinds))
	for _, name := range m.vendors {
		for _, k := range o.kinds {
			m.removedAttrs = append(m.removedAttrs, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("vendor", name), attribute.String("kind", k))))
		}
	}
	for _, name := range m.vendors {
		vkv := attribute.String("vendor", name)
		m.requestAttrs = append(m.requestAttrs, metric.WithAttributeSet(attribute.NewSet(vkv)))
		for k := range numUpstreamKinds {
			m.errAttrs = append(m.errAttrs, metric.WithAttributeSet(attribute.NewSet(vkv, attribute.String("kind", k.String()))))
		}
		for out := range numUpstreamOutcomes {
			m.durationOpts = append(m.durationOpts, metric.WithAttributeSet(attribute.NewSet(vkv, attribute.String("outcome", out.String()))))
		}
	}
	m.buildAttrs = metric.WithAttributeSet(attribute.NewSet(
		attribute.String("version", build.Version),
		attribute.String("commit", build.Commit),
		attribute.String("goversion", build.GoVersion),
	))

	exporter, err := otelprom.New(
		otelprom.WithRegisterer(m.registry),
		// Names are written in full below (with _total, _seconds) so what is in the code is
		// exactly what is on /metrics; the default strategy would append suffixes itself.
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes),
		otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	if err := m.registerRuntime(); err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "consentgate"),
		attribute.String("service.version", build.Version),
	)
	providerOpts := []sdkmetric.Option{
		sdkmetric.WithReader(exporter),
		sdkmetric.WithResource(res),
		// The SDK's default limit (2000 series per instrument) would fold real hit series
		// into an overflow series; the arrays above already bound cardinality, so the limit
		// is their size plus the SDK's own overflow slot.
		sdkmetric.WithCardinalityLimit(int(cells) + 1),
		// UpstreamDone records without a span context, so an exemplar could never link to a
		// trace; turning the filter off also skips its per-record check.
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
	}
	if o.otlp != nil {
		reader, timeout, err := newOTLPReader(*o.otlp)
		if err != nil {
			return nil, err
		}
		providerOpts = append(providerOpts, sdkmetric.WithReader(reader))
		m.otlpTimeout = timeout
	}
	m.provider = sdkmetric.NewMeterProvider(providerOpts...)
	if err := m.register(m.provider.Meter(meterName)); err != nil {
		// Bounded: with OTLP, Shutdown pushes once more, and a hanging collector must not
		// hang a New that has already failed.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.provider.Shutdown(ctx)
		return nil, err
	}
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return m, nil
}

// checkNames rejects lists that would make ambiguous or invalid series: an empty name is
// indistinguishable from a missing label, and a duplicate makes two series collide.
func checkNames(names []string) error {
	if len(names) == 0 {
		return errors.New("empty list")
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if err := checkName(n); err != nil {
			return fmt.Errorf("index %d: %w", i, err)
		}
		if seen[n] {
			return fmt.Errorf("index %d: duplicate name %q", i, n)
		}
		seen[n] = true
	}
	return nil
}

func checkName(n string) error {
	if n == "" {
		return errors.New("empty name")
	}
	if !utf8.ValidString(n) {
		return fmt.Errorf("name %q is not valid UTF-8", n)
	}
	return nil
}

// Jurisdiction interns a jurisdiction group name and returns its index, the same for the
// same name for the life of the Metrics, so a config reload keeps the old groups' series
// and a new group gets a new index. Once MaxJurisdictions names are interned a new name
// gets ErrJurisdictionCapacity: the caller fails the load or reload (the last good config
// stays in force) rather than have the counters silently merge groups. An empty or
// non-UTF-8 name is an error too, since it cannot be a distinct label value.
func (m *Metrics) Jurisdiction(name string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("telemetry: jurisdiction: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, ok := m.jurIndex[name]; ok {
		return i, nil
	}
	n := int(m.nJur.Load())
	if n >= MaxJurisdictions {
		return 0, fmt.Errorf("jurisdiction %q: %w (%d names since start; restart to reset)", name, ErrJurisdictionCapacity, MaxJurisdictions)
	}
	m.jurNames[n] = name
	m.jurIndex[name] = n
	// Published after the name is written, so a Hit or scrape that sees the new count
	// also sees the name.
	m.nJur.Store(uint32(n + 1))
	return n, nil
}

// Hit records one hit. An out-of-range index (including a jurisdiction index Jurisdiction
// has not handed out) is counted in consentgate_telemetry_dropped_observations_total
// instead of panicking.
func (m *Metrics) Hit(vendor, action, reason, jurisdiction int) {
	if uint(vendor) >= m.nV || uint(action) >= m.nA || uint(reason) >= m.nR || uint(jurisdiction) >= uint(m.nJur.Load()) {
		m.dropped.Add(1)
		return
	}
	m.hits[((uint(vendor)*m.nA+uint(action))*m.nR+uint(reason))<<jurisdictionBits|uint(jurisdiction)].Add(1)
}

// HitCount reads one hit counter; 0 for an out-of-range index.
func (m *Metrics) HitCount(vendor, action, reason, jurisdiction int) uint64 {
	if uint(vendor) >= m.nV || uint(action) >= m.nA || uint(reason) >= m.nR || uint(jurisdiction) >= uint(m.nJur.Load()) {
		return 0
	}
	return m.hits[((uint(vendor)*m.nA+uint(action))*m.nR+uint(reason))<<jurisdictionBits|uint(jurisdiction)].Load()
}

// UpstreamRequest counts one request sent upstream for vendor, whatever its outcome.
func (m *Metrics) UpstreamRequest(vendor int) {
	if uint(vendor) >= m.nV {
		m.dropped.Add(1)
		return
	}
	m.requests[vendor].Add(1)
}

// UpstreamError counts one failed upstream request for vendor.
func (m *Metrics) UpstreamError(vendor int, kind UpstreamErrorKind) {
	if uint(vendor) >= m.nV || kind >= numUpstreamKinds {
		m.dropped.Add(1)
		return
	}
	m.errs[uint(vendor)*uint(numUpstreamKinds)+uint(kind)].Add(1)
}

// SignalError counts one consent signal that could not be read; k indexes the names
// given to WithSignals.
func (m *Metrics) SignalError(k int) {
	if uint(k) >= uint(len(m.signals)) {
		m.dropped.Add(1)
		return
	}
	m.signals[k].Add(1)
}

// AnonymiseRemoved counts n values of an anonymised hit for vendor removed for not
// fitting their kind; kind indexes the names given to WithRemovedKinds.
func (m *Metrics) AnonymiseRemoved(vendor, kind int, n uint64) {
	if uint(vendor) >= m.nV || uint(kind) >= m.nK {
		m.dropped.Add(1)
		return
	}
	m.removed[uint(vendor)*m.nK+uint(kind)].Add(n)
}

// AnonymiseRemovedCount reads one removed-value counter; 0 for an out-of-range index.
func (m *Metrics) AnonymiseRemovedCount(vendor, kind int) uint64 {
	if uint(vendor) >= m.nV || uint(kind) >= m.nK {
		return 0
	}
	return m.removed[uint(vendor)*m.nK+uint(kind)].Load()
}

// count adds one to counters[i], or to the dropped observations when i is out of range:
// a caller's bad index is counted, never a panic on the hit path.
func (m *Metrics) count(counters []atomic.Uint64, i uint) {
	if i >= uint(len(counters)) {
		m.dropped.Add(1)
		return
	}
	counters[i].Add(1)
}

// SaltFallback records that the anonymiser made a salt of its own for lack of the shared one.
func (m *Metrics) SaltFallback() { m.saltFallbacks.Add(1) }

// StoreUp records whether the consent store answered its last health check.
func (m *Metrics) StoreUp(up bool) { m.storeUp.Store(up) }

// ConfigReload records the outcome of a config load or reload at time t. Until the first
// call, consentgate_config_last_reload_successful and the timestamp read 0: nothing has
// been loaded yet as far as telemetry knows.
func (m *Metrics) ConfigReload(success bool, t time.Time) {
	if success {
		m.reloadOKAtMs.Store(t.UnixMilli())
		m.reloadOK.Store(true)
		return
	}
	m.reloadErrors.Add(1)
	m.reloadOK.Store(false)
}

// GeoIPReload records the outcome of a GeoIP database load or reload at time t. dbBuild
// is the build time from the new database's metadata, used only on success: a failed
// reload leaves the previous database, and so its build time, in force. A zero dbBuild
// reads as 0 (unknown).
func (m *Metrics) GeoIPReload(success bool, t time.Time, dbBuild time.Time) {
	if !success {
		m.geoErrors.Add(1)
		m.geoOK.Store(false)
		return
	}
	var build int64
	if !dbBuild.IsZero() {
		build = dbBuild.UnixMilli()
	}
	m.geoBuildAtMs.Store(build)
	m.geoOKAtMs.Store(t.UnixMilli())
	m.geoOK.Store(true)
}

// UpstreamDone records how long one upstream request took and how it ended. It is in
// addition to UpstreamRequest (counted when the request is sent) and UpstreamError, so
// the proxy calls it once per request, whatever the outcome.
//
// It is a synchronous OTel histogram record with a precomputed attribute set, measured at
// 0 allocations (TestRecordingAllocatesNothing) once a vendor × outcome series exists; the
// first record of a series allocates it in the SDK. A negative d (a caller bug; durations
// from time.Since are monotonic) counts as 0, since a negative observation would make
// the _sum go backwards.
func (m *Metrics) UpstreamDone(vendor int, outcome UpstreamOutcome, d time.Duration) {
	if uint(vendor) >= m.nV || outcome >= numUpstreamOutcomes {
		m.dropped.Add(1)
		return
	}
	i := uint(vendor)*uint(numUpstreamOutcomes) + uint(outcome)
	m.duration.Record(context.Background(), max(d, 0).Seconds(), m.durationOpts[i:i+1]...)
}

// Handler serves the Prometheus text exposition. It is built once in New, so calling
// Handler per request costs nothing.
func (m *Metrics) Handler() fasthttp.RequestHandler { return m.handler }

// ForceFlush pushes the current values to the OTLP collector now, if WithOTLP was given
// (otherwise it has nothing to do), bounded by ctx and OTLP.Timeout. It returns the
// export's error, e.g. a collector that is down; recording is never blocked by it.
func (m *Metrics) ForceFlush(ctx context.Context) error {
	ctx, cancel := m.boundOTLP(ctx)
	defer cancel()
	if err := m.provider.ForceFlush(ctx); err != nil {
		return fmt.Errorf("telemetry: flush: %w", err)
	}
	return nil
}

// Shutdown stops the meter provider, after a last OTLP push if WithOTLP was given (bounded
// by ctx and OTLP.Timeout); later scrapes return no consentgate series.
func (m *Metrics) Shutdown(ctx context.Context) error {
	ctx, cancel := m.boundOTLP(ctx)
	defer cancel()
	if err := m.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shutdown meter provider: %w", err)
	}
	return nil
}

// boundOTLP applies OTLP.Timeout to a flush or shutdown. The SDK applies its own timeout
// only when ctx has no deadline; given a long one (a drain budget) it would retry a
// hanging collector until that deadline.
func (m *Metrics) boundOTLP(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.otlpTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, m.otlpTimeout)
}

// HitCell is one non-zero hit counter: Cell is an opaque index (HitLabels names it) and
// Count its cumulative value since start.
type HitCell struct {
	Cell  uint32
	Count uint64
}

// AppendHits appends every non-zero hit counter to dst and returns it. The stats ring
// buffer calls it once a minute and diffs consecutive snapshots, which is how per-minute
// figures cost the hit path nothing beyond the atomic add it already does.
func (m *Metrics) AppendHits(dst []HitCell) []HitCell {
	nJur := uint(m.nJur.Load())
	for i := range m.hits {
		if uint(i)&(MaxJurisdictions-1) >= nJur {
			continue
		}
		if n := m.hits[i].Load(); n != 0 {
			dst = append(dst, HitCell{Cell: uint32(i), Count: n})
		}
	}
	return dst
}

// HitLabels names the vendor, action, reason and jurisdiction of a cell returned by
// AppendHits. ok is false for a cell index that cannot have come from AppendHits.
func (m *Metrics) HitLabels(cell uint32) (vendor, action, reason, jurisdiction string, ok bool) {
	c := uint(cell)
	j := c & (MaxJurisdictions - 1)
	c >>= jurisdictionBits
	r := c % m.nR
	c /= m.nR
	a := c % m.nA
	v := c / m.nA
	if v >= m.nV || j >= uint(m.nJur.Load()) {
		return "", "", "", "", false
	}
	m.mu.Lock()
	jur := m.jurNames[j]
	m.mu.Unlock()
	return m.vendors[v], m.actions[a], m.reasons[r], jur, true
}
