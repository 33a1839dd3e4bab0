// Package stats keeps a bounded, in-memory history of per-minute hit figures for one
// instance and serves it as JSON on GET /api/stats.
//
// The hit path is not touched: it already does one atomic add into the cumulative
// counters of telemetry.Metrics, and a second write per hit (a per-minute counter, a
// channel send, a lock) would cost every hit for the sake of a dashboard. Instead a tick
// at each minute boundary copies the non-zero counters (Metrics.AppendHits) and stores
// the sparse difference from the previous copy. The cost is one walk of the counter array
// per minute, plus one per query for the live partial minute, all off the hit path.
//
// What the figures mean:
//
//   - Baseline: New takes the first snapshot. Hits counted before it are not reported,
//     since they cannot be placed in any minute.
//   - Restart: the ring lives in memory only, so a restarted instance reports nothing
//     until new hits arrive. Figures are per instance; the fleet view (below) sums the
//     instances through Redis.
//   - Attribution: a tick stores what was counted since the previous tick under the last
//     whole minute before the one it runs in. When ticks were missed (process paused,
//     clock jumped forward) the whole delta goes to that minute and the skipped minutes
//     read zero: the hits cannot be spread back faithfully, and putting them late keeps
//     them inside short windows rather than silently older.
//   - Clock going backwards: a tick in a minute at or before the last one is a no-op,
//     so nothing is stored twice; hits stay pending and show in the current minute.
//   - Retention: a fixed number of whole minutes (WithCapacity, default 1440) plus the
//     current partial minute. Older minutes read zero, like minutes before start.
//
// # Fleet figures (Fleet, scope=fleet)
//
// With the Redis consent store every instance also publishes its counts to Redis, off
// the hit path, and any instance can sum the whole fleet's. Every 10 s (on multiples of
// 10 s of the wall clock) the publisher diffs the counters as the ring does and queues
// the difference as one batch for the minute it fell in; then it sends the queue, oldest
// first. Keys (the prefix is consent.redis.key_prefix):
//
//	<prefix>stats:{200601021504}          hash: "vendor|action|reason|jurisdiction" → hits,
//	                                      "@<instance>" → 1 for every instance that published
//	<prefix>stats:{200601021504}:batches  set: the batch IDs applied to that minute
//	<prefix>stats:gen                     counter: bumped after a late batch (see below)
//
// The minute is the cluster hash tag: a minute's two keys share a slot, consecutive
// minutes spread over the nodes. The Redis user needs EVALSHA and EVAL (ACL category
// @scripting), INCR, GET and HGETALL on these keys. Both expire 25 hours after their minute (the longest
// window and an hour), at an instant every instance computes alike.
//
// Delivery: each batch is applied by a Lua script that adds its ID to the minute's
// batch set and increments only if the ID was not there, so applying it is idempotent.
// A batch whose send failed stays queued and is sent again, same ID, same content, until
// Redis takes it; a send that timed out after Redis had applied it is so never counted
// twice. The counts are delivered at least once and applied once: exactly once, short
// of what Redis itself loses. Counts still unsent when their minute leaves the 24-hour
// window are dropped and counted (consentgate_fleet_stats_lost_hits_total). New counts
// for a minute whose batch is queued but not yet sent join that batch, so an outage
// queues at most one batch per minute (plus the one in flight): a bounded queue that a
// 24-hour outage fills to 1,441 batches. Publishing never blocks a hit: hits only ever
// touch their atomic counters. What can be lost: the last interval's counts of a process
// killed without its drain (Shutdown publishes once more), and a batch Redis
// acknowledged but lost (a restart without persistence, a failover before the replica
// had it).
//
// Cost per instance per minute: at most 6 commands (one EVALSHA per tick; 1 a minute
// when idle, only to say it is there), plus one INCR after a late batch or a restart and
// one EVAL when Redis has lost the script (a restart). A tick takes about 0.4 ms of the
// publishing goroutine for 135 changed cells (BenchmarkFleetPublish); a dashboard refresh
// of the 24-hour fleet view about 0.3 ms (BenchmarkFleetQuery24h).
// Bytes sent per tick: about 200 plus, per cell that changed, its field name and 16
// (measured: 49 bytes per cell, 40 KB a minute for 135 cells changing every tick;
// TestFleetRedisCost). Redis memory: about 46 bytes per cell per minute in the hash,
// whatever the number of instances, and about 60 bytes per batch in the batch set
// (6 per instance per minute): for 300 cells and 10 instances, 1,440 × (14 + 3.6) KB ≈
// 25 MB for the day kept.
//
// Reading: a query reads the generation, then HGETALL for each minute of the window it
// does not keep. A minute that ended 60 s ago is kept in memory (so a dashboard that
// refreshes a 24-hour window reads one or two minutes, not 1,440). A batch sent 30 s or
// more after its minute ended, or a retry, bumps the generation once it is applied, and
// a reader that sees a new generation forgets what it kept. Instances' clocks should so
// agree within 30 s (NTP), or a late batch could be missed until the next bump. A fleet
// query that Redis does not answer fails (503 from the handler): half a fleet's figures
// would read as a drop in traffic.
package stats
