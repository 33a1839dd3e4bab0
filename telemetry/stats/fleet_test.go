package stats_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/consentgate/consentgate/internal/redistest"
	"github.com/consentgate/consentgate/telemetry/stats"
)

// ft0 is the fleet tests' minute zero. Redis expires keys by its own clock, so the
// tests' made-up times must be near the real one (t0 is in the past).
var ft0 = time.Now().UTC().Truncate(time.Minute)

func fat(d time.Duration) time.Time { return ft0.Add(d) }

// fleetRec records what a Fleet tells its metrics.
type fleetRec struct {
	ok, failed, lost atomic.Uint64
	pending          atomic.Int64
}

func (r *fleetRec) FleetPublish(ok bool) {
	if ok {
		r.ok.Add(1)
	} else {
		r.failed.Add(1)
	}
}
func (r *fleetRec) FleetPending(n int)    { r.pending.Store(int64(n)) }
func (r *fleetRec) FleetLost(hits uint64) { r.lost.Add(hits) }

// node is one instance: its counters, its local Stats (fixture) and its Fleet.
type node struct {
	*fixture
	f   *stats.Fleet
	rec *fleetRec
}

func newNode(t *testing.T, client redis.UniversalClient, start time.Time) *node {
	t.Helper()
	fx := newFixture(t, start, testActions)
	rec := &fleetRec{}
	f, err := stats.NewFleet(stats.FleetOptions{
		Client: client, Prefix: "cgtest:", Source: fx.m, Metrics: rec, Clock: fx.clock.Now,
		Timeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewFleet: %v", err)
	}
	return &node{fixture: fx, f: f, rec: rec}
}

func (n *node) publishAt(t *testing.T, at time.Time) error {
	t.Helper()
	n.clock.Set(at)
	return n.f.Publish(context.Background())
}

func mustPublish(t *testing.T, n *node, at time.Time) {
	t.Helper()
	if err := n.publishAt(t, at); err != nil {
		t.Fatalf("publish at %v: %v", at, err)
	}
}

func singleClient(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	// Deadlines from contexts, as the consent store's client has them.
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func clusterClient(t *testing.T, addrs []string) redis.UniversalClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// comparable strips what differs between a fleet and an instance report of the same hits.
func comparable(r stats.Report) stats.Report {
	r.Scope, r.Scopes, r.Instance, r.Fleet = "", nil, stats.Instance{}, nil
	return r
}

// TestFleetSumsInstances: three instances publish to one Redis (a single node, and a
// three-master Cluster); the fleet report, read from any of them, is what one instance
// that had received every hit would report: totals, every breakdown and the series.
func TestFleetSumsInstances(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		rs := redistest.Start(t)
		testFleetSums(t, func() redis.UniversalClient { return singleClient(t, rs.Addr) })
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, 3)
		testFleetSums(t, func() redis.UniversalClient { return clusterClient(t, c.Addrs) })
	})
}

func testFleetSums(t *testing.T, client func() redis.UniversalClient) {
	start := fat(20 * time.Second)
	nodes := []*node{newNode(t, client(), start), newNode(t, client(), start), newNode(t, client(), start)}
	all := newFixture(t, start, testActions) // the reference: every hit of every node
	hit := func(i int, vendor, action, reason, jur string, n int) {
		nodes[i].hit(t, vendor, action, reason, jur, n)
		all.hit(t, vendor, action, reason, jur, n)
	}
	// Minute 0.
	hit(0, "ga4", "forward", "consent_granted", "eea", 7)
	hit(0, "ga4", "drop", "consent_missing", "eea", 3)
	hit(1, "ga4", "drop", "consent_missing", "eea", 2)
	hit(1, "meta_pixel", "drop", "gpc_opt_out", "us-ca", 4)
	hit(2, "matomo", "anonymise", "consent_missing", "uk", 5)
	for _, n := range nodes {
		mustPublish(t, n, fat(30*time.Second))
	}
	all.s.Tick(fat(time.Minute))
	// Minute 1, with one idle node.
	hit(0, "meta_pixel", "forward", "consent_granted", "other", 6)
	hit(2, "ga4", "forward", "consent_granted", "eea", 1)
	hit(2, "matomo", "anonymise", "gpc_opt_out", "unknown", 2)
	for _, n := range nodes {
		mustPublish(t, n, fat(time.Minute+20*time.Second))
	}

	now := fat(time.Minute + 30*time.Second)
	want := comparable(all.s.QuerySelection(15*time.Minute, now, "ga4", ""))
	for i, n := range nodes {
		got, err := n.f.Query(context.Background(), 15*time.Minute, now, "ga4", "")
		if err != nil {
			t.Fatalf("node %d: query: %v", i, err)
		}
		if got.Scope != stats.ScopeFleet || got.Fleet == nil || got.Fleet.Instances != 3 || got.Fleet.InstancesLastMinute != 3 || got.Fleet.PublishSeconds != 10 {
			t.Errorf("node %d: scope %q fleet %+v, want 3 instances in the window and in the last minute, every 10 s", i, got.Scope, got.Fleet)
		}
		if g := comparable(got); !reflect.DeepEqual(g, want) {
			t.Errorf("node %d: fleet report differs from the sum:\n got %+v\nwant %+v", i, g, want)
		}
	}
	if want.Totals.Total != 30 {
		t.Fatalf("reference total %d, want the 30 hits sent", want.Totals.Total)
	}
}

