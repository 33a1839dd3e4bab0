package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// soakSummary is what a soak found: the figures of its table and the problems that
// fail it.
type soakSummary struct {
	Duration       time.Duration
	Hits           uint64
	HitsPerSecond  float64
	Status         map[int]uint64
	Errors         map[string]uint64
	Unexpected     uint64 // hits answered other than 200 or 204, transport errors included
	P50, P99, Max  time.Duration
	Slow           slowFigures
	Control        controlCounts
	ReloadErrors   float64 // consentgate_config_reload_errors_total, both instances
	RestartAt      time.Duration
	RedisDown      time.Duration
	Writes         writeCounts
	Decisions      decisionCounts
	Final          finalCounts
	SnapshotUsed   map[string]float64 // consentgate_consent_snapshot_used_total by when, both instances
	AfterDataLoss  string             // -after-data-loss
	Resources      [2]resourceFigures
	GoroutineSlack int
	RSSFactor      float64
	LeakedCookie   uint64
	// LoadAvg: the machine's load averages (1, 5, 15 min) at the start and the end of
	// the load; on a shared machine they explain a latency tail the proxies did not cause.
	LoadAvg  [2]string
	Problems []string
}

// slowFigures compare the slow hits of the seconds an operation began in and the next
// with the rest: if reloads, swaps or the Redis restart stalled hits, the slow ones
// crowd there; if the machine's other work did, they spread over the run.
type slowFigures struct {
	Threshold        time.Duration
	Total, NearOps   uint64
	Seconds, OpsSecs int
}

func slowNearOps(s *slowHits, ops []time.Duration, elapsed time.Duration) slowFigures {
	f := slowFigures{Threshold: s.threshold, Seconds: min(int(elapsed/time.Second)+1, len(s.perSecond))}
	near := map[int]bool{}
	for _, op := range ops {
		for sec := int(op / time.Second); sec <= int(op/time.Second)+1 && sec < f.Seconds; sec++ {
			near[sec] = true
		}
	}
	f.OpsSecs = len(near)
	for sec := range f.Seconds {
		n := s.perSecond[sec].Load()
		f.Total += n
		if near[sec] {
			f.NearOps += n
		}
	}
	return f
}

// Hits answer 200 (forwarded or anonymised: the sink's GIF) or 204 (dropped, or the
// sink's answer to a POST); anything else is a failure of the run.
func expectedHitStatus(code int) bool { return code == 200 || code == 204 }

// resourceFigures are one instance's goroutines and RSS: over the run, and the
// maximum of the warm-up, which bounds the rest.
type resourceFigures struct {
	Name                       string
	Samples                    int
	GMin, GMax, GWarmMax       float64
	RSSMin, RSSMax, RSSWarmMax uint64
}

// resourceBounds checks that after the warm-up (samples before warmEnd) an instance's
// goroutines stay within slack of their warm-up maximum and its RSS within factor
// times its own: a leak grows past both in a long run, noise does not.
func resourceBounds(name string, samples []resourceSample, warmEnd time.Duration, slack int, factor float64) (resourceFigures, []string) {
	f := resourceFigures{Name: name, Samples: len(samples)}
	var warm, after int
	var postG float64
	var postRSS uint64
	for i, s := range samples {
		if i == 0 || s.goroutines < f.GMin {
			f.GMin = s.goroutines
		}
		if i == 0 || s.rss < f.RSSMin {
			f.RSSMin = s.rss
		}
		f.GMax, f.RSSMax = max(f.GMax, s.goroutines), max(f.RSSMax, s.rss)
		if s.at < warmEnd {
			warm++
			f.GWarmMax, f.RSSWarmMax = max(f.GWarmMax, s.goroutines), max(f.RSSWarmMax, s.rss)
		} else {
			after++
			postG, postRSS = max(postG, s.goroutines), max(postRSS, s.rss)
		}
	}
	if warm == 0 || after == 0 {
		return f, []string{fmt.Sprintf("%s: %d resource samples in the warm-up and %d after it: need one of each (-sample-every shorter, or -duration longer)", name, warm, after)}
	}
	var problems []string
	if postG > f.GWarmMax+float64(slack) {
		problems = append(problems, fmt.Sprintf("%s: goroutines grew to %.0f after the warm-up, over its maximum %.0f + %d", name, postG, f.GWarmMax, slack))
	}
	if float64(postRSS) > float64(f.RSSWarmMax)*factor {
		problems = append(problems, fmt.Sprintf("%s: RSS grew to %.1f MiB after the warm-up, over %.1f × its maximum %.1f MiB", name, mib(postRSS), factor, mib(f.RSSWarmMax)))
	}
	return f, problems
}

