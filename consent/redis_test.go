package consent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentgate/consentgate/internal/redistest"
)

// Test budgets are generous: the race detector and a busy CI machine make a 5 ms budget
// a coin toss. TestRedisStoreGetBudget checks the budget itself.
const (
	testRedisTimeout      = 2 * time.Second
	testRedisWriteTimeout = 5 * time.Second
)

func newRedisStore(t testing.TB, addrs []string, mod func(*RedisOptions)) *RedisStore {
	t.Helper()
	o := RedisOptions{Addrs: addrs, Timeout: testRedisTimeout, WriteTimeout: testRedisWriteTimeout}
	if mod != nil {
		mod(&o)
	}
	s, err := NewRedisStore(o)
	if err != nil {
		t.Fatalf("NewRedisStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// inspector is a plain go-redis client the tests use to look at, and write, what a
// store (or a site's backend) keeps in Redis.
func inspector(t testing.TB, addrs []string, cluster bool) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if cluster {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	} else {
		c = redis.NewClient(&redis.Options{Addr: addrs[0]})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond until it holds or the time is up. It is for the one wait that
// nothing signals: a store working again once Redis is back. A go-redis pool that has
// met PoolSize dial errors fails fast until its own probe, which dials once a second,
// finds Redis again, and neither says when. Everything else the tests wait for is an
// event: a subscription's callbacks (subscription.await), a command reaching Redis
// (redistest.Monitor).
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noID fails the test if err mentions the consent ID: errors end up in logs.
func noID(t testing.TB, err error, id string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), id) {
		t.Fatalf("error contains the consent ID: %v", err)
	}
}

type redisTopology struct {
	name    string
	addrs   []string // what the store is given
	all     []string // every node, for the inspector
	cluster bool
	opts    func(*RedisOptions)
}

// TestRedisStore runs the store against a single node, a 3-master cluster (given all its
// nodes, and given one seed with Cluster set) and a master found through Sentinels.
func TestRedisStore(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t, 3)
	sentinel := redistest.StartSentinel(t)
	for _, topo := range []redisTopology{
		{name: "single", addrs: []string{single.Addr}, all: []string{single.Addr}},
		{name: "cluster", addrs: cluster.Addrs, all: cluster.Addrs, cluster: true},
		{name: "cluster-one-seed", addrs: cluster.Addrs[:1], all: cluster.Addrs, cluster: true,
			opts: func(o *RedisOptions) { o.Cluster = true }},
		{name: "sentinel", addrs: sentinel.Addrs, all: []string{sentinel.Master.Addr},
			opts: func(o *RedisOptions) { o.MasterName = sentinel.Name }},
	} {
		t.Run(topo.name, func(t *testing.T) {
			t.Run("contract", func(t *testing.T) {
				testStoreContract(t, newRedisStore(t, topo.addrs, topo.opts))
			})
			t.Run("contract through a cache", func(t *testing.T) {
				c := NewCache(newRedisStore(t, topo.addrs, topo.opts), CacheOptions{})
				testStoreContract(t, c)
			})
			t.Run("keys", func(t *testing.T) { testRedisKeys(t, topo) })
			t.Run("receipts capped", func(t *testing.T) { testRedisReceiptsCapped(t, topo) })
			t.Run("backend writes", func(t *testing.T) { testRedisBackendWrites(t, topo) })
			t.Run("malformed", func(t *testing.T) { testRedisMalformed(t, topo) })
			t.Run("subscribe", func(t *testing.T) { testRedisSubscribe(t, topo) })
			t.Run("day salt", func(t *testing.T) { testRedisDaySalt(t, topo) })
			t.Run("epoch", func(t *testing.T) { testRedisEpoch(t, topo) })
		})
	}
}

// testRedisDaySalt: the first instance to ask stores its salt, with the TTL asked for
// and under the prefix; the others get that salt, whatever they offer; a value that is
// not a salt is refused, not used.
func testRedisDaySalt(t *testing.T, topo redisTopology) {
	const prefix = "salttest:"
	mk := func() *RedisStore {
		return newRedisStore(t, topo.addrs, func(o *RedisOptions) {
			if topo.opts != nil {
				topo.opts(o)
			}
			o.Prefix = prefix
		})
	}
	a, b := mk(), mk()
	rc := inspector(t, topo.all, topo.cluster)
	ctx := context.Background()
	first, other := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32))
	got, err := a.DaySalt(ctx, "2026-11-22", first, 90*time.Minute)
	if err != nil || string(got) != string(first) {
		t.Fatalf("first DaySalt: %q, %v; want the candidate stored", got, err)
	}
	got, err = b.DaySalt(ctx, "2026-11-22", other, 90*time.Minute)
	if err != nil || string(got) != string(first) {
		t.Fatalf("second DaySalt: %q, %v; want the first instance's salt", got, err)
	}
	if key := a.SaltKey("2026-11-22"); key != prefix+"salt:2026-11-22" {
		t.Errorf("key %q", key)
	}
	if v := rc.Get(ctx, prefix+"salt:2026-11-22").Val(); v != string(first) {
		t.Errorf("stored %q", v)
	}
	if ttl := rc.PTTL(ctx, prefix+"salt:2026-11-22").Val(); ttl <= 89*time.Minute || ttl > 90*time.Minute {
		t.Errorf("TTL %v, want the 90m asked for", ttl)
	}
	// A salt stored to live past its day (a manual SET, a restored dump) is cut short.
	rc.Set(ctx, prefix+"salt:2026-11-21", string(other), 0)
	if got, err := a.DaySalt(ctx, "2026-11-21", first, time.Minute); err != nil || string(got) != string(other) {
		t.Fatalf("stored salt: %q, %v", got, err)
	}
	if ttl := rc.PTTL(ctx, prefix+"salt:2026-11-21").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL of a salt stored without one: %v, want at most the 1m asked for", ttl)
	}
	// Another day is another key.
	if got, err := b.DaySalt(ctx, "2026-11-23", other, time.Hour); err != nil || string(got) != string(other) {
		t.Errorf("next day: %q, %v", got, err)
	}
	rc.Set(ctx, prefix+"salt:2026-11-24", "short", time.Hour)
	if _, err := a.DaySalt(ctx, "2026-11-24", first, time.Hour); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("a 5-byte value: %v, want an error that does not repeat it", err)
	}
	if _, err := a.DaySalt(ctx, "2026-11-25", first, 0); err == nil {
		t.Error("ttl 0: want an error")
	}
}

