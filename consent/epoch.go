package consent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The dataset epoch: when the store's current dataset began. To a lookup, two losses look
// alike, "no record": one record deleted on purpose (a withdrawal or an erasure through
// the admin API or by the site's backend; an eviction, an early expiry), or every record
// lost at once with the dataset (a Redis restarted without persistence, a flush). The
// cookie's signed snapshot may stand in for a record lost with its dataset, grants
// included, but never for one deleted on purpose. The epoch tells the two apart: a
// snapshot issued before the current dataset began describes a record of an older one,
// which went with it; one issued since describes a record of this dataset, whose absence
// was meant, so only its refusals count.

// Epoch holds a store's dataset epoch in memory, so that a hit reads it without a call
// to the store and without allocating. It is safe for concurrent use.
type Epoch struct {
	unix atomic.Int64 // Unix seconds; 0: no snapshot predates the dataset
	// known: a value was read from the store (or the dataset is the process's own); until
	// then a missing key cannot be told from a dataset consentgate has not met before.
	known atomic.Bool
}

// Predates reports whether a snapshot issued at issued predates the current dataset: its
// record, if it had one, went with an older dataset. A second's difference counts (the
// snapshot's time is whole seconds): a snapshot issued in the second the dataset began
// may describe one of its records, and is not taken for lost.
func (e *Epoch) Predates(issued time.Time) bool {
	u := e.unix.Load()
	return u > 0 && issued.Unix() < u
}

// Time is the epoch, and whether one is known (the zero time for 0: no snapshot predates
// the dataset).
func (e *Epoch) Time() (time.Time, bool) {
	u := e.unix.Load()
	if u <= 0 {
		return time.Time{}, e.known.Load()
	}
	return time.Unix(u, 0).UTC(), true
}

// NewEpoch is the epoch of a dataset that began at t.
func NewEpoch(t time.Time) *Epoch {
	e := new(Epoch)
	e.set(t.Unix())
	return e
}

func (e *Epoch) set(unix int64) {
	e.unix.Store(unix)
	e.known.Store(true)
}

// EpochStore is a Store that knows when its dataset began.
type EpochStore interface {
	Store
	// DatasetEpoch is the store's epoch, held in memory: the hit path reads it.
	DatasetEpoch() *Epoch
}

// EpochSyncer is a store whose epoch lives elsewhere (Redis) and is read, or created, by
// SyncEpoch: at start, on every health check and before a consent API write.
type EpochSyncer interface {
	SyncEpoch(ctx context.Context, now time.Time) error
}

var (
	_ EpochStore  = (*MemoryStore)(nil)
	_ EpochStore  = (*RedisStore)(nil)
	_ EpochStore  = (*Cache)(nil)
	_ EpochSyncer = (*RedisStore)(nil)
	_ EpochSyncer = (*Cache)(nil)
)

// DatasetEpoch of the memory store is its creation: its records die with the process.
func (s *MemoryStore) DatasetEpoch() *Epoch { return &s.epoch }

// DatasetEpoch of the Redis store is what SyncEpoch last read: unknown (0, no snapshot
// predates it) until the first read succeeds.
func (r *RedisStore) DatasetEpoch() *Epoch { return &r.epoch }

// DatasetEpoch of a cache is its backend's; a backend without one gives an epoch that
// stays unknown (no snapshot predates it).
func (c *Cache) DatasetEpoch() *Epoch {
	if b, ok := c.backend.(EpochStore); ok {
		return b.DatasetEpoch()
	}
	return &noEpoch
}

// noEpoch is the epoch of a store that has none: never set, so no snapshot predates it.
var noEpoch Epoch

// SyncEpoch of a cache is its backend's, when it has one.
func (c *Cache) SyncEpoch(ctx context.Context, now time.Time) error {
	if b, ok := c.backend.(EpochSyncer); ok {
		return b.SyncEpoch(ctx, now)
	}
	return nil
}

// EpochKey is the key of the dataset epoch: a string of Unix seconds. It has no hash tag:
// on a cluster it lands on one slot, and one shard's loss moves it for every shard (or,
// if another shard lost its records, does not move it).
func (r *RedisStore) EpochKey() string { return r.prefix + "epoch" }

// ErrEpochValue is wrapped by SyncEpoch's error when the epoch key holds something that is
// not an epoch: the key exists (so a record written now cannot land in a dataset without
// one), but its value is not believed.
var ErrEpochValue = errors.New("not a dataset epoch")

// epochFuture bounds how far ahead of the reader's clock a stored epoch may lie: clocks
// differ by seconds, never by minutes. A value further ahead (written by hand, or by a
// clock gone wrong) would make every snapshot look older than the dataset, and is an
// error rather than an epoch.
const epochFuture = snapshotSkew

// SyncEpoch reads the dataset epoch from Redis, creating it first if it is missing, with
// SET NX so that the first writer decides for every instance, and GET in the same round
// trip. A missing key is a dataset that lost it: if this store had read an epoch before,
// the dataset it described is gone (Redis restarted without persistence, or was flushed)
// and the new one begins now; if it never had, consentgate meets this dataset for the
// first time (a first start, an upgrade from a version without epochs, every instance
// restarted with Redis) and cannot say when it began, so it stores 0, which no snapshot
// predates. now is the clock snapshots are issued by. On an error the epoch read last
// stays in force.
func (r *RedisStore) SyncEpoch(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, r.writeTimeout)
	defer cancel()
	candidate := int64(0)
	if r.epoch.known.Load() {
		candidate = now.Unix()
	}
	key := r.EpochKey()
	var get *redis.StringCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, candidate, 0)
		get = p.Get(ctx, key)
		return nil
	})
	if err != nil {
		// redis.Nil too: the key went between the two commands (a flush); the next
		// call creates it.
		return fmt.Errorf("consent: redis dataset epoch: %w", err)
	}
	v, err := strconv.ParseInt(get.Val(), 10, 64)
	switch {
	case err != nil:
		return fmt.Errorf("consent: redis dataset epoch: %s does not hold Unix seconds: %w", key, ErrEpochValue)
	case v < 0:
		return fmt.Errorf("consent: redis dataset epoch: %s holds %d, before 1970: %w", key, v, ErrEpochValue)
	case v > now.Add(epochFuture).Unix():
		return fmt.Errorf("consent: redis dataset epoch: %s holds %s, more than %v ahead of this clock: %w",
			key, time.Unix(v, 0).UTC().Format(time.RFC3339), epochFuture, ErrEpochValue)
	}
	r.epoch.set(v)
	return nil
}
