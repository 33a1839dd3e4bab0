package proxy

import (
	"context"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/telemetry/stats"
)

// The fleet figures (telemetry/stats Fleet): with the Redis store this instance publishes
// its per-minute hit counts to the store's Redis, and /api/stats sums every instance's.
// Publishing runs in its own goroutine on a ticker, never on the hit path.

// newFleet builds the Fleet over the consent store's Redis client, or returns nil when
// the store is not Redis (the memory store, or a store a test supplied).
func (s *Server) newFleet(cfg *config.Config) (*stats.Fleet, error) {
	if s.store.redis == nil {
		return nil, nil
	}
	prefix := cfg.Consent.Redis.KeyPrefix
	if prefix == "" {
		prefix = consent.DefaultRedisPrefix
	}
	return stats.NewFleet(stats.FleetOptions{
		Client: s.store.redis, Prefix: prefix, Source: s.metrics, Metrics: s.metrics, Logger: s.log,
	})
}

// startFleet publishes until stopFleet.
func (s *Server) startFleet() {
	if s.fleet == nil {
		return
	}
	s.stopFleetRun = background(s.fleet.Run)
}

// fleetFlushBudget bounds the last publish at shutdown: the drain must not wait on a
// Redis that does not answer.
const fleetFlushBudget = 2 * time.Second

// stopFleet ends the publishing and publishes once more, after the listeners have
// stopped, so the hits of the last seconds are in the fleet figures too.
func (s *Server) stopFleet(ctx context.Context) {
	if s.fleet == nil {
		return
	}
	if s.stopFleetRun != nil {
		s.stopFleetRun()
	}
	ctx, cancel := context.WithTimeout(ctx, fleetFlushBudget)
	defer cancel()
	s.fleet.Publish(ctx) // counts and logs its own failure
}