// flaky stands between a client and Redis: it passes bytes both ways, or passes the
// requests but swallows the replies (Redis did the work, the client never hears), or
// refuses every connection (Redis down).
type flaky struct {
	t      *testing.T
	addr   string
	target string
	mode   atomic.Int32
	mu     sync.Mutex
	conns  []net.Conn
}

const (
	flakyPass int32 = iota
	flakySwallow
	flakyDown
)

func startFlaky(t *testing.T, target string) *flaky {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{t: t, addr: ln.Addr().String(), target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if f.mode.Load() == flakyDown {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 && f.mode.Load() == flakyPass {
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.closeAll() })
	return f
}

func (f *flaky) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// set switches the mode. Down also cuts the open connections, as a dead Redis would;
// swallow keeps them, so a pooled connection carries the request to Redis.
func (f *flaky) set(mode int32) {
	f.mode.Store(mode)
	if mode == flakyDown {
		f.closeAll()
	}
}

// hget reads one field of a minute's hash straight from Redis.
func hget(t *testing.T, addr string, minute time.Time, field string) int {
	t.Helper()
	v, err := redistest.Do(addr, "HGET", "cgtest:stats:{"+minute.UTC().Format("200601021504")+"}", field)
	if err != nil {
		if strings.HasPrefix(err.Error(), "nil or bad bulk reply \"$-1\"") {
			return 0
		}
		t.Fatalf("HGET: %v", err)
	}
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("HGET %s: %q", field, v)
	}
	return n
}

// TestFleetBatchAppliedOnceWhenTheReplyIsLost: Redis applies a batch but the reply never
// reaches the instance, which so counts the publish as failed and sends the same batch
// again. The counts must be in Redis once, not twice (and not lost).
func TestFleetBatchAppliedOnceWhenTheReplyIsLost(t *testing.T) {
	rs := redistest.Start(t)
	fl := startFlaky(t, rs.Addr)
	n := newNode(t, singleClient(t, fl.addr), fat(5*time.Second))
	n.hit(t, "ga4", "forward", "consent_granted", "eea", 4)
	mustPublish(t, n, fat(10*time.Second))

	n.hit(t, "ga4", "forward", "consent_granted", "eea", 3)
	fl.set(flakySwallow)
	if err := n.publishAt(t, fat(20*time.Second)); err == nil {
		t.Fatal("a publish whose reply was swallowed succeeded")
	}
	const field = "ga4|forward|consent_granted|eea"
	eventually(t, "Redis applies the swallowed batch", func() bool { return hget(t, rs.Addr, ft0, field) == 7 })
	if n.rec.failed.Load() != 1 || n.rec.pending.Load() != 1 {
		t.Fatalf("failed publishes %d, pending %d; want 1 and the batch kept", n.rec.failed.Load(), n.rec.pending.Load())
	}

	fl.set(flakyPass)
	n.hit(t, "ga4", "forward", "consent_granted", "eea", 1)
	mustPublish(t, n, fat(30*time.Second))
	if got := hget(t, rs.Addr, ft0, field); got != 8 {
		t.Fatalf("Redis holds %d hits after the retry, want 4+3+1 = 8 (the retried batch counted once)", got)
	}
	if n.rec.pending.Load() != 0 {
		t.Fatalf("%d batches still pending", n.rec.pending.Load())
	}
	r, err := n.f.Query(context.Background(), 15*time.Minute, fat(40*time.Second), "", "")
	if err != nil || r.Totals.Total != 8 {
		t.Fatalf("fleet total %d (%v), want 8", r.Totals.Total, err)
	}
}