// testRedisKeys checks the schema REDIS.md promises, through a plain client.
func testRedisKeys(t *testing.T, topo redisTopology) {
	const prefix = "keytest:"
	s := newRedisStore(t, topo.addrs, func(o *RedisOptions) {
		if topo.opts != nil {
			topo.opts(o)
		}
		o.Prefix = prefix
		o.ReceiptsTTL = 48 * time.Hour
	})
	rc := inspector(t, topo.all, topo.cluster)
	ctx := context.Background()
	id := newTestID(t)
	sk, rk := prefix+"{"+id+"}:state", prefix+"{"+id+"}:receipts"

	st := testState(1) // necessary and statistics granted, marketing denied, preferences unset
	at := clockBase.Add(1500 * time.Millisecond)
	if err := s.Put(ctx, id, st, 90*time.Minute, Receipt{Time: at, UAHash: testReceipt.UAHash}); err != nil {
		t.Fatal(err)
	}

	for key, want := range map[string]string{sk: "hash", rk: "stream"} {
		if got := rc.Type(ctx, key).Val(); got != want {
			t.Errorf("TYPE %s = %q, want %q", key, got, want)
		}
	}
	if got := rc.PTTL(ctx, sk).Val(); got <= 89*time.Minute || got > 90*time.Minute {
		t.Errorf("state PTTL = %v, want the Put ttl (90m)", got)
	}
	if got := rc.PTTL(ctx, rk).Val(); got <= 47*time.Hour || got > 48*time.Hour {
		t.Errorf("receipts PTTL = %v, want ReceiptsTTL (48h)", got)
	}
	wantHash := map[string]string{
		"necessary": "granted", "statistics": "granted", "marketing": "denied",
		"source": "api", "version": "1",
		"created": strconv.FormatInt(st.Created.UnixMilli(), 10),
		"updated": strconv.FormatInt(st.Updated.UnixMilli(), 10),
	}
	if got := rc.HGetAll(ctx, sk).Val(); !equalMaps(got, wantHash) {
		t.Errorf("HGETALL state = %v\nwant %v", got, wantHash)
	}
	msgs := rc.XRange(ctx, rk, "-", "+").Val()
	if len(msgs) != 1 {
		t.Fatalf("XRANGE receipts = %v, want one entry", msgs)
	}
	wantReceipt := map[string]string{
		"action": "consent", "necessary": "granted", "statistics": "granted", "marketing": "denied",
		"source": "api", "version": "1", "ua_hash": testReceipt.UAHash,
		"time": strconv.FormatInt(at.UnixMilli(), 10),
	}
	got := map[string]string{}
	for k, v := range msgs[0].Values {
		got[k], _ = v.(string)
	}
	if !equalMaps(got, wantReceipt) {
		t.Errorf("receipt entry = %v\nwant %v", got, wantReceipt)
	}

	// Both keys of an ID in one slot: the transaction spans them on a cluster.
	if topo.cluster {
		c := rc.(*redis.ClusterClient)
		a, b := c.ClusterKeySlot(ctx, sk).Val(), c.ClusterKeySlot(ctx, rk).Val()
		if a != b || a != c.ClusterKeySlot(ctx, id).Val() {
			t.Errorf("slots: state %d, receipts %d, id %d; want one slot", a, b, c.ClusterKeySlot(ctx, id).Val())
		}
	}
	if keys := allKeys(t, rc, prefix+"*"); !equalSlices(keys, []string{rk, sk}) {
		t.Errorf("keys under the prefix = %v, want only %v", keys, []string{rk, sk})
	}

	// A withdrawal deletes the state and refreshes the receipts' TTL.
	rc.PExpire(ctx, rk, time.Hour)
	if ok, err := s.Delete(ctx, id, Receipt{}); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if n := rc.Exists(ctx, sk).Val(); n != 0 {
		t.Error("state key still there after Delete")
	}
	if got := rc.PTTL(ctx, rk).Val(); got <= 47*time.Hour {
		t.Errorf("receipts PTTL after a withdrawal = %v, want refreshed to 48h", got)
	}
	if n := rc.XLen(ctx, rk).Val(); n != 2 {
		t.Errorf("XLEN receipts = %d after Delete, want 2", n)
	}
	if ok, err := s.Erase(ctx, id); err != nil || !ok {
		t.Fatalf("Erase = %v, %v", ok, err)
	}
	if keys := allKeys(t, rc, prefix+"*"); len(keys) != 0 {
		t.Errorf("keys left after Erase: %v", keys)
	}
}

