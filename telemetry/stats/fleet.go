package stats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/consentgate/consentgate/telemetry"
)

// Fleet figures: every instance publishes its per-minute hit counts to the Redis the
// consent store uses, and any instance can sum them (see doc.go for the schema, the
// delivery guarantee and the cost).

// Fleet defaults.
const (
	// DefaultPublishInterval is how often an instance publishes. Ticks fall on multiples
	// of it on the wall clock, so every instance closes a minute at about the same time.
	DefaultPublishInterval = 10 * time.Second
	// DefaultFleetTimeout bounds one Redis round trip of a publish or a query.
	DefaultFleetTimeout = 2 * time.Second

	// maxSendsPerTick bounds the batches one tick sends, so catching up after an outage
	// (at most one batch per minute of it) is spread over ticks instead of one long burst.
	maxSendsPerTick = 120
	// lateAfter: a batch sent this long after its minute ended may land after a reader
	// cached that minute, so sending it bumps the generation readers check.
	lateAfter = 30 * time.Second
	// settleAfter: a reader caches a minute once it ended this long ago. It leaves
	// lateAfter of room for instances whose clocks run behind the reader's.
	settleAfter = 60 * time.Second
	// keyMargin keeps a minute's keys a little longer than the longest window, so a
	// reader never sees a minute of its window half expired.
	keyMargin = time.Hour
	// maxFleetCells and maxFleetInstances bound what a reader interns from Redis, which
	// other processes write: a corrupted or hostile key cannot make it grow without end.
	maxFleetCells     = 1 << 16
	maxFleetInstances = 1 << 16
)

// FleetMetrics is told how publishing goes; *telemetry.Metrics satisfies it.
type FleetMetrics interface {
	// FleetPublish counts one publish (a tick): ok, or failed and retried next tick.
	FleetPublish(ok bool)
	// FleetPending sets how many batches wait to be published.
	FleetPending(batches int)
	// FleetLost counts hits whose per-minute counts were given up unpublished.
	FleetLost(hits uint64)
}

// FleetOptions configure NewFleet.
type FleetOptions struct {
	// Client is the consent store's Redis client: one node, Sentinel or Cluster.
	Client redis.UniversalClient
	// Prefix starts every key, as it does the consent store's ("consentgate:").
	Prefix string
	// Source is this instance's counters, as for New.
	Source Source
	// Metrics may be nil.
	Metrics FleetMetrics
	Logger  *slog.Logger
	// Clock replaces time.Now (tests).
	Clock func() time.Time
	// Interval between publishes; default DefaultPublishInterval (1s..1m).
	Interval time.Duration
	// Timeout of one Redis round trip; default DefaultFleetTimeout.
	Timeout time.Duration
	// Capacity is the longest window in minutes, which is how long keys live; default
	// DefaultCapacity.
	Capacity int
}

// Fleet publishes this instance's per-minute counts to Redis and reads the whole
// fleet's back. Publish and Query are safe for concurrent use.
type Fleet struct {
	client   redis.UniversalClient
	prefix   string
	src      Source
	metrics  FleetMetrics
	log      *slog.Logger
	clock    func() time.Time
	interval time.Duration
	timeout  time.Duration
	capacity int
	instance string // this process's random ID, the @field of its presence

	pubMu sync.Mutex
	pub   publisher

	readMu sync.Mutex
	read   reader
}

