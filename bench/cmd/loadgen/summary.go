package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// summary is both what is printed and the JSON written with -out, so that runs
// can be compared by a script without parsing the text.
type summary struct {
	Time              string             `json:"time"`
	Mix               string             `json:"mix"`
	Target            string             `json:"target"`
	Connections       int                `json:"connections"`
	DurationSeconds   float64            `json:"duration_seconds"`
	WarmupSeconds     float64            `json:"warmup_seconds"`
	Requests          uint64             `json:"requests"`
	RequestsPerSecond float64            `json:"requests_per_second"`
	LatencyMs         map[string]float64 `json:"latency_ms"`
	Status            map[string]uint64  `json:"status"`
	Errors            map[string]uint64  `json:"errors"`
	NotOK             uint64             `json:"not_2xx_3xx"`
	Status5xx         uint64             `json:"status_5xx"`
	ByHit             map[string]uint64  `json:"by_hit"`
	NotOKByHit        map[string]uint64  `json:"not_2xx_3xx_by_hit,omitempty"`
	ByJurisdiction    map[string]uint64  `json:"sent_by_jurisdiction"`
	ByConsent         map[string]uint64  `json:"sent_by_consent"`
	GPC               uint64             `json:"sent_with_gpc"`
	ConsentedVisitors map[string]int     `json:"consented_visitors"`
	Sink              sinkSnapshot       `json:"sink"`
	HitsByAction      map[string]float64 `json:"hits_by_action,omitempty"`
	// Lookups: consent lookups by "source/result" over the whole run (warm-up included).
	Lookups         map[string]float64 `json:"consent_lookups,omitempty"`
	HitsByReason    map[string]float64 `json:"hits_by_reason,omitempty"`
	HitsByJuris     map[string]float64 `json:"hits_by_jurisdiction,omitempty"`
	HitsByVendor    map[string]float64 `json:"hits_by_vendor_action,omitempty"`
	MetricsError    string             `json:"metrics_error,omitempty"`
	ProxyCPUCores   float64            `json:"proxy_cpu_cores,omitempty"`
	LoadgenCPUCores float64            `json:"loadgen_cpu_cores"`
	ProxyRSSBytes   uint64             `json:"proxy_rss_bytes,omitempty"`
}

var quantiles = []struct {
	name string
	q    float64
}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *summary) fillStats(st *runStats, templates []hitTemplate) {
	s.Time = time.Now().UTC().Format(time.RFC3339)
	if st.elapsed > 0 {
		s.RequestsPerSecond = float64(st.requests()) / st.elapsed.Seconds()
	}
	s.LatencyMs = map[string]float64{"min": ms(st.hist.Min()), "max": ms(st.hist.Max())}
	for _, q := range quantiles {
		s.LatencyMs[q.name] = ms(st.hist.Quantile(q.q))
	}
	s.Status = map[string]uint64{}
	for code, n := range st.status {
		if n == 0 {
			continue
		}
		s.Status[fmt.Sprint(code)] = n
		if code < 200 || code >= 400 {
			s.NotOK += n
		}
	}
	s.Errors = st.errors
	s.NotOK += st.errorCount()
	s.Status5xx = st.count5xx()
	s.ByHit = map[string]uint64{}
	s.NotOKByHit = map[string]uint64{}
	for i, t := range templates {
		s.ByHit[t.name] = st.byTemplate[i]
		if st.badByTemplate[i] > 0 {
			s.NotOKByHit[t.name] = st.badByTemplate[i]
		}
	}
	s.ByJurisdiction = map[string]uint64{}
	for i, jc := range jurisdictionMix {
		s.ByJurisdiction[jc.name] = st.byJuris[i]
	}
	s.ByConsent = map[string]uint64{}
	for i, n := range consentNames {
		if st.byConsent[i] > 0 || i != consentFromStream {
			s.ByConsent[n] = st.byConsent[i]
		}
	}
	s.GPC = st.gpc
}

func (s *summary) fillHits(d map[hitCounter]float64) {
	s.HitsByAction, s.HitsByReason = map[string]float64{}, map[string]float64{}
	s.HitsByJuris, s.HitsByVendor = map[string]float64{}, map[string]float64{}
	for k, v := range d {
		s.HitsByAction[k.Action] += v
		s.HitsByReason[k.Reason] += v
		s.HitsByJuris[k.Jurisdiction] += v
		s.HitsByVendor[k.Vendor+"/"+k.Action] += v
	}
}