// allKeys lists the keys matching pattern on every master.
func allKeys(t testing.TB, rc redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	collect := func(ctx context.Context, c *redis.Client) error {
		ks, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	}
	var err error
	if c, ok := rc.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, collect)
	} else {
		err = collect(ctx, rc.(*redis.Client))
	}
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	sort.Strings(keys)
	return keys
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func equalSlices(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

func testRedisReceiptsCapped(t *testing.T, topo redisTopology) {
	const maxLen, writes = 10, 250
	s := newRedisStore(t, topo.addrs, func(o *RedisOptions) {
		if topo.opts != nil {
			topo.opts(o)
		}
		o.ReceiptsMaxLen = maxLen
	})
	ctx := context.Background()
	id := newTestID(t)
	for v := int64(1); v <= writes; v++ {
		if err := s.Put(ctx, id, testState(v), time.Hour, testReceipt); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole stream nodes (stream-node-max-entries, 100 by default), so the
	// stream holds between maxLen and maxLen+100 entries: bounded, never the full 250.
	if len(rs) < maxLen || len(rs) > maxLen+100 {
		t.Fatalf("%d receipts kept after %d writes with a cap of ~%d", len(rs), writes, maxLen)
	}
	for i, r := range rs {
		if want := int64(writes - len(rs) + 1 + i); r.Version != want {
			t.Fatalf("receipt %d has version %d, want %d: the newest must be kept, in order", i, r.Version, want)
		}
	}
}

// testRedisBackendWrites plays a site backend that writes the hash with its own client,
// following REDIS.md.
func testRedisBackendWrites(t *testing.T, topo redisTopology) {
	s := newRedisStore(t, topo.addrs, topo.opts)
	rc := inspector(t, topo.all, topo.cluster)
	ctx := context.Background()

	id := newTestID(t)
	key := DefaultRedisPrefix + "{" + id + "}:state"
	updated := time.Date(2026, 5, 6, 7, 8, 9, 123e6, time.UTC)
	if err := rc.HSet(ctx, key, "necessary", "granted", "statistics", "denied", "marketing", "granted",
		"source", "backend", "version", "7", "updated", strconv.FormatInt(updated.UnixMilli(), 10)).Err(); err != nil {
		t.Fatal(err)
	}
	rc.PExpire(ctx, key, time.Hour)
	st, ok, err := s.Get(ctx, id)
	want := State{Purposes: Purposes{Granted, Unset, Denied, Granted}, Source: "backend", Version: 7, Updated: updated}
	if err != nil || !ok || !sameState(st, want) {
		t.Fatalf("Get of a backend-written hash = %+v, %v, %v; want %+v", st, ok, err, want)
	}

	// The smallest useful hash: one purpose, nothing else.
	id2 := newTestID(t)
	rc.HSet(ctx, DefaultRedisPrefix+"{"+id2+"}:state", "marketing", "denied")
	st, ok, err = s.Get(ctx, id2)
	if err != nil || !ok || st.Purposes != (Purposes{Marketing: Denied}) || !st.Created.IsZero() || st.Version != 0 {
		t.Fatalf("Get of a minimal hash = %+v, %v, %v", st, ok, err)
	}
}

func testRedisMalformed(t *testing.T, topo redisTopology) {
	s := newRedisStore(t, topo.addrs, topo.opts)
	rc := inspector(t, topo.all, topo.cluster)
	ctx := context.Background()
	for _, fields := range [][]string{
		{"marketing", "maybe"},
		{"necessary", "GRANTED"},
		{"statistics", "granted", "version", "seven"},
		{"statistics", "granted", "created", "yesterday"},
		{"statistics", "granted", "updated", "1.5"},
	} {
		id := newTestID(t)
		rc.HSet(ctx, DefaultRedisPrefix+"{"+id+"}:state", fields)
		st, ok, err := s.Get(ctx, id)
		if err == nil || ok || st != (State{}) {
			t.Errorf("Get of hash %v = %+v, %v, %v; want an error (fail closed)", fields, st, ok, err)
		}
		noID(t, err, id)
	}

	// A key of the wrong type is an error too, not a panic.
	id := newTestID(t)
	rc.Set(ctx, DefaultRedisPrefix+"{"+id+"}:state", "granted", time.Hour)
	if _, _, err := s.Get(ctx, id); err == nil {
		t.Error("Get of a string key: no error")
	}

	// A receipt this version cannot read makes History fail rather than skip it.
	id = newTestID(t)
	if err := s.Put(ctx, id, testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	rc.XAdd(ctx, &redis.XAddArgs{Stream: DefaultRedisPrefix + "{" + id + "}:receipts", Values: []string{"action", "shrug"}})
	rs, err := s.History(ctx, id)
	if err == nil {
		t.Errorf("History with a malformed receipt = %+v, want an error", rs)
	}
	noID(t, err, id)
}

// testRedisSubscribe runs two "instances", each a store with a cache; writes through one
// must reach the other's cache through the invalidation channel.
func testRedisSubscribe(t *testing.T, topo redisTopology) {
	a := newRedisStore(t, topo.addrs, topo.opts)
	b := newRedisStore(t, topo.addrs, topo.opts)
	rc := inspector(t, topo.all, topo.cluster)
	// Long TTLs: only an invalidation can make B see a change within the test.
	long := CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}
	ca, cb := NewCache(a, long), NewCache(b, long)
	sub := subscribe(t, b, cb)
	sub.awaitResets(t, 1, "B subscribed")

	ctx := context.Background()
	id := newTestID(t)
	bGet := func() (State, bool) {
		st, ok, err := cb.Get(ctx, id)
		if err != nil {
			t.Fatalf("B Get: %v", err)
		}
		return st, ok
	}
	if _, ok := bGet(); ok {
		t.Fatal("B found a state for a new ID")
	}
	// Each write is published after it is saved, so once B has applied its invalidation,
	// B's next Get must see the write: no retrying.
	sub.after(t, id, "A's write", func() error { return ca.Put(ctx, id, testState(1), time.Hour, testReceipt) })
	if _, ok := bGet(); !ok {
		t.Fatal("B does not see A's write")
	}
	sub.after(t, id, "A's second write", func() error { return ca.Put(ctx, id, testState(2), time.Hour, testReceipt) })
	if st, _ := bGet(); st.Version != 2 {
		t.Fatalf("B sees version %d after A's second write, want 2", st.Version)
	}
	sub.after(t, id, "A's withdrawal", func() error { _, err := ca.Delete(ctx, id, testReceipt); return err })
	if _, ok := bGet(); ok {
		t.Fatal("B still sees a state after A's withdrawal")
	}

	// A backend that writes the hash itself and publishes, as REDIS.md asks.
	key := DefaultRedisPrefix + "{" + id + "}:state"
	sub.after(t, id, "the backend's write", func() error {
		if err := rc.HSet(ctx, key, "marketing", "granted", "version", "9").Err(); err != nil {
			return err
		}
		return rc.Publish(ctx, DefaultRedisPrefix+"invalidate", id).Err()
	})
	if st, _ := bGet(); st.Version != 9 {
		t.Fatalf("B sees version %d after the backend's write, want 9", st.Version)
	}
	sub.after(t, id, "A's erasure", func() error { _, err := ca.Erase(ctx, id); return err })
	if _, ok := bGet(); ok {
		t.Fatal("B still sees a state after A's erasure")
	}

	// Close ends Subscribe.
	_ = b.Close()
	select {
	case <-sub.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after Close")
	}
}

// subscription is s.Subscribe feeding a cache, as the proxy runs it, with a record of
// what its callbacks did, so that a test waits for the very invalidation or reset it
// expects instead of polling the cache.
type subscription struct {
	done <-chan struct{} // closed when Subscribe returns

	mu          sync.Mutex
	resets      int            // onReset calls, each after the cache was cleared
	invalidated map[string]int // onInvalidate calls by ID, each after the entry was dropped
	changed     chan struct{}  // closed, and replaced, by each call
}

// awaitLimit only turns an event that never comes into a failure rather than a hung
// test; an event that does come ends the wait at once.
const awaitLimit = 10 * time.Second

// subscribe runs s.Subscribe for c until the test ends.
func subscribe(t testing.TB, s *RedisStore, c *Cache) *subscription {
	sub := &subscription{invalidated: map[string]int{}, changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sub.done = done
	go func() {
		defer close(done)
		s.Subscribe(ctx, func(id string) {
			c.Invalidate(id)
			sub.record(func() { sub.invalidated[id]++ })
		}, func() {
			c.Clear()
			sub.record(func() { sub.resets++ })
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return sub
}

// record applies f and wakes the waiters. It never blocks Subscribe's goroutine.
func (s *subscription) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// await blocks until cond, called under the lock, holds.
func (s *subscription) await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	limit := time.NewTimer(awaitLimit)
	defer limit.Stop()
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			t.Fatalf("not within %v: %s", awaitLimit, what)
		}
	}
}

// resetCount is the number of onReset calls so far.
func (s *subscription) resetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resets
}

// awaitResets waits until onReset has been called n times in all.
func (s *subscription) awaitResets(t testing.TB, n int, what string) {
	t.Helper()
	s.await(t, what, func() bool { return s.resets >= n })
}

// after runs write, which must publish an invalidation of id, and waits until the
// subscription has applied it to the cache.
func (s *subscription) after(t testing.TB, id, what string, write func() error) {
	t.Helper()
	s.mu.Lock()
	n := s.invalidated[id]
	s.mu.Unlock()
	if err := write(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	s.await(t, "the invalidation of "+what, func() bool { return s.invalidated[id] > n })
}

func TestRedisStoreSubscribeAfterRestart(t *testing.T) {
	srv := redistest.Start(t)
	addrs := []string{srv.Addr}
	a, b := newRedisStore(t, addrs, nil), newRedisStore(t, addrs, nil)
	long := CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}
	ca, cb := NewCache(a, long), NewCache(b, long)
	sub := subscribe(t, b, cb)
	sub.awaitResets(t, 1, "B subscribed")

	ctx := context.Background()
	id := newTestID(t)
	sub.after(t, id, "A's write", func() error { return ca.Put(ctx, id, testState(1), time.Hour, testReceipt) })
	if _, ok, err := cb.Get(ctx, id); err != nil || !ok {
		t.Fatalf("B Get after A's write = %v, %v", ok, err)
	}
	if n := cb.Len(); n != 1 {
		t.Fatalf("B's cache holds %d entries, want A's write", n)
	}
	before := sub.resetCount()

	srv.Restart(t)
	// Invalidations sent while B was away are lost: B must forget everything, once when
	// the connection drops and again when it is subscribed again.
	sub.awaitResets(t, before+2, "B reset twice (outage, then resubscription)")
	if n := cb.Len(); n != 0 {
		t.Fatalf("B's cache holds %d entries after the reset", n)
	}

	// And invalidations flow again. The restarted Redis is empty. A's pooled connection
	// died with the old server: the pool's health check drops it, and MaxRetries covers
	// a death it did not see, so A's first write succeeds.
	sub.after(t, id, "A's write after the restart", func() error {
		return ca.Put(ctx, id, testState(2), time.Hour, testReceipt)
	})
	if st, ok, err := cb.Get(ctx, id); err != nil || !ok || st.Version != 2 {
		t.Fatalf("B Get after the restart = %+v, %v, %v; want version 2", st, ok, err)
	}
	sub.after(t, id, "A's second write after the restart", func() error {
		return ca.Put(ctx, id, testState(3), time.Hour, testReceipt)
	})
	if st, ok, err := cb.Get(ctx, id); err != nil || !ok || st.Version != 3 {
		t.Fatalf("B Get after A's second write = %+v, %v, %v; want version 3", st, ok, err)
	}
}

// failoverTopology is a replicated Redis whose master a test kills.
type failoverTopology struct {
	addrs      []string
	opts       func(*RedisOptions)
	onVictim   func(id string) bool // the ID's keys live on the master the test kills
	replicated func()               // waits until the replicas hold every write so far
	kill       func()
	promoted   func() // waits until the replica is the master
}

// TestRedisStoreFailover: a master dies and its replica is promoted, by the Sentinels or
// by the cluster. The same stores, with the same clients, read what was written before
// from the new master, take new writes, and the invalidation subscription comes back on
// it. Reads fail (a hit is then decided by the visitor's snapshot, or fail closed) only
// until the promotion; the test logs for how long.
func TestRedisStoreFailover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) failoverTopology
	}{
		{"sentinel", func(t *testing.T) failoverTopology {
			s := redistest.StartSentinel(t)
			return failoverTopology{addrs: s.Addrs, opts: func(o *RedisOptions) { o.MasterName = s.Name },
				onVictim:   func(string) bool { return true },
				replicated: func() { s.AwaitReplicated(t) }, kill: s.Master.Stop, promoted: func() { s.AwaitFailover(t) }}
		}},
		{"cluster", func(t *testing.T) failoverTopology {
			c := redistest.StartReplicatedCluster(t, 3)
			// The master of the invalidation channel's slot: the subscription dies with it.
			victim := c.MasterOf(t, DefaultRedisPrefix+"invalidate")
			return failoverTopology{addrs: c.Addrs,
				onVictim:   func(id string) bool { return c.MasterOf(t, DefaultRedisPrefix+"{"+id+"}:state") == victim },
				replicated: func() { c.AwaitReplicated(t) }, kill: victim.Stop, promoted: func() { c.AwaitFailover(t, victim) }}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testRedisFailover(t, tc.name, tc.start(t)) })
	}
}

