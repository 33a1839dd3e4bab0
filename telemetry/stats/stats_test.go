package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/telemetry"
	"github.com/consentgate/consentgate/telemetry/stats"
)

var (
	testVendors = []string{"ga4", "meta_pixel", "matomo"}
	testActions = []string{"forward", "anonymise", "drop"}
	testReasons = []string{"consent_granted", "consent_missing", "gpc_opt_out"}
	// t0 is a minute boundary; tests name times as offsets from it.
	t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

// fakeClock is what Handler and Run read; Tick and Query get explicit times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type fixture struct {
	m       *telemetry.Metrics
	s       *stats.Stats
	clock   *fakeClock
	actions []string
	jur     map[string]int
}

// newFixture builds real Metrics and a Stats whose baseline is taken at start.
func newFixture(t testing.TB, start time.Time, actions []string, opts ...stats.Option) *fixture {
	t.Helper()
	m, err := telemetry.New(telemetry.BuildInfo{}, testVendors, actions, testReasons)
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	f := &fixture{m: m, clock: &fakeClock{t: start}, actions: actions, jur: map[string]int{}}
	for _, j := range []string{"eea", "uk", "us-ca", "other", "unknown"} {
		i, err := m.Jurisdiction(j)
		if err != nil {
			t.Fatalf("Jurisdiction(%q): %v", j, err)
		}
		f.jur[j] = i
	}
	f.s, err = stats.New(m, append([]stats.Option{stats.WithClock(f.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("stats.New: %v", err)
	}
	return f
}

// hit counts n hits for the named labels.
func (f *fixture) hit(t testing.TB, vendor, action, reason, jur string, n int) {
	t.Helper()
	v, a, r := slices.Index(testVendors, vendor), slices.Index(f.actions, action), slices.Index(testReasons, reason)
	j, ok := f.jur[jur]
	if v < 0 || a < 0 || r < 0 || !ok {
		t.Fatalf("hit: unknown label in %s/%s/%s/%s", vendor, action, reason, jur)
	}
	for range n {
		f.m.Hit(v, a, r, j)
	}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// totalsOf returns the per-minute totals of a series, for compact comparisons.
func totalsOf(r stats.Report) []uint64 {
	out := make([]uint64, len(r.Series))
	for i, p := range r.Series {
		out[i] = p.Total
	}
	return out
}

func checkSeries(t *testing.T, r stats.Report, n int, firstMinute time.Time) {
	t.Helper()
	if len(r.Series) != n {
		t.Fatalf("series has %d points, want %d", len(r.Series), n)
	}
	if !r.From.Equal(firstMinute) || !r.Series[0].T.Equal(firstMinute) {
		t.Fatalf("from %v, series[0].t %v, want %v", r.From, r.Series[0].T, firstMinute)
	}
	var sum uint64
	for i, p := range r.Series {
		if want := firstMinute.Add(time.Duration(i) * time.Minute); !p.T.Equal(want) {
			t.Fatalf("series[%d].t = %v, want %v", i, p.T, want)
		}
		sum += p.Total
	}
	if sum != r.Totals.Total {
		t.Fatalf("series sums to %d, totals.total = %d", sum, r.Totals.Total)
	}
}

func TestWindowEdges(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		n      int
		label  string
	}{
		{15 * time.Minute, 15, "15m"},
		{time.Hour, 60, "1h"},
		{24 * time.Hour, 1440, "24h"},
	} {
		t.Run(tc.label, func(t *testing.T) {
			f := newFixture(t, t0, testActions)
			// ga4 in minute 0, meta_pixel in minute 1, then a normal tick every minute.
			f.hit(t, "ga4", "forward", "consent_granted", "eea", 1)
			f.s.Tick(at(time.Minute))
			f.hit(t, "meta_pixel", "drop", "consent_missing", "uk", 1)
			for i := 2; i < tc.n; i++ {
				f.s.Tick(at(time.Duration(i) * time.Minute))
			}

			// Current minute n-1: the window is minutes 0..n-1, so minute 0 is the first inside.
			now := at(time.Duration(tc.n-1)*time.Minute + 30*time.Second + 250*time.Millisecond)
			r := f.s.Query(tc.window, now)
			checkSeries(t, r, tc.n, t0)
			if r.Series[0].Total != 1 || r.Series[1].Total != 1 || r.Totals.Total != 2 {
				t.Errorf("series[0..1] = %d, %d, total %d; want 1, 1, 2", r.Series[0].Total, r.Series[1].Total, r.Totals.Total)
			}

			// Current minute n: the window is minutes 1..n, so minute 0 is just outside.
			f.s.Tick(at(time.Duration(tc.n) * time.Minute))
			now = now.Add(time.Minute)
			r = f.s.Query(tc.window, now)
			checkSeries(t, r, tc.n, at(time.Minute))
			if r.Window != tc.label || r.StepSeconds != 60 {
				t.Errorf("window %q step %d, want %q 60", r.Window, r.StepSeconds, tc.label)
			}
			if want := now.Truncate(time.Second); !r.To.Equal(want) || !r.GeneratedAt.Equal(want) {
				t.Errorf("to %v generated_at %v, want %v", r.To, r.GeneratedAt, want)
			}
			if r.Series[0].Total != 1 || r.Totals != (stats.Counts{Drop: 1, Total: 1}) {
				t.Errorf("first minute inside: series[0] %+v totals %+v, want only the meta_pixel drop", r.Series[0], r.Totals)
			}
			if want := []stats.Keyed{{Key: "meta_pixel", Counts: stats.Counts{Drop: 1, Total: 1}}}; !slices.Equal(r.ByVendor, want) {
				t.Errorf("by_vendor %+v, want %+v", r.ByVendor, want)
			}
		})
	}
}

func TestCurrentMinuteIsLiveThenClosedOnce(t *testing.T) {
	f := newFixture(t, t0, testActions)
	f.hit(t, "ga4", "forward", "consent_granted", "eea", 2)

	r := f.s.Query(15*time.Minute, at(20*time.Second))
	if got := totalsOf(r); got[14] != 2 || r.Totals.Total != 2 {
		t.Fatalf("before any tick: series %v total %d, want the 2 hits in the last (current) minute", got, r.Totals.Total)
	}

	// At the boundary, before the tick runs, the live hits already sit where the tick
	// will store them, so the tick changes nothing visible.
	boundary := at(time.Minute)
	before := f.s.Query(15*time.Minute, boundary)
	f.s.Tick(boundary.Add(50 * time.Millisecond))
	after := f.s.Query(15*time.Minute, boundary)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("tick changed the report:\nbefore %+v\nafter  %+v", before.Series[13:], after.Series[13:])
	}
	if got := totalsOf(after); got[13] != 2 || got[14] != 0 || after.Totals.Total != 2 {
		t.Fatalf("after the closing tick: series %v total %d, want 2 in minute 0 and 0 now", got, after.Totals.Total)
	}

	f.hit(t, "ga4", "drop", "consent_missing", "eea", 1)
	r = f.s.Query(15*time.Minute, at(time.Minute+5*time.Second))
	if got := totalsOf(r); got[13] != 2 || got[14] != 1 || r.Totals != (stats.Counts{Forward: 2, Drop: 1, Total: 3}) {
		t.Fatalf("new hit after tick: series %v totals %+v", got, r.Totals)
	}
	// A second tick in the same minute must not store the pending hit anywhere.
	f.s.Tick(at(time.Minute + 10*time.Second))
	if r2 := f.s.Query(15*time.Minute, at(time.Minute+5*time.Second)); !reflect.DeepEqual(r.Series, r2.Series) {
		t.Fatalf("same-minute tick changed the series: %v then %v", totalsOf(r), totalsOf(r2))
	}
}

func TestMissedTicksAndClockJumps(t *testing.T) {
	type step struct {
		hits int           // ga4 forward hits counted before the tick
		tick time.Duration // offset from t0 of the tick; 0 = no tick
	}
	for _, tc := range []struct {
		name     string
		opts     []stats.Option
		steps    []step
		window   time.Duration
		now      time.Duration
		wantTail []uint64 // the last len(wantTail) series totals
		want     uint64   // totals.total
	}{
		{
			name: "ticks missed: delta goes to the minute before the late tick, skipped minutes empty",
			steps: []step{
				{hits: 1, tick: time.Minute},
				{hits: 3, tick: 6*time.Minute + 30*time.Second},
			},
			window:   15 * time.Minute,
			now:      6*time.Minute + 40*time.Second,
			wantTail: []uint64{1, 0, 0, 0, 0, 3, 0},
			want:     4,
		},
		{
			name: "jump forward 25h: nothing from before the jump",
			steps: []step{
				{hits: 5, tick: time.Minute},
				{hits: 0, tick: 25 * time.Hour},
			},
			window: 24 * time.Hour,
			now:    25*time.Hour + time.Second,
			want:   0,
		},
		{
			name: "jump forward 25h: hits pending across the jump land in the minute before it",
			steps: []step{
				{hits: 5, tick: time.Minute},
				{hits: 2, tick: 25 * time.Hour},
			},
			window:   24 * time.Hour,
			now:      25*time.Hour + time.Second,
			wantTail: []uint64{2, 0},
			want:     2,
		},
		{
			name: "jump forward 25h with no tick yet: query alone does not show old minutes",
			steps: []step{
				{hits: 5, tick: time.Minute},
				{hits: 2},
			},
			window:   24 * time.Hour,
			now:      25*time.Hour + time.Second,
			wantTail: []uint64{2, 0},
			want:     2,
		},
		{
			name: "small ring wraps: only the newest capacity minutes survive",
			opts: []stats.Option{stats.WithCapacity(5)},
			steps: func() []step {
				var s []step
				for i := 1; i <= 23; i++ { // i hits in minute i-1
					s = append(s, step{hits: i, tick: time.Duration(i) * time.Minute})
				}
				return s
			}(),
			window:   15 * time.Minute,
			now:      23*time.Minute + time.Second,
			wantTail: []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 20, 21, 22, 23, 0},
			want:     19 + 20 + 21 + 22 + 23,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, t0, testActions, tc.opts...)
			for _, s := range tc.steps {
				f.hit(t, "ga4", "forward", "consent_granted", "eea", s.hits)
				if s.tick != 0 {
					f.s.Tick(at(s.tick))
				}
			}
			now := at(tc.now)
			r := f.s.Query(tc.window, now)
			n := int(tc.window / time.Minute)
			checkSeries(t, r, n, now.Truncate(time.Minute).Add(-time.Duration(n-1)*time.Minute))
			if r.Totals.Total != tc.want {
				t.Errorf("total %d, want %d", r.Totals.Total, tc.want)
			}
			if got := totalsOf(r); !slices.Equal(got[len(got)-len(tc.wantTail):], tc.wantTail) {
				t.Errorf("series tail %v, want %v", got[len(got)-len(tc.wantTail):], tc.wantTail)
			}
		})
	}
}

