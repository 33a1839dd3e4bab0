package ratelimit

import (
	"hash/maphash"
	"math/bits"
	"net/netip"
	"sync"
	"time"
)

// Key identifies a client: an IPv6 address, or an IPv4 address in its IPv4-mapped form,
// possibly masked to a network.
type Key [16]byte

// IPKey is the key of one address.
func IPKey(a netip.Addr) Key { return Key(a.Unmap().As16()) }

// NetKey is the key of the network an address is in: its /24 for IPv4, its /48 for IPv6.
// Those are what one subscriber, one office or one hosting customer usually gets, so a
// client cannot escape its limit by taking the next address.
func NetKey(a netip.Addr) Key {
	a = a.Unmap()
	k := Key(a.As16())
	if a.Is4() {
		k[15] = 0
		return k
	}
	clear(k[6:])
	return k
}

const (
	ways      = 4  // slots per set
	shardBits = 6  // 64 shards
	minSets   = 16 // per shard
)

// Limiter is a token bucket per key: Burst tokens at most, one more every interval. It is
// safe for concurrent use and allocates nothing per call.
type Limiter struct {
	interval  int64 // ns per token
	tolerance int64 // ns of debt allowed: (burst-1) intervals
	seed      maphash.Seed
	setMask   uint64
	shards    [1 << shardBits]shard
}

type shard struct {
	mu    sync.Mutex
	slots []slot // sets of ways slots
	_     [40]byte
}

// slot is one bucket: tat 0 is a free slot (no real time is 0).
type slot struct {
	key Key
	tat int64 // theoretical arrival time, ns since the Unix epoch
}

// New returns a limiter of perMinute tokens a minute (more than 0) and at most burst at
// once (at least 1), tracking at least maxClients keys (rounded up to a power of two).
func New(perMinute, burst, maxClients int) *Limiter {
	perMinute, burst = max(perMinute, 1), max(burst, 1)
	sets := max((maxClients+ways-1)/ways>>shardBits, minSets)
	sets = 1 << bits.Len(uint(sets-1))
	l := &Limiter{
		interval: int64(time.Minute) / int64(perMinute),
		seed:     maphash.MakeSeed(),
		setMask:  uint64(sets - 1),
	}
	l.tolerance = int64(burst-1) * l.interval
	for i := range l.shards {
		l.shards[i].slots = make([]slot, sets*ways)
	}
	return l
}

// Clients is how many keys the limiter tracks at most.
func (l *Limiter) Clients() int { return len(l.shards) * len(l.shards[0].slots) }

// Allow takes a token from key's bucket at now. When there is none it takes nothing
// and says how long until there is one.
func (l *Limiter) Allow(key Key, now time.Time) (ok bool, retryAfter time.Duration) {
	t := now.UnixNano()
	h := maphash.Bytes(l.seed, key[:])
	sh := &l.shards[h&(1<<shardBits-1)]
	i := (h >> shardBits & l.setMask) * ways
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.slots[i : i+ways : i+ways]
	s := find(set, key)
	tat := max(s.tat, t)
	if debt := tat - t; debt > l.tolerance {
		return false, time.Duration(debt - l.tolerance) // never for a new key: it starts full
	}
	s.key, s.tat = key, tat+l.interval
	return true, 0
}

// find returns key's slot in set, or the slot to give it, reset (tat 0): the one with
// the earliest time, which is a free slot, else a full bucket (its time has passed,
// forgetting it loses nothing), else the one least in debt, whose client starts over full.
func find(set []slot, key Key) *slot {
	var pick *slot
	for j := range set {
		s := &set[j]
		if s.tat != 0 && s.key == key {
			return s
		}
		if pick == nil || s.tat < pick.tat {
			pick = s
		}
	}
	pick.tat = 0
	return pick
}