func testRedisFailover(t *testing.T, name string, topo failoverTopology) {
	a, b := newRedisStore(t, topo.addrs, topo.opts), newRedisStore(t, topo.addrs, topo.opts)
	long := CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}
	ca, cb := NewCache(a, long), NewCache(b, long)
	sub := subscribe(t, b, cb)
	sub.awaitResets(t, 1, "B subscribed")
	ctx := context.Background()

	var ids []string
	for tries := 0; len(ids) < 10; tries++ {
		if tries == 200 {
			t.Fatal("200 consent IDs, 10 not on the victim")
		}
		if id := newTestID(t); topo.onVictim(id) {
			ids = append(ids, id)
		}
	}
	for i, id := range ids {
		sub.after(t, id, "A's write", func() error { return ca.Put(ctx, id, testState(int64(i+1)), time.Hour, testReceipt) })
	}
	// Replication is asynchronous: a write the master acknowledged may die with it (the
	// visitor's snapshot covers that case, proxy/snapshot.go). Here it must not, so the
	// test waits for the replicas before the kill.
	topo.replicated()
	resets := sub.resetCount()
	killed := time.Now()
	topo.kill()
	failed := 0
	// go-redis reloads a cluster's slot map by itself only every minute, and on a MOVED
	// reply, which a dead master never sends; the store has it reload more often
	// (clusterStateReloadInterval). 30 s tells the two apart.
	eventually(t, 30*time.Second, "a read from the new master", func() bool {
		_, _, err := a.Get(ctx, ids[0])
		if err != nil {
			noID(t, err, ids[0])
			failed++
		}
		return err == nil
	})
	degraded := time.Since(killed)
	topo.promoted()
	if failed == 0 {
		t.Fatal("no read failed after the master was killed: the test did not reach the outage")
	}

	for i, id := range ids {
		st, ok, err := a.Get(ctx, id)
		if err != nil || !ok || st.Version != int64(i+1) {
			t.Fatalf("Get %d after the failover = %+v, %v, %v; want version %d", i, st, ok, err, i+1)
		}
		if rs, err := a.History(ctx, id); err != nil || len(rs) != 1 {
			t.Fatalf("History %d after the failover = %d receipts, %v; want 1", i, len(rs), err)
		}
	}
	// B's subscription died with the master: it forgot its cache (messages may have been
	// lost) and subscribed again, on the new master.
	sub.awaitResets(t, resets+2, "B reset for the outage and resubscribed")
	sub.after(t, ids[0], "A's write after the failover", func() error {
		return ca.Put(ctx, ids[0], testState(100), time.Hour, testReceipt)
	})
	if st, ok, err := cb.Get(ctx, ids[0]); err != nil || !ok || st.Version != 100 {
		t.Fatalf("B Get after A's write after the failover = %+v, %v, %v; want version 100", st, ok, err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Ping after the failover: %v", err)
	}
	t.Logf("FAILOVER degraded=%v topology=%s layer=store failed_reads=%d (reads of the killed master's keys failed from the kill until the store read from the promoted replica)",
		degraded.Round(time.Millisecond), name, failed)
}

