package main

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// consentgateBuild is the product's binary, built once for the tests that run it
// (without the race detector: it is the loadgen's behaviour under test, not the proxy's).
var consentgateBuild struct {
	once      sync.Once
	dir, path string
	err       error
	out       []byte
}

func builtConsentgate(t *testing.T) string {
	t.Helper()
	b := &consentgateBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "loadgen-consentgate-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "consentgate")
		b.out, b.err = exec.Command("go", "build", "-tags", "grpcnotrace", "-o", b.path, "../../../cmd/consentgate").CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build consentgate: %v\n%s", b.err, b.out)
	}
	return b.path
}

// soakFlags parses a soak command line as `loadgen soak` does.
func soakFlags(t *testing.T, args ...string) *soakOptions {
	t.Helper()
	var o soakOptions
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	return &o
}

// TestSoakShortRun runs the whole soak for a few seconds against the real binary: two
// instances, Redis killed and started again empty at 3 s, reloads every 2 s (both
// ways), a GeoIP swap at 4 s, the consent stream; it must pass, and its counters must
// show that each of these happened and was checked.
func TestSoakShortRun(t *testing.T) {
	bin := builtConsentgate(t)
	o := soakFlags(t, "-binary", bin, "-geoip", "../../../testdata/geoip/GeoIP2-City-Test.mmdb",
		"-duration", "8s", "-restart-at", "3s", "-redis-down", "1s", "-reload-every", "2s", "-geo-swap-every", "4s",
		"-rate", "400", "-connections", "4", "-visitors", "40", "-sample-every", "1s", "-settle", "500ms",
		// Few enough writes that many visitors' last one went with Redis, and is checked.
		"-consent-rate", "5",
		// The bound checks are tested on their own (TestResourceBounds); eight seconds
		// of a shared machine say nothing of a leak.
		"-rss-factor", "4", "-goroutine-slack", "500")
	var out bytes.Buffer
	start := time.Now()
	s, err := runSoak(context.Background(), o, &out)
	t.Logf("soak of %s took %s", o.duration, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("runSoak: %v\n%s", err, out.String())
	}
	if len(s.Problems) > 0 {
		t.Fatalf("the soak failed:\n%s", out.String())
	}
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s; output:\n%s", what, out.String())
		}
	}
	check("hits sent, all 200 or 204", s.Hits > 0 && s.Unexpected == 0 && s.Status[200]+s.Status[204] == s.Hits)
	c := s.Control
	check("reloads both ways, none failed", c.reloadsAPI > 0 && c.reloadsSignal > 0 && c.reloadsFailed == 0 && s.ReloadErrors == 0)
	check("a GeoIP swap", c.geoSwaps >= 1 && c.geoSwapsFailed == 0)
	check("one Redis restart", c.redisRestarts == 1 && s.RestartAt >= 3*time.Second && s.RedisDown >= time.Second)
	check("consent writes beyond the first of each visitor", s.Writes.ok > 40 && s.Writes.unexpected == 0)
	f := s.Final
	check("every acknowledged write readable or applied by the snapshot", f.lost == 0 && f.unverified == 0 &&
		f.readable+f.lostWithRedis == f.visitors-f.neverAcked && f.readable > 0)
	d := s.Decisions
	check("decisions sampled, all as chosen", d.sampled > 0 && d.matched == d.sampled && len(d.mismatches) == 0)
	check("the snapshot applied after the restart", d.snapshotFull+d.snapshotLost+d.snapshotRefusals > 0)
	check("the instances decided hits by the snapshot while Redis was down", s.SnapshotUsed["store_error"] > 0)
	check("lost records' grants applied again by their snapshot", d.revived+uint64(f.grantsRevived) > 0 && f.grantsNotRevived == 0)
	check("the instances decided hits by snapshots older than the dataset", s.SnapshotUsed["dataset_lost"] > 0)
	for _, r := range s.Resources {
		check("resource samples of "+r.Name, r.Samples >= 2 && r.GMax > 0 && r.RSSMax > 0)
	}
	for _, want := range []string{"| hits sent |", "| snapshot applied after the restart (sampled) |", "| lost records' grants after the restart (sampled) |", "| result | PASS |"} {
		check("the table has "+want, strings.Contains(out.String(), want))
	}
}

