package stats

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/telemetry"
)

// publisher is the Fleet's sending half; the Fleet's pubMu guards it.
//
// Each tick turns what was counted since the last one into a batch for one minute and
// sends the queue, oldest first, until one fails. A batch gets its ID when it is first
// sent and never changes after that, so a retry is the same batch under the same ID and
// the script applies it at most once. Batches not sent yet are still open: new counts
// for their minute are merged into them, so an outage queues at most one batch per
// minute (plus the one whose send failed), and the queue is bounded by the capacity.
type publisher struct {
	f          *Fleet
	last, snap []telemetry.HitCell
	delta      []entry
	lastMinute int64 // the minute the last tick's counts went to
	// presentThrough is the last minute whose presence a sent batch marked.
	presentThrough int64
	seq            uint64
	pending        []batch
	// genOwed: readers may hold a copy of a minute that changed since (a late batch, a
	// Redis that lost its data), so the generation must be bumped once Redis answers.
	genOwed bool
	failing bool // for logging state changes only

	// fields names the publisher's dense cell ids.
	ids    map[uint32]uint32
	fields []string
	args   []any // reused argument list of the script
}

type batch struct {
	minute int64
	seq    uint64 // 0 until first sent; the ID is instance:seq from then on
	cells  []entry
	hits   uint64
}

func (p *publisher) init(f *Fleet) {
	p.f = f
	p.ids = map[uint32]uint32{}
	p.last = sortedHits(f.src, nil)
	p.lastMinute = minuteOf(f.clock())
	p.presentThrough = p.lastMinute - 1
	p.genOwed = true // a first publish makes the generation exist (see reader.query)
}

// sortedHits reads the cumulative counters, sorted by cell for diffCells.
func sortedHits(src Source, dst []telemetry.HitCell) []telemetry.HitCell {
	dst = src.AppendHits(dst[:0])
	if !slices.IsSortedFunc(dst, func(a, b telemetry.HitCell) int { return cmp.Compare(a.Cell, b.Cell) }) {
		slices.SortFunc(dst, func(a, b telemetry.HitCell) int { return cmp.Compare(a.Cell, b.Cell) })
	}
	return dst
}

func (p *publisher) idOf(cell uint32) uint32 {
	if id, ok := p.ids[cell]; ok {
		return id
	}
	v, a, r, j, ok := p.f.src.HitLabels(cell)
	field := ""
	// A name a reader would not take back is not sent (names come from the code and
	// from checked jurisdiction group names, so this does not happen).
	if ok && !strings.Contains(v+a+r+j, "|") && labelName(v) && labelName(a) && labelName(r) && labelName(j) {
		field = cellField(v, a, r, j)
	}
	id := uint32(len(p.fields))
	p.ids[cell] = id
	p.fields = append(p.fields, field)
	return id
}

// Publish takes what was counted since the last publish and sends every batch waiting,
// within the fleet's timeout per round trip. On an error the batches stay queued for the
// next call; the error is also counted and logged.
func (f *Fleet) Publish(ctx context.Context) error {
	f.pubMu.Lock()
	defer f.pubMu.Unlock()
	p := &f.pub
	now := f.clock()
	p.capture(now)
	p.expire(now)
	err := p.send(ctx, now)
	if f.metrics != nil {
		f.metrics.FleetPublish(err == nil)
		f.metrics.FleetPending(len(p.pending))
	}
	switch {
	case err != nil && !p.failing:
		p.failing = true
		f.log.Error("fleet stats: could not publish to Redis; the counts are kept and sent when it answers", "error", err.Error(), "pending_batches", len(p.pending))
	case err == nil && p.failing:
		p.failing = false
		f.log.Info("fleet stats: publishing to Redis again")
	}
	return err
}

