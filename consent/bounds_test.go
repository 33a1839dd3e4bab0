package consent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/redistest"
)

// bigTC is a TC string padded, as the API would refuse, to the size of a long one: what a
// client stores to make every entry weigh kilobytes. The stores do not decode it.
var bigTC = validTC + strings.Repeat("A", 4000)

// TestMemoryStoreByteBound: a flood of IDs each carrying a 4 KB TC string (and a receipt
// with it) stays under MaxBytes, however many entries MaxEntries would allow.
func TestMemoryStoreByteBound(t *testing.T) {
	const maxBytes = 16 << 20
	s := NewMemoryStoreWith(MemoryOptions{MaxEntries: 1_000_000, MaxBytes: maxBytes})
	ctx := context.Background()
	for range 20_000 { // ~ 8 KB each with its receipt: 160 MB unbounded
		st := State{Purposes: Purposes{Marketing: Granted}, TCF: bigTC, Source: "api", Version: 1}
		if err := s.Put(ctx, newTestID(t), st, time.Hour, Receipt{}); err != nil {
			t.Fatal(err)
		}
		if b := s.Bytes(); b > maxBytes {
			t.Fatalf("the store holds %d bytes, over its bound of %d", b, maxBytes)
		}
	}
	if n := s.Len(); n > maxBytes/2/len(bigTC) {
		t.Errorf("%d states kept, more than fit in half of %d bytes", n, maxBytes)
	}
	// Ordinary states still fit by the thousand.
	if s.Len() < 1000 {
		t.Errorf("only %d states kept", s.Len())
	}
	checkMapInvariants(t, s.states)
	checkMapInvariants(t, s.receipts)
}

// TestCacheByteBound: the cache in front of Redis is bounded by bytes too.
func TestCacheByteBound(t *testing.T) {
	backend := NewMemoryStore(100_000)
	const maxBytes = 1 << 20
	c := NewCache(backend, CacheOptions{MaxEntries: 100_000, MaxBytes: maxBytes})
	ctx := context.Background()
	for range 2000 {
		id := newTestID(t)
		if err := backend.Put(ctx, id, State{TCF: bigTC, Version: 1}, time.Hour, Receipt{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
		if b := c.Bytes(); b > maxBytes {
			t.Fatalf("the cache holds %d bytes, over its bound of %d", b, maxBytes)
		}
	}
	if c.Len() == 0 || c.Bytes() == 0 {
		t.Error("the cache holds nothing")
	}
	checkMapInvariants(t, c.entries)
	// Invalidate and Clear give the bytes back.
	c.Clear()
	if b := c.Bytes(); b != 0 {
		t.Errorf("a cleared cache weighs %d bytes", b)
	}
}

// TestReceiptsByteBound: one ID rewritten in a loop with a 4 KB TC string keeps at most
// ReceiptsMaxBytes of receipts, the newest ones, in the memory store and in Redis alike.
func TestReceiptsByteBound(t *testing.T) {
	const maxBytes = 32 << 10
	srv := redistest.Start(t)
	stores := map[string]Store{
		"memory": NewMemoryStoreWith(MemoryOptions{MaxEntries: 1000, ReceiptsMaxBytes: maxBytes}),
		"redis":  newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) { o.ReceiptsMaxBytes = maxBytes }),
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			id := newTestID(t)
			const writes = 40
			for v := 1; v <= writes; v++ {
				tc := ""
				if v%2 == 0 {
					tc = bigTC
				}
				st := State{Purposes: Purposes{Marketing: Denied}, TCF: tc, Source: "api", Version: int64(v)}
				if err := s.Put(ctx, id, st, time.Hour, Receipt{UAHash: UAHash([]byte("ua"))}); err != nil {
					t.Fatal(err)
				}
			}
			rs, err := s.History(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for i := range rs {
				total += ReceiptSize(&rs[i])
			}
			if total > maxBytes {
				t.Errorf("%d receipts of %d bytes, over the bound of %d", len(rs), total, maxBytes)
			}
			if len(rs) == 0 || rs[len(rs)-1].Version != writes {
				t.Fatalf("the newest receipt is not kept: %d receipts", len(rs))
			}
			// Nothing but the oldest went: the versions kept are the last ones, in order.
			for i := range rs {
				if want := int64(writes - len(rs) + 1 + i); rs[i].Version != want {
					t.Errorf("receipt %d has version %d, want %d", i, rs[i].Version, want)
				}
			}
			// One more receipt would not have fitted: the trim takes no more than it must.
			if len(rs) < writes {
				next := Receipt{Action: ActionConsent, Purposes: Purposes{Marketing: Denied}, Source: "api",
					Version: int64(writes - len(rs)), TCF: bigTC, UAHash: UAHash([]byte("ua")), Time: rs[0].Time}
				if (writes-len(rs))%2 == 1 {
					next.TCF = ""
				}
				if total+ReceiptSize(&next) <= maxBytes {
					t.Errorf("receipt version %d was trimmed though %d + %d bytes fit in %d", next.Version, total, ReceiptSize(&next), maxBytes)
				}
			}
			if ms, ok := s.(*MemoryStore); ok { // the trail was shifted in place: still weighed right
				checkMapInvariants(t, ms.receipts)
				checkMapInvariants(t, ms.states)
			}
		})
	}
}

// TestReceiptSizeMatchesRedis: ReceiptSize is what Redis holds in the stream's fields,
// which the trim script sums; so the two stores trim alike.
func TestReceiptSizeMatchesRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, []string{srv.Addr}, nil)
	ctx := context.Background()
	id := newTestID(t)
	st := State{Purposes: Purposes{Statistics: Granted, Marketing: Denied}, TCF: validTC, Source: "backend", Version: 12345}
	if err := s.Put(ctx, id, st, time.Hour, Receipt{UAHash: UAHash([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	msgs, err := inspector(t, []string{srv.Addr}, false).XRange(ctx, s.receiptsKey(id), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d receipts, %v", len(msgs), err)
	}
	n := 0
	for k, v := range msgs[0].Values {
		n += len(k) + len(v.(string))
	}
	rs, err := s.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := ReceiptSize(&rs[0]); got != n {
		t.Errorf("ReceiptSize = %d, Redis holds %d bytes of fields and values", got, n)
	}
}

// TestGetFreshBudget: the read before a write has the write budget, so a Redis slower
// than a hit's budget does not fail a consent write (issue 11: 0.03-0.4 % of saves
// answered 503 against a healthy Redis), while Get still gives up at the hit's budget.
func TestGetFreshBudget(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) {
		o.Timeout, o.WriteTimeout = 50*time.Millisecond, 10*time.Second
	})
	c := NewCache(s, CacheOptions{})
	ctx := context.Background()
	id := newTestID(t)
	if err := s.Put(ctx, id, State{Purposes: Purposes{Marketing: Denied}, Version: 4}, time.Hour, Receipt{}); err != nil {
		t.Fatal(err)
	}
	// Redis holds every client's commands for a while, as a busy server would.
	if _, err := redistest.Do(srv.Addr, "CLIENT", "PAUSE", "500", "ALL"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, id); err == nil {
		t.Fatal("Get waited past the hit's budget")
	}
	st, ok, err := c.GetFresh(ctx, id)
	if err != nil || !ok || st.Version != 4 {
		t.Fatalf("GetFresh = %+v, %v, %v; want the state within the write budget", st, ok, err)
	}
}
