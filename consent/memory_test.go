package consent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// fakeClock is a clock the tests move by hand; it is safe for concurrent use.
type fakeClock struct{ off atomic.Int64 }

var clockBase = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *fakeClock) now() time.Time          { return clockBase.Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// tid is a consent ID named for a test: the same name gives the same ID.
func tid(name string) string {
	sum := sha256.Sum256([]byte(name))
	return base64.RawURLEncoding.EncodeToString(sum[:idBytes])
}

func newTestStore(t *testing.T, maxEntries int) (*MemoryStore, *fakeClock) {
	t.Helper()
	s := NewMemoryStore(maxEntries)
	clk := &fakeClock{}
	s.now = clk.now
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

// storeHelpers returns closures that fail the test on a store error.
func storeHelpers(t *testing.T, s Store) (
	get func(id string) (State, bool),
	put func(id string, st State, ttl time.Duration),
	del func(id string) bool,
) {
	ctx := context.Background()
	get = func(id string) (State, bool) {
		t.Helper()
		st, ok, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return st, ok
	}
	put = func(id string, st State, ttl time.Duration) {
		t.Helper()
		if err := s.Put(ctx, id, st, ttl, testReceipt); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	del = func(id string) bool {
		t.Helper()
		ok, err := s.Delete(ctx, id, testReceipt)
		if err != nil {
			t.Fatalf("Delete: %v", err)
		}
		return ok
	}
	return get, put, del
}

func testState(v int64) State {
	return State{
		Purposes: Purposes{Necessary: Granted, Statistics: Granted, Marketing: Denied},
		Source:   "api",
		Version:  v,
		Created:  clockBase,
		Updated:  clockBase.Add(time.Duration(v) * time.Second),
	}
}

// testReceipt is what the tests pass to Put and Delete; the stores fill in the rest.
var testReceipt = Receipt{Source: "api", UAHash: UAHash([]byte("Mozilla/5.0 (X11; Linux x86_64) test"))}

func TestMemoryStorePutGetDelete(t *testing.T) {
	s, _ := newTestStore(t, 100)
	get, put, del := storeHelpers(t, s)

	if _, ok := get(tid("a")); ok {
		t.Fatal("Get on an empty store found something")
	}
	put(tid("a"), testState(1), time.Hour)
	put(tid("b"), testState(2), time.Hour)
	if st, ok := get(tid("a")); !ok || st != testState(1) {
		t.Fatalf("Get(a) = %+v, %v; want %+v", st, ok, testState(1))
	}
	put(tid("a"), testState(3), time.Hour) // overwrite
	if st, ok := get(tid("a")); !ok || st.Version != 3 {
		t.Fatalf("Get(a) after overwrite = version %d, %v; want 3", st.Version, ok)
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	if !del(tid("a")) {
		t.Fatal("Delete(a) = false, want true")
	}
	if del(tid("a")) {
		t.Fatal("second Delete(a) = true, want false")
	}
	if _, ok := get(tid("a")); ok {
		t.Fatal("Get(a) after Delete found it")
	}
	if st, ok := get(tid("b")); !ok || st.Version != 2 {
		t.Fatalf("Get(b) = %+v, %v; want version 2", st, ok)
	}
}

// TestMemoryStoreRefusesNonIDs: the store keys IDs by the bytes they encode, so it
// takes only IDs of NewID's shape, as the proxy does; anything else is refused by every
// call, with an error that does not repeat it.
func TestMemoryStoreRefusesNonIDs(t *testing.T) {
	s, _ := newTestStore(t, 10)
	ctx := context.Background()
	valid := tid("a")
	for _, id := range []string{"", "not-an-id", "request-memory-id", valid[:21], valid + "A", valid[:21] + "B", valid[:21] + "=", valid[:20] + "=="} {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, errNotID) {
				t.Errorf("%s(%q) = %v, want errNotID", op, id, err)
			}
			if id != "" {
				noID(t, err, id)
			}
		}
		_, _, err := s.Get(ctx, id)
		check("Get", err)
		_, _, err = s.GetFresh(ctx, id)
		check("GetFresh", err)
		check("Put", s.Put(ctx, id, testState(1), time.Hour, testReceipt))
		_, err = s.Delete(ctx, id, testReceipt)
		check("Delete", err)
		_, err = s.Erase(ctx, id)
		check("Erase", err)
		_, err = s.History(ctx, id)
		check("History", err)
	}
	if s.Len() != 0 || s.receiptIDs() != 0 {
		t.Fatalf("the store holds %d states and %d receipt trails after refusing every call", s.Len(), s.receiptIDs())
	}
}

// TestMemoryStoreHugeTTL: a TTL past the expiry clock's range keeps the state (and the
// cache's entry) for good rather than wrapping into the past.
func TestMemoryStoreHugeTTL(t *testing.T) {
	s, clk := newTestStore(t, 10)
	get, put, _ := storeHelpers(t, s)
	// The clock past the store's epoch (the real time it was made), so that at + TTL
	// would overflow.
	clk.advance(time.Since(clockBase) + time.Hour)
	put(tid("forever"), testState(1), math.MaxInt64)
	clk.advance(100 * 365 * 24 * time.Hour)
	if _, ok := get(tid("forever")); !ok {
		t.Fatal("a state stored for the longest TTL expired")
	}
	c := NewCache(s, CacheOptions{TTL: math.MaxInt64, now: clk.now})
	clk.advance(time.Second) // past the cache's epoch too
	for range 2 {
		if _, ok, err := c.Get(context.Background(), tid("forever")); err != nil || !ok {
			t.Fatalf("cache Get = %v, %v", ok, err)
		}
	}
	if c.Len() != 1 {
		t.Fatal("the cache did not keep the entry")
	}
}

func TestMemoryStorePutRejectsBadTTL(t *testing.T) {
	s, _ := newTestStore(t, 10)
	for _, ttl := range []time.Duration{0, -time.Second} {
		err := s.Put(context.Background(), tid("a"), testState(1), ttl, testReceipt)
		if err == nil || !strings.Contains(err.Error(), "ttl must be positive") {
			t.Errorf("Put ttl=%v: err = %v, want ttl must be positive", ttl, err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after rejected puts, want 0", s.Len())
	}
}

func TestMemoryStoreTTL(t *testing.T) {
	s, clk := newTestStore(t, 100)
	get, put, del := storeHelpers(t, s)

	put(tid("short"), testState(1), time.Minute)
	put(tid("long"), testState(2), time.Hour)
	put(tid("gone"), testState(3), time.Minute)

	clk.advance(time.Minute - time.Nanosecond)
	if _, ok := get(tid("short")); !ok {
		t.Fatal("short expired before its TTL")
	}
	clk.advance(time.Nanosecond) // exactly at the deadline: expired
	if _, ok := get(tid("short")); ok {
		t.Fatal("short still there at its TTL")
	}
	if _, ok := get(tid("long")); !ok {
		t.Fatal("long expired early")
	}
	if del(tid("gone")) {
		t.Fatal("Delete of an expired entry reported true")
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1: expired entries met by Get/Delete are removed", n)
	}

	// A Put refreshes the TTL.
	put(tid("long"), testState(4), time.Hour)
	clk.advance(59 * time.Minute)
	if st, ok := get(tid("long")); !ok || st.Version != 4 {
		t.Fatalf("refreshed entry: %+v, %v", st, ok)
	}
}

func TestMemoryStoreBound(t *testing.T) {
	for _, bound := range []int{1, 2, 15, 16, 63, 64, 100, 1000, 4103} {
		t.Run(strconv.Itoa(bound), func(t *testing.T) {
			s, clk := newTestStore(t, bound)
			_, put, _ := storeHelpers(t, s)
			for i := range 10 * bound {
				put(tid(fmt.Sprintf("id-%d", i)), testState(int64(i)), time.Duration(1+i%7)*time.Minute)
				if i%97 == 0 {
					clk.advance(time.Second)
				}
				if bound < 100 || i%bound == 0 {
					if n := s.Len(); n > bound {
						t.Fatalf("after %d puts Len = %d > limit %d", i+1, n, bound)
					}
				}
			}
			if n := s.Len(); n > bound || n < bound/2 {
				t.Fatalf("final Len = %d, want in [%d, %d]", n, bound/2, bound)
			}
		})
	}
}

func TestMemoryStoreEviction(t *testing.T) {
	// 16 entries fit one shard and one eviction sample, so the choice is deterministic.
	const bound = 16
	ids := func(prefix string) []string {
		out := make([]string, bound)
		for i := range out {
			out[i] = tid(fmt.Sprintf("%s-%d", prefix, i))
		}
		return out
	}
	t.Run("expired first", func(t *testing.T) {
		s, clk := newTestStore(t, bound)
		get, put, _ := storeHelpers(t, s)
		for _, id := range ids("old") {
			put(id, testState(1), time.Minute)
		}
		clk.advance(2 * time.Minute)
		for _, id := range ids("new") {
			put(id, testState(2), time.Hour)
		}
		for _, id := range ids("new") {
			if _, ok := get(id); !ok {
				t.Errorf("%s was evicted while expired entries were there", id)
			}
		}
	})
	t.Run("closest to expiry", func(t *testing.T) {
		s, _ := newTestStore(t, bound)
		get, put, _ := storeHelpers(t, s)
		for i, id := range ids("e") {
			put(id, testState(int64(i)), time.Duration(bound-i)*time.Minute) // e-15 expires first
		}
		put(tid("newcomer"), testState(99), time.Hour)
		if _, ok := get(tid("e-15")); ok {
			t.Error("e-15, the entry closest to expiry, was not evicted")
		}
		for _, id := range append(ids("e")[:bound-1], tid("newcomer")) {
			if _, ok := get(id); !ok {
				t.Errorf("%s was evicted instead of e-15", id)
			}
		}
	})
	t.Run("overwrite does not evict", func(t *testing.T) {
		s, _ := newTestStore(t, bound)
		get, put, _ := storeHelpers(t, s)
		for _, id := range ids("e") {
			put(id, testState(1), time.Hour)
		}
		put(tid("e-3"), testState(2), time.Hour)
		for _, id := range ids("e") {
			if _, ok := get(id); !ok {
				t.Errorf("%s was evicted by an overwrite of a present key", id)
			}
		}
	})
}

func TestMemoryStoreCopiesID(t *testing.T) {
	s, _ := newTestStore(t, 10)
	get, put, _ := storeHelpers(t, s)
	id := tid("request-memory-id")
	buf := []byte(id)
	src := []byte("api-from-request")
	st := testState(1)
	st.Source = unsafe.String(&src[0], len(src))
	put(unsafe.String(&buf[0], len(buf)), st, time.Hour)
	copy(buf, strings.Repeat("X", len(buf))) // the request buffer is reused
	copy(src, "XXXXXXXXXXXXXXXX")
	got, ok := get(id)
	if !ok {
		t.Fatal("entry lost when the caller's buffer was reused: Put must copy the id")
	}
	if got.Source != "api-from-request" {
		t.Fatalf("Source = %q: Put must copy it", got.Source)
	}
}

func TestMemoryStoreClose(t *testing.T) {
	s, _ := newTestStore(t, 10)
	ctx := context.Background()
	_, put, _ := storeHelpers(t, s)
	put(tid("a"), testState(1), time.Hour)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, _, err := s.Get(ctx, tid("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := s.Put(ctx, tid("a"), testState(1), time.Hour, testReceipt); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Delete(ctx, tid("a"), testReceipt); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Erase(ctx, tid("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Erase after Close: %v, want ErrClosed", err)
	}
	if _, err := s.History(ctx, tid("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("History after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
}

func TestNewMemoryStoreRejectsZero(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "maxEntries must be at least 1") {
			t.Fatalf("NewMemoryStore(0) recovered %v, want a panic naming maxEntries", r)
		}
	}()
	NewMemoryStore(0)
}

func TestMemoryStoreConcurrent(t *testing.T) {
	const bound, workers, ops = 256, 8, 3000
	s, clk := newTestStore(t, bound)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ops {
				id := tid("id-" + strconv.Itoa((i*7+w*13)%600)) // overlapping keys across workers
				var err error
				switch i % 7 {
				case 0, 1:
					err = s.Put(ctx, id, testState(int64(i)), time.Duration(1+i%3)*time.Second, testReceipt)
				case 2, 3:
					_, _, err = s.Get(ctx, id)
				case 4:
					_, err = s.Delete(ctx, id, testReceipt)
				case 5:
					_, err = s.History(ctx, id)
				case 6:
					if i%3 == 0 {
						_, err = s.Erase(ctx, id)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				if i%500 == 0 {
					clk.advance(time.Second)
					if n := s.Len(); n > bound {
						errs <- fmt.Errorf("Len = %d > limit %d", n, bound)
						return
					}
					if n := s.receiptIDs(); n > bound {
						errs <- fmt.Errorf("IDs with receipts = %d > limit %d", n, bound)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Len(); n > bound {
		t.Fatalf("Len = %d > limit %d", n, bound)
	}
}

func TestMemoryStoreGetAllocs(t *testing.T) {
	s, _ := newTestStore(t, 1000)
	_, put, _ := storeHelpers(t, s)
	put(tid("present"), testState(1), time.Hour)
	ctx := context.Background()
	for _, id := range []string{tid("present"), tid("absent")} {
		allocs := testing.AllocsPerRun(1000, func() {
			_, _, _ = s.Get(ctx, id)
		})
		if allocs != 0 {
			t.Errorf("Get(%q) allocates %v times per call, want 0", id, allocs)
		}
	}
}

func benchStore(b *testing.B, n int) (*MemoryStore, []string) {
	b.Helper()
	// Room to spare: shards are bounded one by one, so a store filled to exactly its
	// bound would already have evicted some of these IDs from the fuller shards.
	s := NewMemoryStore(2 * n)
	b.Cleanup(func() { _ = s.Close() })
	ids := make([]string, n)
	for i := range ids {
		id, err := NewID()
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
		if err := s.Put(context.Background(), id, testState(int64(i)), time.Hour, testReceipt); err != nil {
			b.Fatal(err)
		}
	}
	return s, ids
}

func BenchmarkMemoryStoreGet(b *testing.B) {
	s, ids := benchStore(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, _ := s.Get(ctx, ids[i%len(ids)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkMemoryStoreGetParallel(b *testing.B) {
	s, ids := benchStore(b, 100_000)
	ctx := context.Background()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(7919))
		for pb.Next() {
			if _, ok, _ := s.Get(ctx, ids[i%len(ids)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkMemoryStorePut(b *testing.B) {
	s, _ := benchStore(b, 10_000)
	ctx := context.Background()
	for range 10_000 { // fill the store, so that every Put of a new ID evicts
		if err := s.Put(ctx, newTestID(b), testState(1), time.Hour, testReceipt); err != nil {
			b.Fatal(err)
		}
	}
	extra := make([]string, 10_000)
	for i := range extra {
		extra[i] = newTestID(b)
	}
	st := testState(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(ctx, extra[i%len(extra)], st, time.Hour, testReceipt); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestMemoryStoreReceiptsCapped(t *testing.T) {
	s, _ := newTestStore(t, 10)
	_, put, _ := storeHelpers(t, s)
	const writes = DefaultReceiptsMaxLen + 150
	for v := int64(1); v <= writes; v++ {
		put(tid("a"), testState(v), time.Hour)
	}
	rs, err := s.History(context.Background(), tid("a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != DefaultReceiptsMaxLen {
		t.Fatalf("%d receipts kept, want the cap %d", len(rs), DefaultReceiptsMaxLen)
	}
	// The oldest are dropped: what is left is the last writes, in order.
	for i, r := range rs {
		if want := int64(writes - DefaultReceiptsMaxLen + 1 + i); r.Version != want {
			t.Fatalf("receipt %d has version %d, want %d", i, r.Version, want)
		}
	}
}

func TestMemoryStoreReceiptsTTL(t *testing.T) {
	s, clk := newTestStore(t, 10)
	_, put, del := storeHelpers(t, s)
	ctx := context.Background()
	history := func() []Receipt {
		t.Helper()
		rs, err := s.History(ctx, tid("a"))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	put(tid("a"), testState(1), time.Hour)
	clk.advance(DefaultReceiptsTTL - time.Second)
	del(tid("a")) // an append restarts the receipts' TTL, as PEXPIRE does in Redis
	clk.advance(DefaultReceiptsTTL - time.Second)
	if rs := history(); len(rs) != 2 {
		t.Fatalf("%d receipts after a refreshed TTL, want 2", len(rs))
	}
	clk.advance(time.Second)
	if rs := history(); len(rs) != 0 {
		t.Fatalf("%d receipts after the TTL since the last append, want 0", len(rs))
	}
}

func TestMemoryStoreReceiptIDsBounded(t *testing.T) {
	const bound = 64
	s, _ := newTestStore(t, bound)
	_, _, del := storeHelpers(t, s)
	// Withdrawals of unknown IDs still leave receipts: they must not grow without bound.
	for i := range 10 * bound {
		del(tid("id-" + strconv.Itoa(i)))
	}
	if n := s.receiptIDs(); n > bound {
		t.Fatalf("%d IDs with receipts, want at most %d", n, bound)
	}
}

func TestMemoryStoreReceiptCopiesStrings(t *testing.T) {
	s, _ := newTestStore(t, 10)
	src := []byte("api-from-request")
	r := testReceipt
	r.Source = unsafe.String(&src[0], len(src))
	if err := s.Put(context.Background(), tid("a"), testState(1), time.Hour, r); err != nil {
		t.Fatal(err)
	}
	copy(src, "XXXXXXXXXXXXXXXX")
	rs, err := s.History(context.Background(), tid("a"))
	if err != nil || len(rs) != 1 {
		t.Fatalf("History = %v, %v", rs, err)
	}
	if rs[0].Source != "api-from-request" {
		t.Fatalf("receipt Source = %q: Put must copy it", rs[0].Source)
	}
}