// summarise gathers the figures and adds the problems the figures themselves show.
func (r *soakRun) summarise(hits *runStats, final finalCounts, metrics series) *soakSummary {
	r.mu.Lock()
	s := &soakSummary{Control: r.ctl, GoroutineSlack: r.o.goroutineSlack, RSSFactor: r.o.rssFactor, AfterDataLoss: r.o.afterDataLoss}
	gone, back := r.gone, r.back
	resources := r.resources
	r.mu.Unlock()
	s.Duration = hits.elapsed
	s.Hits = hits.requests()
	if hits.elapsed > 0 {
		s.HitsPerSecond = float64(s.Hits) / hits.elapsed.Seconds()
	}
	s.Status = map[int]uint64{}
	for code, n := range hits.status {
		if n > 0 {
			s.Status[code] = n
			if !expectedHitStatus(code) {
				s.Unexpected += n
			}
		}
	}
	s.Errors = hits.errors
	s.Unexpected += hits.errorCount()
	s.P50, s.P99, s.Max = hits.hist.Quantile(0.5), hits.hist.Quantile(0.99), hits.hist.Max()
	r.mu.Lock()
	s.Slow = slowNearOps(r.slowHits, r.ops, hits.elapsed)
	r.mu.Unlock()
	if !gone.IsZero() {
		s.RestartAt = gone.Sub(r.start)
		if !back.IsZero() {
			s.RedisDown = back.Sub(gone)
		}
	}
	r.stream.mu.Lock()
	s.Writes, s.Decisions = r.stream.wc, r.stream.dc
	r.stream.mu.Unlock()
	s.Final = final
	s.ReloadErrors = metrics.sum("consentgate_config_reload_errors_total")
	s.SnapshotUsed = metrics.by("consentgate_consent_snapshot_used_total", "when")
	s.LeakedCookie = r.sink.snapshot().LeakedCookie
	s.LoadAvg[0] = r.loadBefore
	s.LoadAvg[1], _ = loadAvg()

	warmEnd := time.Duration(float64(r.o.duration) * r.o.warmupShare)
	var problems []string
	for i, inst := range r.inst {
		f, p := resourceBounds(inst.name, resources[i], warmEnd, r.o.goroutineSlack, r.o.rssFactor)
		s.Resources[i] = f
		problems = append(problems, p...)
	}
	if s.Hits == 0 {
		problems = append(problems, "no hit was sent")
	}
	if s.Unexpected > 0 {
		problems = append(problems, fmt.Sprintf("%d hits were answered other than 200 or 204 or not at all: %s", s.Unexpected, s.statusLine()))
	}
	if s.ReloadErrors > 0 {
		problems = append(problems, fmt.Sprintf("the instances count %.0f failed reloads", s.ReloadErrors))
	}
	if s.LeakedCookie > 0 {
		problems = append(problems, fmt.Sprintf("%d upstream requests carried the consent cookie", s.LeakedCookie))
	}
	if s.Control.redisRestarts > 0 && s.Decisions.snapshotFull+s.Decisions.snapshotLost+s.Decisions.snapshotRefusals == 0 {
		problems = append(problems, "after the Redis restart, no sampled decision was taken by the cookie's snapshot")
	}
	r.mu.Lock()
	s.Problems = append(slices.Clone(r.problems), problems...)
	r.mu.Unlock()
	return s
}

func (s *soakSummary) statusLine() string {
	parts := []string{}
	codes := make([]int, 0, len(s.Status))
	for c := range s.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", c, s.Status[c]))
	}
	if len(s.Errors) > 0 {
		parts = append(parts, "transport errors: "+joinCounts(s.Errors))
	}
	return strings.Join(parts, ", ")
}

