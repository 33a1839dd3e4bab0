package consent

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// countingStore wraps a real store, counting Gets and optionally holding them or failing
// them. It is a wrapper around a working store, not a stand-in for one.
type countingStore struct {
	Store
	gets atomic.Int64
	// hold, if set, stops each Get after it has read the store: the Get sends a fresh
	// channel on hold and returns what it read once the test closes that channel.
	hold    chan chan struct{}
	failGet atomic.Pointer[error]
	failPut atomic.Pointer[error]
}

func (s *countingStore) Get(ctx context.Context, id string) (State, bool, error) {
	s.gets.Add(1)
	if err := s.failGet.Load(); err != nil {
		return State{}, false, *err
	}
	st, ok, err := s.Store.Get(ctx, id)
	if s.hold != nil {
		release := make(chan struct{})
		s.hold <- release
		<-release
	}
	return st, ok, err
}

func (s *countingStore) Put(ctx context.Context, id string, st State, ttl time.Duration, r Receipt) error {
	if err := s.failPut.Load(); err != nil {
		return *err
	}
	return s.Store.Put(ctx, id, st, ttl, r)
}

// observations counts Observe calls by source and result, without allocating.
type observations [2][3]atomic.Int64

func (o *observations) observe(s LookupSource, r LookupResult)   { o[s][r].Add(1) }
func (o *observations) get(s LookupSource, r LookupResult) int64 { return o[s][r].Load() }

type cacheFixture struct {
	c       *Cache
	backend *countingStore
	mem     *MemoryStore
	clk     *fakeClock
	obs     *observations
}

func newCacheFixture(t testing.TB, o CacheOptions) *cacheFixture {
	t.Helper()
	f := &cacheFixture{mem: NewMemoryStore(1000), clk: &fakeClock{}, obs: &observations{}}
	f.backend = &countingStore{Store: f.mem}
	o.now, o.Observe = f.clk.now, f.obs.observe
	f.c = NewCache(f.backend, o)
	t.Cleanup(func() { _ = f.c.Close() })
	return f
}

func (f *cacheFixture) get(t testing.TB, id string) (State, bool) {
	t.Helper()
	st, ok, err := f.c.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return st, ok
}

// wantGets checks the number of backend calls so far.
func (f *cacheFixture) wantGets(t testing.TB, want int64) {
	t.Helper()
	if got := f.backend.gets.Load(); got != want {
		t.Fatalf("backend Gets = %d, want %d", got, want)
	}
}