func TestClockBackwards(t *testing.T) {
	f := newFixture(t, t0, testActions)
	f.hit(t, "ga4", "forward", "consent_granted", "eea", 1)
	f.s.Tick(at(5 * time.Minute)) // closes minute 4 with the hit
	f.hit(t, "ga4", "drop", "consent_missing", "eea", 2)

	for _, back := range []time.Time{at(2 * time.Minute), at(-48 * time.Hour), {}, time.Unix(-1, 0)} {
		f.s.Tick(back) // must neither panic nor store the pending hits
		r := f.s.Query(15*time.Minute, back)
		// Read as the last tick's minute: the window ends at minute 5.
		checkSeries(t, r, 15, at(-9*time.Minute))
		if got := totalsOf(r); got[13] != 1 || got[14] != 2 || r.Totals.Total != 3 {
			t.Fatalf("now %v: series %v total %d, want 1 in minute 4 and 2 pending in minute 5", back, got, r.Totals.Total)
		}
		if !r.To.Equal(at(5 * time.Minute)) {
			t.Fatalf("now %v: to = %v, want the start of the last tick's minute", back, r.To)
		}
	}

	f.s.Tick(at(6 * time.Minute))
	r := f.s.Query(15*time.Minute, at(6*time.Minute))
	if got := totalsOf(r); got[12] != 1 || got[13] != 2 || got[14] != 0 || r.Totals.Total != 3 {
		t.Fatalf("after the clock recovered: series %v total %d, want 1, 2, 0", got, r.Totals.Total)
	}
}

