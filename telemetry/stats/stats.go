package stats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/consentgate/consentgate/telemetry"
)

// Source is what Stats reads; *telemetry.Metrics satisfies it. AppendHits must return
// cumulative counts that only grow (a decrease is read as a counter reset), and a cell
// must keep the same labels for the life of the Source, because Stats caches them.
type Source interface {
	AppendHits(dst []telemetry.HitCell) []telemetry.HitCell
	HitLabels(cell uint32) (vendor, action, reason, jurisdiction string, ok bool)
}

// Instance describes the running instance in a Report, so a dashboard behind a load
// balancer can tell which instance (and which config and GeoIP build) answered.
type Instance struct {
	Version        string    `json:"version,omitempty"`
	ConfigVersion  string    `json:"config_version,omitempty"`
	ConfigLoadedAt time.Time `json:"config_loaded_at,omitzero"`
	GeoIPBuild     time.Time `json:"geoip_build,omitzero"`
}

// DefaultCapacity is 24 hours of whole minutes, the longest window the handler serves.
const DefaultCapacity = 24 * 60

// MaxCapacity bounds WithCapacity so a typo cannot allocate an unbounded ring.
const MaxCapacity = 7 * 24 * 60

// Option configures New.
type Option func(*config)

type config struct {
	clock    func() time.Time
	capacity int
	instance func() Instance
	fleet    *Fleet
}

// WithClock replaces time.Now, for tests. Run and Handler read it; Tick and Query take
// their time as an argument.
func WithClock(clock func() time.Time) Option { return func(c *config) { c.clock = clock } }

// WithCapacity sets how many whole minutes are kept (1..MaxCapacity), besides the
// current partial minute.
func WithCapacity(minutes int) Option { return func(c *config) { c.capacity = minutes } }

// WithInstance supplies the instance description for each Report. It is called once per
// query, outside Stats' lock, possibly from several goroutines at once.
func WithInstance(f func() Instance) Option { return func(c *config) { c.instance = f } }

// WithFleet makes the handler answer scope=fleet from f, and by default.
func WithFleet(f *Fleet) Option { return func(c *config) { c.fleet = f } }

// Stats is the ring of per-minute deltas. All methods are safe for concurrent use.
type Stats struct {
	src      Source
	clock    func() time.Time
	instance func() Instance
	capacity int
	windows  []namedWindow // the handler's windows that fit in capacity
	fleet    *Fleet        // nil without Redis

	mu sync.Mutex
	// ring[slot(m)] holds minute m only while its minute field says so; a slot whose
	// minute was skipped keeps an older tag and so reads as empty without being cleared.
	ring       []bucket
	lastMinute int64 // the minute of the last snapshot; the current partial minute
	last, snap []telemetry.HitCell
	live       []entry // the partial minute's delta, rebuilt per query
	// Cells are renamed to dense ids on first sight so a query sums into a slice rather
	// than a map, and labels are resolved once instead of once per bucket per query.
	ids map[uint32]uint32
	tables
}

type bucket struct {
	minute int64
	cells  []entry // reused when the slot is overwritten, so a steady state allocates nothing
}

type entry struct {
	id uint32
	n  uint64
}

type actionKind uint8

const (
	actionOther actionKind = iota
	actionForward
	actionAnonymise
	actionDrop
)

type cellLabels struct {
	vendor, reason, jurisdiction string
	kind                         actionKind
	ok                           bool
}

// New builds a Stats over src and takes the baseline snapshot.
func New(src Source, opts ...Option) (*Stats, error) {
	if src == nil {
		return nil, errors.New("stats: nil source")
	}
	c := config{clock: time.Now, capacity: DefaultCapacity, instance: func() Instance { return Instance{} }}
	for _, o := range opts {
		o(&c)
	}
	if c.clock == nil {
		return nil, errors.New("stats: nil clock")
	}
	if c.instance == nil {
		return nil, errors.New("stats: nil instance func")
	}
	if c.capacity < 1 || c.capacity > MaxCapacity {
		return nil, fmt.Errorf("stats: capacity %d minutes: want 1..%d", c.capacity, MaxCapacity)
	}
	s := &Stats{
		src:      src,
		clock:    c.clock,
		instance: c.instance,
		capacity: c.capacity,
		fleet:    c.fleet,
		ring:     make([]bucket, c.capacity),
		ids:      make(map[uint32]uint32),
	}
	for i := range s.ring {
		s.ring[i].minute = math.MinInt64
	}
	for _, w := range handlerWindows {
		if int(w.d/time.Minute) <= c.capacity+1 {
			s.windows = append(s.windows, w)
		}
	}
	s.last = s.snapshot(nil)
	s.lastMinute = minuteOf(s.clock())
	return s, nil
}

// Run ticks at each minute boundary of the clock until ctx is done. The wait is
// recomputed from the clock every time, so a timer that fires a little early only
// causes a no-op tick followed by a short wait, never a skipped minute.
func (s *Stats) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := s.clock()
		t.Reset(minuteStart(minuteOf(now) + 1).Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.Tick(s.clock())
	}
}

// Tick closes the minutes ended by now: what was counted since the last snapshot is
// stored under the minute before now's. A now in the same minute as the last snapshot,
// or earlier, does nothing.
func (s *Stats) Tick(now time.Time) {
	m := minuteOf(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m <= s.lastMinute {
		return
	}
	s.snap = s.snapshot(s.snap)
	b := &s.ring[s.slot(m-1)]
	b.minute = m - 1
	b.cells = s.diff(b.cells[:0], s.last, s.snap)
	s.last, s.snap = s.snap, s.last
	s.lastMinute = m
}

// snapshot reads the cumulative counters into dst, sorted by cell for diff.
// *telemetry.Metrics already returns them sorted; the check keeps another Source correct.
func (s *Stats) snapshot(dst []telemetry.HitCell) []telemetry.HitCell {
	dst = s.src.AppendHits(dst[:0])
	if !slices.IsSortedFunc(dst, func(a, b telemetry.HitCell) int { return cmp.Compare(a.Cell, b.Cell) }) {
		slices.SortFunc(dst, func(a, b telemetry.HitCell) int { return cmp.Compare(a.Cell, b.Cell) })
	}
	return dst
}

// diff appends to dst the cells whose count changed between the sorted snapshots prev
// and cur (diffCells), under Stats' dense ids.
func (s *Stats) diff(dst []entry, prev, cur []telemetry.HitCell) []entry {
	return diffCells(dst, prev, cur, s.idOf)
}

func (s *Stats) idOf(cell uint32) uint32 {
	if id, ok := s.ids[cell]; ok {
		return id
	}
	v, a, r, j, ok := s.src.HitLabels(cell)
	id := uint32(len(s.labels))
	s.ids[cell] = id
	s.labels = append(s.labels, cellLabels{vendor: v, reason: r, jurisdiction: j, kind: kindOf(a), ok: ok})
	return id
}

func kindOf(action string) actionKind {
	switch action {
	case "forward":
		return actionForward
	case "anonymise":
		return actionAnonymise
	case "drop":
		return actionDrop
	}
	return actionOther
}

func (s *Stats) slot(m int64) int {
	c := int64(s.capacity)
	return int((m%c + c) % c)
}

// minuteOf numbers wall-clock minutes since the Unix epoch (floor division, so a time
// before 1970 does not land in the wrong minute).
func minuteOf(t time.Time) int64 {
	sec := t.Unix()
	m := sec / 60
	if sec%60 < 0 {
		m--
	}
	return m
}

func minuteStart(m int64) time.Time { return time.Unix(m*60, 0).UTC() }