// capture turns the counts since the last tick into a batch for the minute they mostly
// fell in. Ticks fall on multiples of the interval, so half an interval back is inside
// the span the tick closes: a tick at 10:01:00 closes 10:00:50..10:01:00, minute 10:00.
func (p *publisher) capture(now time.Time) {
	p.snap = sortedHits(p.f.src, p.snap)
	p.delta = diffCells(p.delta[:0], p.last, p.snap, p.idOf)
	p.last, p.snap = p.snap, p.last
	m := max(minuteOf(now.Add(-p.f.interval/2)), p.lastMinute)
	p.lastMinute = m

	if n := len(p.pending); n > 0 && p.pending[n-1].minute == m && p.pending[n-1].seq == 0 {
		p.pending[n-1].merge(p.delta)
		return
	}
	if len(p.delta) == 0 && (p.presentThrough >= m || slices.ContainsFunc(p.pending, func(b batch) bool { return b.minute == m })) {
		return // nothing counted, and this minute's presence is marked or on its way
	}
	b := batch{minute: m, cells: slices.Clone(p.delta)}
	for _, e := range b.cells {
		b.hits += e.n
	}
	p.pending = append(p.pending, b)
}

// merge adds cells into an unsent batch.
func (b *batch) merge(cells []entry) {
	if len(cells) == 0 {
		return
	}
	at := make(map[uint32]int, len(b.cells))
	for i, e := range b.cells {
		at[e.id] = i
	}
	for _, e := range cells {
		if i, ok := at[e.id]; ok {
			b.cells[i].n += e.n
		} else {
			at[e.id] = len(b.cells)
			b.cells = append(b.cells, e)
		}
		b.hits += e.n
	}
}

// expire gives up batches for minutes no window shows any more: their keys would have
// expired already.
func (p *publisher) expire(now time.Time) {
	oldest := minuteOf(now) - int64(p.f.capacity)
	var lost uint64
	p.pending = slices.DeleteFunc(p.pending, func(b batch) bool {
		if b.minute < oldest {
			lost += b.hits
			return true
		}
		return false
	})
	if lost > 0 {
		if p.f.metrics != nil {
			p.f.metrics.FleetLost(lost)
		}
		p.f.log.Error("fleet stats: gave up publishing counts older than the longest window", "hits", lost)
	}
}

// send sends the queue oldest first, stopping at the first failure, then bumps the
// generation if owed.
func (p *publisher) send(ctx context.Context, now time.Time) error {
	sent := 0
	for len(p.pending) > 0 && sent < maxSendsPerTick {
		b := &p.pending[0]
		if b.seq == 0 {
			p.seq++
			b.seq = p.seq
		} else {
			p.genOwed = true // a retry: it may land in a minute a reader has cached
		}
		if now.Sub(minuteStart(b.minute+1)) >= lateAfter {
			p.genOwed = true
		}
		if err := p.sendBatch(ctx, b); err != nil {
			p.genOwed = true
			return err
		}
		p.presentThrough = max(p.presentThrough, b.minute)
		p.pending = slices.Delete(p.pending, 0, 1)
		sent++
	}
	if p.genOwed {
		// After the batches: a reader that sees the new generation re-reads what they
		// changed; bumped first, it could cache a minute the batch was about to change.
		ctx, cancel := context.WithTimeout(ctx, p.f.timeout)
		defer cancel()
		if err := p.f.client.Incr(ctx, p.f.genKey()).Err(); err != nil {
			return fmt.Errorf("stats: fleet: bump generation: %w", err)
		}
		p.genOwed = false
	}
	return nil
}

func (p *publisher) sendBatch(ctx context.Context, b *batch) error {
	ctx, cancel := context.WithTimeout(ctx, p.f.timeout)
	defer cancel()
	args := append(p.args[:0],
		p.f.instance+":"+strconv.FormatUint(b.seq, 10),
		p.f.expireAt(b.minute),
		instanceMark+p.f.instance)
	for _, e := range b.cells {
		if field := p.fields[e.id]; field != "" {
			args = append(args, field, formatCount(e.n))
		}
	}
	p.args = args
	err := publishScript.Run(ctx, p.f.client, []string{p.f.minuteKey(b.minute), p.f.batchesKey(b.minute)}, args...).Err()
	clear(p.args) // keep no strings alive between ticks
	if err != nil {
		return fmt.Errorf("stats: fleet: publish minute %s: %w", minuteName(b.minute), err)
	}
	return nil
}