func TestJudge(t *testing.T) {
	dec := func(store, stats, mkt, srcStats, srcMkt string) decision {
		d := decision{Consent: purposeStates{stats, mkt}, Sources: purposeStates{srcStats, srcMkt}}
		d.Signals.Store = store
		return d
	}
	for _, tc := range []struct {
		name                  string
		d                     decision
		last                  choice
		pending               []choice
		lostOK                bool
		loss                  afterLoss
		ok                    bool
		mismatch              string
		snap, revived, notRev bool
	}{
		{name: "record as written", d: dec("found", "granted", "denied", "store", "store"), last: denyMarketing, ok: true},
		{name: "record of a write not acknowledged", d: dec("found", "denied", "denied", "store", "store"), last: grantAll, pending: []choice{denyAll}, ok: true},
		{name: "stale record granting", d: dec("found", "granted", "granted", "store", "store"), last: denyMarketing, mismatch: "granted a purpose it may not"},
		{name: "stale record refusing", d: dec("found", "granted", "denied", "store", "store"), last: grantAll, mismatch: "refused a purpose it should grant"},
		{name: "store down: snapshot in full", d: dec("error", "granted", "granted", "snapshot", "snapshot"), last: grantAll, ok: true, snap: true},
		{name: "store down: fail closed without the snapshot", d: dec("error", "denied", "denied", "store_error", "store_error"), last: grantAll, mismatch: "refused a purpose it should grant"},
		{name: "record lost: grants applied again", d: dec("dataset_lost", "granted", "granted", "snapshot", "snapshot"), last: grantAll, lostOK: true, loss: lossRestored, ok: true, snap: true, revived: true},
		{name: "record lost: in full, a refusal among the grants", d: dec("dataset_lost", "granted", "denied", "snapshot", "snapshot"), last: denyMarketing, lostOK: true, loss: lossRestored, ok: true, snap: true, revived: true},
		{name: "record lost: in full, everything refused", d: dec("dataset_lost", "denied", "denied", "snapshot", "snapshot"), last: denyAll, lostOK: true, loss: lossRestored, ok: true, snap: true},
		{name: "record lost: in full, before the epoch could be seen", d: dec("dataset_lost", "granted", "granted", "snapshot", "snapshot"), last: grantAll, lostOK: true, loss: lossEither, ok: true, snap: true, revived: true},
		{name: "record lost: in full, not as chosen", d: dec("dataset_lost", "granted", "granted", "snapshot", "snapshot"), last: denyMarketing, lostOK: true, loss: lossRestored, mismatch: "granted a purpose it may not"},
		{name: "record lost: refusals only, the epoch did not move", d: dec("not_found", "unset", "denied", "none", "snapshot"), last: denyMarketing, lostOK: true, loss: lossRestored, mismatch: "the record went with Redis and the snapshot gave its refusals only: the dataset epoch did not move"},
		{name: "record lost: refusals only before the epoch could be seen", d: dec("not_found", "unset", "denied", "none", "snapshot"), last: denyMarketing, lostOK: true, loss: lossEither, ok: true, snap: true, notRev: true},
		{name: "refusals_only: refusals kept", d: dec("not_found", "unset", "denied", "none", "snapshot"), last: denyMarketing, lostOK: true, loss: lossRefusals, ok: true, snap: true, notRev: true},
		{name: "refusals_only: everything refused", d: dec("not_found", "denied", "denied", "snapshot", "snapshot"), last: denyAll, lostOK: true, loss: lossRefusals, ok: true, snap: true},
		{name: "refusals_only: a grant revived", d: dec("not_found", "granted", "granted", "snapshot", "snapshot"), last: grantAll, lostOK: true, loss: lossRefusals, mismatch: "granted a purpose it may not"},
		{name: "refusals_only: decided in full", d: dec("dataset_lost", "granted", "granted", "snapshot", "snapshot"), last: grantAll, lostOK: true, loss: lossRefusals, mismatch: "the snapshot decided in full after the data loss, against after_data_loss: refusals_only"},
		{name: "refusals_only: refusal dropped", d: dec("not_found", "unset", "unset", "none", "none"), last: denyMarketing, lostOK: true, loss: lossRefusals, mismatch: "refused a purpose it should grant"},
		{name: "record missing, not lost with Redis", d: dec("not_found", "unset", "denied", "none", "snapshot"), last: denyMarketing, loss: lossRestored, mismatch: "record missing: an acknowledged write is not in the store"},
		{name: "snapshot older than the dataset, record not lost with Redis", d: dec("dataset_lost", "granted", "granted", "snapshot", "snapshot"), last: grantAll, loss: lossRestored, mismatch: "decided by a snapshot older than the dataset: an acknowledged write is not in the store"},
		{name: "cookie not read", d: dec("invalid_id", "unset", "unset", "none", "none"), last: grantAll, mismatch: "the consent cookie was not read (store: invalid_id)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.d, tc.last, tc.pending, tc.lostOK, tc.loss)
			if v.ok != tc.ok || v.mismatch != tc.mismatch {
				t.Errorf("ok %v mismatch %q, want %v %q", v.ok, v.mismatch, tc.ok, tc.mismatch)
			}
			if v.ok && (v.snapshot != tc.snap || v.revived != tc.revived || v.notRevived != tc.notRev) {
				t.Errorf("snapshot %v revived %v notRevived %v, want %v %v %v", v.snapshot, v.revived, v.notRevived, tc.snap, tc.revived, tc.notRev)
			}
		})
	}
}

