package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// compareReport is what `loadgen compare` writes as JSON, and what the chart is drawn
// from. Every round is kept, so a reader can see the spread behind each median.
type compareReport struct {
	Tool     string            `json:"tool"`
	Time     string            `json:"time"`
	Command  string            `json:"command"`
	Machine  machineInfo       `json:"machine"`
	Settings compareSettings   `json:"settings"`
	Versions map[string]string `json:"versions"`
	Mixes    []mixReport       `json:"mixes"`
	Warnings []string          `json:"warnings,omitempty"`

	tempDir string // where the run kept its configs and logs
}

type machineInfo struct {
	Hostname     string `json:"hostname"`
	Cores        int    `json:"cores"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"go_version"`
	LoadAvgStart string `json:"load_average_start"`
	LoadAvgEnd   string `json:"load_average_end"`
	// Shared: the 1-minute load average was above 0.5 at the start, so other work
	// competed for the cores and the figures are noisy.
	Shared   bool   `json:"shared"`
	ProxyCPU string `json:"proxy_cpu"`
	LoadCPU  string `json:"load_cpu"`
}

type compareSettings struct {
	Rounds          int     `json:"rounds"`
	DurationSeconds float64 `json:"duration_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	Connections     int     `json:"connections"`
	Rate            float64 `json:"rate"` // 0: closed loop
	Seed            uint64  `json:"seed"`
	GOMAXPROCS      int     `json:"consentgate_gomaxprocs"`
	ConsentStore    string  `json:"consent_store"`
	VisitorsGranted int     `json:"visitors_granted"`
	VisitorsDenied  int     `json:"visitors_denied"`
}

type mixReport struct {
	Mix     string        `json:"mix"`
	Proxies []proxyReport `json:"proxies"`
}

type proxyReport struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Median, Min and Max are over the rounds, per metric (see roundMetrics).
	Median       map[string]float64 `json:"median"`
	Min          map[string]float64 `json:"min"`
	Max          map[string]float64 `json:"max"`
	PeakRSSBytes uint64             `json:"peak_rss_bytes"`
	// RatioToNginx is this proxy's median over nginx's, per metric (1 for nginx).
	RatioToNginx map[string]float64 `json:"ratio_to_nginx,omitempty"`
	Rounds       []roundResult      `json:"rounds"`
}

// roundResult is one proxy's measured window in one round.
type roundResult struct {
	Round          int     `json:"round"`
	Requests       uint64  `json:"requests"`
	Seconds        float64 `json:"seconds"`
	RequestsPerSec float64 `json:"requests_per_second"`
	P50Ms          float64 `json:"p50_ms"`
	P90Ms          float64 `json:"p90_ms"`
	P99Ms          float64 `json:"p99_ms"`
	P999Ms         float64 `json:"p99_9_ms"`
	MaxMs          float64 `json:"max_ms"`
	// CPUSeconds is user+system time of every process of the proxy (utime+stime of
	// /proc/PID/stat, 10 ms ticks) over the window; CPUPerHitUs divides it by the hits.
	CPUSeconds  float64 `json:"proxy_cpu_seconds"`
	CPUPerHitUs float64 `json:"cpu_us_per_hit"`
	ProxyCores  float64 `json:"proxy_cores"`
	Procs       int     `json:"proxy_processes"`
	// LoadgenCores near 1: the generator, not the proxy, set the pace.
	LoadgenCores float64 `json:"loadgen_cores"`
	// ProxyCoreOther: the share of the proxy's core busy with other processes (noise);
	// ProxyCoreSoftIRQ: with interrupts, which loopback networking is charged to.
	ProxyCoreOther   float64            `json:"proxy_core_other"`
	ProxyCoreSoftIRQ float64            `json:"proxy_core_softirq"`
	RSSBytes         uint64             `json:"rss_bytes"`
	HWMBytes         uint64             `json:"hwm_bytes"`
	NotOK            uint64             `json:"not_2xx_3xx"`
	Status5xx        uint64             `json:"status_5xx"`
	Errors           map[string]uint64  `json:"errors,omitempty"`
	SinkReceived     uint64             `json:"sink_received"`
	LeakedCookie     uint64             `json:"sink_leaked_consent_cookie"`
	Actions          map[string]float64 `json:"actions,omitempty"`
	RedisCalls       uint64             `json:"redis_calls"`
	RedisByCommand   map[string]uint64  `json:"redis_calls_by_command,omitempty"`
	// AllocsPerHit is the Go heap allocations of the whole process (go_memstats_mallocs_total)
	// over the window, per hit: consentgate only. The scrape that ends the window allocates
	// a few thousand objects of its own, a few hundredths per hit in a 10 s round.
	AllocsPerHit float64 `json:"allocs_per_hit,omitempty"`
}

// roundMetrics are the figures summarised over rounds, by their JSON names.
var roundMetrics = []struct {
	name string
	get  func(*roundResult) float64
}{
	{"requests_per_second", func(r *roundResult) float64 { return r.RequestsPerSec }},
	{"p50_ms", func(r *roundResult) float64 { return r.P50Ms }},
	{"p90_ms", func(r *roundResult) float64 { return r.P90Ms }},
	{"p99_ms", func(r *roundResult) float64 { return r.P99Ms }},
	{"p99_9_ms", func(r *roundResult) float64 { return r.P999Ms }},
	{"cpu_us_per_hit", func(r *roundResult) float64 { return r.CPUPerHitUs }},
	{"proxy_cores", func(r *roundResult) float64 { return r.ProxyCores }},
	{"loadgen_cores", func(r *roundResult) float64 { return r.LoadgenCores }},
	{"proxy_core_other", func(r *roundResult) float64 { return r.ProxyCoreOther }},
	{"proxy_core_softirq", func(r *roundResult) float64 { return r.ProxyCoreSoftIRQ }},
	{"redis_calls_per_hit", func(r *roundResult) float64 {
		if r.Requests == 0 {
			return 0
		}
		return float64(r.RedisCalls) / float64(r.Requests)
	}},
	{"allocs_per_hit", func(r *roundResult) float64 { return r.AllocsPerHit }},
}

// ratioMetrics are compared with nginx's.
var ratioMetrics = []string{"requests_per_second", "p50_ms", "p99_ms", "p99_9_ms", "cpu_us_per_hit"}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summarise fills the medians, extremes and peak RSS of one proxy's rounds.
func summarise(name, version string, rounds []roundResult) proxyReport {
	pr := proxyReport{Name: name, Version: version, Rounds: rounds,
		Median: map[string]float64{}, Min: map[string]float64{}, Max: map[string]float64{}}
	for _, m := range roundMetrics {
		xs := make([]float64, len(rounds))
		for i := range rounds {
			xs[i] = m.get(&rounds[i])
		}
		pr.Median[m.name] = median(xs)
		if len(xs) > 0 {
			pr.Min[m.name], pr.Max[m.name] = slices.Min(xs), slices.Max(xs)
		}
	}
	for _, r := range rounds {
		pr.PeakRSSBytes = max(pr.PeakRSSBytes, r.HWMBytes)
	}
	return pr
}

// addRatios sets every proxy's ratio to nginx, when nginx was measured.
func addRatios(mr *mixReport) {
	var ref *proxyReport
	for i := range mr.Proxies {
		if mr.Proxies[i].Name == "nginx" {
			ref = &mr.Proxies[i]
		}
	}
	if ref == nil {
		return
	}
	for i := range mr.Proxies {
		p := &mr.Proxies[i]
		p.RatioToNginx = map[string]float64{}
		for _, k := range ratioMetrics {
			// A zero (the sink's CPU, which is the generator's) has no ratio.
			if d := ref.Median[k]; d > 0 && p.Median[k] > 0 {
				p.RatioToNginx[k] = p.Median[k] / d
			}
		}
		if ref.PeakRSSBytes > 0 && p.PeakRSSBytes > 0 {
			p.RatioToNginx["peak_rss"] = float64(p.PeakRSSBytes) / float64(ref.PeakRSSBytes)
		}
	}
}

func (cr *compareRun) mixReport(spec mixSpec) *mixReport {
	mr := &mixReport{Mix: spec.name}
	for _, lp := range cr.proxies {
		if len(lp.rounds) > 0 {
			mr.Proxies = append(mr.Proxies, summarise(lp.name, lp.version, lp.rounds))
		}
	}
	addRatios(mr)
	return mr
}

func (r *roundResult) line() string {
	s := fmt.Sprintf("%8.0f req/s  p50 %.3fms  p99 %.3fms  p99.9 %.3fms  cpu %.1f µs/hit (%.2f cores, %d procs)  generator %.2f cores  other on proxy core %.0f%%",
		r.RequestsPerSec, r.P50Ms, r.P99Ms, r.P999Ms, r.CPUPerHitUs, r.ProxyCores, r.Procs, r.LoadgenCores, 100*r.ProxyCoreOther)
	if r.AllocsPerHit > 0 {
		s += fmt.Sprintf("  allocs %.2f/hit", r.AllocsPerHit)
	}
	if r.RedisCalls > 0 {
		s += fmt.Sprintf("  redis %d calls (%s)", r.RedisCalls, joinCounts(r.RedisByCommand))
	}
	return s
}

// problem says what makes a round's figures wrong, or "" when nothing does.
func (r *roundResult) problem(proxy, mix string) string {
	var p []string
	if r.Requests == 0 {
		p = append(p, "no request completed")
	}
	if r.NotOK > 0 {
		p = append(p, fmt.Sprintf("%d responses not 2xx/3xx (5xx: %d; errors: %s)", r.NotOK, r.Status5xx, joinCounts(r.Errors)))
	}
	// The sink alone has no proxy to strip the cookie: its hits carry it by design.
	if r.LeakedCookie > 0 && proxy != sinkPeer {
		p = append(p, fmt.Sprintf("%d upstream requests carried the consent cookie", r.LeakedCookie))
	}
	if isConsentgate(proxy) {
		passed := uint64(math.Round(r.Actions["forward"] + r.Actions["anonymise"]))
		if r.Actions != nil && passed != r.SinkReceived {
			p = append(p, fmt.Sprintf("the proxy counted %d forwarded+anonymised hits, the sink received %d", passed, r.SinkReceived))
		}
		if mix == "all-forward" && r.Actions["forward"] != float64(r.Requests) {
			p = append(p, fmt.Sprintf("all-forward mix but not every hit was forwarded: %s", joinFloats(r.Actions)))
		}
	} else if r.SinkReceived != r.Requests {
		p = append(p, fmt.Sprintf("%d hits sent, the sink received %d", r.Requests, r.SinkReceived))
	}
	return strings.Join(p, "; ")
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func printMix(w io.Writer, mr *mixReport) {
	fmt.Fprintf(w, "\n== %s: medians over the rounds\n", mr.Mix)
	fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %11s %7s %7s %6s %7s %9s\n",
		"proxy", "req/s", "p50", "p99", "p99.9", "CPU/hit", "×nginx", "p99×ng", "cores", "other", "peak RSS")
	for _, p := range mr.Proxies {
		ratio, p99r := "-", "-"
		if v, ok := p.RatioToNginx["cpu_us_per_hit"]; ok {
			ratio = fmt.Sprintf("%.2f", v)
		}
		if v, ok := p.RatioToNginx["p99_ms"]; ok {
			p99r = fmt.Sprintf("%.2f", v)
		}
		m := p.Median
		cpu, rss := fmt.Sprintf("%8.1f µs", m["cpu_us_per_hit"]), fmt.Sprintf("%5.1f MiB", mib(p.PeakRSSBytes))
		if p.Name == sinkPeer {
			cpu, rss = "-", "-"
		}
		fmt.Fprintf(w, "%-12s %9.0f %7.3fms %7.3fms %7.3fms %11s %7s %7s %6.2f %6.0f%% %9s\n",
			p.Name, m["requests_per_second"], m["p50_ms"], m["p99_ms"], m["p99_9_ms"], cpu,
			ratio, p99r, m["proxy_cores"], 100*m["proxy_core_other"], rss)
	}
	var base *proxyReport
	for i := range mr.Proxies {
		if mr.Proxies[i].Name == sinkPeer {
			base = &mr.Proxies[i]
		}
	}
	if base != nil {
		var parts []string
		for _, p := range mr.Proxies {
			if p.Name != sinkPeer {
				parts = append(parts, fmt.Sprintf("%s p50 %+.3fms p99 %+.3fms", p.Name,
					p.Median["p50_ms"]-base.Median["p50_ms"], p.Median["p99_ms"]-base.Median["p99_ms"]))
			}
		}
		fmt.Fprintf(w, "  latency added over the sink alone: %s\n", strings.Join(parts, "; "))
	}
	for _, p := range mr.Proxies {
		if p.Median["loadgen_cores"] > 0.9 {
			fmt.Fprintf(w, "  note: the generator used %.2f cores during %s's rounds: it, not %s, may have set the pace; CPU per hit stays valid, req/s is a lower bound\n",
				p.Median["loadgen_cores"], p.Name, p.Name)
		}
	}
	for _, p := range mr.Proxies {
		var per []string
		for _, r := range p.Rounds {
			per = append(per, fmt.Sprintf("%.1f", r.CPUPerHitUs))
		}
		fmt.Fprintf(w, "  %s CPU µs/hit by round: %s", p.Name, strings.Join(per, " "))
		if len(p.Rounds) > 0 && p.Rounds[len(p.Rounds)-1].Actions != nil {
			act := map[string]float64{}
			var calls, reqs float64
			for _, r := range p.Rounds {
				for k, v := range r.Actions {
					act[k] += v
				}
				calls += float64(r.RedisCalls)
				reqs += float64(r.Requests)
			}
			fmt.Fprintf(w, "; actions %s; Redis calls per hit %.5f; Go allocations per hit %.2f (median)", sharesOf(act), calls/math.Max(reqs, 1), p.Median["allocs_per_hit"])
		}
		fmt.Fprintln(w)
	}
}

// sharesOf prints counts as percentages of their sum, in name order.
func sharesOf(m map[string]float64) string {
	var total float64
	keys := make([]string, 0, len(m))
	for k, v := range m {
		total += v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", k, 100*m[k]/math.Max(total, 1)))
	}
	return strings.Join(parts, ", ")
}

// writeCompareOutputs writes base.json and base.svg.
func writeCompareOutputs(base string, rep *compareReport) ([]string, error) {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode results: %w", err)
	}
	jp, sp := base+".json", base+".svg"
	if err := os.WriteFile(jp, append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(sp, compareSVG(rep), 0o644); err != nil {
		return nil, fmt.Errorf("write chart: %w", err)
	}
	return []string{jp, sp}, nil
}

// chartMain is `loadgen chart FILE.json...`: draws the chart of a compare run again
// from its JSON (FILE.svg beside it), e.g. after the chart's code changed.
func chartMain(args []string, w io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: loadgen chart bench/results/compare-TIME.json ...")
		return 2
	}
	for _, path := range args {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen chart:", err)
			return 1
		}
		var rep compareReport
		if err := json.Unmarshal(b, &rep); err != nil || rep.Tool != "loadgen compare" {
			fmt.Fprintf(os.Stderr, "loadgen chart: %s is not the JSON of a loadgen compare run (%v)\n", path, err)
			return 1
		}
		out := strings.TrimSuffix(path, ".json") + ".svg"
		if err := os.WriteFile(out, compareSVG(&rep), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen chart:", err)
			return 1
		}
		fmt.Fprintln(w, out)
	}
	return 0
}
