package consent

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// LookupSource says which layer answered a lookup.
type LookupSource uint8

const (
	SourceCache LookupSource = iota // the instance's local cache
	SourceStore                     // the store behind it (Redis)
)

// LookupResult is how a lookup ended. For SourceCache, ResultHit means the cache
// answered (a cached "not found" included) and ResultMiss that it asked the store; for
// SourceStore, hit and miss say whether a state was found. The order matches
// telemetry.LookupResult, which converts it directly.
type LookupResult uint8

const (
	ResultHit LookupResult = iota
	ResultMiss
	ResultError
)

// Cache defaults.
const (
	DefaultCacheTTL         = 5 * time.Second
	DefaultCacheNegativeTTL = time.Second
	DefaultCacheMaxEntries  = 100_000
)

// CacheOptions configures a Cache. Zero values take the defaults.
type CacheOptions struct {
	// TTL bounds how long a cached state is served. Invalidation messages normally drop an
	// entry long before; the TTL is the backstop for a message that was lost. Negative:
	// states are not cached.
	TTL time.Duration
	// NegativeTTL is how long "not found" is cached: short, because a new visitor's
	// first write must show quickly. Negative: "not found" is not cached.
	NegativeTTL time.Duration
	// MaxEntries bounds the number of cached IDs, and MaxBytes what their states weigh
	// (default DefaultCacheMaxBytes).
	MaxEntries int
	MaxBytes   int
	// Observe, if set, is called once per Get with SourceCache, and once more with
	// SourceStore for each call the cache makes to the store. Concurrent misses of one ID
	// share a store call, so SourceStore counts store lookups, not Gets (the Redis store
	// batches the lookups of different IDs into round trips). It runs on the hit path:
	// it must be fast and must not allocate.
	Observe func(LookupSource, LookupResult)

	now func() time.Time // tests
}

// Cache is a Store that keeps the answers of a slower Store (Redis) in memory for a
// short time, so that most hits cost no round trip. Writes go through to the backend and
// drop the local entry; other instances drop theirs through Invalidate, fed by the
// backend's invalidation messages.
//
// It caches the IDs of NewID's shape (the only ones the proxy looks up), each in a
// fixed-size entry (packed.go); any other ID is passed to the backend every time.
type Cache struct {
	backend     Store
	entries     *ttlMap[packedState]
	sources     *sourceTable
	ttl, negTTL time.Duration
	observe     func(LookupSource, LookupResult)
	now         func() time.Time
	// group is replaced by Clear, so that a Get after a Clear never joins a backend call
	// that started before it.
	group atomic.Pointer[singleflight.Group]
}

// cacheEntry is a backend's answer, as load shares it among the Gets that wait for it.
type cacheEntry struct {
	st    State
	found bool
}

var _ Store = (*Cache)(nil)

// NewCache puts a cache in front of backend. Closing the cache closes the backend.
func NewCache(backend Store, o CacheOptions) *Cache {
	if o.TTL == 0 {
		o.TTL = DefaultCacheTTL
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultCacheNegativeTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultCacheMaxEntries
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultCacheMaxBytes
	}
	if o.Observe == nil {
		o.Observe = func(LookupSource, LookupResult) {}
	}
	if o.now == nil {
		o.now = time.Now
	}
	c := &Cache{
		backend: backend,
		entries: newTTLMap("NewCache", o.MaxEntries, o.now(), byteBound[packedState]{
			Max: o.MaxBytes, Entry: maxStateBytes, Size: packedStateSize,
		}),
		sources: newSourceTable(),
		ttl:     o.TTL,
		negTTL:  o.NegativeTTL,
		observe: o.Observe,
		now:     o.now,
	}
	c.group.Store(new(singleflight.Group))
	return c
}

// Get answers from the cache when it can, without allocating; otherwise it asks the
// backend, one call per ID however many hits wait for it.
func (c *Cache) Get(ctx context.Context, id string) (State, bool, error) {
	key, ok := parseID(id)
	if !ok {
		c.observe(SourceCache, ResultMiss)
		return c.load(ctx, id, nil, 0)
	}
	sh := c.entries.shard(&key)
	now := c.entries.at(c.now())
	sh.mu.Lock()
	if sh.m == nil {
		sh.mu.Unlock()
		c.observe(SourceCache, ResultError)
		return State{}, false, ErrClosed
	}
	p, ok := sh.getLocked(key, now)
	var spilled State
	if ok && p.flags&packedSpilled != 0 {
		spilled = sh.spill[key]
	}
	gen := sh.gen
	sh.mu.Unlock()
	if !ok {
		c.observe(SourceCache, ResultMiss)
		return c.load(ctx, id, &key, gen)
	}
	c.observe(SourceCache, ResultHit)
	found := p.flags&packedFound != 0
	if p.flags&packedSpilled != 0 {
		return spilled, found, nil
	}
	return c.sources.unpack(p), found, nil
}

