package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// `loadgen scale` measures what an operator sizes a deployment by:
//   - cores: hits/s per core at saturation and CPU per hit, with consentgate on one
//     core (GOMAXPROCS=1) and on both (GOMAXPROCS=2, sharing one with the generator);
//   - memory: RSS with 1k / 100k / 1M visitors in the consent cache;
//   - redis: Redis commands per hit with a cold cache (each visitor's first hit) and a
//     warm one (their second), from INFO commandstats.

type scaleOptions struct {
	compare  compareOptions // binary, connections, durations, geoip, timeout, seed
	parts    []string
	sizes    []int
	store    string
	cacheTTL time.Duration
	workers  int
}

var scaleParts = []string{"cores", "memory"}

func scaleMain(args []string, w io.Writer) int {
	var so scaleOptions
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	so.compare.register(fs)
	_ = fs.Set("rounds", "3")
	_ = fs.Set("mixes", "realistic")
	so.parts = slices.Clone(scaleParts)
	so.sizes = []int{1000, 100_000, 1_000_000}
	fs.Func("parts", "what to measure: cores (saturation, CPU per hit at 1 and 2 cores), memory (RSS and Redis calls per hit with N cached visitors) (default cores,memory)", func(s string) error {
		so.parts = splitList(s)
		return nil
	})
	fs.Func("visitors", "cached visitor counts of the memory part (default 1000,100000,1000000)", func(s string) error {
		so.sizes = nil
		for _, f := range splitList(s) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > 5_000_000 {
				return fmt.Errorf("%q: want 1..5000000", f)
			}
			so.sizes = append(so.sizes, n)
		}
		return nil
	})
	fs.StringVar(&so.store, "store", "redis", "consent store of the memory part: redis (the cache in front of it is what fills) or memory")
	fs.DurationVar(&so.cacheTTL, "cache-ttl", time.Hour, "consent.cache.ttl of the memory part: long enough that no entry expires while the cache fills (1h at most)")
	fs.IntVar(&so.workers, "fill-connections", 32, "connections that create the visitors and send their hits")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := &so.compare
	o.command = "loadgen scale " + strings.Join(args, " ")
	o.peers = []string{"consentgate"}
	for _, p := range so.parts {
		if !slices.Contains(scaleParts, p) {
			fmt.Fprintf(os.Stderr, "loadgen scale: -parts: unknown %q, want some of %v\n", p, scaleParts)
			return 2
		}
	}
	if so.store != "redis" && so.store != "memory" {
		fmt.Fprintln(os.Stderr, "loadgen scale: -store: want redis or memory")
		return 2
	}
	if so.cacheTTL <= 0 || so.cacheTTL > time.Hour || so.workers < 1 || so.workers > 1024 {
		fmt.Fprintln(os.Stderr, "loadgen scale: -cache-ttl wants 0..1h and -fill-connections 1..1024")
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen scale:", err)
		return 2
	}
	if machineCPUs() < 2 {
		fmt.Fprintln(os.Stderr, "loadgen scale: needs at least 2 CPUs")
		return 1
	}
	if err := pinSelf(o.loadCPU); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen scale:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := runScale(ctx, &so, w)
	code := 0
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen scale:", err)
		code = 1
	}
	if ctx.Err() != nil {
		code = 130
	}
	if rep != nil {
		base := o.out
		if base == "" {
			base = filepath.Join("bench", "results", "scale-"+time.Now().UTC().Format("2006-01-02T150405Z"))
		}
		if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen scale:", err)
			return 1
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen scale:", err)
			return 1
		}
		fmt.Fprintf(w, "\nresults: %s.json\n", base)
	}
	return code
}

