package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/consentgate/consentgate/internal/enum"
)

// Refusal is why the public listener answered a request before any route saw it, or
// turned a connection away: what fasthttp could not read, what the proxy's own checks of
// the request head refused, and connections over the per-address cap. A hit that was
// routed is counted in consentgate_hits_total instead; these are the requests that never
// became a hit, counted so that none is lost without a trace.
type Refusal uint8

const (
	RefusedHeaderTooLarge     Refusal = iota // request head over max_header_size (431)
	RefusedURITooLong                        // request line alone over max_header_size (414)
	RefusedBadFraming                        // Content-Length with Transfer-Encoding, a coding other than chunked, a broken chunk (400, connection closed)
	RefusedBadHeader                         // a header name that is not a token, a folded line, trailer fields (400, connection closed)
	RefusedBadRequest                        // anything else unreadable: request line, missing Host (400)
	RefusedReadTimeout                       // the request was not received within read_timeout (408): a slow or stalled client
	RefusedBodyTooLarge                      // body over max_body_size on a request that is not a routed hit (413)
	RefusedIncomplete                        // the client closed the connection mid-request
	RefusedTooManyConnections                // a connection over max_conns_per_ip (429) or over the listener's total limit (503), closed at once
	RefusedTLSHandshake                      // a TLS handshake that failed or stalled: not TLS (plain HTTP gets 400), no common version or cipher, the client refused the certificate
	numRefusals
)

var refusalNames = enum.New("reason", numRefusals, "header_too_large", "uri_too_long", "bad_framing",
	"bad_header", "bad_request", "read_timeout", "body_too_large", "incomplete", "too_many_connections", "tls_handshake")

// String returns the reason label value.
func (r Refusal) String() string { return refusalNames.String(r) }

// RefusalNames lists the reason label values in index order.
func RefusalNames() []string { return refusalNames.List() }

var refusalAttrs = func() (out [numRefusals]metric.ObserveOption) {
	for r := range numRefusals {
		out[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r.String())))
	}
	return out
}()

// Refused counts one request (or connection) the public listener refused for reason r.
func (m *Metrics) Refused(r Refusal) { m.count(m.refused[:], uint(r)) }

// RefusedCount reads one refusal counter (tests); 0 for an out-of-range reason.
func (m *Metrics) RefusedCount(r Refusal) uint64 {
	if r >= numRefusals {
		return 0
	}
	return m.refused[r].Load()
}

// PublicConnOpened and PublicConnClosed keep the count of open public connections, so a
// connection storm shows before it costs memory.
func (m *Metrics) PublicConnOpened() { m.publicConns.Add(1) }
func (m *Metrics) PublicConnClosed() { m.publicConns.Add(-1) }

// OpenPublicConns reads the count of open public connections.
func (m *Metrics) OpenPublicConns() int64 { return m.publicConns.Load() }

// CountOverflow adds to too_many_connections what f reports: the connections the
// listener's server turned away on its own, past its total concurrency limit, which it
// answers (503) and closes without the proxy seeing them.
func (m *Metrics) CountOverflow(f func() uint64) { m.overflow.Store(&f) }

func (m *Metrics) observeRefused(_ context.Context, o metric.Int64Observer) error {
	for r := range numRefusals {
		n := m.refused[r].Load()
		if f := m.overflow.Load(); f != nil && r == RefusedTooManyConnections {
			n += (*f)()
		}
		o.Observe(clampInt64(n), refusalAttrs[r])
	}
	return nil
}

func (m *Metrics) observePublicConns(_ context.Context, o metric.Int64Observer) error {
	o.Observe(m.publicConns.Load())
	return nil
}