func TestCacheHitMissNegativeTTL(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{TTL: 5 * time.Second, NegativeTTL: time.Second})
	ctx := context.Background()

	// Not found is cached, briefly.
	if _, ok := f.get(t, tid("a")); ok {
		t.Fatal("found a state in an empty store")
	}
	f.wantGets(t, 1)
	f.get(t, tid("a"))
	f.wantGets(t, 1)
	f.clk.advance(time.Second) // NegativeTTL is over
	f.get(t, tid("a"))
	f.wantGets(t, 2)

	// A write through the cache drops the cached "not found" at once.
	if err := f.c.Put(ctx, tid("a"), testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	if st, ok := f.get(t, tid("a")); !ok || st.Version != 1 {
		t.Fatalf("Get after Put = %+v, %v; want version 1", st, ok)
	}
	f.wantGets(t, 3)
	f.get(t, tid("a"))
	f.wantGets(t, 3)

	// A write that bypasses the cache (another instance) is seen when the entry expires,
	// if no invalidation arrives: the TTL is the backstop.
	if err := f.mem.Put(ctx, tid("a"), testState(2), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.clk.advance(5*time.Second - time.Nanosecond)
	if st, _ := f.get(t, tid("a")); st.Version != 1 {
		t.Fatalf("version %d before the TTL, want the cached 1", st.Version)
	}
	f.clk.advance(time.Nanosecond)
	if st, _ := f.get(t, tid("a")); st.Version != 2 {
		t.Fatalf("version %d at the TTL, want 2 from the backend", st.Version)
	}
	f.wantGets(t, 4)

	// And at once with an invalidation.
	if err := f.mem.Put(ctx, tid("a"), testState(3), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.c.Invalidate(tid("a"))
	if st, _ := f.get(t, tid("a")); st.Version != 3 {
		t.Fatalf("version %d after Invalidate, want 3", st.Version)
	}
}

func TestCacheNegativeTTLDisabled(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{NegativeTTL: -1})
	f.get(t, tid("a"))
	f.get(t, tid("a"))
	f.wantGets(t, 2)
}

func TestCacheObserve(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{})
	if err := f.mem.Put(context.Background(), tid("present"), testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.get(t, tid("present")) // cache miss, store hit
	f.get(t, tid("present")) // cache hit
	f.get(t, tid("absent"))  // cache miss, store miss
	f.get(t, tid("absent"))  // cache hit (a cached "not found")
	fail := error(errors.New("backend down"))
	f.backend.failGet.Store(&fail)
	if _, _, err := f.c.Get(context.Background(), tid("other")); err == nil {
		t.Fatal("Get with a failing backend: no error")
	}
	for _, tc := range []struct {
		s    LookupSource
		r    LookupResult
		want int64
	}{
		{SourceCache, ResultHit, 2}, {SourceCache, ResultMiss, 3}, {SourceCache, ResultError, 0},
		{SourceStore, ResultHit, 1}, {SourceStore, ResultMiss, 1}, {SourceStore, ResultError, 1},
	} {
		if got := f.obs.get(tc.s, tc.r); got != tc.want {
			t.Errorf("Observe(%d, %d) called %d times, want %d", tc.s, tc.r, got, tc.want)
		}
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{})
	fail := error(errors.New("backend down"))
	f.backend.failGet.Store(&fail)
	for range 3 {
		if _, ok, err := f.c.Get(context.Background(), tid("a")); !errors.Is(err, fail) || ok {
			t.Fatalf("Get = %v, %v; want the backend's error", ok, err)
		}
	}
	f.wantGets(t, 3)
	f.backend.failGet.Store(nil)
	f.get(t, tid("a"))
	f.wantGets(t, 4)
}

func TestCacheSingleflight(t *testing.T) {
	// A bubble, so that synctest.Wait can tell when every Get is parked.
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		f := newCacheFixture(t, CacheOptions{})
		if err := f.mem.Put(context.Background(), tid("a"), testState(7), time.Hour, testReceipt); err != nil {
			t.Fatal(err)
		}
		f.backend.hold = make(chan chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				st, ok, err := f.c.Get(context.Background(), tid("a"))
				if err != nil || !ok || st.Version != 7 {
					errs <- errors.New("a concurrent Get did not see version 7")
				}
			})
		}
		release := <-f.backend.hold
		// Wait until every other Get is durably blocked: waiting on the call in flight
		// (singleflight's WaitGroup) or, had it not joined, holding a call of its own.
		synctest.Wait()
		if got := f.obs.get(SourceCache, ResultMiss); got != n {
			t.Errorf("%d cache misses with every Get parked, want %d", got, n)
		}
		calls := f.backend.gets.Load()
		close(release)
		for range calls - 1 {
			close(<-f.backend.hold) // a Get that started a call of its own: let it end
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if calls != 1 {
			t.Fatalf("%d concurrent misses made %d backend calls, want 1", n, calls)
		}
		f.wantGets(t, 1)
		if got := f.obs.get(SourceStore, ResultHit); got != 1 {
			t.Fatalf("Observe(SourceStore) called %d times for one backend call", got)
		}
	})
}

// A write that lands while a miss is being filled must not be hidden by the older
// answer for a whole TTL.
func TestCacheInvalidateDuringFill(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{TTL: time.Hour})
	ctx := context.Background()
	if err := f.mem.Put(ctx, tid("a"), testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.backend.hold = make(chan chan struct{})
	getAsync := func() chan State {
		out := make(chan State, 1)
		go func() {
			st, _, _ := f.c.Get(ctx, tid("a"))
			out <- st
		}()
		return out
	}
	first := getAsync()
	releaseFirst := <-f.backend.hold // it has read version 1 and not yet cached it
	if err := f.mem.Put(ctx, tid("a"), testState(2), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.c.Invalidate(tid("a"))
	// A Get after the invalidation does not join the older call: it asks again.
	second := getAsync()
	var releaseSecond chan struct{}
	select {
	case releaseSecond = <-f.backend.hold:
	case <-time.After(5 * time.Second):
		close(releaseFirst) // let the goroutines end
		t.Fatal("the Get after Invalidate joined the call that started before it")
	}
	close(releaseSecond)
	if st := <-second; st.Version != 2 {
		t.Fatalf("a Get after Invalidate saw version %d, want 2", st.Version)
	}
	// The older call finishes last; its answer is returned to its caller, who asked
	// before the write, but not cached over the newer one.
	close(releaseFirst)
	if st := <-first; st.Version != 1 {
		t.Fatalf("the first Get saw version %d, want 1", st.Version)
	}
	f.backend.hold = nil
	if st, _ := f.get(t, tid("a")); st.Version != 2 {
		t.Fatalf("cached version %d after the invalidated fill, want 2", st.Version)
	}
	f.wantGets(t, 2)
}

func TestCacheClear(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{})
	for i := range 10 {
		f.get(t, tid("id-"+strconv.Itoa(i)))
	}
	if f.c.Len() != 10 {
		t.Fatalf("Len = %d, want 10", f.c.Len())
	}
	f.c.Clear()
	if f.c.Len() != 0 {
		t.Fatalf("Len after Clear = %d, want 0", f.c.Len())
	}
	f.get(t, tid("id-0"))
	f.wantGets(t, 11)
}

