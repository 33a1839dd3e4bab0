package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/consentgate/consentgate/internal/enum"
)

// MaxScripts is how many distinct tag script names one Metrics can count over its
// lifetime (the built-in ones and those configs add; a reload may add more).
const MaxScripts = 64

// ErrScriptCapacity is returned by Script once MaxScripts names have been interned.
var ErrScriptCapacity = errors.New("telemetry: script capacity reached")

// ScriptOutcome is how a request for a tag script was answered.
type ScriptOutcome uint8

const (
	ScriptHit        ScriptOutcome = iota // from the cache, fresh (a 304 too)
	ScriptMiss                            // fetched from the vendor for this request (or one it waited on)
	ScriptStale                           // from the cache past its freshness, because the vendor failed
	ScriptError                           // not served: the vendor failed or has no such script, and nothing could stand in
	ScriptBadRequest                      // refused before any fetch: a parameter that is not a token, a missing or unlisted ID, a method other than GET or HEAD
	numScriptOutcomes
)

var scriptOutcomeNames = enum.New("outcome", numScriptOutcomes, "hit", "miss", "stale", "error", "bad_request")

// String returns the outcome label value.
func (o ScriptOutcome) String() string { return scriptOutcomeNames.String(o) }

// ScriptErrorKind classifies a failed fetch of a script from its vendor.
type ScriptErrorKind uint8

const (
	ScriptVendorTimeout  ScriptErrorKind = iota // no answer within scripts.timeout
	ScriptVendorConnect                         // no connection (DNS, refused, TLS, all connections busy)
	ScriptVendorStatus                          // an answer other than 200 (a redirect too: none is followed)
	ScriptVendorTooLarge                        // a body over scripts.max_size
	ScriptVendorOther                           // anything else: an unreadable or unknown encoding
	numScriptErrorKinds
)

var scriptErrorNames = enum.New("kind", numScriptErrorKinds, "timeout", "connect", "status", "too_large", "other")

// String returns the kind label value.
func (k ScriptErrorKind) String() string { return scriptErrorNames.String(k) }

// scriptCounters count tag script requests by script and outcome, and vendor errors by
// script and kind. Names are interned like jurisdictions: an index keeps meaning the same
// script for the life of the counters, and every interned script's series are exported
// from zero, so an error rate can be alerted on before the first error.
type scriptCounters struct {
	mu       sync.Mutex // guards names, index, attrs
	n        atomic.Uint32
	names    [MaxScripts]string
	index    map[string]int
	requests [MaxScripts * int(numScriptOutcomes)]atomic.Uint64
	errs     [MaxScripts * int(numScriptErrorKinds)]atomic.Uint64
	reqAttrs [MaxScripts * int(numScriptOutcomes)]metric.ObserveOption
	errAttrs [MaxScripts * int(numScriptErrorKinds)]metric.ObserveOption
}

// Script interns a tag script name and returns its index, the same for the same name for
// the life of the Metrics. Past MaxScripts names it returns ErrScriptCapacity: the caller
// fails the load or reload rather than count scripts under the wrong name.
func (m *Metrics) Script(name string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("telemetry: script: %w", err)
	}
	c := &m.scripts
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[name]; ok {
		return i, nil
	}
	n := int(c.n.Load())
	if n >= MaxScripts {
		return 0, fmt.Errorf("script %q: %w (%d names since start; restart to reset)", name, ErrScriptCapacity, MaxScripts)
	}
	if c.index == nil {
		c.index = map[string]int{}
	}
	c.names[n], c.index[name] = name, n
	skv := attribute.String("script", name)
	for o := range numScriptOutcomes {
		c.reqAttrs[n*int(numScriptOutcomes)+int(o)] = metric.WithAttributeSet(attribute.NewSet(skv, attribute.String("outcome", o.String())))
	}
	for k := range numScriptErrorKinds {
		c.errAttrs[n*int(numScriptErrorKinds)+int(k)] = metric.WithAttributeSet(attribute.NewSet(skv, attribute.String("kind", k.String())))
	}
	// Published last, so a scrape that sees the new count sees the labels too.
	c.n.Store(uint32(n + 1))
	return n, nil
}

// ScriptRequest counts one request for script answered with outcome o.
func (m *Metrics) ScriptRequest(script int, o ScriptOutcome) {
	if uint(script) >= uint(m.scripts.n.Load()) || o >= numScriptOutcomes {
		m.dropped.Add(1)
		return
	}
	m.scripts.requests[script*int(numScriptOutcomes)+int(o)].Add(1)
}

// ScriptVendorError counts one failed fetch of script from its vendor.
func (m *Metrics) ScriptVendorError(script int, k ScriptErrorKind) {
	if uint(script) >= uint(m.scripts.n.Load()) || k >= numScriptErrorKinds {
		m.dropped.Add(1)
		return
	}
	m.scripts.errs[script*int(numScriptErrorKinds)+int(k)].Add(1)
}

// ScriptRequestCount and ScriptVendorErrorCount read one counter (tests); 0 out of range.
func (m *Metrics) ScriptRequestCount(script int, o ScriptOutcome) uint64 {
	if uint(script) >= uint(m.scripts.n.Load()) || o >= numScriptOutcomes {
		return 0
	}
	return m.scripts.requests[script*int(numScriptOutcomes)+int(o)].Load()
}

func (m *Metrics) ScriptVendorErrorCount(script int, k ScriptErrorKind) uint64 {
	if uint(script) >= uint(m.scripts.n.Load()) || k >= numScriptErrorKinds {
		return 0
	}
	return m.scripts.errs[script*int(numScriptErrorKinds)+int(k)].Load()
}

func (m *Metrics) observeScriptRequests(_ context.Context, o metric.Int64Observer) error {
	c := &m.scripts
	n := int(c.n.Load())
	c.mu.Lock() // the attributes of the first n are written before n is published; the lock orders a late reader
	defer c.mu.Unlock()
	for i := range n * int(numScriptOutcomes) {
		o.Observe(clampInt64(c.requests[i].Load()), c.reqAttrs[i])
	}
	return nil
}

func (m *Metrics) observeScriptErrors(_ context.Context, o metric.Int64Observer) error {
	c := &m.scripts
	n := int(c.n.Load())
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range n * int(numScriptErrorKinds) {
		o.Observe(clampInt64(c.errs[i].Load()), c.errAttrs[i])
	}
	return nil
}

// registerScripts adds the script instruments to register's list.
func (m *Metrics) registerScripts(counter func(name, desc, unit string, cb metric.Int64Callback) error) error {
	return errors.Join(
		counter("consentgate_script_requests_total", "Requests for first-party tag scripts by script and outcome (hit, miss, stale = served past its freshness because the vendor failed, error = not served, bad_request).", "{request}", m.observeScriptRequests),
		counter("consentgate_script_vendor_errors_total", "Fetches of tag scripts from their vendor that failed, by script and kind (timeout, connect, status = not 200, too_large, other).", "{request}", m.observeScriptErrors),
	)
}