// NewFleet builds a Fleet and takes the baseline snapshot of src: hits counted before
// are not published, as with New.
func NewFleet(o FleetOptions) (*Fleet, error) {
	if o.Client == nil || o.Source == nil {
		return nil, errors.New("stats: fleet: nil client or source")
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("stats: fleet: prefix %q contains '{' or '}', which would move the cluster hash tag", o.Prefix)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Interval == 0 {
		o.Interval = DefaultPublishInterval
	}
	if o.Interval < time.Second || o.Interval > time.Minute {
		return nil, fmt.Errorf("stats: fleet: publish interval %v: want 1s..1m", o.Interval)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultFleetTimeout
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Capacity < 1 || o.Capacity > MaxCapacity {
		return nil, fmt.Errorf("stats: fleet: capacity %d minutes: want 1..%d", o.Capacity, MaxCapacity)
	}
	var id [8]byte
	rand.Read(id[:]) // never fails (crypto/rand crashes the program rather than return short)
	f := &Fleet{
		client: o.Client, prefix: o.Prefix, src: o.Source, metrics: o.Metrics, log: o.Logger,
		clock: o.Clock, interval: o.Interval, timeout: o.Timeout, capacity: o.Capacity,
		instance: hex.EncodeToString(id[:]),
	}
	f.pub.init(f)
	f.read.init()
	return f, nil
}

// InstanceID is the random ID this process publishes under; a restart makes a new one.
func (f *Fleet) InstanceID() string { return f.instance }

// Interval is how often Run publishes.
func (f *Fleet) Interval() time.Duration { return f.interval }

// Run publishes at every multiple of the interval on the clock until ctx is done. The
// wait is recomputed from the clock each time, as in Stats.Run.
func (f *Fleet) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := f.clock()
		t.Reset(now.Truncate(f.interval).Add(f.interval).Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.Publish(ctx) // counts and logs its own failure
	}
}

// Keys. The minute is the hash tag, so a minute's two keys share a slot (the script
// touches both) and consecutive minutes spread over a cluster's nodes.
func (f *Fleet) minuteKey(m int64) string { return f.prefix + "stats:{" + minuteName(m) + "}" }
func (f *Fleet) batchesKey(m int64) string {
	return f.prefix + "stats:{" + minuteName(m) + "}:batches"
}
func (f *Fleet) genKey() string { return f.prefix + "stats:gen" }

// minuteName is a minute as UTC "200601021504", readable in redis-cli.
func minuteName(m int64) string { return minuteStart(m).Format("200601021504") }

// expireAt is when a minute's keys go: the end of the longest window that can show it,
// plus a margin. Every instance computes the same instant, whatever its clock.
func (f *Fleet) expireAt(m int64) int64 {
	return minuteStart(m + 1).Add(time.Duration(f.capacity)*time.Minute + keyMargin).Unix()
}

// instanceField marks an instance present in a minute's hash; a cell field never
// starts with '@' (it starts with a vendor name).
const instanceMark = "@"

// cellField names a cell in a minute's hash: vendor|action|reason|jurisdiction.
func cellField(vendor, action, reason, jurisdiction string) string {
	return vendor + "|" + action + "|" + reason + "|" + jurisdiction
}

// parseCellField is cellField's inverse; ok is false for a field no instance writes. It
// takes any name a version of consentgate might use (short, printable), not only today's.
func parseCellField(f string) (l cellLabels, ok bool) {
	parts := strings.Split(f, "|")
	if len(parts) != 4 {
		return cellLabels{}, false
	}
	for _, p := range parts {
		if !labelName(p) {
			return cellLabels{}, false
		}
	}
	return cellLabels{vendor: parts[0], reason: parts[2], jurisdiction: parts[3], kind: kindOf(parts[1]), ok: true}, true
}

// publishScript applies one batch to one minute at most once: the batch ID goes into the
// minute's set of applied batches first, and a batch already there changes nothing. A
// retry of a batch whose first attempt reached Redis (the reply was lost, or came after
// the client's deadline) is so not counted twice. Both keys are in the minute's slot.
//
// KEYS: minute hash, applied-batches set. ARGV: batch ID, expiry (Unix seconds), the
// instance's presence field, then field, increment pairs.
var publishScript = redis.NewScript(`
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('EXPIREAT', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[3], 1)
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
`)

// diffCells appends to dst the cells whose count changed between the sorted snapshots
// prev and cur, named by idOf. A cell absent from prev started at zero; a count that
// went down means the counter was reset, and then all of cur's count is new.
func diffCells(dst []entry, prev, cur []telemetry.HitCell, idOf func(uint32) uint32) []entry {
	i := 0
	for _, c := range cur {
		for i < len(prev) && prev[i].Cell < c.Cell {
			i++
		}
		var before uint64
		if i < len(prev) && prev[i].Cell == c.Cell {
			before = prev[i].Count
		}
		var d uint64
		switch {
		case c.Count > before:
			d = c.Count - before
		case c.Count < before:
			d = c.Count
		default:
			continue
		}
		dst = append(dst, entry{id: idOf(c.Cell), n: d})
	}
	return dst
}

func formatCount(n uint64) string { return strconv.FormatUint(n, 10) }

// labelName accepts 1 to 64 bytes of printable UTF-8.
func labelName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