func TestBaselineExcludesEarlierHits(t *testing.T) {
	m, err := telemetry.New(telemetry.BuildInfo{}, testVendors, testActions, testReasons)
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	j, err := m.Jurisdiction("eea")
	if err != nil {
		t.Fatalf("Jurisdiction: %v", err)
	}
	m.Hit(0, 0, 0, j)
	s, err := stats.New(m, stats.WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatalf("stats.New: %v", err)
	}
	if r := s.Query(time.Hour, at(time.Second)); r.Totals.Total != 0 {
		t.Fatalf("hit from before New reported: %+v", r.Totals)
	}
	m.Hit(0, 0, 0, j)
	if r := s.Query(time.Hour, at(time.Second)); r.Totals.Total != 1 {
		t.Fatalf("total %d, want only the hit after New", r.Totals.Total)
	}
}

func TestRestartStartsEmpty(t *testing.T) {
	old := newFixture(t, t0, testActions)
	old.hit(t, "ga4", "forward", "consent_granted", "eea", 7)
	old.s.Tick(at(time.Minute))
	if r := old.s.Query(time.Hour, at(time.Minute)); r.Totals.Total != 7 {
		t.Fatalf("before restart: total %d, want 7", r.Totals.Total)
	}

	// A restart is a new process: new counters, new ring.
	f := newFixture(t, at(2*time.Minute), testActions)
	r := f.s.Query(24*time.Hour, at(2*time.Minute+time.Second))
	if r.Totals != (stats.Counts{}) || len(r.ByVendor)+len(r.ByJurisdiction)+len(r.ByReason)+len(r.ByVendorJurisdiction) != 0 {
		t.Fatalf("after restart: totals %+v, breakdowns %+v", r.Totals, r)
	}
	checkSeries(t, r, 1440, at(2*time.Minute-1439*time.Minute))
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	for _, k := range []string{`"by_vendor":[]`, `"by_jurisdiction":[]`, `"by_reason":[]`, `"by_vendor_jurisdiction":[]`} {
		if !strings.Contains(string(body), k) {
			t.Errorf("empty report lacks %s (the page iterates lists without null checks)", k)
		}
	}

	f.hit(t, "meta_pixel", "drop", "consent_missing", "uk", 1)
	r = f.s.Query(24*time.Hour, at(2*time.Minute+2*time.Second))
	if r.Totals != (stats.Counts{Drop: 1, Total: 1}) {
		t.Fatalf("after restart and one hit: totals %+v", r.Totals)
	}
}

