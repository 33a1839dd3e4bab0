package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
	"github.com/consentgate/consentgate/telemetry/tracing"
)

// storeCtx is the context of every store call. Never the fasthttp RequestCtx: as a
// parent it makes context.WithTimeout start a goroutine per call that reads fasthttp's
// shutdown state unsynchronised. The store bounds each call by its own budget.
var storeCtx = context.Background()

// consentStore is the store a server talks to, with what it takes to run and stop it.
type consentStore struct {
	consent.Store
	// countLookups: the proxy counts lookups itself (memory store); a cache in front of
	// Redis counts its own, by source.
	countLookups bool
	stop         context.CancelFunc
	// redis is the Redis store's client, which the fleet figures share; nil otherwise.
	redis redis.UniversalClient
	// epoch is when the store's dataset began (epoch.go): never nil, read on hits.
	epoch *consent.Epoch
	// syncEpoch reads (or creates) the epoch where it lives outside the process; nil
	// for a store whose epoch is its own.
	syncEpoch func(context.Context) error
}

// openStore builds the store the config names. Redis gets a local cache in front and a
// subscription that drops cached IDs when any instance writes them, and shares the
// anonymiser's day salt between instances (salt.go). Redis being down at start is not an
// error: the proxy serves, fail closed, and readiness says degraded.
func openStore(cfg *config.Config, m *telemetry.Metrics, tr *tracing.Tracing, log *slog.Logger, h *rules.Hasher, now func() time.Time) (*consentStore, error) {
	c := cfg.Consent
	if c.Store != "redis" {
		m.StoreUp(true)
		ms := consent.NewMemoryStoreWith(consent.MemoryOptions{
			MaxEntries: c.MaxEntries, MaxBytes: c.MaxBytes,
			ReceiptsMaxLen: c.Receipts.MaxLen, ReceiptsMaxBytes: c.Receipts.MaxBytes, ReceiptsTTL: c.Receipts.TTL,
		})
		m.SetStoreBytes(func() int64 { return int64(ms.Bytes()) })
		// The store's dataset begins now, by the clock snapshots are issued by (its own
		// DatasetEpoch is by the wall clock its TTLs run on: the same one, but for tests).
		return &consentStore{Store: ms, countLookups: true, stop: func() {}, epoch: consent.NewEpoch(now())}, nil
	}
	r := c.Redis
	rs, err := consent.NewRedisStore(consent.RedisOptions{
		Addrs: r.Addrs, Username: r.Username, Password: r.Password, DB: r.DB, TLS: r.TLS,
		Cluster: r.Cluster, MasterName: r.MasterName, Timeout: r.Timeout, WriteTimeout: r.WriteTimeout,
		PoolSize: r.PoolSize, MinIdleConns: r.MinIdleConns, Prefix: r.KeyPrefix,
		ReceiptsMaxLen: int64(c.Receipts.MaxLen), ReceiptsTTL: c.Receipts.TTL, ReceiptsMaxBytes: int64(c.Receipts.MaxBytes),
	})
	if err != nil {
		return nil, err
	}
	if tr.Enabled() {
		// Redis calls become child spans of the hit that made them. Without the statement:
		// keys and the invalidation message hold consent IDs, which no telemetry may carry.
		// The caller (code file and line) is off too: it is the same few lines every time.
		if err := redisotel.InstrumentTracing(rs.Client(), redisotel.WithTracerProvider(tr.TracerProvider()),
			redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
			rs.Close()
			return nil, fmt.Errorf("consent: redis tracing: %w", err)
		}
	}
	cache := consent.NewCache(rs, consent.CacheOptions{
		TTL: c.Cache.TTL, NegativeTTL: c.Cache.NegativeTTL, MaxEntries: c.Cache.MaxEntries, MaxBytes: c.Cache.MaxBytes,
		Observe: func(src consent.LookupSource, res consent.LookupResult) {
			s := telemetry.LookupCache
			if src == consent.SourceStore {
				s = telemetry.LookupRedis
			}
			m.ConsentLookup(s, lookupResult(res))
		},
	})
	m.SetStoreBytes(func() int64 { return int64(cache.Bytes()) })
	ctx, cancel := context.WithCancel(context.Background())
	go rs.Subscribe(ctx, cache.Invalidate, func() {
		// Invalidations may have been missed while disconnected: forget everything.
		cache.Clear()
		log.Info("consent cache cleared", "why", "redis subscription (re)established")
	})
	ep := newEpochWatch(cache, now, log)
	// Before the first hit, as the salt below; if Redis is down, watchStore reads it
	// once Redis answers, and until then no snapshot counts as older than the dataset.
	_ = ep.ensure(ctx)
	go watchStore(ctx, cache, m, log, ep.sync)
	h.Share(m.SaltFallback)
	salts := &saltSharer{store: rs, h: h, now: now, log: log}
	// Before the first hit, so that it hashes with the shared salt; if Redis is down, the
	// first hit makes a local one and run retries.
	err = salts.syncNow(ctx)
	go salts.run(ctx, err)
	return &consentStore{Store: cache, stop: cancel, redis: rs.Client(), epoch: cache.DatasetEpoch(), syncEpoch: ep.ensure}, nil
}

// watchStore keeps consentgate_consent_store_up current and logs state changes, so an
// outage shows in metrics and logs even when no one polls /readyz. After every ping that
// succeeds it calls healthy (the dataset epoch's sync).
func watchStore(ctx context.Context, s consent.Store, m *telemetry.Metrics, log *slog.Logger, healthy func(context.Context)) {
	up := true
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.StoreUp(err == nil)
		if err == nil {
			healthy(ctx)
		}
		if (err == nil) != up {
			up = err == nil
			if up {
				log.Info("consent store recovered")
			} else {
				log.Error("consent store unavailable; hits are decided fail-closed", "error", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func lookupResult(r consent.LookupResult) telemetry.LookupResult {
	switch r {
	case consent.ResultHit:
		return telemetry.LookupHit
	case consent.ResultMiss:
		return telemetry.LookupMiss
	}
	return telemetry.LookupError
}