func TestCacheWritesInvalidateEvenOnError(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{TTL: time.Hour})
	ctx := context.Background()
	if err := f.mem.Put(ctx, tid("a"), testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.get(t, tid("a"))
	// A write that fails may still have been applied (a timeout after the server got it):
	// the cached entry goes either way.
	fail := error(errors.New("timeout"))
	f.backend.failPut.Store(&fail)
	if err := f.c.Put(ctx, tid("a"), testState(2), time.Hour, testReceipt); !errors.Is(err, fail) {
		t.Fatalf("Put = %v, want the backend's error", err)
	}
	f.get(t, tid("a"))
	f.wantGets(t, 2)

	if ok, err := f.c.Delete(ctx, tid("a"), testReceipt); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, ok := f.get(t, tid("a")); ok {
		t.Fatal("Get after Delete through the cache found the state")
	}
	f.backend.failPut.Store(nil)
	if err := f.c.Put(ctx, tid("a"), testState(3), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	f.get(t, tid("a"))
	if ok, err := f.c.Erase(ctx, tid("a")); err != nil || !ok {
		t.Fatalf("Erase = %v, %v", ok, err)
	}
	if _, ok := f.get(t, tid("a")); ok {
		t.Fatal("Get after Erase through the cache found the state")
	}
}

func TestCacheBound(t *testing.T) {
	const bound = 100
	f := newCacheFixture(t, CacheOptions{MaxEntries: bound})
	for i := range 20 * bound {
		f.get(t, tid("id-"+strconv.Itoa(i)))
		if n := f.c.Len(); n > bound {
			t.Fatalf("after %d Gets Len = %d > %d", i+1, n, bound)
		}
	}
}

func TestCacheClose(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{})
	f.get(t, tid("a"))
	if err := f.c.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := f.c.Get(ctx, tid("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed (not the cached answer)", err)
	}
	if err := f.c.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close = %v: Close must close the backend", err)
	}
	if got := f.obs.get(SourceCache, ResultError); got != 1 {
		t.Fatalf("Observe(SourceCache, ResultError) = %d after a Get on a closed cache, want 1", got)
	}
	f.c.Invalidate(tid("a")) // must not panic on a closed cache
	f.c.Clear()
}

func TestCacheGetHitAllocs(t *testing.T) {
	f := newCacheFixture(t, CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour})
	if err := f.mem.Put(context.Background(), tid("present"), testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{tid("present"), tid("absent")} {
		f.get(t, id) // fill
		allocs := testing.AllocsPerRun(1000, func() {
			_, _, _ = f.c.Get(ctx, id)
		})
		if allocs != 0 {
			t.Errorf("cached Get(%q) allocates %v times per call, want 0", id, allocs)
		}
	}
	f.wantGets(t, 2)
}

func BenchmarkCacheGetHit(b *testing.B) {
	mem, ids := benchStore(b, 100_000)
	var obs observations
	c := NewCache(mem, CacheOptions{TTL: time.Hour, MaxEntries: 200_000, Observe: obs.observe})
	ctx := context.Background()
	for _, id := range ids {
		if _, _, err := c.Get(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, _ := c.Get(ctx, ids[i%len(ids)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkCacheGetHitParallel(b *testing.B) {
	mem, ids := benchStore(b, 100_000)
	var obs observations
	c := NewCache(mem, CacheOptions{TTL: time.Hour, MaxEntries: 200_000, Observe: obs.observe})
	ctx := context.Background()
	for _, id := range ids {
		if _, _, err := c.Get(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919))
		for pb.Next() {
			if _, ok, _ := c.Get(ctx, ids[i%len(ids)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}