func TestRedisStoreOutage(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) {
		o.Timeout, o.WriteTimeout = 200*time.Millisecond, time.Second
	})
	ctx := context.Background()
	id := newTestID(t)
	if err := s.Put(ctx, id, testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	err := s.Put(ctx, id, testState(2), time.Hour, testReceipt)
	if err == nil {
		t.Fatal("Put with Redis stopped: no error")
	}
	noID(t, err, id)
	if _, err := s.Delete(ctx, id, testReceipt); err == nil {
		t.Fatal("Delete with Redis stopped: no error")
	}
	if _, err := s.Erase(ctx, id); err == nil {
		t.Fatal("Erase with Redis stopped: no error")
	}
	if _, err := s.History(ctx, id); err == nil {
		t.Fatal("History with Redis stopped: no error")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with Redis stopped: no error")
	}
	// Get returns (an error, so the hit fails closed) rather than waiting for Redis.
	_, ok, err := s.Get(ctx, id)
	if err == nil || ok {
		t.Fatalf("Get with Redis stopped = %v, %v; want an error", ok, err)
	}
	noID(t, err, id)

	srv.Restart(t)
	eventually(t, 5*time.Second, "Ping after the restart", func() bool { return s.Ping(ctx) == nil })
	// Nothing of the failed write: no state, no receipt.
	if _, ok, err := s.Get(ctx, id); err != nil || ok {
		t.Fatalf("Get after the restart = %v, %v; want not found", ok, err)
	}
	if rs, err := s.History(ctx, id); err != nil || len(rs) != 0 {
		t.Fatalf("History after the restart = %+v, %v; want none", rs, err)
	}
	if err := s.Put(ctx, id, testState(3), time.Hour, testReceipt); err != nil {
		t.Fatalf("Put after the restart: %v", err)
	}
}

