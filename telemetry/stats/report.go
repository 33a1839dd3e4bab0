package stats

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Report is the body of GET /api/stats. Field names are a contract with the dashboard.
// Lists are never null, so the page can iterate without checking.
type Report struct {
	// Scope says whose hits the Report counts: ScopeInstance (this process) or
	// ScopeFleet (every instance that publishes to the same Redis).
	Scope string `json:"scope"`
	// Scopes lists the scopes this instance can answer, so a page knows whether to
	// offer the other one.
	Scopes      []string  `json:"scopes"`
	Window      string    `json:"window"`
	StepSeconds int       `json:"step_seconds"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	GeneratedAt time.Time `json:"generated_at"`
	// Instance is the instance that answered, whatever the scope.
	Instance Instance `json:"instance"`
	// Fleet is set for ScopeFleet only.
	Fleet  *FleetInfo `json:"fleet,omitempty"`
	Totals Counts     `json:"totals"`
	// Series has one point per minute of the window, oldest first, zeros included; the
	// last is the current partial minute.
	Series               []Point              `json:"series"`
	ByVendor             []Keyed              `json:"by_vendor"`
	ByJurisdiction       []Keyed              `json:"by_jurisdiction"`
	ByReason             []Keyed              `json:"by_reason"`
	ByVendorJurisdiction []VendorJurisdiction `json:"by_vendor_jurisdiction"`
	// Selection is the series of one vendor and/or jurisdiction group, when the query
	// named them, so the dashboard's chart can follow its filters.
	Selection *Selection `json:"selection,omitempty"`
}

// Scopes of a Report.
const (
	ScopeInstance = "instance"
	ScopeFleet    = "fleet"
)

// FleetInfo says which instances a fleet Report counts.
type FleetInfo struct {
	// Instances is how many instances published figures for at least one minute of the
	// window. A restarted process is a new instance, so a rolling deploy shows here.
	Instances int `json:"instances"`
	// InstancesLastMinute is how many published for the last whole minute: the instances
	// running now.
	InstancesLastMinute int `json:"instances_last_minute"`
	// PublishSeconds is how often each instance publishes: the fleet figures lag by up to
	// that much.
	PublishSeconds int `json:"publish_seconds"`
}

// Selection narrows the series to one vendor and/or jurisdiction group ("" = any).
type Selection struct {
	Vendor       string  `json:"vendor"`
	Jurisdiction string  `json:"jurisdiction"`
	Series       []Point `json:"series"`
}

func (sel *Selection) matches(l *cellLabels) bool {
	return (sel.Vendor == "" || sel.Vendor == l.vendor) && (sel.Jurisdiction == "" || sel.Jurisdiction == l.jurisdiction)
}

// Counts splits hits by action. Total also counts actions other than the three named
// ones, so a new action shows up as a gap between Total and the sum rather than vanishing.
type Counts struct {
	Forward   uint64 `json:"forward"`
	Anonymise uint64 `json:"anonymise"`
	Drop      uint64 `json:"drop"`
	Total     uint64 `json:"total"`
}

// Point is one minute of the series; T is the minute's start.
type Point struct {
	T time.Time `json:"t"`
	Counts
}

// Keyed is one vendor, jurisdiction group or reason.
type Keyed struct {
	Key string `json:"key"`
	Counts
}

// VendorJurisdiction answers "what share of this vendor's hits from this jurisdiction
// group were dropped, and why": Reasons splits the same hits by reason.
type VendorJurisdiction struct {
	Vendor       string `json:"vendor"`
	Jurisdiction string `json:"jurisdiction"`
	Counts
	Reasons []Keyed `json:"reasons"`
}

func (c *Counts) add(k actionKind, n uint64) {
	switch k {
	case actionForward:
		c.Forward += n
	case actionAnonymise:
		c.Anonymise += n
	case actionDrop:
		c.Drop += n
	}
	c.Total += n
}

func (c *Counts) merge(o Counts) {
	c.Forward += o.Forward
	c.Anonymise += o.Anonymise
	c.Drop += o.Drop
	c.Total += o.Total
}

// Query reports the window ending with now's minute: window/1m buckets (clamped to
// 1..MaxCapacity+1), the last being the current partial minute, read live from the
// Source so a hit shows at once rather than after the next tick. The live part is
// placed where the next Tick would store it, so a Tick never changes what Query reports.
// A now earlier than the last tick's minute is read as that minute.
func (s *Stats) Query(window time.Duration, now time.Time) Report {
	return s.QuerySelection(window, now, "", "")
}

// QuerySelection is Query with, when vendor or jurisdiction is not "", a Selection: the
// per-minute series of only those hits. Everything else in the Report is unfiltered.
func (s *Stats) QuerySelection(window time.Duration, now time.Time, vendor, jurisdiction string) Report {
	n := windowMinutes(window)
	inst := s.instance()

	s.mu.Lock()
	defer s.mu.Unlock()

	s.snap = s.snapshot(s.snap)
	s.live = s.diff(s.live[:0], s.last, s.snap)
	cur := max(minuteOf(now), s.lastMinute)
	liveMinute := s.lastMinute
	if cur > s.lastMinute {
		liveMinute = cur - 1
	}
	oldestKept := cur - int64(s.capacity)
	r := s.report(n, cur, now, func(m int64) []entry {
		switch {
		case m == liveMinute:
			return s.live
		case m < liveMinute && m >= oldestKept:
			if b := &s.ring[s.slot(m)]; b.minute == m {
				return b.cells
			}
		}
		return nil
	}, vendor, jurisdiction)
	r.Scope = ScopeInstance
	r.Scopes = s.scopes()
	r.Instance = cleanInstance(inst)
	return r
}

// scopes are the scopes s answers, the default first.
func (s *Stats) scopes() []string {
	if s.fleet != nil {
		return []string{ScopeFleet, ScopeInstance}
	}
	return []string{ScopeInstance}
}

// Fleet is the fleet s answers scope=fleet from, or nil.
func (s *Stats) Fleet() *Fleet { return s.fleet }

// windowMinutes is how many one-minute buckets a window has, clamped to
// 1..MaxCapacity+1.
func windowMinutes(window time.Duration) int64 {
	return min(max(int64(window/time.Minute), 1), MaxCapacity+1)
}

func cleanInstance(inst Instance) Instance {
	if !inst.ConfigLoadedAt.IsZero() {
		inst.ConfigLoadedAt = inst.ConfigLoadedAt.UTC()
	}
	if !inst.GeoIPBuild.IsZero() {
		inst.GeoIPBuild = inst.GeoIPBuild.UTC()
	}
	return inst
}

// tables names the cells a report sums (labels, by dense id) and keeps the per-cell
// sums of the window, reused from query to query. One instance's Stats and the fleet
// reader each have their own: their ids differ.
type tables struct {
	labels []cellLabels
	sums   []uint64
}

// report sums the n minutes ending with cur, each minute's cells as cellsOf returns
// them (nil: none), into a Report without Scope and Instance.
func (t *tables) report(n, cur int64, now time.Time, cellsOf func(m int64) []entry, vendor, jurisdiction string) Report {
	first := cur - n + 1
	t.sums = slices.Grow(t.sums[:0], len(t.labels))[:len(t.labels)]
	clear(t.sums)
	series := make([]Point, n)
	var sel *Selection
	if vendor != "" || jurisdiction != "" {
		sel = &Selection{Vendor: vendor, Jurisdiction: jurisdiction, Series: make([]Point, n)}
	}
	var totals Counts
	for i := range series {
		m := first + int64(i)
		series[i].T = minuteStart(m)
		if sel != nil {
			sel.Series[i].T = series[i].T
		}
		for _, e := range cellsOf(m) {
			l := &t.labels[e.id]
			if !l.ok {
				// The Source could not name the cell; with *telemetry.Metrics this cannot
				// happen, and an unnamed hit would make the breakdowns disagree with totals.
				continue
			}
			series[i].add(l.kind, e.n)
			if sel != nil && sel.matches(l) {
				sel.Series[i].add(l.kind, e.n)
			}
			t.sums[e.id] += e.n
		}
		totals.merge(series[i].Counts)
	}

	to := now.UTC().Truncate(time.Second)
	if start := minuteStart(cur); to.Before(start) {
		to = start
	}
	r := Report{
		Window:      formatWindow(n),
		StepSeconds: 60,
		From:        minuteStart(first),
		To:          to,
		GeneratedAt: now.UTC().Truncate(time.Second),
		Totals:      totals,
		Series:      series,
		Selection:   sel,
	}
	t.breakdowns(&r)
	return r
}

// breakdowns fills the by_* lists from t.sums, which holds each cell's total over the
// window.
func (t *tables) breakdowns(r *Report) {
	type vjKey struct{ vendor, jurisdiction string }
	type vjAcc struct {
		Counts
		reasons tally
	}
	vendors, jurs, reasons := tally{}, tally{}, tally{}
	vj := map[vjKey]*vjAcc{}
	for id, n := range t.sums {
		if n == 0 {
			continue
		}
		l := &t.labels[id]
		vendors.add(l.vendor, l.kind, n)
		jurs.add(l.jurisdiction, l.kind, n)
		reasons.add(l.reason, l.kind, n)
		k := vjKey{l.vendor, l.jurisdiction}
		a := vj[k]
		if a == nil {
			a = &vjAcc{reasons: tally{}}
			vj[k] = a
		}
		a.add(l.kind, n)
		a.reasons.add(l.reason, l.kind, n)
	}
	r.ByVendor, r.ByJurisdiction, r.ByReason = vendors.list(), jurs.list(), reasons.list()
	r.ByVendorJurisdiction = make([]VendorJurisdiction, 0, len(vj))
	for k, a := range vj {
		r.ByVendorJurisdiction = append(r.ByVendorJurisdiction, VendorJurisdiction{
			Vendor: k.vendor, Jurisdiction: k.jurisdiction, Counts: a.Counts, Reasons: a.reasons.list(),
		})
	}
	slices.SortFunc(r.ByVendorJurisdiction, func(a, b VendorJurisdiction) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.Jurisdiction, b.Jurisdiction))
	})
}

type tally map[string]*Counts

func (t tally) add(key string, k actionKind, n uint64) {
	c := t[key]
	if c == nil {
		c = &Counts{}
		t[key] = c
	}
	c.add(k, n)
}

// list returns the keys with a non-zero total, biggest first, ties by key so the order
// is stable between refreshes of the page.
func (t tally) list() []Keyed {
	out := make([]Keyed, 0, len(t))
	for k, c := range t {
		if c.Total > 0 {
			out = append(out, Keyed{Key: k, Counts: *c})
		}
	}
	slices.SortFunc(out, func(a, b Keyed) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// formatWindow names a window of n minutes the way the handler's parameter does.
func formatWindow(n int64) string {
	if n%60 == 0 {
		return strconv.FormatInt(n/60, 10) + "h"
	}
	return strconv.FormatInt(n, 10) + "m"
}
