package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// compareMain is `loadgen compare`: the side-by-side measurement of consentgate and
// the plain reverse proxies on loopback, each pinned to the same core.
func compareMain(args []string, w io.Writer) int {
	var o compareOptions
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.command = "loadgen compare " + strings.Join(args, " ")
	return runCompareMain(&o, w)
}

func runCompareMain(o *compareOptions, w io.Writer) int {
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen compare:", err)
		return 2
	}
	if machineCPUs() < 2 {
		fmt.Fprintln(os.Stderr, "loadgen compare: needs at least 2 CPUs (one for the proxy, one for the generator)")
		return 1
	}
	if err := pinSelf(o.loadCPU); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen compare:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, code, err := runCompare(ctx, o, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen compare:", err)
		if code == 0 {
			code = 1
		}
	}
	if rep != nil && len(rep.Mixes) > 0 {
		base := o.out
		if base == "" {
			base = filepath.Join("bench", "results", "compare-"+time.Now().UTC().Format("2006-01-02T150405Z"))
		}
		paths, werr := writeCompareOutputs(base, rep)
		if werr != nil {
			fmt.Fprintln(os.Stderr, "loadgen compare:", werr)
			return 1
		}
		fmt.Fprintf(w, "\nresults: %s\n", strings.Join(paths, " "))
	}
	return code
}

// liveProxy is one proxy under test for the rounds of one mix.
type liveProxy struct {
	name    string
	version string
	proc    *proxyProc
	url     string
	admin   string // consentgate's admin listener; "" for the peers
	cpus    string // where it runs (taskset -c)
	hc      *fasthttp.HostClient
	rounds  []roundResult
}

// compareRun is the state shared by the mixes of one run.
type compareRun struct {
	o       *compareOptions
	w       io.Writer
	dir     string
	sink    *sink
	redis   *redisServer
	bins    map[string]string
	geoip   string
	proxies []*liveProxy // of the current mix; stopped by stopAll
	report  *compareReport
}

