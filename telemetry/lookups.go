package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/consentgate/consentgate/internal/enum"
)

// LookupSource is where a consent lookup was answered.
type LookupSource uint8

const (
	LookupCache  LookupSource = iota // the instance's local cache
	LookupRedis                      // Redis, after a cache miss
	LookupMemory                     // the in-memory store (no cache in front)
	numLookupSources
)

// LookupResult is how a consent lookup ended.
type LookupResult uint8

const (
	LookupHit LookupResult = iota
	LookupMiss
	LookupError
	numLookupResults
)

var (
	lookupSourceNames = enum.New("source", numLookupSources, "cache", "redis", "memory")
	lookupResultNames = enum.New("result", numLookupResults, "hit", "miss", "error")
)

// lookupAttrs are built once: every source × result series is exported from zero, so
// an error rate can be alerted on before the first error.
var lookupAttrs = func() (out [int(numLookupSources) * int(numLookupResults)]metric.ObserveOption) {
	for s := range numLookupSources {
		for r := range numLookupResults {
			out[int(s)*int(numLookupResults)+int(r)] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("source", lookupSourceNames.String(s)),
				attribute.String("result", lookupResultNames.String(r)),
			))
		}
	}
	return out
}()

// ConsentLookup counts one consent lookup.
func (m *Metrics) ConsentLookup(source LookupSource, result LookupResult) {
	if source >= numLookupSources || result >= numLookupResults {
		m.dropped.Add(1)
		return
	}
	m.lookups[int(source)*int(numLookupResults)+int(result)].Add(1)
}

// ConsentLookupCount reads one lookup counter (tests, benchmarks' Redis-calls-per-hit).
func (m *Metrics) ConsentLookupCount(source LookupSource, result LookupResult) uint64 {
	if source >= numLookupSources || result >= numLookupResults {
		return 0
	}
	return m.lookups[int(source)*int(numLookupResults)+int(result)].Load()
}
