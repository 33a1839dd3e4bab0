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
// there is one eviction rule and one bound to get right.
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
	// gen is bumped by callers that need to know whether a key may have been removed
	// while they were not holding the lock (the cache's fill after a backend call).
	gen uint64
	_   [32]byte // keep neighbouring shard locks off the same cache line
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

// newTTLMap returns a map that holds at most maxEntries entries. It panics if
// maxEntries < 1: a map that can hold nothing is a configuration mistake that config
// validation must catch before this point.
func newTTLMap[V any](who string, maxEntries int) *ttlMap[V] {
	if maxEntries < 1 {
		panic(fmt.Sprintf("consent: %s: maxEntries must be at least 1, got %d", who, maxEntries))
	}
	n := 1
	for n < maxShards && maxEntries/(n*2) >= minPerShard {
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
		delete(sh.m, key)
		var zero V
		return zero, false
	}
	return e.v, true
}

// setLocked stores v under key until expires. key must not alias memory the caller
// reuses. When the shard is full it evicts first, so the bound holds at every moment,
// not just eventually.
func (sh *ttlShard[V]) setLocked(key string, v V, expires, now time.Time) {
	if _, ok := sh.m[key]; !ok && len(sh.m) >= sh.cap {
		sh.evictLocked(now)
	}
	sh.m[key] = ttlEntry[V]{v: v, expires: expires}
}

// deleteLocked removes key; it reports whether a live (unexpired) entry was there.
func (sh *ttlShard[V]) deleteLocked(key string, now time.Time) bool {
	e, ok := sh.m[key]
	if !ok {
		return false
	}
	delete(sh.m, key)
	return now.Before(e.expires)
}

// evictLocked frees at least one slot: every expired entry of a random sample, or, when
// none has expired, the sampled entry closest to expiry (the one we would lose soonest anyway).
func (sh *ttlShard[V]) evictLocked(now time.Time) {
	var (
		victim     string
		soonest    time.Time
		haveVictim bool
		freed      bool
		seen       int
	)
	for k, e := range sh.m {
		if !now.Before(e.expires) {
			delete(sh.m, k)
			freed = true
		} else if !haveVictim || e.expires.Before(soonest) {
			victim, soonest, haveVictim = k, e.expires, true
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if !freed && haveVictim {
		delete(sh.m, victim)
	}
}

// clear drops every entry and bumps every shard's gen. It leaves a closed map closed.
func (t *ttlMap[V]) clear() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.gen++
		sh.mu.Unlock()
	}
}

// close releases the entries; every shard then reads as closed (m == nil).
func (t *ttlMap[V]) close() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.gen++
		sh.mu.Unlock()
	}
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
