package consent

import (
	"fmt"
	"hash/maphash"
	"math"
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

// ttlMap is a bounded map of expiring values by consent ID, sharded by a hash of the
// key, each shard a mutex and a map. The memory store (states and receipts) and the
// cache share it, so there is one eviction rule and one bound to get right. It is
// bounded by entries and, when made with a size function, by bytes: a count alone lets a
// client that sends kilobyte values (a TC string, a trail of receipts) take as much
// memory as it likes.
//
// Keys are idKeys and expiry times integers, so an entry whose value has no pointer (a
// packedState) has none at all: the garbage collector does not scan the shard, and an
// entry costs its slots and nothing else. The map holds only each key's index in the
// shard's slab of entries: a Go map's slots are at best 7/8 full and, just after its
// tables split, under half (every shard's at once, their keys being spread evenly), so
// the smaller the slot, the less that slack costs (about 79 bytes an entry at a million
// rather than 134). A state that does not pack goes to the shard's spill map, which
// leaves with its entry.
//
// Callers lock a shard and use its *Locked methods, so that one operation can span two
// maps (a state and its receipts) under both locks. A shard whose m is nil is closed.
type ttlMap[V any] struct {
	seed   maphash.Seed
	mask   uint64
	epoch  time.Time // expiry times count from it, in nanoseconds
	shards []ttlShard[V]
}

type ttlShard[V any] struct {
	mu sync.Mutex
	m  map[idKey]uint32 // the key's entry in slots
	// slots holds the entries; those of no key are listed in free, for reuse.
	slots []ttlEntry[V]
	free  []uint32
	// spill holds the whole State of the entries whose packedState says packedSpilled
	// (state maps only; nil until the first).
	spill map[idKey]State
	cap   int
	// bytes is what the entries held weigh (size), at most maxBytes (0: no byte bound).
	bytes, maxBytes int
	size            func(v V) int
	// gen is bumped by callers that need to know whether a key may have been removed
	// while they were not holding the lock (the cache's fill after a backend call).
	gen uint64
	_   [32]byte // keep neighbouring shard locks off the same cache line
}

type ttlEntry[V any] struct {
	v       V
	expires int64 // nanoseconds after the map's epoch
}

// byteBound is a ttlMap's bound in bytes: what size says an entry weighs, Max in all, and
// the largest entry one may hold (Entry), so that every shard has room for several. A
// spilled state weighs spilledStateSize on top.
type byteBound[V any] struct {
	Max, Entry int
	Size       func(v V) int
}

// newTTLMap returns a map that holds at most maxEntries entries and, with a byte bound,
// at most b.Max bytes; expiry times count from epoch. It panics if maxEntries < 1: a map
// that can hold nothing is a configuration mistake that config validation must catch
// before this point.
func newTTLMap[V any](who string, maxEntries int, epoch time.Time, b byteBound[V]) *ttlMap[V] {
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
		epoch:  epoch,
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
		t.shards[i].m = make(map[idKey]uint32, min(c, 1024))
		if b.Size != nil {
			t.shards[i].maxBytes, t.shards[i].size = max(b.Max/n, 1), b.Size
		}
	}
	return t
}

func (t *ttlMap[V]) shard(key *idKey) *ttlShard[V] {
	return &t.shards[maphash.Bytes(t.seed, key[:])&t.mask]
}

// at is now on the map's expiry clock (monotonic when both times carry a reading).
func (t *ttlMap[V]) at(now time.Time) int64 { return int64(now.Sub(t.epoch)) }

// expiry is at plus ttl (not negative) on the map's clock, saturating: a TTL past the
// clock's range means no expiry rather than one in the past.
func expiry(at int64, ttl time.Duration) int64 {
	if at > 0 && int64(ttl) > math.MaxInt64-at {
		return math.MaxInt64
	}
	return at + int64(ttl)
}

// getLocked returns the live entry under key, dropping it if it has expired.
func (sh *ttlShard[V]) getLocked(key idKey, now int64) (V, bool) {
	i, ok := sh.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	if now >= sh.slots[i].expires {
		sh.removeLocked(key, i)
		var zero V
		return zero, false
	}
	return sh.slots[i].v, true
}