func runCompare(ctx context.Context, o *compareOptions, w io.Writer) (*compareReport, int, error) {
	la, la1 := loadAvg()
	rep := &compareReport{
		Tool: "loadgen compare", Time: time.Now().UTC().Format(time.RFC3339), Command: o.command,
		Machine: machineInfo{
			Cores: machineCPUs(), LoadAvgStart: la, Kernel: kernelRelease(), GoVersion: runtime.Version(),
			ProxyCPU: o.proxyCPU, LoadCPU: o.loadCPU, Hostname: hostname(),
		},
		Settings: compareSettings{
			Rounds: o.rounds, DurationSeconds: o.duration.Seconds(), WarmupSeconds: o.warmup.Seconds(),
			Connections: o.connections, Rate: o.rate, Seed: o.seed, GOMAXPROCS: o.gomaxprocs,
			ConsentStore: "redis", VisitorsGranted: o.granted, VisitorsDenied: o.denied,
		},
		Versions: map[string]string{},
	}
	fmt.Fprintf(w, "loadgen compare: %s on %d CPUs; proxy on CPU %s, generator+sink+redis on CPU %s\n",
		strings.Join(o.peers, ", "), machineCPUs(), o.proxyCPU, o.loadCPU)
	fmt.Fprintf(w, "load average at start: %s", la)
	if la1 > 0.5 {
		rep.Machine.Shared = true
		fmt.Fprintf(w, "  <- the machine is busy: other processes compete for both cores, so the figures are noisy; compare them only with each other")
	}
	fmt.Fprintln(w)

	var peerNames []string
	for _, p := range o.peers {
		if !isConsentgate(p) && p != sinkPeer {
			peerNames = append(peerNames, p)
		}
	}
	bins, err := ensurePeers(peerNames, o.install, func(f string, a ...any) { fmt.Fprintf(w, f, a...) })
	if err != nil {
		return nil, 1, err
	}
	if slices.Contains(o.peers, "consentgate") {
		if _, err := os.Stat(o.binary); err != nil {
			return nil, 1, fmt.Errorf("consentgate binary %s: %w (build it with `make build`)", o.binary, err)
		}
		bins["consentgate"] = o.binary
	}
	if slices.Contains(o.peers, baselinePeer) {
		if _, err := os.Stat(o.baseline); err != nil {
			return nil, 1, fmt.Errorf("baseline binary %s: %w", o.baseline, err)
		}
		bins[baselinePeer] = o.baseline
	}
	for n, b := range bins {
		rep.Versions[n] = peerVersion(n, b)
	}
	if slices.Contains(o.peers, sinkPeer) {
		rep.Versions[sinkPeer] = "the sink alone, in the generator (no proxy)"
	}
	var geoip string
	if slices.ContainsFunc(o.peers, isConsentgate) {
		if geoip, err = findGeoIP(o.geoip); err != nil {
			return nil, 1, err
		}
	}

	dir, err := os.MkdirTemp("", "consentgate-compare-")
	if err != nil {
		return nil, 1, fmt.Errorf("temp dir: %w", err)
	}
	rep.tempDir = dir
	// nginx's workers run as an unprivileged user when nginx starts as root; they
	// must reach their files in here (the contents are a benchmark's, nothing secret).
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, 1, fmt.Errorf("temp dir: %w", err)
	}
	if o.keep {
		fmt.Fprintf(w, "keeping configs and logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	sk, err := startSink("127.0.0.1:0")
	if err != nil {
		return nil, 1, err
	}
	defer sk.Close()
	rs, err := startRedis(dir, o.loadCPU)
	if err != nil {
		return nil, 1, err
	}
	defer rs.stop()

	fmt.Fprintf(w, "redis-server: pid %d on %s\n", rs.cmd.Process.Pid, rs.Addr)
	cr := &compareRun{o: o, w: w, dir: dir, sink: sk, redis: rs, bins: bins, geoip: geoip, report: rep}
	defer cr.stopAll()

	code := 0
	for mi, name := range o.mixes {
		spec, _ := mixByName(name)
		mr, c, err := cr.runMix(ctx, mi, spec)
		if mr != nil {
			rep.Mixes = append(rep.Mixes, *mr)
		}
		if err != nil {
			return rep, 1, err
		}
		code = max(code, c)
		if ctx.Err() != nil {
			fmt.Fprintln(w, "interrupted: the figures cover a partial run")
			return rep, 130, nil
		}
	}
	rep.Machine.LoadAvgEnd, _ = loadAvg()
	fmt.Fprintf(w, "\nload average at the end: %s\n", rep.Machine.LoadAvgEnd)
	return rep, code, nil
}

// runMix starts fresh proxies for one mix (so that peak RSS is per mix), runs the
// interleaved rounds and stops them.
func (cr *compareRun) runMix(ctx context.Context, mi int, spec mixSpec) (*mixReport, int, error) {
	o, w := cr.o, cr.w
	defer cr.stopAll()
	fmt.Fprintf(w, "\n== mix %s: %d rounds × (%s warm-up + %s measured) per proxy, %d connections, %s\n",
		spec.name, o.rounds, o.warmup, o.duration, o.connections, loadShape(o.rate))
	for _, name := range o.peers {
		lp, err := cr.startProxy(mi, name)
		if err != nil {
			return nil, 1, fmt.Errorf("start %s: %w", name, err)
		}
		cr.proxies = append(cr.proxies, lp)
	}

	// The consented visitors are created through consentgate's consent API, and the
	// peers get the same cookies (they strip them), so every proxy reads the same bytes.
	var granted, denied [][]byte
	for _, lp := range cr.proxies {
		if isConsentgate(lp.name) && granted == nil && denied == nil && (spec.consent[consentGranted] > 0 || spec.consent[consentDeniedMarketing] > 0) {
			var err error
			if granted, denied, err = createVisitors(lp.hc, lp.url, o.granted, o.denied); err != nil {
				return nil, 1, fmt.Errorf("consentgate: create consented visitors: %w", err)
			}
		}
	}
	visitors, err := newVisitorPool(spec, granted, denied)
	if err != nil {
		return nil, 1, err
	}

	code := 0
	for round := 1; round <= o.rounds; round++ {
		for _, lp := range cr.proxies {
			if ctx.Err() != nil {
				return cr.mixReport(spec), 130, nil
			}
			lr := &loadRun{hc: lp.hc, baseURL: lp.url, templates: spec.templates, visitors: visitors,
				seed: o.seed, timeout: o.timeout, rate: o.rate}
			if lp.proc != nil {
				lr.abort = lp.proc.exited
			}
			lr.mix, _ = newPicker(templateWeights(spec.templates))
			rr, err := cr.measure(ctx, lp, lr, round)
			if err != nil {
				return cr.mixReport(spec), 1, fmt.Errorf("%s round %d: %w", lp.name, round, err)
			}
			lp.rounds = append(lp.rounds, rr)
			fmt.Fprintf(w, "round %d/%d %-11s %s\n", round, o.rounds, lp.name, rr.line())
			if msg := rr.problem(lp.name, spec.name); msg != "" {
				fmt.Fprintf(w, "    !!! %s\n", msg)
				cr.report.Warnings = append(cr.report.Warnings, fmt.Sprintf("%s, %s round %d: %s", spec.name, lp.name, round, msg))
				code = 1
			}
		}
	}
	mr := cr.mixReport(spec)
	printMix(w, mr)
	return mr, code, cr.stopAllChecked()
}

func templateWeights(ts []hitTemplate) []uint64 {
	w := make([]uint64, len(ts))
	for i, t := range ts {
		w[i] = t.weight
	}
	return w
}

func loadShape(rate float64) string {
	if rate > 0 {
		return fmt.Sprintf("open loop at %.0f req/s", rate)
	}
	return "closed loop (saturation)"
}

// measure runs one proxy's warm-up and measured window, and reads the proxy's CPU,
// the CPUs' busy time, the sink, consentgate's metrics and Redis around the window.
func (cr *compareRun) measure(ctx context.Context, lp *liveProxy, lr *loadRun, round int) (roundResult, error) {
	o := cr.o
	// The proxies idle while the others are measured and may have closed the
	// connections; the warm-up opens fresh ones.
	lp.hc.CloseIdleConnections()
	// The same phase seeds for every proxy of a round: they all get the same hits.
	phase := uint64(round) * 2
	if o.warmup > 0 {
		lr.run(ctx, o.connections, o.warmup, phase)
	}
	// The sink alone has no process of its own to read.
	var g0, g1 groupUsage
	var err error
	if lp.proc != nil {
		if g0, err = readGroup(lp.proc.Pid()); err != nil {
			return roundResult{}, fmt.Errorf("read proxy CPU: %w (did it die? %s)", err, lp.proc.logTail(10))
		}
	}
	c0, err := readCPUTimes()
	if err != nil {
		return roundResult{}, err
	}
	var hits0 map[hitCounter]float64
	var mallocs0 float64
	if lp.admin != "" {
		if hits0, err = scrapeHits(lp.admin); err != nil {
			return roundResult{}, err
		}
		if mallocs0, err = scrapeMallocs(lp.admin); err != nil {
			return roundResult{}, err
		}
	}
	redis0, err := redisCommandStats(cr.redis.Addr)
	if err != nil {
		return roundResult{}, err
	}
	sink0 := cr.sink.snapshot()
	self0 := selfCPU()
	if o.profileDir != "" && lp.name == "consentgate" {
		if err := lp.proc.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			return roundResult{}, fmt.Errorf("start profile: %w", err)
		}
	}

	st := lr.run(ctx, o.connections, o.duration, phase+1)

	if o.profileDir != "" && lp.name == "consentgate" {
		if err := finishProfile(lp.proc, o.profileDir); err != nil {
			return roundResult{}, err
		}
	}
	self1 := selfCPU()
	var mallocs1 float64
	if lp.admin != "" {
		if mallocs1, err = scrapeMallocs(lp.admin); err != nil {
			return roundResult{}, err
		}
	}
	sinkD := cr.sink.snapshot().sub(sink0)
	if lp.proc != nil {
		if g1, err = readGroup(lp.proc.Pid()); err != nil {
			return roundResult{}, fmt.Errorf("read proxy CPU: %w (did it die? %s)", err, lp.proc.logTail(10))
		}
	}
	c1, err := readCPUTimes()
	if err != nil {
		return roundResult{}, err
	}
	redis1, err := redisCommandStats(cr.redis.Addr)
	if err != nil {
		return roundResult{}, err
	}

	var s summary
	s.fillStats(st, lr.templates)
	rr := roundResult{
		Round: round, Requests: st.requests(), Seconds: st.elapsed.Seconds(), RequestsPerSec: s.RequestsPerSecond,
		P50Ms: s.LatencyMs["p50"], P90Ms: s.LatencyMs["p90"], P99Ms: s.LatencyMs["p99"], P999Ms: s.LatencyMs["p99.9"], MaxMs: s.LatencyMs["max"],
		CPUSeconds: (g1.CPU - g0.CPU).Seconds(), Procs: g1.Procs, RSSBytes: g1.RSS, HWMBytes: g1.HWM,
		NotOK: s.NotOK, Status5xx: s.Status5xx, Errors: s.Errors,
		SinkReceived: sinkD.Total, LeakedCookie: sinkD.LeakedCookie,
	}
	if st.elapsed > 0 {
		sec := st.elapsed.Seconds()
		rr.ProxyCores = rr.CPUSeconds / sec
		rr.LoadgenCores = (self1 - self0).Seconds() / sec
		if lp.proc != nil {
			rr.ProxyCoreOther, rr.ProxyCoreSoftIRQ = coreShare(c0, c1, lp.cpus, g1.CPU-g0.CPU)
		}
	}
	if rr.Requests > 0 {
		rr.CPUPerHitUs = rr.CPUSeconds * 1e6 / float64(rr.Requests)
		rr.AllocsPerHit = (mallocs1 - mallocs0) / float64(rr.Requests)
	}
	if lp.admin != "" {
		// Only consentgate talks to Redis; during a peer's window, the calls would be
		// the idle consentgate's, not the peer's.
		rr.RedisCalls, rr.RedisByCommand = redisCallsBetween(redis0, redis1)
		hits1, err := scrapeHits(lp.admin)
		if err != nil {
			return roundResult{}, err
		}
		s.fillHits(diffHits(hits1, hits0))
		rr.Actions = s.HitsByAction
	}
	if lp.proc != nil && lp.proc.Exited() {
		return rr, fmt.Errorf("the proxy died during the round (%v); its output:\n%s", lp.proc.waitErr, lp.proc.logTail(30))
	}
	return rr, nil
}
