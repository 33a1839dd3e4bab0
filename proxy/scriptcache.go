package proxy

import (
	"sync"
	"sync/atomic"
)

// scriptEntry is one fetched script (or a vendor's "no such script"), immutable once in
// the cache but for the two atomics. Times are Unix nanoseconds of the scripts' clock.
type scriptEntry struct {
	// status is what the proxy answers: 200 with the script, 404 for a vendor's 4xx,
	// 502 for a fetch that failed with nothing to stand in (remembered for negative_ttl
	// so that a vendor outage is not asked again by every request).
	status int
	body   []byte // the script as the vendor sent it, decoded
	gz     []byte // body gzipped, nil when that is not smaller
	etag   []byte // W/"…" of body: both encodings are the same script
	fresh  int64  // served as is until then
	stale  int64  // served while the vendor fails until then (fresh + stale_if_error)
	// retryAt: a refresh failed; until then the entry is served stale without asking
	// the vendor again.
	retryAt atomic.Int64
	used    atomic.Int64 // last served, for eviction
	size    int          // bytes held: key, body, gz
}

// scriptCache holds fetched scripts by upstream URL, bounded by entries and bytes. A
// lookup takes a read lock and a map access with a string(key) conversion the compiler
// does without allocating; a miss, which fetches from a vendor anyway, takes the write
// lock to insert and evict.
type scriptCache struct {
	mu         sync.RWMutex
	m          map[string]*scriptEntry
	bytes      int
	maxBytes   int
	maxEntries int
}

func newScriptCache(maxBytes, maxEntries int) *scriptCache {
	return &scriptCache{m: map[string]*scriptEntry{}, maxBytes: maxBytes, maxEntries: maxEntries}
}

func (c *scriptCache) get(key []byte) *scriptEntry {
	c.mu.RLock()
	e := c.m[string(key)]
	c.mu.RUnlock()
	return e
}

// put stores e under key, replacing what was there, and evicts until the bounds hold. An
// entry larger than the whole cache is not kept: it is served once and fetched again.
func (c *scriptCache) put(key string, e *scriptEntry, now int64) {
	e.size = len(key) + len(e.body) + len(e.gz)
	e.used.Store(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		c.bytes -= old.size
		delete(c.m, key)
	}
	if e.size > c.maxBytes {
		return
	}
	c.m[key] = e
	c.bytes += e.size
	c.evict(key)
}

// setLimits applies a reload's bounds, evicting at once if they shrank.
func (c *scriptCache) setLimits(maxBytes, maxEntries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxBytes, c.maxEntries = maxBytes, maxEntries
	c.evict("")
}

// evictSample is how many entries one eviction compares. Sampled LRU (as Redis does it)
// keeps eviction O(1) per entry however large max_entries is; Go starts each map walk at
// a random place, so the sample moves over the whole map.
const evictSample = 8

// evict removes the least recently used of a sample of entries until the bounds hold,
// never keep (the entry just stored). c.mu is held.
func (c *scriptCache) evict(keep string) {
	for len(c.m) > c.maxEntries || c.bytes > c.maxBytes {
		victim, oldest, n := "", int64(0), 0
		for k, e := range c.m {
			if k == keep {
				continue
			}
			if u := e.used.Load(); victim == "" || u < oldest {
				victim, oldest = k, u
			}
			if n++; n == evictSample {
				break
			}
		}
		if victim == "" {
			return // only keep is left
		}
		c.bytes -= c.m[victim].size
		delete(c.m, victim)
	}
}

// stats reports the cache's size (tests).
func (c *scriptCache) stats() (entries, bytes int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}