// load asks the backend and caches the answer under key (nil: not cached) unless the ID
// was invalidated meanwhile (gen moved): a write that lands during the call must not be
// hidden by the older answer for a whole TTL.
func (c *Cache) load(ctx context.Context, id string, key *idKey, gen uint64) (State, bool, error) {
	// singleflight keeps the key while the call lasts; id may alias request memory.
	id = strings.Clone(id)
	v, err, _ := c.group.Load().Do(id, func() (any, error) {
		st, found, err := c.backend.Get(ctx, id)
		switch {
		case err != nil:
			c.observe(SourceStore, ResultError)
			return nil, err // not cached: the next hit retries
		case found:
			c.observe(SourceStore, ResultHit)
		default:
			c.observe(SourceStore, ResultMiss)
		}
		e := cacheEntry{st: st, found: found}
		if key != nil {
			c.fill(*key, &e, gen)
		}
		return e, nil
	})
	if err != nil {
		return State{}, false, err
	}
	e := v.(cacheEntry)
	return e.st, e.found, nil
}

func (c *Cache) fill(key idKey, e *cacheEntry, gen uint64) {
	ttl := c.ttl
	if !e.found {
		ttl = c.negTTL
	}
	if ttl < 0 {
		return
	}
	p, packed := c.sources.pack(&e.st, e.found)
	var spill *State
	if !packed {
		spill = &e.st
	}
	sh := c.entries.shard(&key)
	now := c.entries.at(c.now())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m != nil && sh.gen == gen {
		sh.setLocked(key, p, spill, expiry(now, ttl), now)
	}
}

// GetFresh asks the backend past the cache, within its write budget: the consent and
// admin APIs read what they are about to overwrite or show, which must be current. The
// answer is not cached (a write follows, which invalidates it anyway).
func (c *Cache) GetFresh(ctx context.Context, id string) (State, bool, error) {
	return c.backend.GetFresh(ctx, id)
}

// Invalidate drops id's cached entry, and makes the next Get of id ask the backend
// afresh even if a call for it is in flight (that call may predate the change).
func (c *Cache) Invalidate(id string) {
	key, ok := parseID(id)
	if !ok {
		c.group.Load().Forget(id) // nothing cached: only the call in flight to forget
		return
	}
	sh := c.entries.shard(&key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i, ok := sh.m[key]; ok {
		sh.removeLocked(key, i)
	}
	sh.gen++
	// Under the shard lock: a Get that saw the entry missing before this point may join
	// the old call (it started before the invalidation), one that comes after may not.
	c.group.Load().Forget(id)
}

// Clear drops every cached entry: the invalidation messages may have been lost.
func (c *Cache) Clear() {
	c.group.Store(new(singleflight.Group))
	c.entries.clear()
}

// Put writes through to the backend, then drops the local entry, even on error: a
// failed write may still have been applied (a timeout after the server got it).
func (c *Cache) Put(ctx context.Context, id string, st State, ttl time.Duration, r Receipt) error {
	defer c.Invalidate(id)
	return c.backend.Put(ctx, id, st, ttl, r)
}

// Delete withdraws through the backend, then drops the local entry, even on error.
func (c *Cache) Delete(ctx context.Context, id string, r Receipt) (bool, error) {
	defer c.Invalidate(id)
	return c.backend.Delete(ctx, id, r)
}

// Erase erases through the backend, then drops the local entry, even on error.
func (c *Cache) Erase(ctx context.Context, id string) (bool, error) {
	defer c.Invalidate(id)
	return c.backend.Erase(ctx, id)
}

// History is not cached: it is an audit read, rare and expected to be exact.
func (c *Cache) History(ctx context.Context, id string) ([]Receipt, error) {
	return c.backend.History(ctx, id)
}

func (c *Cache) Ping(ctx context.Context) error { return c.backend.Ping(ctx) }

// Close releases the cache and closes the backend.
func (c *Cache) Close() error {
	c.entries.close()
	return c.backend.Close()
}

// Len returns the number of cached entries, expired ones not yet removed included.
func (c *Cache) Len() int { return c.entries.len() }

// Bytes returns what the cached entries weigh (the measure MaxBytes bounds).
func (c *Cache) Bytes() int { return c.entries.size() }
