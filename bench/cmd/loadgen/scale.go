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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
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

// memoryPoint is one cache size: memory, and the store's work on each visitor's
// first and second hit.
type memoryPoint struct {
	Visitors        int     `json:"visitors"`
	Store           string  `json:"store"`
	CacheTTLSeconds float64 `json:"cache_ttl_seconds"`
	RSSBeforeBytes  uint64  `json:"rss_before_bytes"`
	RSSAfterBytes   uint64  `json:"rss_after_bytes"`
	HWMAfterBytes   uint64  `json:"hwm_after_bytes"`
	BytesPerVisitor float64 `json:"bytes_per_visitor"`
	FillSeconds     float64 `json:"create_seconds"`
	// Cached is how many visitors the warm pass found in the cache (all of them with
	// the memory store); FillPasses the passes it took past the cold one.
	Cached     int     `json:"cached"`
	FillPasses int     `json:"fill_passes"`
	Cold       passFig `json:"cold"`
	Warm       passFig `json:"warm"`
}

type passFig struct {
	Hits           uint64             `json:"hits"`
	NotOK          uint64             `json:"not_2xx_3xx"`
	Seconds        float64            `json:"seconds"`
	RedisCalls     uint64             `json:"redis_calls"`
	RedisByCommand map[string]uint64  `json:"redis_calls_by_command,omitempty"`
	CallsPerHit    float64            `json:"redis_calls_per_hit"`
	Lookups        map[string]float64 `json:"consent_lookups,omitempty"`
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

// scaleMemory fills the consent cache with n visitors and reads the proxy's RSS
// before and after, and counts Redis commands on each visitor's first and second hit.
func (cr *compareRun) scaleMemory(ctx context.Context, so *scaleOptions, n int) (memoryPoint, error) {
	o, w := cr.o, cr.w
	mp := memoryPoint{Visitors: n, Store: so.store, CacheTTLSeconds: so.cacheTTL.Seconds()}
	tweak := func(c *proxyConfig) {
		if so.store == "memory" {
			c.RedisAddr = ""
			c.MaxEntries = max(n+1000, 1000)
			return
		}
		c.CacheMaxEntries = max(n+1000, 1000)
		c.CacheTTL = so.cacheTTL
	}
	dir := filepath.Join(cr.dir, fmt.Sprintf("memory-%d", n))
	fmt.Fprintf(w, "\n== memory: %d visitors, %s store\n", n, so.store)
	hcFill := func(lp *liveProxy) *fasthttp.HostClient {
		hc := cr.client(strings.TrimPrefix(lp.url, "http://"))
		hc.MaxConns = so.workers + 4
		return hc
	}

	lp, err := cr.startConsentgate(dir+"-create", o.proxyCPU, o.gomaxprocs, tweak)
	if err != nil {
		return mp, err
	}
	cr.proxies = append(cr.proxies, lp)
	defer cr.stopAll()
	warmUp := func(lp *liveProxy) error {
		// Hits without a cookie: connections, buffers and pools at their working size
		// before the baseline, so that the difference is the visitors'.
		spec, _ := mixByName("realistic")
		vp, err := newVisitorPool(spec, nil, nil)
		if err != nil {
			return err
		}
		lr := &loadRun{hc: hcFill(lp), baseURL: lp.url, templates: spec.templates, visitors: vp, seed: o.seed, timeout: o.timeout, abort: lp.proc.exited}
		lr.mix, _ = newPicker(templateWeights(spec.templates))
		st := lr.run(ctx, so.workers, max(o.warmup, time.Second), 7)
		if st.requests() == 0 {
			return fmt.Errorf("warm-up: no request completed")
		}
		return nil
	}
	if so.store == "memory" {
		if err := warmUp(lp); err != nil {
			return mp, err
		}
		g, err := readGroup(lp.proc.Pid())
		if err != nil {
			return mp, err
		}
		mp.RSSBeforeBytes = g.RSS
	}
	start := time.Now()
	cookies, err := createVisitorsParallel(ctx, hcFill(lp), lp.url, n, so.workers)
	if err != nil {
		return mp, err
	}
	mp.FillSeconds = time.Since(start).Seconds()
	fmt.Fprintf(w, "created %d visitors through POST /consent in %.1fs\n", n, mp.FillSeconds)

	if so.store == "redis" {
		// A fresh process: its cache has never seen these visitors, so the first pass
		// is cold, and its RSS baseline has no visitor in it.
		if err := lp.proc.stop(15 * time.Second); err != nil {
			return mp, err
		}
		cr.proxies = nil
		if lp, err = cr.startConsentgate(dir, o.proxyCPU, o.gomaxprocs, tweak); err != nil {
			return mp, err
		}
		cr.proxies = append(cr.proxies, lp)
		if err := warmUp(lp); err != nil {
			return mp, err
		}
		g, err := readGroup(lp.proc.Pid())
		if err != nil {
			return mp, err
		}
		mp.RSSBeforeBytes = g.RSS
	}
	hc := hcFill(lp)
	report := func(name string, fig passFig) {
		fmt.Fprintf(w, "%s pass: %d hits in %.1fs, %d not 2xx/3xx, Redis %d calls (%s) = %.4f per hit; lookups %s\n",
			name, fig.Hits, fig.Seconds, fig.NotOK, fig.RedisCalls, joinCounts(fig.RedisByCommand), fig.CallsPerHit, joinFloats(fig.Lookups))
	}
	if mp.Cold, err = cr.visitPass(ctx, lp, hc, cookies, so.workers); err != nil {
		return mp, err
	}
	report("cold", mp.Cold)
	// A lookup that failed (the store's budget missed) caches nothing; passes are
	// repeated until (nearly) every visitor is cached, so that the warm pass and the
	// memory are those of n cached visitors. How many were is reported either way.
	misses := mp.Cold.Lookups["cache/miss"]
	for mp.FillPasses = 0; mp.FillPasses < 5 && misses > float64(n)/1000 && ctx.Err() == nil; mp.FillPasses++ {
		fig, err := cr.visitPass(ctx, lp, hc, cookies, so.workers)
		if err != nil {
			return mp, err
		}
		report("fill", fig)
		misses = fig.Lookups["cache/miss"]
	}
	if mp.Warm, err = cr.visitPass(ctx, lp, hc, cookies, so.workers); err != nil {
		return mp, err
	}
	report("warm", mp.Warm)
	mp.Cached = int(mp.Warm.Lookups["cache/hit"])
	if so.store == "memory" {
		mp.Cached = n
	}
	if mp.Cached < n*99/100 {
		fmt.Fprintf(w, "note: only %d of %d visitors were in the cache at the end (failed lookups cache nothing): the memory is for %d\n", mp.Cached, n, mp.Cached)
	}
	g, err := readGroup(lp.proc.Pid())
	if err != nil {
		return mp, err
	}
	mp.RSSAfterBytes, mp.HWMAfterBytes = g.RSS, g.HWM
	if mp.Cached > 0 {
		mp.BytesPerVisitor = (float64(mp.RSSAfterBytes) - float64(mp.RSSBeforeBytes)) / float64(mp.Cached)
	}
	fmt.Fprintf(w, "RSS %.1f MiB before, %.1f MiB after (peak %.1f MiB): %.0f bytes per visitor\n",
		mib(mp.RSSBeforeBytes), mib(mp.RSSAfterBytes), mib(mp.HWMAfterBytes), mp.BytesPerVisitor)
	return mp, lp.proc.stop(15 * time.Second)
}

// visitPass sends one GA4 hit per visitor, from the EEA (so that the consent is
// looked up), spread over workers, and counts what the store did meanwhile.
func (cr *compareRun) visitPass(ctx context.Context, lp *liveProxy, hc *fasthttp.HostClient, cookies [][]byte, workers int) (passFig, error) {
	before, err := redisCommandStats(cr.redis.Addr)
	if err != nil {
		return passFig{}, err
	}
	lookups0, err := scrapeLookups(lp.admin)
	if err != nil {
		return passFig{}, err
	}
	var next, notOK, hits atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	url := lp.url + "/g/collect?" + ga4Query + "&en=page_view&_et=1234"
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.Set("X-Forwarded-For", "89.160.20.112")
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= uint64(len(cookies)) {
					return
				}
				req.Header.SetCookieBytesKV(cgName, cookies[i])
				err := hc.DoTimeout(req, resp, cr.o.timeout)
				hits.Add(1)
				if err != nil || resp.StatusCode() < 200 || resp.StatusCode() >= 400 {
					notOK.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fig := passFig{Hits: hits.Load(), NotOK: notOK.Load(), Seconds: time.Since(start).Seconds()}
	after, err := redisCommandStats(cr.redis.Addr)
	if err != nil {
		return fig, err
	}
	lookups1, err := scrapeLookups(lp.admin)
	if err != nil {
		return fig, err
	}
	fig.RedisCalls, fig.RedisByCommand = redisCallsBetween(before, after)
	fig.Lookups = map[string]float64{}
	for k, v := range lookups1 {
		if d := v - lookups0[k]; d != 0 {
			fig.Lookups[k] = d
		}
	}
	if fig.Hits > 0 {
		fig.CallsPerHit = float64(fig.RedisCalls) / float64(fig.Hits)
	}
	if lp.proc.Exited() {
		return fig, fmt.Errorf("the proxy died (%v): %s", lp.proc.waitErr, lp.proc.logTail(20))
	}
	return fig, nil
}

// createVisitorsParallel creates n visitors who granted every purpose through the
// consent API over several connections, and returns their cookies.
func createVisitorsParallel(ctx context.Context, hc *fasthttp.HostClient, baseURL string, n, workers int) ([][]byte, error) {
	out := make([][]byte, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	const batch = 100
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := int(next.Add(batch)) - batch
				if lo >= n {
					return
				}
				hi := min(lo+batch, n)
				got, _, err := createVisitors(hc, baseURL, hi-lo, 0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				copy(out[lo:hi], got)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, nil
}

func printMemory(w io.Writer, pts []memoryPoint) {
	fmt.Fprintf(w, "\n%-10s %-7s %9s %11s %11s %11s %12s %16s %16s\n", "visitors", "store", "cached", "RSS before", "RSS after", "peak RSS", "per visitor", "cold calls/hit", "warm calls/hit")
	for _, p := range pts {
		fmt.Fprintf(w, "%-10d %-7s %9d %7.1f MiB %7.1f MiB %7.1f MiB %10.0f B %16.4f %16.4f\n", p.Visitors, p.Store, p.Cached,
			mib(p.RSSBeforeBytes), mib(p.RSSAfterBytes), mib(p.HWMAfterBytes), p.BytesPerVisitor, p.Cold.CallsPerHit, p.Warm.CallsPerHit)
	}
}