func TestBreakdowns(t *testing.T) {
	// "shadow" stands for an action the stats do not know: counted in total only.
	f := newFixture(t, t0, []string{"forward", "anonymise", "drop", "shadow"})
	f.hit(t, "ga4", "forward", "consent_granted", "eea", 6)
	f.hit(t, "ga4", "drop", "consent_missing", "eea", 2)
	f.hit(t, "ga4", "anonymise", "gpc_opt_out", "eea", 1)
	f.s.Tick(at(time.Minute)) // half in a closed bucket, half live: both must be summed
	f.hit(t, "ga4", "forward", "consent_granted", "uk", 2)
	f.hit(t, "meta_pixel", "drop", "consent_missing", "eea", 3)
	f.hit(t, "matomo", "shadow", "consent_granted", "us-ca", 1)
	f.hit(t, "matomo", "forward", "consent_granted", "other", 1)

	r := f.s.Query(time.Hour, at(time.Minute+time.Second))
	c := func(fw, an, dr, tot uint64) stats.Counts {
		return stats.Counts{Forward: fw, Anonymise: an, Drop: dr, Total: tot}
	}
	if want := c(9, 1, 5, 16); r.Totals != want {
		t.Errorf("totals %+v, want %+v", r.Totals, want)
	}
	for _, tc := range []struct {
		name      string
		got, want []stats.Keyed
	}{
		{"by_vendor", r.ByVendor, []stats.Keyed{
			{Key: "ga4", Counts: c(8, 1, 2, 11)},
			{Key: "meta_pixel", Counts: c(0, 0, 3, 3)},
			{Key: "matomo", Counts: c(1, 0, 0, 2)},
		}},
		{"by_jurisdiction", r.ByJurisdiction, []stats.Keyed{
			{Key: "eea", Counts: c(6, 1, 5, 12)},
			{Key: "uk", Counts: c(2, 0, 0, 2)},
			{Key: "other", Counts: c(1, 0, 0, 1)}, // ties sort by key
			{Key: "us-ca", Counts: c(0, 0, 0, 1)},
		}},
		{"by_reason", r.ByReason, []stats.Keyed{
			{Key: "consent_granted", Counts: c(9, 0, 0, 10)},
			{Key: "consent_missing", Counts: c(0, 0, 5, 5)},
			{Key: "gpc_opt_out", Counts: c(0, 1, 0, 1)},
		}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, tc.got, tc.want)
		}
	}
	wantVJ := []stats.VendorJurisdiction{
		{Vendor: "ga4", Jurisdiction: "eea", Counts: c(6, 1, 2, 9), Reasons: []stats.Keyed{
			{Key: "consent_granted", Counts: c(6, 0, 0, 6)},
			{Key: "consent_missing", Counts: c(0, 0, 2, 2)},
			{Key: "gpc_opt_out", Counts: c(0, 1, 0, 1)},
		}},
		{Vendor: "meta_pixel", Jurisdiction: "eea", Counts: c(0, 0, 3, 3), Reasons: []stats.Keyed{
			{Key: "consent_missing", Counts: c(0, 0, 3, 3)},
		}},
		{Vendor: "ga4", Jurisdiction: "uk", Counts: c(2, 0, 0, 2), Reasons: []stats.Keyed{
			{Key: "consent_granted", Counts: c(2, 0, 0, 2)},
		}},
		{Vendor: "matomo", Jurisdiction: "other", Counts: c(1, 0, 0, 1), Reasons: []stats.Keyed{
			{Key: "consent_granted", Counts: c(1, 0, 0, 1)},
		}},
		{Vendor: "matomo", Jurisdiction: "us-ca", Counts: c(0, 0, 0, 1), Reasons: []stats.Keyed{
			{Key: "consent_granted", Counts: c(0, 0, 0, 1)},
		}},
	}
	if !reflect.DeepEqual(r.ByVendorJurisdiction, wantVJ) {
		t.Errorf("by_vendor_jurisdiction:\n got %+v\nwant %+v", r.ByVendorJurisdiction, wantVJ)
	}
}

