package consent

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/redistest"
)

func TestEpochPredates(t *testing.T) {
	at := clockBase.Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		epoch  int64 // Unix seconds; -1: never set
		issued time.Time
		want   bool
	}{
		{"unknown", -1, at.Add(-time.Hour), false},
		{"zero: an existing dataset met for the first time", 0, at.Add(-time.Hour), false},
		{"a second before", at.Unix(), at.Add(-time.Second), true},
		{"a day before", at.Unix(), at.Add(-24 * time.Hour), true},
		{"the same second", at.Unix(), at, false},
		{"after", at.Unix(), at.Add(time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Epoch
			if tc.epoch >= 0 {
				e.set(tc.epoch)
			}
			if got := e.Predates(tc.issued); got != tc.want {
				t.Errorf("Predates(%s) with epoch %d = %v, want %v", tc.issued.Format(time.RFC3339), tc.epoch, got, tc.want)
			}
		})
	}
}

// TestMemoryStoreEpoch: the memory store's dataset begins with the store, by its clock.
func TestMemoryStoreEpoch(t *testing.T) {
	start := clockBase.Add(1500 * time.Millisecond)
	s := NewMemoryStoreWith(MemoryOptions{MaxEntries: 1000, Now: func() time.Time { return start }})
	t.Cleanup(func() { _ = s.Close() })
	e := s.DatasetEpoch()
	if got, known := e.Time(); !known || !got.Equal(start.Truncate(time.Second)) {
		t.Errorf("epoch %v (known %v), want the store's start %v", got, known, start.Truncate(time.Second))
	}
	if !e.Predates(start.Add(-time.Second)) || e.Predates(start) {
		t.Error("a snapshot from before the store's start does not predate it, or one from its start does")
	}

	before := time.Now().Truncate(time.Second)
	d := NewMemoryStore(1000)
	t.Cleanup(func() { _ = d.Close() })
	if got, _ := d.DatasetEpoch().Time(); got.Before(before) || got.After(time.Now()) {
		t.Errorf("default clock: epoch %v, want the store's creation (after %v)", got, before)
	}
}