// weightLocked is what the entry of key with value v weighs, its spilled state included.
// Values are never changed in place while stored, so it is the same at removal as it
// was when the entry was stored.
func (sh *ttlShard[V]) weightLocked(key idKey, v V) int {
	w := 0
	if sh.size != nil {
		w = sh.size(v)
		if len(sh.spill) != 0 {
			if st, ok := sh.spill[key]; ok {
				w += spilledStateSize(&st)
			}
		}
	}
	return w
}

// removeLocked removes key, whose entry is slots[i].
func (sh *ttlShard[V]) removeLocked(key idKey, i uint32) {
	sh.bytes -= sh.weightLocked(key, sh.slots[i].v)
	delete(sh.m, key)
	if len(sh.spill) != 0 {
		delete(sh.spill, key)
	}
	sh.slots[i] = ttlEntry[V]{} // let what the value refers to go
	sh.free = append(sh.free, i)
}

// setLocked stores v under key until expires, with spill (nil: none) as its whole state.
// When the shard is full, by entries or by bytes, it evicts other keys first, so the
// bound holds at every moment, not just eventually. (An entry alone over the shard's
// byte bound is still stored, the others evicted: byteBound.Entry keeps that from
// happening with the sizes the callers allow.)
func (sh *ttlShard[V]) setLocked(key idKey, v V, spill *State, expires, now int64) {
	size := 0
	if sh.size != nil {
		size = sh.size(v)
		if spill != nil {
			size += spilledStateSize(spill)
		}
	}
	i, exists := sh.m[key]
	oldSize := 0
	if exists {
		oldSize = sh.weightLocked(key, sh.slots[i].v)
	}
	for (!exists && len(sh.m) >= sh.cap) || (sh.maxBytes > 0 && sh.bytes-oldSize+size > sh.maxBytes) {
		if !sh.evictLocked(now, key) {
			break
		}
	}
	if !exists {
		if n := len(sh.free); n > 0 {
			i, sh.free = sh.free[n-1], sh.free[:n-1]
		} else {
			i = uint32(len(sh.slots))
			sh.slots = append(sh.slots, ttlEntry[V]{})
		}
		sh.m[key] = i
	}
	sh.slots[i] = ttlEntry[V]{v: v, expires: expires}
	switch {
	case spill != nil:
		if sh.spill == nil {
			sh.spill = make(map[idKey]State)
		}
		sh.spill[key] = *spill
	case exists && len(sh.spill) != 0:
		delete(sh.spill, key)
	}
	sh.bytes += size - oldSize
}

// deleteLocked removes key; it reports whether a live (unexpired) entry was there.
func (sh *ttlShard[V]) deleteLocked(key idKey, now int64) bool {
	i, ok := sh.m[key]
	if !ok {
		return false
	}
	live := now < sh.slots[i].expires
	sh.removeLocked(key, i)
	return live
}

// evictLocked frees at least one slot other than keep's: every expired entry of a random
// sample, or, when none has expired, the sampled entry closest to expiry (the one we
// would lose soonest anyway). It reports false when there was nothing else to evict.
func (sh *ttlShard[V]) evictLocked(now int64, keep idKey) bool {
	var (
		victim     idKey
		victimAt   uint32
		soonest    int64
		haveVictim bool
		freed      bool
		seen       int
	)
	for k, i := range sh.m {
		if k == keep {
			continue
		}
		if exp := sh.slots[i].expires; now >= exp {
			sh.removeLocked(k, i)
			freed = true
		} else if !haveVictim || exp < soonest {
			victim, victimAt, soonest, haveVictim = k, i, exp, true
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if !freed && haveVictim {
		sh.removeLocked(victim, victimAt)
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
		clear(sh.slots)
		sh.slots, sh.free, sh.spill = sh.slots[:0], sh.free[:0], nil
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
		sh.m, sh.slots, sh.free, sh.spill, sh.bytes = nil, nil, nil, nil, 0
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
