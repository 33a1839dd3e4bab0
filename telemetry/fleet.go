package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Fleet figures publishing (telemetry/stats Fleet): each instance sends its per-minute
// hit counts to Redis every few seconds. These say whether that works, so a dashboard
// that shows fewer hits than Prometheus does can be explained.

var fleetResultAttrs = [2]metric.ObserveOption{
	metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok"))),
	metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error"))),
}

// FleetPublish counts one publish of the fleet figures: ok, or failed (the counts stay
// queued for the next).
func (m *Metrics) FleetPublish(ok bool) {
	if ok {
		m.fleetPublishes[0].Add(1)
		return
	}
	m.fleetPublishes[1].Add(1)
}

// FleetPending sets how many batches of fleet figures wait to be published.
func (m *Metrics) FleetPending(batches int) { m.fleetPending.Store(int64(batches)) }

// FleetLost counts hits whose per-minute counts were given up unpublished.
func (m *Metrics) FleetLost(hits uint64) { m.fleetLost.Add(hits) }

func (m *Metrics) observeFleetPublishes(_ context.Context, o metric.Int64Observer) error {
	for i := range m.fleetPublishes {
		o.Observe(clampInt64(m.fleetPublishes[i].Load()), fleetResultAttrs[i])
	}
	return nil
}
