package stats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// reader is the Fleet's reading half; the Fleet's readMu guards it.
//
// A minute that ended settleAfter ago no longer changes, short of a late batch, so it is
// read from Redis once and kept: a dashboard refreshing a 24-hour window every 15 s
// reads the last minute or two, not 1,440 hashes. Every late batch (and every publisher
// start or recovery) bumps the generation key after it lands; a reader that sees the
// generation change forgets what it kept. Without a generation (a Redis that lost its
// data, or no publisher yet) nothing is kept.
type reader struct {
	gen     string
	minutes map[int64]*fleetMinute // settled minutes, read under gen
	tables
	ids       map[string]uint32 // cell field → id in tables.labels
	instances map[string]uint32 // instance ID → dense id
}

// fleetMinute is one minute of the whole fleet.
type fleetMinute struct {
	cells     []entry
	instances []uint32
}

func (r *reader) init() {
	r.minutes = map[int64]*fleetMinute{}
	r.ids = map[string]uint32{}
	r.instances = map[string]uint32{}
}

// ErrNoFleet is what a Stats without a Fleet answers a fleet query with.
var ErrNoFleet = errors.New("no fleet figures on this instance: they need the Redis consent store (consent.store: redis), which every instance publishes to; the memory store's figures are this instance's only (scope=instance)")

// Query reports the fleet's hits in the window ending with now's minute, as
// Stats.QuerySelection does for one instance, from what every instance published (up to
// one publish interval ago). It fails if Redis does not answer.
func (f *Fleet) Query(ctx context.Context, window time.Duration, now time.Time, vendor, jurisdiction string) (Report, error) {
	n := windowMinutes(window)
	cur := minuteOf(now)
	f.readMu.Lock()
	defer f.readMu.Unlock()
	r := &f.read

	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	gen, err := f.client.Get(rctx, f.genKey()).Result()
	cancel()
	switch {
	case errors.Is(err, redis.Nil):
		gen = ""
	case err != nil:
		return Report{}, fmt.Errorf("stats: fleet: read generation: %w", err)
	}
	// Read before the minutes: a late batch that lands after them bumps the generation
	// after it, and the next query sees the change.
	if gen == "" || gen != r.gen {
		clear(r.minutes)
		r.gen = gen
	}
	first := cur - n + 1
	for m := range r.minutes {
		if m < cur-int64(f.capacity) {
			delete(r.minutes, m)
		}
	}

	fresh := map[int64]*fleetMinute{}
	var missing []int64
	for m := first; m <= cur; m++ {
		if r.minutes[m] == nil {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		rctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		cmds := make([]*redis.MapStringStringCmd, len(missing))
		_, err := f.client.Pipelined(rctx, func(p redis.Pipeliner) error {
			for i, m := range missing {
				cmds[i] = p.HGetAll(rctx, f.minuteKey(m))
			}
			return nil
		})
		if err != nil {
			return Report{}, fmt.Errorf("stats: fleet: read minutes: %w", err)
		}
		settled := minuteOf(now.Add(-settleAfter)) - 1 // the last minute that ended settleAfter ago
		for i, m := range missing {
			fm := r.parse(cmds[i].Val())
			if gen != "" && m <= settled {
				r.minutes[m] = fm
			} else {
				fresh[m] = fm
			}
		}
	}
	minute := func(m int64) *fleetMinute {
		if fm := r.minutes[m]; fm != nil {
			return fm
		}
		return fresh[m]
	}

	rep := r.report(n, cur, now, func(m int64) []entry {
		if fm := minute(m); fm != nil {
			return fm.cells
		}
		return nil
	}, vendor, jurisdiction)
	seen := map[uint32]bool{}
	for m := first; m <= cur; m++ {
		if fm := minute(m); fm != nil {
			for _, id := range fm.instances {
				seen[id] = true
			}
		}
	}
	info := &FleetInfo{Instances: len(seen), PublishSeconds: int(f.interval / time.Second)}
	if fm := minute(cur - 1); fm != nil {
		info.InstancesLastMinute = len(fm.instances)
	}
	rep.Scope = ScopeFleet
	rep.Fleet = info
	return rep, nil
}

// parse reads one minute's hash. Fields it cannot have written, and counts that are not
// whole numbers, are left out rather than failing the whole report.
func (r *reader) parse(h map[string]string) *fleetMinute {
	fm := &fleetMinute{}
	for field, v := range h {
		if inst, ok := strings.CutPrefix(field, instanceMark); ok {
			id, ok := r.instances[inst]
			if !ok {
				if len(r.instances) >= maxFleetInstances {
					continue
				}
				id = uint32(len(r.instances))
				r.instances[inst] = id
			}
			fm.instances = append(fm.instances, id)
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			continue
		}
		id, ok := r.ids[field]
		if !ok {
			l, valid := parseCellField(field)
			if !valid || len(r.labels) >= maxFleetCells {
				continue
			}
			id = uint32(len(r.labels))
			r.ids[field] = id
			r.labels = append(r.labels, l)
		}
		fm.cells = append(fm.cells, entry{id: id, n: n})
	}
	return fm
}