type scaleReport struct {
	Tool     string        `json:"tool"`
	Time     string        `json:"time"`
	Command  string        `json:"command"`
	Machine  machineInfo   `json:"machine"`
	Version  string        `json:"version"`
	Cores    []proxyReport `json:"cores,omitempty"` // one per configuration, Name says which
	Memory   []memoryPoint `json:"memory,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

func runScale(ctx context.Context, so *scaleOptions, w io.Writer) (*scaleReport, error) {
	o := &so.compare
	la, la1 := loadAvg()
	rep := &scaleReport{Tool: "loadgen scale", Time: time.Now().UTC().Format(time.RFC3339), Command: o.command,
		Machine: machineInfo{Cores: machineCPUs(), LoadAvgStart: la, Kernel: kernelRelease(), GoVersion: runtime.Version(),
			ProxyCPU: o.proxyCPU, LoadCPU: o.loadCPU, Hostname: hostname(), Shared: la1 > 0.5}}
	fmt.Fprintf(w, "loadgen scale: %s; load average at start %s", strings.Join(so.parts, ", "), la)
	if rep.Machine.Shared {
		fmt.Fprint(w, "  <- busy machine: other processes compete for the cores, the figures are noisy")
	}
	fmt.Fprintln(w)
	if _, err := os.Stat(o.binary); err != nil {
		return nil, fmt.Errorf("consentgate binary %s: %w (build it with `make build`)", o.binary, err)
	}
	rep.Version = peerVersion("consentgate", o.binary)
	geoip, err := findGeoIP(o.geoip)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "consentgate-scale-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(w, "keeping configs and logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	sk, err := startSink("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer sk.Close()
	rs, err := startRedis(dir, o.loadCPU)
	if err != nil {
		return nil, err
	}
	defer rs.stop()
	cr := &compareRun{o: o, w: w, dir: dir, sink: sk, redis: rs, geoip: geoip,
		bins: map[string]string{"consentgate": o.binary}, report: &compareReport{Versions: map[string]string{"consentgate": rep.Version}}}
	defer cr.stopAll()

	if slices.Contains(so.parts, "cores") {
		if err := cr.scaleCores(ctx, rep); err != nil {
			return rep, err
		}
	}
	if slices.Contains(so.parts, "memory") {
		for _, n := range so.sizes {
			if ctx.Err() != nil {
				return rep, nil
			}
			mp, err := cr.scaleMemory(ctx, so, n)
			if err != nil {
				return rep, fmt.Errorf("%d visitors: %w", n, err)
			}
			rep.Memory = append(rep.Memory, mp)
		}
		printMemory(w, rep.Memory)
	}
	rep.Machine.LoadAvgEnd, _ = loadAvg()
	fmt.Fprintf(w, "load average at the end: %s\n", rep.Machine.LoadAvgEnd)
	return rep, nil
}

// scaleCores measures consentgate saturated on one core and on two, in interleaved
// rounds. On two cores it shares one with the generator; its CPU per hit is still
// its own, and req/s ÷ the cores it used is its rate per core.
func (cr *compareRun) scaleCores(ctx context.Context, rep *scaleReport) error {
	o, w := cr.o, cr.w
	both := o.loadCPU + "," + o.proxyCPU
	configs := []struct {
		name, cpus string
		procs      int
	}{
		{"1 core", o.proxyCPU, 1},
		{"2 cores", both, 2},
	}
	spec, _ := mixByName(o.mixes[0])
	fmt.Fprintf(w, "\n== cores: mix %s, %s, %d connections, %d rounds × %s (after %s warm-up)\n",
		spec.name, loadShape(o.rate), o.connections, o.rounds, o.duration, o.warmup)
	for i, c := range configs {
		lp, err := cr.startConsentgate(filepath.Join(cr.dir, fmt.Sprintf("cores-%d", i)), c.cpus, c.procs, nil)
		if err != nil {
			return fmt.Errorf("start consentgate on %s: %w", c.name, err)
		}
		lp.name = fmt.Sprintf("consentgate GOMAXPROCS=%d on CPU %s", c.procs, c.cpus)
		cr.proxies = append(cr.proxies, lp)
	}
	granted, denied, err := createVisitors(cr.proxies[0].hc, cr.proxies[0].url, o.granted, o.denied)
	if err != nil {
		return fmt.Errorf("create consented visitors: %w", err)
	}
	visitors, err := newVisitorPool(spec, granted, denied)
	if err != nil {
		return err
	}
	for round := 1; round <= o.rounds; round++ {
		for _, lp := range cr.proxies {
			if ctx.Err() != nil {
				return nil
			}
			lr := &loadRun{hc: lp.hc, baseURL: lp.url, templates: spec.templates, visitors: visitors,
				seed: o.seed, timeout: o.timeout, abort: lp.proc.exited, rate: o.rate}
			lr.mix, _ = newPicker(templateWeights(spec.templates))
			rr, err := cr.measure(ctx, lp, lr, round)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", lp.name, round, err)
			}
			lp.rounds = append(lp.rounds, rr)
			fmt.Fprintf(w, "round %d/%d %s: %s\n", round, o.rounds, lp.name, rr.line())
			if msg := rr.problem("consentgate", spec.name); msg != "" {
				fmt.Fprintf(w, "    !!! %s\n", msg)
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s round %d: %s", lp.name, round, msg))
			}
		}
	}
	fmt.Fprintf(w, "\n%-40s %9s %11s %15s %11s %9s\n", "configuration (medians)", "req/s", "proxy cores", "hits/s per core", "CPU/hit", "p99")
	for _, lp := range cr.proxies {
		pr := summarise(lp.name, lp.version, lp.rounds)
		m := pr.Median
		perCore := 0.0
		if m["proxy_cores"] > 0 {
			perCore = m["requests_per_second"] / m["proxy_cores"]
		}
		pr.Median["requests_per_second_per_core"] = perCore
		rep.Cores = append(rep.Cores, pr)
		fmt.Fprintf(w, "%-40s %9.0f %11.2f %15.0f %8.1f µs %7.3fms\n", lp.name, m["requests_per_second"], m["proxy_cores"], perCore, m["cpu_us_per_hit"], m["p99_ms"])
	}
	if len(rep.Cores) > 0 && rep.Cores[0].Median["proxy_cores"] < 0.9 {
		msg := fmt.Sprintf("on one core consentgate used only %.2f cores: it was not saturated (the generator or the machine's other work set the pace), so hits/s per core is a lower bound", rep.Cores[0].Median["proxy_cores"])
		fmt.Fprintf(w, "note: %s\n", msg)
		rep.Warnings = append(rep.Warnings, msg)
	}
	cr.stopAll()
	return nil
}