// testRedisEpoch (TestRedisStore, every topology): the first store to meet a dataset
// without an epoch stores 0 (its beginning unknown) under <prefix>epoch, a string with no
// hash tag; every other store, and a cache over one, reads the same value.
func testRedisEpoch(t *testing.T, topo redisTopology) {
	const prefix = "epochtest:"
	mk := func() *RedisStore {
		return newRedisStore(t, topo.addrs, func(o *RedisOptions) {
			if topo.opts != nil {
				topo.opts(o)
			}
			o.Prefix = prefix
		})
	}
	rc := inspector(t, topo.all, topo.cluster)
	ctx := context.Background()
	// The cluster topologies share one cluster.
	if err := rc.Del(ctx, prefix+"epoch").Err(); err != nil {
		t.Fatal(err)
	}
	a, b := mk(), mk()
	if _, known := a.DatasetEpoch().Time(); known {
		t.Fatal("an epoch known before any read")
	}
	if err := a.SyncEpoch(ctx, clockBase); err != nil {
		t.Fatal(err)
	}
	if a.EpochKey() != prefix+"epoch" {
		t.Errorf("EpochKey %q, want %q", a.EpochKey(), prefix+"epoch")
	}
	if v, err := rc.Get(ctx, prefix+"epoch").Result(); err != nil || v != "0" {
		t.Fatalf("GET %sepoch = %q, %v; want 0", prefix, v, err)
	}
	if ttl := rc.TTL(ctx, prefix+"epoch").Val(); ttl != -1 {
		t.Errorf("the epoch has a TTL (%v): it must outlive every record", ttl)
	}
	// B, and a cache over it, read A's epoch; once it is a time, B's later clock does
	// not replace it.
	if _, err := rc.Set(ctx, prefix+"epoch", clockBase.Unix(), 0).Result(); err != nil {
		t.Fatal(err)
	}
	c := NewCache(b, CacheOptions{})
	if err := c.SyncEpoch(ctx, clockBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.DatasetEpoch().Time(); !got.Equal(clockBase) || c.DatasetEpoch() != b.DatasetEpoch() {
		t.Errorf("B through its cache reads %v, want A's %v", got, clockBase)
	}
	if keys := allKeys(t, rc, prefix+"*"); !equalSlices(keys, []string{prefix + "epoch"}) {
		t.Errorf("keys under the prefix = %v, want only the epoch", keys)
	}
}

// TestRedisStoreEpochRestart: after Redis restarts without persistence, the store that
// knew the old epoch creates the new one with its clock; another store that knew one
// reads that rather than its own; a failed read keeps the epoch; a value that is not an
// epoch of ours is refused, not used.
func TestRedisStoreEpochRestart(t *testing.T) {
	srv := redistest.Start(t)
	mk := func() *RedisStore {
		return newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) { o.Timeout, o.WriteTimeout = time.Second, time.Second })
	}
	a, b := mk(), mk()
	ctx := context.Background()
	sync := func(s *RedisStore, now time.Time) {
		t.Helper()
		// The first call after the restart may meet a pooled connection that died with
		// the old server; the client's one retry covers it, and a second call the rare
		// case it does not.
		var err error
		for range 2 {
			if err = s.SyncEpoch(ctx, now); err == nil {
				return
			}
		}
		t.Fatalf("SyncEpoch: %v", err)
	}
	epoch := func(s *RedisStore) time.Time {
		got, _ := s.DatasetEpoch().Time()
		return got
	}
	sync(a, clockBase)
	sync(b, clockBase)
	if !epoch(a).IsZero() || !epoch(b).IsZero() {
		t.Fatalf("first epochs %v, %v; want 0 (a dataset met for the first time)", epoch(a), epoch(b))
	}

	srv.Restart(t)
	lost := clockBase.Add(10 * time.Minute)
	sync(a, lost)
	sync(b, lost.Add(3*time.Second))
	if !epoch(a).Equal(lost) || !epoch(b).Equal(lost) {
		t.Fatalf("after the restart: A %v, B %v; want both A's clock, %v", epoch(a), epoch(b), lost)
	}
	if !a.DatasetEpoch().Predates(lost.Add(-time.Second)) || a.DatasetEpoch().Predates(lost) {
		t.Error("a snapshot from before the restart does not predate the new dataset, or one from its first second does")
	}

	srv.Stop()
	if err := a.SyncEpoch(ctx, lost.Add(time.Minute)); err == nil {
		t.Fatal("SyncEpoch with Redis stopped: no error")
	}
	if !epoch(a).Equal(lost) {
		t.Errorf("after a failed read the epoch is %v, want the last one read, %v", epoch(a), lost)
	}

	srv.Restart(t)
	rc := inspector(t, []string{srv.Addr}, false)
	for _, tc := range []struct{ value, err string }{
		{"soon", "does not hold Unix seconds"},
		{"-5", "before 1970"},
		{strconv.FormatInt(lost.Add(time.Hour).Unix(), 10), "ahead of this clock"},
	} {
		if err := rc.Set(ctx, a.EpochKey(), tc.value, 0).Err(); err != nil {
			t.Fatal(err)
		}
		var err error
		for range 2 {
			if err = a.SyncEpoch(ctx, lost.Add(time.Minute)); err == nil || strings.Contains(err.Error(), tc.err) {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrEpochValue) {
			t.Errorf("epoch %q: error %v, want ErrEpochValue with %q", tc.value, err, tc.err)
		}
		if !epoch(a).Equal(lost) {
			t.Errorf("epoch %q: the store's epoch became %v, want %v kept", tc.value, epoch(a), lost)
		}
	}
	// Deleting the key is the dataset's loss: the next sync moves the epoch on.
	if err := rc.Del(ctx, a.EpochKey()).Err(); err != nil {
		t.Fatal(err)
	}
	later := lost.Add(time.Hour)
	sync(a, later)
	if !epoch(a).Equal(later) {
		t.Errorf("after the key's deletion: %v, want %v", epoch(a), later)
	}
	if v := rc.Get(ctx, a.EpochKey()).Val(); v != strconv.FormatInt(later.Unix(), 10) {
		t.Errorf("GET epoch = %q", v)
	}
}