// TestFleetRedisDown: while Redis refuses connections, publishing fails, is counted, and
// keeps the counts (one batch per minute); hits are counted as ever. When Redis is back
// the next publish sends them all, each minute once.
func TestFleetRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	fl := startFlaky(t, rs.Addr)
	n := newNode(t, singleClient(t, fl.addr), fat(5*time.Second))
	mustPublish(t, n, fat(10*time.Second))
	fl.set(flakyDown)
	wantByMinute := map[int]int{}
	for i := range 18 { // three minutes of ticks, every 10 s
		tick := time.Duration(20+10*i) * time.Second
		n.hit(t, "meta_pixel", "drop", "consent_missing", "uk", i+1)
		wantByMinute[int((tick-5*time.Second)/time.Minute)] += i + 1
		if err := n.publishAt(t, fat(tick)); err == nil {
			t.Fatalf("publish at %v succeeded with Redis down", tick)
		}
	}
	if f := n.rec.failed.Load(); f != 18 {
		t.Errorf("%d failed publishes counted, want 18", f)
	}
	if p := n.rec.pending.Load(); p > 5 {
		t.Errorf("%d batches pending after 4 minutes (0..3) down: want at most one per minute, plus the one tried", p)
	}
	fl.set(flakyPass)
	mustPublish(t, n, fat(3*time.Minute+15*time.Second))
	if p := n.rec.pending.Load(); p != 0 {
		t.Errorf("%d batches pending after Redis came back", p)
	}
	const field = "meta_pixel|drop|consent_missing|uk"
	for m, want := range wantByMinute {
		if got := hget(t, rs.Addr, fat(time.Duration(m)*time.Minute), field); got != want {
			t.Errorf("minute %d: Redis holds %d, want %d", m, got, want)
		}
	}
	if n.rec.lost.Load() != 0 {
		t.Errorf("%d hits counted lost", n.rec.lost.Load())
	}
}

// TestFleetGivesUpOnlyPastTheLongestWindow: counts still unpublished when their minute
// leaves the longest window are dropped and counted as lost, never sent.
func TestFleetGivesUpOnlyPastTheLongestWindow(t *testing.T) {
	rs := redistest.Start(t)
	fl := startFlaky(t, rs.Addr)
	fl.set(flakyDown)
	n := newNode(t, singleClient(t, fl.addr), fat(5*time.Second))
	n.hit(t, "ga4", "drop", "consent_missing", "eea", 9)
	if err := n.publishAt(t, fat(10*time.Second)); err == nil {
		t.Fatal("publish succeeded with Redis down")
	}
	n.publishAt(t, fat(24*time.Hour-time.Minute)) // minute 0 is still inside 24 h
	if n.rec.lost.Load() != 0 {
		t.Fatalf("lost %d hits while their minute was inside the longest window", n.rec.lost.Load())
	}
	fl.set(flakyPass)
	mustPublish(t, n, fat(24*time.Hour+time.Minute+10*time.Second))
	if n.rec.lost.Load() != 9 || hget(t, rs.Addr, ft0, "ga4|drop|consent_missing|eea") != 0 {
		t.Fatalf("lost %d, Redis holds %d; want the 9 hits given up and not sent", n.rec.lost.Load(), hget(t, rs.Addr, ft0, "ga4|drop|consent_missing|eea"))
	}
}

// commandCalls reads how many times Redis ran each command since its start.
func commandCalls(t *testing.T, addr string) map[string]int {
	t.Helper()
	info, err := redistest.Do(addr, "INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		out[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.Atoi(calls)
	}
	return out
}

