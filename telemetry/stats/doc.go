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
//     until new hits arrive. Figures are per instance; a fleet view sums instances (or
//     uses the Prometheus counters, which survive in the TSDB).
//   - Attribution: a tick stores what was counted since the previous tick under the last
//     whole minute before the one it runs in. When ticks were missed (process paused,
//     clock jumped forward) the whole delta goes to that minute and the skipped minutes
//     read zero: the hits cannot be spread back faithfully, and putting them late keeps
//     them inside short windows rather than silently older.
//   - Clock going backwards: a tick in a minute at or before the last one is a no-op,
//     so nothing is stored twice; hits stay pending and show in the current minute.
//   - Retention: a fixed number of whole minutes (WithCapacity, default 1440) plus the
//     current partial minute. Older minutes read zero, like minutes before start.
package stats
