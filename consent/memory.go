package consent

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxShards spreads lock contention; a power of two so a mask picks the shard.
	maxShards = 64
	// minPerShard keeps small stores on few shards: with tiny shards the hash imbalance
	// would evict entries long before the store as a whole is full.
	minPerShard = 16
	// evictSample is how many entries an eviction looks at. Go randomises map iteration,
	// so this is a random sample and the cost of a Put stays constant however full the
	// shard is (the Redis "approximated LRU" idea, applied to expiry).
	evictSample = 16
)

// MemoryStore is a bounded, in-process Store: the default for a single instance and the
// store the tests use. It is sharded by a hash of the ID, each shard a mutex and a map.
type MemoryStore struct {
	seed   maphash.Seed
	mask   uint64
	shards []memShard
	closed atomic.Bool
	now    func() time.Time // the clock; tests replace it
}

type memShard struct {
	mu  sync.Mutex
	m   map[string]memEntry // nil once the store is closed
	cap int
	_   [40]byte // keep neighbouring shard locks off the same cache line
}

type memEntry struct {
	st      State
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a store that holds at most maxEntries states. It panics if
// maxEntries < 1: a store that can hold nothing is a configuration mistake that config
// validation must catch before this point.
func NewMemoryStore(maxEntries int) *MemoryStore {
	if maxEntries < 1 {
		panic(fmt.Sprintf("consent: NewMemoryStore: maxEntries must be at least 1, got %d", maxEntries))
	}
	n := 1
	for n < maxShards && maxEntries/(n*2) >= minPerShard {
		n *= 2
	}
	s := &MemoryStore{
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]memShard, n),
		now:    time.Now,
	}
	// Split the bound exactly, so the shards together never hold more than maxEntries.
	per, extra := maxEntries/n, maxEntries%n
	for i := range s.shards {
		c := per
		if i < extra {
			c++
		}
		s.shards[i].cap = c
		s.shards[i].m = make(map[string]memEntry, min(c, 1024))
	}
	return s
}

func (s *MemoryStore) shard(id string) *memShard {
	return &s.shards[maphash.String(s.seed, id)&s.mask]
}

// Get returns the state stored under id. It does not allocate for a present ID: it is on
// the path of every hit that carries a consent cookie.
func (s *MemoryStore) Get(_ context.Context, id string) (State, bool, error) {
	sh := s.shard(id)
	now := s.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return State{}, false, ErrClosed
	}
	e, ok := sh.m[id]
	if !ok {
		return State{}, false, nil
	}
	if !now.Before(e.expires) {
		delete(sh.m, id)
		return State{}, false, nil
	}
	return e.st, true, nil
}

// Put stores st under id for ttl. When the shard is full it evicts first, so the bound
// holds at every moment, not just eventually.
func (s *MemoryStore) Put(_ context.Context, id string, st State, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("consent: memory store put: ttl must be positive, got %v", ttl)
	}
	// The caller's strings may alias request memory that is reused after the handler.
	id = strings.Clone(id)
	st.Source = strings.Clone(st.Source)
	sh := s.shard(id)
	now := s.now()
	e := memEntry{st: st, expires: now.Add(ttl)}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return ErrClosed
	}
	if _, ok := sh.m[id]; !ok && len(sh.m) >= sh.cap {
		sh.evictLocked(now)
	}
	sh.m[id] = e
	return nil
}

// evictLocked frees at least one slot: every expired entry of a random sample, or, when
// none has expired, the sampled entry closest to expiry (the one we would lose soonest anyway).
func (sh *memShard) evictLocked(now time.Time) {
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

// Delete removes id. An entry that has already expired counts as absent.
func (s *MemoryStore) Delete(_ context.Context, id string) (bool, error) {
	sh := s.shard(id)
	now := s.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return false, ErrClosed
	}
	e, ok := sh.m[id]
	if !ok {
		return false, nil
	}
	delete(sh.m, id)
	return now.Before(e.expires), nil
}

// Ping reports whether the store can serve; the readiness probe uses it.
func (s *MemoryStore) Ping(context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close releases the entries. Later calls fail with ErrClosed; Close itself is idempotent.
func (s *MemoryStore) Close() error {
	s.closed.Store(true)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
	return nil
}

// Len returns the number of entries held, including expired ones not yet removed; it is
// meant for metrics and tests.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
