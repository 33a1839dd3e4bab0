package telemetry

import (
	"fmt"

	"github.com/consentgate/consentgate/internal/enum"
)

// UpstreamErrorKind classifies a failed upstream request.
type UpstreamErrorKind uint8

const (
	UpstreamTimeout UpstreamErrorKind = iota // the upstream did not answer in time
	UpstreamConnect                          // no connection could be made (DNS, refused, TLS)
	UpstreamStatus                           // the upstream answered with a 5xx
	UpstreamOther                            // anything else
	numUpstreamKinds
)

var upstreamKindNames = enum.New("kind", numUpstreamKinds, "timeout", "connect", "status", "other")

// String returns the kind label value.
func (k UpstreamErrorKind) String() string { return upstreamKindNames.String(k) }

// Outcome is the latency histogram's outcome for a request that failed this way, so the
// proxy classifies an error once and feeds both UpstreamError and UpstreamDone.
func (k UpstreamErrorKind) Outcome() UpstreamOutcome {
	if k >= numUpstreamKinds {
		// Kept out of range (UpstreamDone drops it) rather than wrapping to UpstreamOK.
		return numUpstreamOutcomes
	}
	return UpstreamOutcome(k) + 1
}

// UpstreamOutcome is how an upstream request ended: UpstreamOK, or one of the error kinds
// through UpstreamErrorKind.Outcome. It labels the latency histogram, where a failure's
// duration matters as much as a success's (a timeout's is the configured timeout; a
// refused connection's is near zero).
type UpstreamOutcome uint8

// UpstreamOK is a request the upstream answered with a status below 500. It is the zero
// value so that a forgotten classification reads as success, not as some error.
const UpstreamOK UpstreamOutcome = 0

// numUpstreamOutcomes is UpstreamOK plus one outcome per error kind, in the kinds' order.
const numUpstreamOutcomes = 1 + UpstreamOutcome(numUpstreamKinds)

// String returns the outcome label value.
func (o UpstreamOutcome) String() string {
	switch {
	case o == UpstreamOK:
		return "ok"
	case o < numUpstreamOutcomes:
		return upstreamKindNames.String(UpstreamErrorKind(o - 1))
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// upstreamDurationBuckets are the latency histogram's upper bounds in seconds: from a
// same-datacentre answer (1ms) to well past any sane upstream timeout (10s).
var upstreamDurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