func report(w io.Writer, s *summary) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("\n== measured: %s, %d connections, %.2fs\n", s.Mix, s.Connections, s.DurationSeconds)
	p("requests      %d  (%.0f req/s)\n", s.Requests, s.RequestsPerSecond)
	p("latency       p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms\n",
		s.LatencyMs["p50"], s.LatencyMs["p90"], s.LatencyMs["p99"], s.LatencyMs["p99.9"], s.LatencyMs["max"])
	p("status        %s\n", joinCounts(s.Status))
	p("not 2xx/3xx   %d", s.NotOK)
	if len(s.NotOKByHit) > 0 {
		p("  (by hit: %s)", joinCounts(s.NotOKByHit))
	}
	p("\n")
	if len(s.Errors) > 0 {
		p("errors        %s\n", joinCounts(s.Errors))
	}
	p("sent by hit   %s\n", joinCounts(s.ByHit))
	p("sent by geo   %s\n", joinCounts(s.ByJurisdiction))
	p("sent consent  %s; Sec-GPC %d\n", joinCounts(s.ByConsent), s.GPC)
	p("sink received %d (= forwarded + anonymised)  %s\n", s.Sink.Total, joinCounts(s.Sink.ByVendor))
	switch {
	case s.MetricsError != "":
		p("proxy metrics unavailable: %s\n", s.MetricsError)
	case s.HitsByAction != nil:
		p("proxy action  %s\n", joinFloats(s.HitsByAction))
		p("proxy reason  %s\n", joinFloats(s.HitsByReason))
		p("proxy geo     %s\n", joinFloats(s.HitsByJuris))
		var fa float64
		for a, v := range s.HitsByAction {
			if a != "drop" {
				fa += v
			}
		}
		reportLookups(p, s)
		if uint64(fa) != s.Sink.Total {
			p("note: the proxy counted %.0f non-drop hits, the sink received %d\n", fa, s.Sink.Total)
		}
	}
	if s.ProxyCPUCores > 0 {
		p("cpu           proxy %.2f cores, loadgen+sink %.2f cores (of the machine's shared cores)", s.ProxyCPUCores, s.LoadgenCPUCores)
		if s.ProxyRSSBytes > 0 {
			p("; proxy RSS %.1f MiB", float64(s.ProxyRSSBytes)/(1<<20))
		}
		p("\n")
	}
	if s.Status5xx > 0 {
		p("\n!!!!!!!! %d RESPONSES WERE 5xx: THE BROWSER MUST NEVER SEE A 5xx FROM A TRACKING ROUTE !!!!!!!!\n\n", s.Status5xx)
	}
	if s.Sink.LeakedCookie > 0 {
		p("\n!!!!!!!! %d UPSTREAM REQUESTS CARRIED THE cg_id CONSENT COOKIE TO THE VENDOR !!!!!!!!\n\n", s.Sink.LeakedCookie)
	}
}

func joinCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

func joinFloats(m map[string]float64) string {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		if k == "" {
			k = "(none)"
		}
		c[k] += uint64(v + 0.5)
	}
	return joinCounts(c)
}

func writeSummary(dir string, s *summary) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("-out: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode summary: %w", err)
	}
	name := "loadgen-" + s.Mix + "-" + time.Now().UTC().Format("20060102T150405Z") + ".json"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write summary: %w", err)
	}
	return path, nil
}

// reportLookups prints the consent store's work: the cache hit ratio and the Redis
// round trips per hit, over the whole run (warm-up included, as the counters are).
func reportLookups(p func(string, ...any), s *summary) {
	if len(s.Lookups) == 0 {
		return
	}
	p("consent       %s\n", joinFloats(s.Lookups))
	cacheHit, cacheMiss := s.Lookups["cache/hit"], s.Lookups["cache/miss"]
	redisCalls := s.Lookups["redis/hit"] + s.Lookups["redis/miss"] + s.Lookups["redis/error"]
	if cacheHit+cacheMiss > 0 {
		p("consent cache hit ratio %.4f, redis calls %.0f\n", cacheHit/(cacheHit+cacheMiss), redisCalls)
	}
}