// print writes the summary as a Markdown table, then the verdict.
func (s *soakSummary) print(w io.Writer) {
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(format, a...)) }
	c, wc, dc, fc := s.Control, s.Writes, s.Decisions, s.Final
	fmt.Fprintf(w, "\n| soak | |\n|---|---|\n")
	row("duration", "%s", s.Duration.Round(100*time.Millisecond))
	row("hits sent", "%d (%.0f req/s), 2 instances", s.Hits, s.HitsPerSecond)
	row("hits by status", "%s", s.statusLine())
	row("hits not 200/204, transport errors included", "%d", s.Unexpected)
	row("latency p50 / p99 / max (open loop, from when each hit was due)", "%s / %s / %s", roundMs(s.P50), roundMs(s.P99), roundMs(s.Max))
	sl := s.Slow
	row(fmt.Sprintf("hits ≥ %s: all / in the second an operation began and the next", roundMs(sl.Threshold)), "%d (%.3f %%) / %d (%s of them, in %d of %d seconds: %s)",
		sl.Total, pct(sl.Total, s.Hits), sl.NearOps, pctText(sl.NearOps, sl.Total), sl.OpsSecs, sl.Seconds, pctText(uint64(sl.OpsSecs), uint64(sl.Seconds)))
	row("machine load average at the start / the end", "%s / %s (%d CPUs, shared with the generator, the sink and Redis)", s.LoadAvg[0], s.LoadAvg[1], machineCPUs())
	row("reloads (POST /admin/reload, SIGHUP)", "%d (%d, %d): %d ok, %d failed; counted failed by the instances: %.0f",
		c.reloadsAPI+c.reloadsSignal, c.reloadsAPI, c.reloadsSignal, c.reloadsOK, c.reloadsFailed, s.ReloadErrors)
	row("GeoIP swaps (City ⇄ Country test database)", "%d, %d failed", c.geoSwaps, c.geoSwapsFailed)
	if s.RestartAt > 0 {
		row("Redis restarts (SIGKILL, no persistence)", "%d, at +%s, down %s", c.redisRestarts, s.RestartAt.Round(100*time.Millisecond), s.RedisDown.Round(10*time.Millisecond))
	} else {
		row("Redis restarts (SIGKILL, no persistence)", "%d", c.redisRestarts)
	}
	row("consent writes", "%d ok (%s), %d not taken (503 store unavailable %d, transport %d), %d unexpected answers",
		wc.ok, choiceCounts(wc.byChoice), wc.unavailable+wc.transport, wc.unavailable, wc.transport, wc.unexpected)
	last := "none"
	if wc.lastUnavailable >= 0 {
		last = "the last +" + roundMs(wc.lastUnavailable)
	}
	row("consent writes answered 503", "%d while Redis was down, %d otherwise (after it was back: %s)", wc.unavailableDown, wc.unavailable-wc.unavailableDown, last)
	row("updates after the restart that kept their ID (snapshot proved it)", "%d", wc.idKept)
	row("last acknowledged writes at the end", "%d visitors: %d readable, %d lost with Redis and applied by the snapshot (%d with a refusal kept, %d with grants applied again, %d whose grants are not), %d lost, %d unverified",
		fc.visitors-fc.neverAcked, fc.readable, fc.lostWithRedis, fc.refusalsKept, fc.grantsRevived, fc.grantsNotRevived, fc.lost, fc.unverified)
	row("decisions sampled (POST /admin/explain)", "%d: %d as the visitor chose, %d mismatches%s; store %s",
		dc.sampled, dc.matched, dc.sampled-dc.matched, mismatchKinds(dc.mismatches), joinCounts(dc.byStore))
	after := func(d time.Duration) string {
		if d < 0 {
			return "-"
		}
		return "+" + roundMs(d)
	}
	row("snapshot applied after the restart (sampled)", "%d: %d in full while Redis was down, %d in full once it was back empty (dataset_lost), %d refusals only with the record gone (first %s after Redis was back)",
		dc.snapshotFull+dc.snapshotLost+dc.snapshotRefusals, dc.snapshotFull, dc.snapshotLost, dc.snapshotRefusals, after(dc.firstRefusalAfterBack))
	why := fmt.Sprintf("before the instance saw the new dataset epoch, within %s of Redis's return", epochGrace)
	if s.AfterDataLoss == "refusals_only" {
		why = "after_data_loss: refusals_only"
	}
	row("lost records' grants after the restart (sampled)", "%d applied again (first %s after Redis was back), %d not (%s)",
		dc.revived, after(dc.firstRevivedAfterBack), dc.notRevived, why)
	row("snapshot used on hits (instances' counters)", "%s", joinFloats(s.SnapshotUsed))
	for _, f := range s.Resources {
		row("goroutines "+f.Name+" min / max (warm-up max)", "%.0f / %.0f (%.0f); bound %.0f", f.GMin, f.GMax, f.GWarmMax, f.GWarmMax+float64(s.GoroutineSlack))
	}
	for _, f := range s.Resources {
		row("RSS "+f.Name+" min / max MiB (warm-up max)", "%.1f / %.1f (%.1f); bound %.1f", mib(f.RSSMin), mib(f.RSSMax), mib(f.RSSWarmMax), mib(f.RSSWarmMax)*s.RSSFactor)
	}
	if len(s.Problems) == 0 {
		row("result", "PASS")
		return
	}
	row("result", "FAIL: %d problems", len(s.Problems))
	fmt.Fprintln(w)
	for i, p := range s.Problems {
		if i == problemsShown {
			fmt.Fprintf(w, "SOAK FAILED: … and %d more problems\n", len(s.Problems)-i)
			break
		}
		fmt.Fprintln(w, "SOAK FAILED:", p)
	}
}

func pct(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func pctText(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f %%", pct(n, of))
}

func roundMs(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func choiceCounts(n [numChoices]uint64) string {
	parts := make([]string, numChoices)
	for c := range numChoices {
		parts[c] = fmt.Sprintf("%s %d", choiceNames[c], n[c])
	}
	return strings.Join(parts, ", ")
}

func mismatchKinds(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + joinCounts(m) + ")"
}