// TestFleetReaderKeepsSettledMinutes: a reader reads a minute from Redis until it has
// settled, then keeps it; a late batch (a retry after an outage) makes it read again.
func TestFleetReaderKeepsSettledMinutes(t *testing.T) {
	rs := redistest.Start(t)
	fl := startFlaky(t, rs.Addr)
	a := newNode(t, singleClient(t, rs.Addr), fat(5*time.Second))
	b := newNode(t, singleClient(t, fl.addr), fat(5*time.Second))
	a.hit(t, "ga4", "forward", "consent_granted", "eea", 2)
	mustPublish(t, a, fat(10*time.Second))
	fl.set(flakyDown)
	b.hit(t, "ga4", "forward", "consent_granted", "eea", 5)
	if err := b.publishAt(t, fat(20*time.Second)); err == nil {
		t.Fatal("b published with Redis down")
	}

	query := func(now time.Time) uint64 {
		t.Helper()
		r, err := a.f.Query(context.Background(), 24*time.Hour, now, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return r.Totals.Total
	}
	now := fat(3 * time.Minute)
	before := commandCalls(t, rs.Addr)["hgetall"]
	if got := query(now); got != 2 {
		t.Fatalf("total %d before b's late batch, want a's 2", got)
	}
	first := commandCalls(t, rs.Addr)["hgetall"] - before
	if got := query(now.Add(5 * time.Second)); got != 2 {
		t.Fatalf("total %d, want 2", got)
	}
	second := commandCalls(t, rs.Addr)["hgetall"] - before - first
	if first != 1440 || second > 3 {
		t.Errorf("HGETALL calls: %d for the first 24 h query, %d for the next; want 1440, then only the minutes not settled", first, second)
	}

	fl.set(flakyPass)
	mustPublish(t, b, fat(3*time.Minute+10*time.Second)) // minute 0, 2m10s late
	if got := query(now.Add(15 * time.Second)); got != 7 {
		t.Fatalf("total %d after b's late batch, want 2+5 = 7 (the kept minute read again)", got)
	}
}

// TestFleetRedisCost measures what one busy instance costs Redis per minute: six ticks
// of 300 changed cells each. The bound in doc.go is checked here.
func TestFleetRedisCost(t *testing.T) {
	rs := redistest.Start(t)
	vendors, reasons := testVendors, testReasons
	m := newFixture(t, fat(0), testActions)
	n := &node{fixture: m}
	var err error
	n.rec = &fleetRec{}
	n.f, err = stats.NewFleet(stats.FleetOptions{Client: singleClient(t, rs.Addr), Prefix: "cgtest:", Source: m.m, Metrics: n.rec, Clock: m.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	jurs := []string{"eea", "uk", "us-ca", "other", "unknown"}
	cells, fieldBytes := 0, 0
	hitAll := func() {
		cells, fieldBytes = 0, 0
		for _, v := range vendors {
			for _, a := range testActions {
				for _, r := range reasons {
					for _, j := range jurs {
						m.hit(t, v, a, r, j, 1)
						cells++
						fieldBytes += len(v + a + r + j + "|||")
					}
				}
			}
		}
	}
	hitAll()
	mustPublish(t, n, fat(10*time.Second)) // the first publish also creates the generation
	calls0 := commandCalls(t, rs.Addr)
	in0 := netInput(t, rs.Addr)
	for i := range 6 {
		hitAll()
		mustPublish(t, n, fat(time.Minute+time.Duration(i)*10*time.Second))
	}
	in := netInput(t, rs.Addr) - in0
	calls := commandCalls(t, rs.Addr)
	sent, inScript := 0, 0
	for name, c := range calls {
		switch d := c - calls0[name]; name {
		case "evalsha", "eval", "incr":
			sent += d
		case "info":
		default:
			inScript += d
		}
	}
	minute := fat(time.Minute).Format("200601021504")
	mem, err := redistest.Do(rs.Addr, "MEMORY", "USAGE", "cgtest:stats:{"+minute+"}")
	if err != nil {
		t.Fatal(err)
	}
	memBatches, err := redistest.Do(rs.Addr, "MEMORY", "USAGE", "cgtest:stats:{"+minute+"}:batches")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one busy minute, %d cells changed every 10 s: %d commands sent (%d run inside the script), %d bytes to Redis (%d per cell per tick); the minute's hash holds %s bytes, its batch set %s",
		cells, sent, inScript, in, in/int64(6*cells), mem, memBatches)
	if sent != 6 {
		t.Errorf("%d commands sent for a minute, want 6 (one EVALSHA per tick)", sent)
	}
	// doc.go: per tick about 200 bytes plus, per changed cell, its field name and 16.
	if bound := int64(6 * (200 + fieldBytes + 16*cells)); in > bound {
		t.Errorf("%d bytes for a minute, over the documented bound of 6 × (200 + %d field bytes + 16 × %d cells) = %d", in, fieldBytes, cells, bound)
	}
}

func netInput(t *testing.T, addr string) int64 {
	t.Helper()
	info, err := redistest.Do(addr, "INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_net_input_bytes:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_net_input_bytes in INFO stats")
	return 0
}

// eventually polls cond until it holds, for at most 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHandlerScopes: with a Fleet the handler answers the fleet by default, this
// instance on scope=instance, and a 503 that names the way out when Redis is down.
func TestHandlerScopes(t *testing.T) {
	rs := redistest.Start(t)
	fl := startFlaky(t, rs.Addr)
	n := newNode(t, singleClient(t, fl.addr), fat(5*time.Second))
	other := newNode(t, singleClient(t, rs.Addr), fat(5*time.Second))
	s, err := stats.New(n.m, stats.WithClock(n.clock.Now), stats.WithFleet(n.f))
	if err != nil {
		t.Fatal(err)
	}
	n.hit(t, "ga4", "drop", "consent_missing", "eea", 2)
	other.hit(t, "ga4", "drop", "consent_missing", "eea", 3)
	mustPublish(t, n, fat(10*time.Second))
	mustPublish(t, other, fat(10*time.Second))
	n.clock.Set(fat(15 * time.Second))
	base := server(t, s)

	type answer struct {
		Scope  string           `json:"scope"`
		Scopes []string         `json:"scopes"`
		Totals stats.Counts     `json:"totals"`
		Fleet  *stats.FleetInfo `json:"fleet"`
		Error  string           `json:"error"`
	}
	get := func(query string) (int, answer) {
		t.Helper()
		res := do(t, "GET", base+"/api/stats"+query)
		var a answer
		if err := json.Unmarshal(res.body, &a); err != nil {
			t.Fatalf("%s: %v: %s", query, err, res.body)
		}
		return res.code, a
	}
	for _, tc := range []struct {
		query     string
		scope     string
		total     uint64
		instances int
	}{
		{"", "fleet", 5, 2},
		{"?scope=fleet&window=15m", "fleet", 5, 2},
		{"?scope=instance", "instance", 2, 0},
	} {
		code, a := get(tc.query)
		if code != 200 || a.Scope != tc.scope || a.Totals.Total != tc.total || !slices.Equal(a.Scopes, []string{"fleet", "instance"}) {
			t.Errorf("%q: %d scope %q scopes %v total %d, want %s with %d", tc.query, code, a.Scope, a.Scopes, a.Totals.Total, tc.scope, tc.total)
		}
		if got := 0; a.Fleet != nil {
			if got = a.Fleet.Instances; got != tc.instances {
				t.Errorf("%q: %d instances, want %d", tc.query, got, tc.instances)
			}
		} else if tc.instances != 0 {
			t.Errorf("%q: no fleet info", tc.query)
		}
	}

	fl.set(flakyDown)
	code, a := get("")
	if code != 503 || !strings.Contains(a.Error, "fleet figures unavailable: Redis did not answer") || !strings.Contains(a.Error, "scope=instance shows this instance's figures") {
		t.Errorf("Redis down: %d %q", code, a.Error)
	}
	if code, a := get("?scope=instance"); code != 200 || a.Totals.Total != 2 {
		t.Errorf("Redis down, scope=instance: %d total %d", code, a.Totals.Total)
	}
}

// BenchmarkFleetPublish: one tick of a busy instance (135 changed cells) against a real
// Redis: the diff, the batch and the script's round trip, off the hit path.
func BenchmarkFleetPublish(b *testing.B) {
	rs := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.Close() })
	fx := newFixture(b, fat(0), testActions)
	f, err := stats.NewFleet(stats.FleetOptions{Client: c, Prefix: "cgbench:", Source: fx.m, Clock: fx.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	hitAll := func() {
		for v := range testVendors {
			for a := range testActions {
				for r := range testReasons {
					for _, j := range fx.jur {
						fx.m.Hit(v, a, r, j)
					}
				}
			}
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		hitAll()
		fx.clock.Set(fat(time.Duration(i) * 10 * time.Second))
		b.StartTimer()
		if err := f.Publish(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFleetQuery24h: a dashboard refresh of the 24-hour fleet view once the closed
// minutes are kept: the generation and the unsettled minutes only.
func BenchmarkFleetQuery24h(b *testing.B) {
	rs := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.Close() })
	fx := newFixture(b, fat(0), testActions)
	f, err := stats.NewFleet(stats.FleetOptions{Client: c, Prefix: "cgbench:", Source: fx.m, Clock: fx.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	for m := range 30 {
		fx.hit(b, "ga4", "forward", "consent_granted", "eea", m+1)
		fx.hit(b, "meta_pixel", "drop", "gpc_opt_out", "us-ca", 1)
		fx.clock.Set(fat(time.Duration(m)*time.Minute + 30*time.Second))
		if err := f.Publish(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	now := fat(30 * time.Minute)
	if _, err := f.Query(context.Background(), 24*time.Hour, now, "", ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Query(context.Background(), 24*time.Hour, now, "", ""); err != nil {
			b.Fatal(err)
		}
	}
}
