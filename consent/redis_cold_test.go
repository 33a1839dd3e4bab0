package consent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/consentgate/consentgate/internal/redistest"
)

// seedRedis writes n visitors' states straight into Redis (as a site's backend or
// another instance would have), in pipelines, and returns their IDs.
func seedRedis(tb testing.TB, addr string, n int) []string {
	tb.Helper()
	rc := inspector(tb, []string{addr}, false)
	ctx := context.Background()
	ids := make([]string, n)
	for lo := 0; lo < n; lo += 1000 {
		p := rc.Pipeline()
		for i := lo; i < min(lo+1000, n); i++ {
			ids[i] = newTestID(tb)
			st := redisLikeState(i)
			p.HSet(ctx, DefaultRedisPrefix+"{"+ids[i]+"}:state", stateFields(&st)...)
		}
		if _, err := p.Exec(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

// roundTrips counts the state lookups (HGETALL) a store's client sends: on their own,
// and in pipelines (batches); and those sent under a lookup's own context (with its
// deadline) rather than the autopipeliner's.
type roundTrips struct{ single, batches, batched, direct atomic.Int64 }

func (rt *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (rt *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hgetall" {
			rt.single.Add(1)
			if _, ok := ctx.Deadline(); ok {
				rt.direct.Add(1)
			}
		}
		return next(ctx, cmd)
	}
}
func (rt *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, c := range cmds {
			if c.Name() == "hgetall" {
				n++
			}
		}
		if n > 0 {
			rt.batches.Add(1)
			rt.batched.Add(int64(n))
		}
		return next(ctx, cmds)
	}
}

// trips is the round trips the lookups took.
func (rt *roundTrips) trips() int64 { return rt.single.Load() + rt.batches.Load() }

// coldLookups is one instance meeting visitors it has never seen: a fresh store and
// cache, and workers that each look up their share of ids through the cache, as hits
// do. It returns how many lookups failed and what the client sent.
type coldRun struct {
	failed, notFound int64
	took             time.Duration
	trips            *roundTrips
}

func coldLookups(tb testing.TB, addr string, ids []string, workers int, mod func(*RedisOptions)) coldRun {
	tb.Helper()
	s := newRedisStore(tb, []string{addr}, mod)
	rt := &roundTrips{}
	s.Client().AddHook(rt)
	c := NewCache(s, CacheOptions{TTL: time.Hour, MaxEntries: 2 * len(ids)})
	var next, failed, notFound atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				_, ok, err := c.Get(context.Background(), ids[i])
				switch {
				case err != nil:
					failed.Add(1)
				case !ok:
					notFound.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return coldRun{failed: failed.Load(), notFound: notFound.Load(), took: time.Since(start), trips: rt}
}

// TestRedisColdLookupsUnderLoad: many visitors the instance has never seen, looked up at
// once by many workers, are all answered from Redis: none is decided fail closed
// because the pool had no connection ready or a lookup waited for one. The budget is
// generous (the race detector, a shared machine): the test counts answers, not time.
func TestRedisColdLookupsUnderLoad(t *testing.T) {
	srv := redistest.Start(t)
	const visitors, workers = 5000, 128
	ids := seedRedis(t, srv.Addr, visitors)
	r := coldLookups(t, srv.Addr, ids, workers, func(o *RedisOptions) { o.PoolSize = 4 })
	t.Logf("%d cold lookups by %d workers in %v: %d on their own, %d in %d batches",
		visitors, workers, r.took, r.trips.single.Load(), r.trips.batched.Load(), r.trips.batches.Load())
	if r.failed != 0 || r.notFound != 0 {
		t.Fatalf("%d of %d cold lookups failed and %d found nothing; want every one answered with its state", r.failed, visitors, r.notFound)
	}
	// Every lookup went to Redis once, through the autopipeliner; with 128 workers
	// waiting on at most lookupBatches batches, a batch carries dozens.
	if got := r.trips.direct.Load(); got != 0 {
		t.Errorf("%d lookups were sent under their own context, want every one through the autopipeliner", got)
	}
	if got := r.trips.single.Load() + r.trips.batched.Load(); got != visitors {
		t.Errorf("%d lookups reached Redis for %d visitors, want one each", got, visitors)
	}
	if trips := r.trips.trips(); trips*4 > visitors {
		t.Errorf("%d round trips for %d lookups: fewer than 4 lookups a round trip", trips, visitors)
	}
}

// TestRedisTracedLookupAlone: a lookup made for a sampled (traced) hit is sent on its
// own under the hit's context, so that its span is the hit's child; the rest are batched.
func TestRedisTracedLookupAlone(t *testing.T) {
	srv := redistest.Start(t)
	ids := seedRedis(t, srv.Addr, 2)
	s := newRedisStore(t, []string{srv.Addr}, nil)
	rt := &roundTrips{}
	s.Client().AddHook(rt)
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	for i, ctx := range []context.Context{sampled, context.Background()} {
		if _, ok, err := s.Get(ctx, ids[i]); err != nil || !ok {
			t.Fatalf("Get = %v, %v", ok, err)
		}
	}
	if d, all := rt.direct.Load(), rt.single.Load()+rt.batched.Load(); d != 1 || all != 2 {
		t.Fatalf("%d of %d lookups sent under their own context, want the traced one only", d, all)
	}
}

// BenchmarkRedisColdLookups is TestRedisColdLookupsUnderLoad at the default 5 ms
// budget: the share of cold lookups that fail (and would be decided fail closed), and
// the Redis round trips per lookup.
func BenchmarkRedisColdLookups(b *testing.B) {
	srv := redistest.Start(b)
	const visitors, workers = 20_000, 32
	ids := seedRedis(b, srv.Addr, visitors)
	var r coldRun
	for b.Loop() {
		r = coldLookups(b, srv.Addr, ids, workers, func(o *RedisOptions) { o.Timeout = 0 })
	}
	b.ReportMetric(float64(r.failed)/visitors, "failed/lookup")
	b.ReportMetric(float64(r.trips.trips())/visitors, "trips/lookup")
	b.ReportMetric(float64(r.took.Nanoseconds())/visitors, "ns/lookup")
}

// TestRedisLookupFloodBounded: a flood of lookups while Redis is stalled (an attacker
// sending fresh IDs, say) queues at most maxQueuedLookups; the rest fail at once, fail
// closed, instead of piling up in memory. No lookup answers anything but an error.
func TestRedisLookupFloodBounded(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) { o.Timeout = time.Second })
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := redistest.Do(srv.Addr, "CLIENT", "PAUSE", "4000", "ALL"); err != nil {
		t.Fatal(err)
	}
	const flood = maxQueuedLookups + 500
	var full, other atomic.Int64
	var wg sync.WaitGroup
	for range flood {
		wg.Go(func() {
			id := newTestID(t)
			_, ok, err := s.Get(ctx, id)
			switch {
			case err == nil || ok:
				other.Add(1)
			case errors.Is(err, redis.ErrAutoPipelineQueueFull):
				full.Add(1)
			case !errors.Is(err, context.DeadlineExceeded):
				t.Errorf("lookup on a stalled Redis: %v", err)
			}
			noID(t, err, id)
		})
	}
	wg.Wait()
	t.Logf("%d lookups on a stalled Redis: %d refused at once (queue full)", flood, full.Load())
	if other.Load() != 0 {
		t.Fatalf("%d lookups answered while Redis was paused", other.Load())
	}
	if full.Load() < flood-maxQueuedLookups {
		t.Fatalf("%d of %d lookups refused for a full queue, want at least %d", full.Load(), flood, flood-maxQueuedLookups)
	}
}
