package consent

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// redisLikeState is a state as the Redis store returns it for a visitor who accepted
// everything through the consent API: times in whole milliseconds, UTC, source "api".
func redisLikeState(i int) State {
	t := time.UnixMilli(clockBase.UnixMilli() + int64(i)).UTC()
	return State{Purposes: Purposes{Granted, Granted, Granted, Granted}, Source: "api", Version: 1, Created: t, Updated: t}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC() // the first may leave finalisers and swept spans behind
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// cacheBytesPerVisitor fills a cache with n visitors (each a Get, as hits fill it) and
// returns what the cache's heap grew by, per visitor. The backend is filled first and
// left out of the measure.
func cacheBytesPerVisitor(tb testing.TB, n int) float64 {
	tb.Helper()
	mem := NewMemoryStore(n + n/4)
	defer mem.Close()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newTestID(tb)
		if err := mem.Put(ctx, ids[i], redisLikeState(i), time.Hour, testReceipt); err != nil {
			tb.Fatal(err)
		}
	}
	before := heapInUse()
	c := NewCache(mem, CacheOptions{TTL: time.Hour, MaxEntries: n + n/4, MaxBytes: 1 << 30})
	for _, id := range ids {
		if _, ok, err := c.Get(ctx, id); err != nil || !ok {
			tb.Fatalf("Get = %v, %v", ok, err)
		}
	}
	after := heapInUse()
	if got := c.Len(); got != n {
		tb.Fatalf("the cache holds %d visitors, want %d", got, n)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(ids)
	return (float64(after) - float64(before)) / float64(n)
}

// memoryStoreBytesPerVisitor is the same for the memory store: n visitors, each with a
// state and the receipt of the write that stored it.
func memoryStoreBytesPerVisitor(tb testing.TB, n int) float64 {
	tb.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newTestID(tb)
	}
	ctx := context.Background()
	before := heapInUse()
	s := NewMemoryStoreWith(MemoryOptions{MaxEntries: n + n/4, MaxBytes: 1 << 32})
	for i, id := range ids {
		if err := s.Put(ctx, id, redisLikeState(i), time.Hour, testReceipt); err != nil {
			tb.Fatal(err)
		}
	}
	after := heapInUse()
	if got := s.Len(); got != n {
		tb.Fatalf("the store holds %d visitors, want %d", got, n)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(ids)
	return (float64(after) - float64(before)) / float64(n)
}

// TestBytesPerVisitor holds what a visitor costs the heap to the fixed-size entries:
// a cached visitor about 65 bytes, a visitor in the memory store (its state and one
// receipt) about 197, at 200,000 visitors. (Before the entries were packed: 203 and 479.)
// The bounds leave room for the maps' growth steps; BenchmarkSizing* in deploy/ gives
// the figures.
func TestBytesPerVisitor(t *testing.T) {
	const visitors = 200_000
	for _, tc := range []struct {
		name    string
		measure func(testing.TB, int) float64
		max     float64
	}{
		{"cache", cacheBytesPerVisitor, 100},
		{"memory store", memoryStoreBytesPerVisitor, 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.measure(t, visitors)
			t.Logf("%.1f bytes per visitor over %d visitors", got, visitors)
			if got > tc.max {
				t.Errorf("%.1f bytes per visitor, want at most %.0f", got, tc.max)
			}
		})
	}
}