func TestResourceBounds(t *testing.T) {
	const mb = 1 << 20
	series := func(g []float64, rss []uint64) []resourceSample {
		out := make([]resourceSample, len(g))
		for i := range g {
			out[i] = resourceSample{at: time.Duration(i) * time.Second, goroutines: g[i], rss: rss[i] * mb}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []resourceSample
		want    string // in the one problem; "" for none
	}{
		{"flat", series([]float64{40, 44, 41, 43, 42}, []uint64{30, 31, 30, 32, 31}), ""},
		{"within the bounds", series([]float64{40, 44, 90, 94, 60}, []uint64{30, 31, 40, 46, 31}), ""},
		{"goroutines leak", series([]float64{40, 44, 60, 80, 95}, []uint64{30, 31, 31, 31, 31}), "goroutines grew to 95 after the warm-up, over its maximum 44 + 50"},
		{"RSS leak", series([]float64{40, 44, 41, 43, 42}, []uint64{30, 31, 40, 47, 60}), "RSS grew to 60.0 MiB after the warm-up, over 1.5 × its maximum 31.0 MiB"},
		{"no sample after the warm-up", series([]float64{40, 44}, []uint64{30, 31}), "2 resource samples in the warm-up and 0 after it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Warm-up: the samples at 0 s and 1 s.
			f, problems := resourceBounds("A", tc.samples, 2*time.Second, 50, 1.5)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tc.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.want)):
				t.Errorf("problems %q, want one with %q", problems, tc.want)
			}
			if f.Samples != len(tc.samples) || f.GWarmMax != 44 || f.RSSWarmMax != 31*mb {
				t.Errorf("figures %+v: want the warm-up maxima 44 goroutines, 31 MiB", f)
			}
		})
	}
}