// A write whose connection dies before EXEC reaches Redis leaves nothing behind: the
// state is not replaced and no receipt is added. A real network fault, injected by a
// TCP relay between the store and a real Redis.
func TestRedisStoreTornWrite(t *testing.T) {
	srv := redistest.Start(t)
	relay := cutBeforeEXEC(t, srv.Addr)
	direct := newRedisStore(t, []string{srv.Addr}, nil)
	torn := newRedisStore(t, []string{relay}, nil)
	ctx := context.Background()
	id := newTestID(t)
	if err := direct.Put(ctx, id, testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	// Reads pass the relay: it only cuts transactions.
	if _, ok, err := torn.Get(ctx, id); err != nil || !ok {
		t.Fatalf("Get through the relay = %v, %v", ok, err)
	}

	if err := torn.Put(ctx, id, testState(2), time.Hour, testReceipt); err == nil {
		t.Fatal("Put cut before EXEC: no error")
	}
	if _, err := torn.Delete(ctx, id, testReceipt); err == nil {
		t.Fatal("Delete cut before EXEC: no error")
	}
	st, ok, err := direct.Get(ctx, id)
	if err != nil || !ok || st.Version != 1 {
		t.Fatalf("state after torn writes = %+v, %v, %v; want version 1 untouched", st, ok, err)
	}
	if rs, err := direct.History(ctx, id); err != nil || len(rs) != 1 {
		t.Fatalf("receipts after torn writes = %d, %v; want the 1 from before", len(rs), err)
	}
}

// cutBeforeEXEC relays TCP to addr, but closes a connection as soon as the client sends
// EXEC, without passing the EXEC on.
func cutBeforeEXEC(t testing.TB, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	const exec = "*1\r\n$4\r\nexec\r\n" // go-redis sends command names in lower case
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Go(func() {
				_, _ = io.Copy(c, up)
				_ = c.Close()
			})
			wg.Go(func() {
				defer func() { _ = up.Close(); _ = c.Close() }()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					chunk := buf[:n]
					if i := strings.Index(strings.ToLower(string(chunk)), exec); i >= 0 {
						_, _ = up.Write(chunk[:i])
						return
					}
					if _, werr := up.Write(chunk); werr != nil || err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}

// Get gives up at its budget when Redis does not answer, so the hit is decided fail
// closed instead of waiting.
func TestRedisStoreGetBudget(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) { o.Timeout = 50 * time.Millisecond })
	ctx := context.Background()
	id := newTestID(t)
	// Warm the pool under the write budget: a first dial within 50 ms is a coin toss on
	// a busy machine, and only the paused Get below is on the clock.
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Redis holds every client's commands for 3 s, as a stalled server would.
	if _, err := redistest.Do(srv.Addr, "CLIENT", "PAUSE", "3000", "ALL"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, ok, err := s.Get(ctx, id)
	if err == nil || ok {
		t.Fatalf("Get on a stalled Redis = %v, %v; want an error", ok, err)
	}
	noID(t, err, id)
	// Not a timing assertion: only that it did not wait for the pause to end.
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("Get waited %v for a stalled Redis", waited)
	}
	// The lookup's batch outlived it (bounded by the write budget); once Redis answers
	// again, so do lookups.
	eventually(t, 10*time.Second, "a lookup answered after the stall", func() bool {
		_, _, err := s.Get(ctx, id)
		return err == nil
	})
}

func TestNewRedisStoreOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    RedisOptions
		want string
	}{
		{"no address", RedisOptions{}, "no address"},
		{"bad address", RedisOptions{Addrs: []string{"localhost"}}, `address "localhost" is not host:port`},
		{"sentinel and cluster", RedisOptions{Addrs: []string{"a:1"}, MasterName: "m", Cluster: true}, "exclude each other"},
		{"db on a cluster", RedisOptions{Addrs: []string{"a:1", "b:1"}, DB: 2}, "only database 0"},
		{"negative timeout", RedisOptions{Addrs: []string{"a:1"}, Timeout: -1}, "timeouts must not be negative"},
		{"brace in prefix", RedisOptions{Addrs: []string{"a:1"}, Prefix: "cg{x}:"}, "hash tag"},
		{"negative cap", RedisOptions{Addrs: []string{"a:1"}, ReceiptsMaxLen: -1}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewRedisStore(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRedisStore err = %v, want %q", err, tc.want)
			}
			if s != nil {
				t.Fatal("a store came back with the error")
			}
		})
	}
	t.Run("every error at once", func(t *testing.T) {
		_, err := NewRedisStore(RedisOptions{Addrs: []string{"x"}, Timeout: -1, Prefix: "{"})
		if err == nil || strings.Count(err.Error(), "\n") != 2 {
			t.Fatalf("err = %v, want three errors, one per line", err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		s := newRedisStore(t, []string{"127.0.0.1:1"}, func(o *RedisOptions) { *o = RedisOptions{Addrs: o.Addrs} })
		if s.prefix != DefaultRedisPrefix || s.channel != DefaultRedisPrefix+"invalidate" ||
			s.timeout != DefaultRedisTimeout || s.writeTimeout != DefaultRedisWriteTimeout ||
			s.maxLen != DefaultReceiptsMaxLen || s.receiptsTTL != DefaultReceiptsTTL {
			t.Fatalf("defaults not applied: %+v", s)
		}
	})
	t.Run("write budget never under the read budget", func(t *testing.T) {
		s := newRedisStore(t, []string{"127.0.0.1:1"}, func(o *RedisOptions) { o.Timeout, o.WriteTimeout = time.Second, time.Millisecond })
		if s.writeTimeout != time.Second {
			t.Fatalf("writeTimeout = %v, want raised to Timeout", s.writeTimeout)
		}
	})
}

// Redis being down at start is not an error: the proxy must start and fail closed.
func TestNewRedisStoreRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop() // a port where nothing listens
	var published atomic.Int64
	s := newRedisStore(t, []string{srv.Addr}, func(o *RedisOptions) {
		o.Timeout = 100 * time.Millisecond
		o.OnPublishError = func(error) { published.Add(1) }
	})
	ctx := context.Background()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with Redis down: no error")
	}
	if _, _, err := s.Get(ctx, newTestID(t)); err == nil {
		t.Fatal("Get with Redis down: no error")
	}
	srv.Restart(t)
	eventually(t, 5*time.Second, "the store works once Redis is up", func() bool { return s.Ping(ctx) == nil })
	if err := s.Put(ctx, newTestID(t), testState(1), time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	if published.Load() != 0 {
		t.Fatal("OnPublishError called for a publish that worked")
	}
}

