package deploy

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/redistest"
)

// The sizing figures of deploy/README.md: memory per visitor in the proxy (the Redis
// store's local cache, the memory store) and in Redis (a consent record with its
// receipts). Each benchmark fills a store with sizingVisitors visitors once, whatever
// b.N is, and reports bytes per visitor: the heap (or Redis's used_memory) grown from
// before the store was made, so the maps' slots allocated up front are shared among the
// visitors as they are on a full instance. The bounds are twice that, so no shard evicts
// (an evicted visitor would be counted and cost nothing). Run them with
//
//	go test -run '^$' -bench Sizing -benchtime 1x ./deploy/

const (
	sizingVisitors      = 100_000
	sizingRedisVisitors = 10_000 // a round trip each, on a shared machine
)

// sizingState is a typical choice: all four purposes answered through the banner.
func sizingState(tcf string) consent.State {
	var st consent.State
	for p := range consent.NumPurposes {
		st.Purposes[p] = consent.Granted
	}
	st.Purposes[consent.NumPurposes-1] = consent.Denied
	st.Source, st.Version, st.TCF = "api", 1, tcf
	// As the consent API writes them: UTC, no monotonic reading (Redis keeps milliseconds).
	st.Created = time.Now().UTC()
	st.Updated = st.Created
	return st
}

// sizingTCF stands in for an IAB TC string of a CMP with a few hundred vendors: the
// stores keep it as it came.
var sizingTCF = "CQ" + strings.Repeat("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_", 8)

func sizingIDs(b *testing.B) []string {
	ids := make([]string, sizingVisitors)
	for i := range ids {
		id, err := consent.NewID()
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func receipt() consent.Receipt {
	return consent.Receipt{Source: "api", UAHash: strings.Repeat("ab", 16)}
}

// BenchmarkSizingCachePerVisitor: the local cache in front of Redis (consent.cache.*),
// what one cached visitor costs an instance.
func BenchmarkSizingCachePerVisitor(b *testing.B) {
	for _, tc := range []struct{ name, tcf string }{{"plain", ""}, {"tcf", sizingTCF}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			ids := sizingIDs(b)
			backend := consent.NewMemoryStore(2 * sizingVisitors)
			// Redis answers with a string of its own for each lookup; the memory store
			// would hand the cache the one it holds.
			copying := copyingStore{backend}
			st := sizingState(tc.tcf)
			for _, id := range ids {
				if err := backend.Put(ctx, id, st, time.Hour, receipt()); err != nil {
					b.Fatal(err)
				}
			}
			var perVisitor float64
			for range b.N {
				before := heapInUse()
				cache := consent.NewCache(copying, consent.CacheOptions{TTL: time.Hour, MaxEntries: 2 * sizingVisitors})
				for _, id := range ids {
					if _, ok, err := cache.Get(ctx, id); err != nil || !ok {
						b.Fatalf("cache get: %v %v", ok, err)
					}
				}
				perVisitor = float64(heapInUse()-before) / sizingVisitors
				runtime.KeepAlive(cache)
			}
			b.ReportMetric(perVisitor, "B/visitor")
		})
	}
}

// BenchmarkSizingMemoryStorePerVisitor: consent.store memory, a state and one receipt.
func BenchmarkSizingMemoryStorePerVisitor(b *testing.B) {
	for _, tc := range []struct{ name, tcf string }{{"plain", ""}, {"tcf", sizingTCF}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			ids := sizingIDs(b)
			st := sizingState(tc.tcf)
			var perVisitor float64
			for range b.N {
				before := heapInUse()
				store := consent.NewMemoryStore(2 * sizingVisitors)
				for _, id := range ids {
					if err := store.Put(ctx, id, st, time.Hour, receipt()); err != nil {
						b.Fatal(err)
					}
				}
				perVisitor = float64(heapInUse()-before) / sizingVisitors
				runtime.KeepAlive(store)
			}
			b.ReportMetric(perVisitor, "B/visitor")
		})
	}
}

// BenchmarkSizingRedisPerVisitor: a consent record in Redis (the state hash and the
// receipts stream, consent/REDIS.md), by Redis's own used_memory, with one receipt
// (one write) and with ten (a visitor who changed their mind nine times). Redis (6.2 and
// later) allocates a stream's first node at stream-node-max-bytes, 4 KiB by default, and
// shrinks it only once the node is full: so the receipts cost about the same for one
// entry as for twenty, and a smaller stream-node-max-bytes saves most of it.
func BenchmarkSizingRedisPerVisitor(b *testing.B) {
	for _, tc := range []struct {
		name         string
		tcf          string
		receipts     int
		nodeMaxBytes string // stream-node-max-bytes; "" the default
	}{
		{"plain/1receipt", "", 1, ""},
		{"plain/10receipts", "", 10, ""},
		{"tcf/1receipt", sizingTCF, 1, ""},
		{"plain/1receipt/node1024", "", 1, "1024"},
		{"plain/10receipts/node1024", "", 10, "1024"},
		{"tcf/1receipt/node1024", sizingTCF, 1, "1024"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			var perVisitor float64
			for range b.N {
				srv := redistest.Start(b)
				if tc.nodeMaxBytes != "" {
					if _, err := redistest.Do(srv.Addr, "CONFIG", "SET", "stream-node-max-bytes", tc.nodeMaxBytes); err != nil {
						b.Fatal(err)
					}
				}
				store, err := consent.NewRedisStore(consent.RedisOptions{Addrs: []string{srv.Addr}, WriteTimeout: 10 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				ids := sizingIDs(b)[:sizingRedisVisitors]
				st := sizingState(tc.tcf)
				before := redisUsedMemory(b, srv.Addr)
				for _, id := range ids {
					for range tc.receipts {
						if err := store.Put(ctx, id, st, 395*24*time.Hour, receipt()); err != nil {
							b.Fatal(err)
						}
					}
				}
				perVisitor = float64(redisUsedMemory(b, srv.Addr)-before) / sizingRedisVisitors
				store.Close()
				srv.Stop()
			}
			b.ReportMetric(perVisitor, "B/visitor")
		})
	}
}

func redisUsedMemory(b *testing.B, addr string) int64 {
	b.Helper()
	info, err := redistest.Do(addr, "INFO", "memory")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no used_memory in INFO memory: %q", info)
	return 0
}

// copyingStore returns a copy of the stored TC string, as a Redis round trip does.
type copyingStore struct{ consent.Store }

func (c copyingStore) Get(ctx context.Context, id string) (consent.State, bool, error) {
	st, ok, err := c.Store.Get(ctx, id)
	st.TCF = strings.Clone(st.TCF)
	return st, ok, err
}