func TestParseSeries(t *testing.T) {
	text := []byte(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
process_resident_memory_bytes 3.1457281e+07
consentgate_consent_snapshot_used_total{otel_scope_name="a",when="store_error"} 7
consentgate_consent_snapshot_used_total{otel_scope_name="b",when="store_error"} 3
consentgate_consent_snapshot_used_total{when="no record, with \"quotes\" and } brace"} 2
`)
	s, err := parseSeries(text)
	if err != nil {
		t.Fatal(err)
	}
	if s.sum("go_goroutines") != 42 || s.sum("process_resident_memory_bytes") != 31457281 || s.sum("go_gorout") != 0 {
		t.Errorf("sums: %v", s)
	}
	by := s.by("consentgate_consent_snapshot_used_total", "when")
	if by["store_error"] != 10 || by[`no record, with "quotes" and } brace`] != 2 || len(by) != 2 {
		t.Errorf("by when: %v", by)
	}
	for _, bad := range []string{"go_goroutines\n", "go_goroutines x\n", "a{b=\"c\"}\n"} {
		if _, err := parseSeries([]byte(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestSoakOptions(t *testing.T) {
	o := soakFlags(t, "-duration", "3m")
	if o.restartAt != 72*time.Second {
		t.Errorf("default -restart-at %s, want 40%% of 3m", o.restartAt)
	}
	for _, args := range [][]string{
		{"-duration", "31m"}, {"-duration", "10s", "-restart-at", "10s"}, {"-rate", "0"}, {"-visitors", "0"},
		{"-warmup-share", "1"}, {"-rss-factor", "0.9"}, {"-reload-every", "0s"}, {"-redis-down", "2m"},
		{"-after-data-loss", "revive"},
	} {
		var o soakOptions
		fs := flag.NewFlagSet("soak", flag.ContinueOnError)
		o.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := o.validate(); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestStreamVisitorsCarryTheirLatestCookie: the stream class draws from the live
// cookies, and a visitor's next hit carries the cookie of their latest write.
func TestStreamVisitorsCarryTheirLatestCookie(t *testing.T) {
	spec, err := mixByName("realistic")
	if err != nil {
		t.Fatal(err)
	}
	spec.consent = []uint64{0, 0, 1, 3}
	live := newLiveCookies(3)
	live.set(0, []byte("a.1"))
	live.set(1, []byte("b.1"))
	vp, err := buildVisitorPool(spec, nil, nil, live)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	draw := func() map[string]int {
		seen := map[string]int{}
		for range 4000 {
			seen[string(vp.cookie(vp.consent.pick(r), r))]++
		}
		return seen
	}
	seen := draw()
	if seen["a.1"] == 0 || seen["b.1"] == 0 || seen[""] == 0 || len(seen) != 3 {
		t.Fatalf("cookies drawn %v: want a.1, b.1 and none (no cookie, and visitor 2 before a write)", seen)
	}
	live.set(0, []byte("a.2"))
	if seen := draw(); seen["a.1"] != 0 || seen["a.2"] == 0 {
		t.Errorf("after visitor 0's new write: %v", seen)
	}
	// Without live cookies the class is folded into "none", as the others are.
	vp, err = buildVisitorPool(spec, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if c := vp.consent.pick(r); c != consentNone {
			t.Fatalf("class %d drawn without live cookies", c)
		}
	}
}

// TestSlowHitsNearOperations: slow hits are counted by the second they were due in,
// and those of the second an operation began in and the next are told apart.
func TestSlowHitsNearOperations(t *testing.T) {
	start := time.Now()
	s := newSlowHits(start, 100*time.Millisecond, 10*time.Second)
	for _, h := range []struct {
		due time.Duration
		lat time.Duration
	}{
		{500 * time.Millisecond, 150 * time.Millisecond},  // second 0
		{2100 * time.Millisecond, time.Second},            // second 2: the operation's
		{3900 * time.Millisecond, 100 * time.Millisecond}, // second 3: the next
		{4 * time.Second, 120 * time.Millisecond},         // second 4
		{5 * time.Second, 99 * time.Millisecond},          // not slow
		{-time.Second, time.Second},                       // due before the start: second 0
		{time.Hour, time.Second},                          // past the run: kept apart, not counted
	} {
		s.record(start.Add(h.due), h.lat)
	}
	f := slowNearOps(s, []time.Duration{2500 * time.Millisecond}, 10*time.Second)
	if f.Total != 5 || f.NearOps != 2 || f.OpsSecs != 2 || f.Seconds != 11 {
		t.Errorf("figures %+v: want 5 slow hits in the run's 11 seconds, 2 in the operation's 2", f)
	}
}

// TestLossRule: with restore, a lost record must be decided in full once the instances
// have had epochGrace to see the new dataset epoch, and may be either before it, or for
// a snapshot acknowledged within a second of Redis's return; refusals_only never allows
// it in full.
func TestLossRule(t *testing.T) {
	back := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	before := back.Add(-time.Minute)
	for _, tc := range []struct {
		name, setting string
		back          time.Time
		at, acked     time.Time
		want          afterLoss
	}{
		{"Redis not back yet", "restore", time.Time{}, back, before, lossEither},
		{"within the grace", "restore", back, back.Add(epochGrace - time.Millisecond), before, lossEither},
		{"past the grace", "restore", back, back.Add(epochGrace), before, lossRestored},
		{"acknowledged in the second before Redis was back", "restore", back, back.Add(time.Minute), back.Add(-time.Second / 2), lossEither},
		{"refusals_only", "refusals_only", back, back.Add(time.Minute), before, lossRefusals},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &soakRun{o: &soakOptions{afterDataLoss: tc.setting}, back: tc.back}
			if got := r.lossRule(tc.at, tc.acked); got != tc.want {
				t.Errorf("lossRule = %d, want %d", got, tc.want)
			}
		})
	}
}