func TestRedisStoreRejectsUnsafeIDs(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, []string{srv.Addr}, nil)
	ctx := context.Background()
	for _, id := range []string{"", "a}b", "{a"} {
		if _, _, err := s.Get(ctx, id); !errors.Is(err, errBadID) {
			t.Errorf("Get(%q) err = %v, want errBadID", id, err)
		}
		if err := s.Put(ctx, id, testState(1), time.Hour, testReceipt); !errors.Is(err, errBadID) {
			t.Errorf("Put(%q) err = %v, want errBadID", id, err)
		}
	}
}

func BenchmarkRedisStoreGet(b *testing.B) {
	srv := redistest.Start(b)
	s := newRedisStore(b, []string{srv.Addr}, nil)
	ctx := context.Background()
	id := newTestID(b)
	if err := s.Put(ctx, id, testState(1), time.Hour, testReceipt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := s.Get(ctx, id); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkRedisStorePut(b *testing.B) {
	srv := redistest.Start(b)
	s := newRedisStore(b, []string{srv.Addr}, nil)
	ctx := context.Background()
	id := newTestID(b)
	st := testState(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Put(ctx, id, st, time.Hour, testReceipt); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRedisLogger(t *testing.T) {
	var buf strings.Builder
	l := redisLogger{slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 1, errors.New("connection refused"))
	got := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"redis: connection pool: failed to dial after 1 attempts: connection refused"`, `"component":"redis-client"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %s lacks %s", got, want)
		}
	}
}

// A quiet subscription is pinged and kept; one that stops answering (here: Redis holds
// every command, as a half-open connection would look) is replaced, with a reset.
func TestRedisStoreSubscribeHealth(t *testing.T) {
	srv := redistest.Start(t)
	addrs := []string{srv.Addr}
	a, b := newRedisStore(t, addrs, nil), newRedisStore(t, addrs, nil)
	// Long enough that a loaded test machine (-race, every package at once) answers each
	// PING within its period; a missed one would be a replaced subscription, not a bug.
	b.healthEvery = 250 * time.Millisecond
	long := CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}
	ca, cb := NewCache(a, long), NewCache(b, long)
	mon := redistest.Monitor(t, srv.Addr)
	sub := subscribe(t, b, cb)
	sub.awaitResets(t, 1, "B subscribed")

	// Four quiet periods, each ended by a PING. B sends the next PING on the same
	// connection only if the last one was answered (else it resubscribes, with a reset).
	awaitPings(t, mon, pubsubClient(t, srv.Addr), 4)
	if n := sub.resetCount(); n != 1 {
		t.Fatalf("%d resets on a quiet but healthy subscription, want 1", n)
	}

	if _, err := redistest.Do(srv.Addr, "CLIENT", "PAUSE", "1000", "ALL"); err != nil {
		t.Fatal(err)
	}
	// Reset 2: the unanswered PING ended the subscription; 3: B subscribed again.
	sub.awaitResets(t, 3, "B replaced the silent subscription")

	ctx := context.Background()
	id := newTestID(t)
	if _, ok, err := cb.Get(ctx, id); err != nil || ok {
		t.Fatalf("B Get = %v, %v", ok, err)
	}
	sub.after(t, id, "A's write on the new subscription", func() error {
		return ca.Put(ctx, id, testState(1), time.Hour, testReceipt)
	})
	if _, ok, err := cb.Get(ctx, id); err != nil || !ok {
		t.Fatalf("B Get after A's write on the new subscription = %v, %v", ok, err)
	}
}

// pubsubClient returns the address of the one client subscribed on the server at addr.
func pubsubClient(t testing.TB, addr string) string {
	t.Helper()
	list, err := redistest.Do(addr, "CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 1 {
		t.Fatalf("CLIENT LIST TYPE pubsub = %q, want one client", list)
	}
	for _, f := range strings.Fields(lines[0]) {
		if a, ok := strings.CutPrefix(f, "addr="); ok {
			return a
		}
	}
	t.Fatalf("CLIENT LIST TYPE pubsub = %q: no addr", list)
	return ""
}

// awaitPings reads MONITOR lines until client has sent n PINGs.
func awaitPings(t testing.TB, mon <-chan string, client string, n int) {
	t.Helper()
	limit := time.NewTimer(awaitLimit)
	defer limit.Stop()
	for seen := 0; seen < n; {
		select {
		case line := <-mon: // 1700000000.123456 [0 127.0.0.1:50000] "ping"
			_, cmd, ok := strings.Cut(line, " "+client+"] ")
			if ok && strings.EqualFold(cmd, `"ping"`) {
				seen++
			}
		case <-limit.C:
			t.Fatalf("not within %v: %d PINGs from the subscription (%s), saw %d; "+
				"a replaced subscription pings from another address", awaitLimit, n, client, seen)
		}
	}
}