func TestInstance(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		in   stats.Instance
		want string
	}{
		{"empty fields omitted", stats.Instance{}, `{}`},
		{"version only", stats.Instance{Version: "1.4.0"}, `{"version":"1.4.0"}`},
		{"all, times in UTC", stats.Instance{
			Version: "1.4.0", ConfigVersion: "sha256:ab12",
			ConfigLoadedAt: time.Date(2026, 11, 22, 9, 30, 0, 0, paris),
			GeoIPBuild:     time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		}, `{"version":"1.4.0","config_version":"sha256:ab12","config_loaded_at":"2026-11-22T08:30:00Z","geoip_build":"2026-11-01T00:00:00Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, t0, testActions, stats.WithInstance(func() stats.Instance { return tc.in }))
			body, err := json.Marshal(f.s.Query(15*time.Minute, at(time.Second)))
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var got struct{ Instance json.RawMessage }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if string(got.Instance) != tc.want {
				t.Errorf("instance %s, want %s", got.Instance, tc.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	m, err := telemetry.New(telemetry.BuildInfo{}, testVendors, testActions, testReasons)
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	for _, tc := range []struct {
		name string
		src  stats.Source
		opts []stats.Option
		want string
	}{
		{"nil source", nil, nil, "nil source"},
		{"zero capacity", m, []stats.Option{stats.WithCapacity(0)}, "capacity 0"},
		{"capacity over max", m, []stats.Option{stats.WithCapacity(stats.MaxCapacity + 1)}, "capacity"},
		{"nil clock", m, []stats.Option{stats.WithClock(nil)}, "nil clock"},
		{"nil instance", m, []stats.Option{stats.WithInstance(nil)}, "nil instance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := stats.New(tc.src, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || s != nil {
				t.Fatalf("New = %v, %v; want an error mentioning %q", s, err, tc.want)
			}
		})
	}
}

// fakeSource returns its cells in the order given (not sorted) and lets a test lower a
// count, as a Source other than Metrics might after a reset.
type fakeSource struct{ cells []telemetry.HitCell }

func (f *fakeSource) AppendHits(dst []telemetry.HitCell) []telemetry.HitCell {
	return append(dst, f.cells...)
}

func (f *fakeSource) HitLabels(cell uint32) (vendor, action, reason, jurisdiction string, ok bool) {
	if cell == 99 {
		return "", "", "", "", false
	}
	return fmt.Sprintf("v%d", cell), "forward", "r", "eea", true
}

func TestSourceResetUnsortedAndUnnamed(t *testing.T) {
	src := &fakeSource{cells: []telemetry.HitCell{{Cell: 3, Count: 10}, {Cell: 1, Count: 5}}}
	s, err := stats.New(src, stats.WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Cell 3 grows by 2, cell 1 is reset and has counted 4 since, cell 99 has no name.
	src.cells = []telemetry.HitCell{{Cell: 99, Count: 8}, {Cell: 3, Count: 12}, {Cell: 1, Count: 4}, {Cell: 2, Count: 1}}
	s.Tick(at(time.Minute))
	r := s.Query(15*time.Minute, at(time.Minute))
	want := []stats.Keyed{
		{Key: "v1", Counts: stats.Counts{Forward: 4, Total: 4}},
		{Key: "v3", Counts: stats.Counts{Forward: 2, Total: 2}},
		{Key: "v2", Counts: stats.Counts{Forward: 1, Total: 1}},
	}
	if !slices.Equal(r.ByVendor, want) || r.Totals.Total != 7 {
		t.Fatalf("by_vendor %+v total %d; want %+v and 7 (unnamed cell left out of both)", r.ByVendor, r.Totals.Total, want)
	}
}

func TestConcurrentHitsTicksQueries(t *testing.T) {
	const (
		writers = 4
		ticks   = 300 // minutes, all inside the final 24h query
		queries = 30
	)
	f := newFixture(t, t0, testActions)
	var nowNanos atomic.Int64 // the ticker's time, read by the querier
	nowNanos.Store(t0.UnixNano())

	// Writers hit until the ticker and the querier are both done, so every tick and
	// query runs while counters move.
	var stop atomic.Bool
	var sent atomic.Uint64
	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() {
			var n uint64
			for i := 0; !stop.Load(); i++ {
				f.m.Hit(i%len(testVendors), w%len(testActions), i%len(testReasons), f.jur["eea"])
				n++
			}
			sent.Add(n)
		})
	}

	var others sync.WaitGroup
	others.Go(func() {
		for i := 1; i <= ticks; i++ {
			now := at(time.Duration(i) * time.Minute)
			f.s.Tick(now)
			nowNanos.Store(now.UnixNano())
		}
	})
	errs := make(chan error, 1)
	others.Go(func() {
		var prev uint64
		for range queries {
			r := f.s.Query(24*time.Hour, time.Unix(0, nowNanos.Load()))
			// Every hit is in the window, so the total can only grow: a drop would mean
			// a hit lost, or counted twice and then corrected, across a tick.
			if r.Totals.Total < prev {
				errs <- fmt.Errorf("total went from %d to %d", prev, r.Totals.Total)
				return
			}
			prev = r.Totals.Total
		}
	})
	others.Wait()
	stop.Store(true)
	writing.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	end := at((ticks + 1) * time.Minute)
	f.s.Tick(end)
	r := f.s.Query(24*time.Hour, end.Add(time.Second))
	if r.Totals.Total != sent.Load() || r.Totals.Total == 0 {
		t.Fatalf("total %d, want the %d hits sent", r.Totals.Total, sent.Load())
	}
	if r.Totals.Forward+r.Totals.Anonymise+r.Totals.Drop != r.Totals.Total {
		t.Fatalf("totals %+v: actions do not add up", r.Totals)
	}
}

func TestRunTicksAtMinuteBoundaries(t *testing.T) {
	// The clock's answers, in call order: New's baseline, Run's first wait (1ms before
	// the boundary, so the real timer is short), the tick, then Run's next wait.
	times := []time.Time{t0, at(time.Minute - time.Millisecond), at(time.Minute), at(time.Minute + time.Millisecond)}
	var calls atomic.Int32
	fourth := make(chan struct{})
	clock := func() time.Time {
		i := int(calls.Add(1)) - 1
		if i == 3 {
			close(fourth)
		}
		return times[min(i, len(times)-1)]
	}
	m, err := telemetry.New(telemetry.BuildInfo{}, testVendors, testActions, testReasons)
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	j, err := m.Jurisdiction("eea")
	if err != nil {
		t.Fatalf("Jurisdiction: %v", err)
	}
	s, err := stats.New(m, stats.WithClock(clock))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.Hit(0, 0, 0, j)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case <-fourth: // Run has ticked and is computing its next wait
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not tick")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// Query a minute later than the tick: if Run had not stored minute 0, the live
	// delta would sit in minute 1 instead.
	r := s.Query(15*time.Minute, at(2*time.Minute))
	if got := totalsOf(r); got[12] != 1 || r.Totals.Total != 1 {
		t.Fatalf("series %v, want the hit stored in minute 0 by Run's tick", got)
	}
}

// server serves s.Handler() on a real fasthttp server on a free loopback port.
func server(t *testing.T, s *stats.Stats) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{Handler: s.Handler()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

type response struct {
	code                      int
	contentType, cache, allow string
	body                      []byte
}

func do(t *testing.T, method, url string) response {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	if method == fasthttp.MethodHead {
		resp.SkipBody = true
	}
	if err := (&fasthttp.Client{}).DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return response{
		code:        resp.StatusCode(),
		contentType: string(resp.Header.ContentType()),
		cache:       string(resp.Header.Peek(fasthttp.HeaderCacheControl)),
		allow:       string(resp.Header.Peek(fasthttp.HeaderAllow)),
		body:        append([]byte(nil), resp.Body()...),
	}
}

func keysOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestHandler(t *testing.T) {
	f := newFixture(t, t0, testActions, stats.WithInstance(func() stats.Instance {
		return stats.Instance{Version: "1.4.0", GeoIPBuild: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	}))
	f.hit(t, "ga4", "drop", "consent_missing", "eea", 2)
	f.s.Tick(at(time.Minute))
	f.hit(t, "ga4", "forward", "consent_granted", "eea", 1)
	f.clock.Set(at(time.Minute + 37*time.Second))
	base := server(t, f.s)

	for _, tc := range []struct {
		query  string
		window string
		n      int
	}{
		{"", "1h", 60},
		{"?scope=instance", "1h", 60},
		{"?window=15m", "15m", 15},
		{"?window=1h", "1h", 60},
		{"?window=24h", "24h", 1440},
	} {
		t.Run("GET"+tc.query, func(t *testing.T) {
			res := do(t, fasthttp.MethodGet, base+"/api/stats"+tc.query)
			if res.code != fasthttp.StatusOK || res.contentType != "application/json" || res.cache != "no-store" {
				t.Fatalf("status %d content-type %q cache-control %q: %s", res.code, res.contentType, res.cache, res.body)
			}
			wantTop := []string{"by_jurisdiction", "by_reason", "by_vendor", "by_vendor_jurisdiction", "from", "generated_at",
				"instance", "scope", "scopes", "series", "step_seconds", "to", "totals", "window"}
			if got := keysOf(t, res.body); !slices.Equal(got, wantTop) {
				t.Fatalf("top-level keys %v, want %v", got, wantTop)
			}
			var r struct {
				Scope                string            `json:"scope"`
				Scopes               []string          `json:"scopes"`
				Window               string            `json:"window"`
				StepSeconds          int               `json:"step_seconds"`
				Instance             json.RawMessage   `json:"instance"`
				Totals               json.RawMessage   `json:"totals"`
				Series               []json.RawMessage `json:"series"`
				ByVendor             []json.RawMessage `json:"by_vendor"`
				ByVendorJurisdiction []json.RawMessage `json:"by_vendor_jurisdiction"`
			}
			if err := json.Unmarshal(res.body, &r); err != nil {
				t.Fatalf("decode: %v", err)
			}
			var times struct {
				From        string `json:"from"`
				To          string `json:"to"`
				GeneratedAt string `json:"generated_at"`
			}
			if err := json.Unmarshal(res.body, &times); err != nil {
				t.Fatalf("decode times: %v", err)
			}
			wantFrom := at(2*time.Minute - time.Duration(tc.n)*time.Minute).Format(time.RFC3339)
			if r.Window != tc.window || r.StepSeconds != 60 || len(r.Series) != tc.n ||
				times.From != wantFrom || times.To != "2026-11-22T10:01:37Z" || times.GeneratedAt != "2026-11-22T10:01:37Z" {
				t.Fatalf("window %q step %d series %d from %s to %s generated_at %s", r.Window, r.StepSeconds, len(r.Series), times.From, times.To, times.GeneratedAt)
			}
			if r.Scope != "instance" || !slices.Equal(r.Scopes, []string{"instance"}) {
				t.Errorf("scope %q scopes %v, want instance only (no fleet without Redis)", r.Scope, r.Scopes)
			}
			if string(r.Instance) != `{"version":"1.4.0","geoip_build":"2026-11-01T00:00:00Z"}` {
				t.Errorf("instance %s", r.Instance)
			}
			if string(r.Totals) != `{"forward":1,"anonymise":0,"drop":2,"total":3}` {
				t.Errorf("totals %s", r.Totals)
			}
			if got := keysOf(t, r.Series[0]); !slices.Equal(got, []string{"anonymise", "drop", "forward", "t", "total"}) {
				t.Errorf("series point keys %v", got)
			}
			if got := string(r.Series[tc.n-1]); got != `{"t":"2026-11-22T10:01:00Z","forward":1,"anonymise":0,"drop":0,"total":1}` {
				t.Errorf("current minute %s", got)
			}
			if got := keysOf(t, r.ByVendor[0]); !slices.Equal(got, []string{"anonymise", "drop", "forward", "key", "total"}) {
				t.Errorf("by_vendor entry keys %v", got)
			}
			if got := keysOf(t, r.ByVendorJurisdiction[0]); !slices.Equal(got, []string{"anonymise", "drop", "forward", "jurisdiction", "reasons", "total", "vendor"}) {
				t.Errorf("by_vendor_jurisdiction entry keys %v", got)
			}
		})
	}

	t.Run("HEAD", func(t *testing.T) {
		res := do(t, fasthttp.MethodHead, base+"/api/stats?window=15m")
		if res.code != fasthttp.StatusOK || res.contentType != "application/json" || len(res.body) != 0 {
			t.Fatalf("status %d content-type %q body %q", res.code, res.contentType, res.body)
		}
	})

	for _, tc := range []struct {
		name, method, query string
		code                int
		allow, errPart      string
	}{
		{"unsupported window", fasthttp.MethodGet, "?window=2h", fasthttp.StatusBadRequest, "", `window "2h": must be one of 15m, 1h, 24h`},
		{"empty window", fasthttp.MethodGet, "?window=", fasthttp.StatusBadRequest, "", `window "": must be one of 15m, 1h, 24h`},
		{"Go duration spelled differently", fasthttp.MethodGet, "?window=60m", fasthttp.StatusBadRequest, "", "must be one of"},
		{"POST", fasthttp.MethodPost, "?window=1h", fasthttp.StatusMethodNotAllowed, "GET, HEAD", "use GET or HEAD"},
		{"fleet without Redis", fasthttp.MethodGet, "?scope=fleet", fasthttp.StatusBadRequest, "", `scope "fleet": no fleet figures on this instance: they need the Redis consent store (consent.store: redis)`},
		{"unknown scope", fasthttp.MethodGet, "?scope=cluster", fasthttp.StatusBadRequest, "", `scope "cluster": must be fleet or instance`},
		{"empty scope", fasthttp.MethodGet, "?scope=", fasthttp.StatusBadRequest, "", `scope "": must be fleet or instance`},
		{"DELETE", fasthttp.MethodDelete, "", fasthttp.StatusMethodNotAllowed, "GET, HEAD", "use GET or HEAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, tc.method, base+"/api/stats"+tc.query)
			if res.code != tc.code || res.allow != tc.allow || res.contentType != "application/json" || res.cache != "no-store" {
				t.Fatalf("status %d allow %q content-type %q cache-control %q, want %d %q", res.code, res.allow, res.contentType, res.cache, tc.code, tc.allow)
			}
			var e map[string]string
			if err := json.Unmarshal(res.body, &e); err != nil || len(e) != 1 || !strings.Contains(e["error"], tc.errPart) {
				t.Fatalf("body %s (%v), want {\"error\": ...%s...}", res.body, err, tc.errPart)
			}
		})
	}
}

func TestHandlerRefusesWindowsLongerThanKept(t *testing.T) {
	f := newFixture(t, t0, testActions, stats.WithCapacity(59))
	base := server(t, f.s)
	if res := do(t, fasthttp.MethodGet, base+"/?window=1h"); res.code != fasthttp.StatusOK {
		t.Fatalf("1h with 59 whole minutes + the current one: status %d %s", res.code, res.body)
	}
	res := do(t, fasthttp.MethodGet, base+"/?window=24h")
	if res.code != fasthttp.StatusBadRequest || !strings.Contains(string(res.body), "must be one of 15m, 1h") {
		t.Fatalf("24h with 59 minutes kept: status %d %s", res.code, res.body)
	}

	tiny := newFixture(t, t0, testActions, stats.WithCapacity(3))
	res = do(t, fasthttp.MethodGet, server(t, tiny.s)+"/")
	if res.code != fasthttp.StatusBadRequest || !strings.Contains(string(res.body), "keeps only 3 minutes") {
		t.Fatalf("no window fits: status %d %s", res.code, res.body)
	}
}

// benchCatalogue is a realistic cardinality: 20 vendors × 3 actions × 16 reasons, and
// 300 cells hit every minute across 8 jurisdictions.
func benchFixture(b *testing.B) (*stats.Stats, func()) {
	b.Helper()
	vendors, reasons := make([]string, 20), make([]string, 16)
	for i := range vendors {
		vendors[i] = fmt.Sprintf("vendor%d", i)
	}
	for i := range reasons {
		reasons[i] = fmt.Sprintf("reason%d", i)
	}
	m, err := telemetry.New(telemetry.BuildInfo{}, vendors, testActions, reasons)
	if err != nil {
		b.Fatalf("telemetry.New: %v", err)
	}
	b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	for i := range 8 {
		if _, err := m.Jurisdiction(fmt.Sprintf("j%d", i)); err != nil {
			b.Fatalf("Jurisdiction: %v", err)
		}
	}
	s, err := stats.New(m, stats.WithClock(func() time.Time { return t0 }))
	if err != nil {
		b.Fatalf("stats.New: %v", err)
	}
	hitMinute := func() {
		for c := range 300 {
			m.Hit(c%20, c%3, (c/3)%16, c%8)
		}
	}
	return s, hitMinute
}

func BenchmarkTick(b *testing.B) {
	s, hitMinute := benchFixture(b)
	// Fill every slot once so the loop measures the steady state, where bucket slices
	// are reused.
	minute := 0
	for ; minute <= stats.DefaultCapacity; minute++ {
		hitMinute()
		s.Tick(at(time.Duration(minute+1) * time.Minute))
	}
	hitMinute()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		minute++
		s.Tick(at(time.Duration(minute) * time.Minute))
		b.StopTimer()
		hitMinute()
		b.StartTimer()
	}
}

func BenchmarkQuery24h(b *testing.B) {
	s, hitMinute := benchFixture(b)
	for minute := 1; minute <= stats.DefaultCapacity; minute++ {
		hitMinute()
		s.Tick(at(time.Duration(minute) * time.Minute))
	}
	hitMinute()
	now := at(stats.DefaultCapacity*time.Minute + 30*time.Second)
	if r := s.Query(24*time.Hour, now); r.Totals.Total != 300*1440 {
		b.Fatalf("total %d, want %d", r.Totals.Total, 300*1440)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Query(24*time.Hour, now)
	}
}

// TestSelectionSeries: a query naming a vendor and/or jurisdiction also gets the series
// of only those hits; the rest of the report stays unfiltered.
func TestSelectionSeries(t *testing.T) {
	m, err := telemetry.New(telemetry.BuildInfo{}, []string{"ga4", "meta"}, []string{"forward", "anonymise", "drop"}, []string{"r"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	eea, _ := m.Jurisdiction("eea")
	us, _ := m.Jurisdiction("us")
	now := time.Date(2026, 11, 22, 12, 0, 30, 0, time.UTC)
	s, err := stats.New(m, stats.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	m.Hit(0, 2, 0, eea)
	m.Hit(0, 0, 0, us)
	m.Hit(1, 2, 0, eea)
	sum := func(ps []stats.Point) (c stats.Counts) {
		for _, p := range ps {
			c.Forward += p.Forward
			c.Anonymise += p.Anonymise
			c.Drop += p.Drop
			c.Total += p.Total
		}
		return c
	}
	for _, tc := range []struct {
		vendor, jur string
		want        stats.Counts
	}{
		{"ga4", "eea", stats.Counts{Drop: 1, Total: 1}},
		{"ga4", "", stats.Counts{Forward: 1, Drop: 1, Total: 2}},
		{"", "eea", stats.Counts{Drop: 2, Total: 2}},
		{"nosuch", "", stats.Counts{}},
	} {
		r := s.QuerySelection(15*time.Minute, now, tc.vendor, tc.jur)
		if r.Selection == nil || len(r.Selection.Series) != 15 || sum(r.Selection.Series) != tc.want {
			t.Errorf("%s/%s: selection %+v", tc.vendor, tc.jur, r.Selection)
		}
		if r.Totals.Total != 3 {
			t.Errorf("%s/%s: totals %+v, want the unfiltered 3", tc.vendor, tc.jur, r.Totals)
		}
	}
	if r := s.Query(15*time.Minute, now); r.Selection != nil {
		t.Errorf("unfiltered query has a selection: %+v", r.Selection)
	}
}
