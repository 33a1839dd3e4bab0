package consent

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

const (
	// maxShards spreads lock contention; a power of two so a mask picks the shard.
	maxShards = 64
	// minPerShard keeps small maps on few shards: with tiny shards the hash imbalance
	// would evict entries long before the map as a whole is full.
	minPerShard = 16
	// evictSample is how many entries an eviction looks at. Go randomises map iteration,
	// so this is a random sample and the cost of a store stays constant however full the
	// shard is (the Redis "approximated LRU" idea, applied to expiry).
	evictSample = 16
)

// ttlMap is a bounded map of expiring values, sharded by a hash of the key, each shard a
// mutex and a map. The memory store (states and receipts) and the cache share it, so
// there is one eviction rule and one bound to get right. It is bounded by entries and,
// when made with a size function, by bytes: a count alone lets a client that sends
// kilobyte values (a TC string, a trail of receipts) take as much memory as it likes.
//
// Callers lock a shard and use its *Locked methods, so that one operation can span two
// maps (a state and its receipts) under both locks. A shard whose m is nil is closed.
type ttlMap[V any] struct {
	seed   maphash.Seed
	mask   uint64
	shards []ttlShard[V]
}

type ttlShard[V any] struct {
	mu  sync.Mutex
	m   map[string]ttlEntry[V]
	cap int
	// bytes is what the entries held weigh (size), at most maxBytes (0: no byte bound).
	bytes, maxBytes int
	size            func(key string, v V) int
	// gen is bumped by callers that need to know whether a key may have been removed
	// while they were not holding the lock (the cache's fill after a backend call).
	gen uint64
	_   [32]byte // keep neighbouring shard locks off the same cache line
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
	// size is what the entry weighed when stored: a value may change in place under the
	// lock (receipts are shifted), so its weight is not recomputed on removal.
	size int
}

// byteBound is a ttlMap's bound in bytes: what size says an entry weighs, Max in all, and
// the largest entry one may hold (Entry), so that every shard has room for several.
type byteBound[V any] struct {
	Max, Entry int
	Size       func(key string, v V) int
}

// newTTLMap returns a map that holds at most maxEntries entries and, with a byte bound,
// at most b.Max bytes. It panics if maxEntries < 1: a map that can hold nothing is a
// configuration mistake that config validation must catch before this point.
func newTTLMap[V any](who string, maxEntries int, b byteBound[V]) *ttlMap[V] {
	if maxEntries < 1 {
		panic(fmt.Sprintf("consent: %s: maxEntries must be at least 1, got %d", who, maxEntries))
	}
	n := 1
	for n < maxShards && maxEntries/(n*2) >= minPerShard &&
		(b.Size == nil || b.Max/(n*2) >= minPerShard*max(b.Entry, 1)) {
		n *= 2
	}
	t := &ttlMap[V]{
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]ttlShard[V], n),
	}
	// Split the bound exactly, so the shards together never hold more than maxEntries.
	per, extra := maxEntries/n, maxEntries%n
	for i := range t.shards {
		c := per
		if i < extra {
			c++
		}
		t.shards[i].cap = c
		t.shards[i].m = make(map[string]ttlEntry[V], min(c, 1024))
		if b.Size != nil {
			t.shards[i].maxBytes, t.shards[i].size = max(b.Max/n, 1), b.Size
		}
	}
	return t
}

func (t *ttlMap[V]) shard(key string) *ttlShard[V] {
	return &t.shards[maphash.String(t.seed, key)&t.mask]
}

// getLocked returns the live value under key, dropping it if it has expired.
func (sh *ttlShard[V]) getLocked(key string, now time.Time) (V, bool) {
	e, ok := sh.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	if !now.Before(e.expires) {
		sh.removeLocked(key, e)
		var zero V
		return zero, false
	}
	return e.v, true
}

func (sh *ttlShard[V]) removeLocked(key string, e ttlEntry[V]) {
	delete(sh.m, key)
	sh.bytes -= e.size
}

// setLocked stores v under key until expires. key must not alias memory the caller
// reuses. When the shard is full, by entries or by bytes, it evicts other keys first, so
// the bound holds at every moment, not just eventually. (An entry alone over the shard's
// byte bound is still stored, the others evicted: byteBound.Entry keeps that from
// happening with the sizes the callers allow.)
func (sh *ttlShard[V]) setLocked(key string, v V, expires, now time.Time) {
	size := 0
	if sh.size != nil {
		size = sh.size(key, v)
	}
	old, exists := sh.m[key]
	for (!exists && len(sh.m) >= sh.cap) || (sh.maxBytes > 0 && sh.bytes-old.size+size > sh.maxBytes) {
		if !sh.evictLocked(now, key) {
			break
		}
	}
	sh.m[key] = ttlEntry[V]{v: v, expires: expires, size: size}
	sh.bytes += size - old.size
}

// deleteLocked removes key; it reports whether a live (unexpired) entry was there.
func (sh *ttlShard[V]) deleteLocked(key string, now time.Time) bool {
	e, ok := sh.m[key]
	if !ok {
		return false
	}
	sh.removeLocked(key, e)
	return now.Before(e.expires)
}

// evictLocked frees at least one slot other than keep's: every expired entry of a random
// sample, or, when none has expired, the sampled entry closest to expiry (the one we
// would lose soonest anyway). It reports false when there was nothing else to evict.
func (sh *ttlShard[V]) evictLocked(now time.Time, keep string) bool {
	var (
		victim     string
		soonest    time.Time
		haveVictim bool
		freed      bool
		seen       int
	)
	for k, e := range sh.m {
		if k == keep {
			continue
		}
		if !now.Before(e.expires) {
			sh.removeLocked(k, e)
			freed = true
		} else if !haveVictim || e.expires.Before(soonest) {
			victim, soonest, haveVictim = k, e.expires, true
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if !freed && haveVictim {
		sh.removeLocked(victim, sh.m[victim])
		freed = true
	}
	return freed
}

// clear drops every entry and bumps every shard's gen. It leaves a closed map closed.
func (t *ttlMap[V]) clear() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.bytes = 0
		sh.gen++
		sh.mu.Unlock()
	}
}

// close releases the entries; every shard then reads as closed (m == nil).
func (t *ttlMap[V]) close() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.m, sh.bytes = nil, 0
		sh.gen++
		sh.mu.Unlock()
	}
}

// size returns the bytes held by the entries, by the map's size function.
func (t *ttlMap[V]) size() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.bytes
		sh.mu.Unlock()
	}
	return n
}

// len returns the number of entries held, including expired ones not yet removed.
func (t *ttlMap[V]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
