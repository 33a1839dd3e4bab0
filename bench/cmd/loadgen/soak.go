package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// `loadgen soak` (make soak) runs two consentgate instances on one Redis for a bounded
// time under a fixed, moderate load, and meanwhile does what operations do to them:
// a config reload every few seconds (POST /admin/reload and SIGHUP in turn), GeoIP
// database swaps, one Redis restart that loses every record, and a stream of consent
// writes whose cookies the load's visitors carry. It fails on a 5xx or transport error
// on a hit, a failed reload, a lost consent write, a decision that does not follow the
// visitor's choice, or goroutines or RSS that grow past a stated bound.

type soakOptions struct {
	binary, geoip, geoipAlt string
	duration                time.Duration
	rate                    float64
	connections             int
	consentRate             float64
	visitors                int
	reloadEvery             time.Duration
	geoSwapEvery            time.Duration
	restartAt               time.Duration
	redisDown               time.Duration
	sampleEvery             time.Duration
	explainEvery            time.Duration
	settle                  time.Duration
	slow                    time.Duration
	warmupShare             float64
	goroutineSlack          int
	rssFactor               float64
	timeout                 time.Duration
	seed                    uint64
	keep                    bool
	afterDataLoss           string
}

func (o *soakOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.binary, "binary", "bin/consentgate", "consentgate binary to start (twice)")
	fs.StringVar(&o.geoip, "geoip", "", "GeoIP City test database (default: testdata/geoip/GeoIP2-City-Test.mmdb, then ../shared/testdata/geoip/)")
	fs.StringVar(&o.geoipAlt, "geoip-alt", "", "the database swapped in and out with -geoip (default: GeoIP2-Country-Test.mmdb beside it)")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs (at most 30m)")
	fs.Float64Var(&o.rate, "rate", 3000, "hits/s offered over both instances (open loop), moderate so that a 2-core machine is not saturated")
	fs.IntVar(&o.connections, "connections", 16, "load connections per instance")
	fs.Float64Var(&o.consentRate, "consent-rate", 20, "consent writes/s through POST /consent, to the instances in turn")
	fs.IntVar(&o.visitors, "visitors", 300, "visitors of the consent stream: each is written once at the start, then granted, denied and updated at random")
	fs.DurationVar(&o.reloadEvery, "reload-every", 10*time.Second, "a config reload (a route added) of one instance, the instances and POST /admin/reload and SIGHUP in turn")
	fs.DurationVar(&o.geoSwapEvery, "geo-swap-every", time.Minute, "a GeoIP database swap (atomic rename over the configured path), then a reload of both instances")
	fs.DurationVar(&o.restartAt, "restart-at", 0, "when Redis is killed (SIGKILL) and started again empty on its port (default 40% of -duration)")
	fs.DurationVar(&o.redisDown, "redis-down", 2*time.Second, "how long Redis stays down at its restart")
	fs.DurationVar(&o.sampleEvery, "sample-every", 5*time.Second, "how often go_goroutines and process_resident_memory_bytes are read from each instance")
	fs.DurationVar(&o.explainEvery, "explain-every", 100*time.Millisecond, "how often a stream visitor's decision is sampled through POST /admin/explain")
	fs.DurationVar(&o.settle, "settle", time.Second, "a visitor's decision is sampled only this long after their last write (cache invalidation is asynchronous)")
	fs.DurationVar(&o.slow, "slow", 100*time.Millisecond, "hits at least this slow are counted by second, to compare the seconds after an operation with the rest")
	fs.Float64Var(&o.warmupShare, "warmup-share", 0.2, "share of the run whose resource samples set the bounds of the rest")
	fs.IntVar(&o.goroutineSlack, "goroutine-slack", 50, "goroutines an instance may have after the warm-up above its warm-up maximum")
	fs.Float64Var(&o.rssFactor, "rss-factor", 1.5, "RSS an instance may have after the warm-up, as a multiple of its warm-up maximum")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the hits, the visitors and their choices")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, GeoIP copy, proxy logs)")
	fs.StringVar(&o.afterDataLoss, "after-data-loss", "restore",
		"the instances' consent.snapshot.after_data_loss, and what the soak expects of a visitor whose record the Redis restart lost: "+
			"restore (their snapshot decides in full, grants too, once the instance has seen the new dataset epoch) or refusals_only")
}

func (o *soakOptions) validate() error {
	switch {
	case o.duration <= 0 || o.duration > 30*time.Minute:
		return fmt.Errorf("-duration %s: want between 0 and 30m", o.duration)
	case o.rate <= 0 || o.rate > 50000:
		return fmt.Errorf("-rate %v: want 0..50000", o.rate)
	case o.connections < 1 || o.connections > 1024:
		return fmt.Errorf("-connections %d: want 1..1024", o.connections)
	case o.consentRate <= 0 || o.consentRate > 1000:
		return fmt.Errorf("-consent-rate %v: want 0..1000", o.consentRate)
	case o.visitors < 1 || o.visitors > 100000:
		return fmt.Errorf("-visitors %d: want 1..100000", o.visitors)
	case o.reloadEvery <= 0 || o.geoSwapEvery <= 0 || o.sampleEvery <= 0 || o.explainEvery <= 0:
		return errors.New("-reload-every, -geo-swap-every, -sample-every and -explain-every must be positive")
	case o.restartAt < 0 || o.restartAt >= o.duration:
		return fmt.Errorf("-restart-at %s: want within -duration %s", o.restartAt, o.duration)
	case o.redisDown < 0 || o.redisDown > time.Minute:
		return fmt.Errorf("-redis-down %s: want 0..1m", o.redisDown)
	case o.settle < 0 || o.slow <= 0 || o.warmupShare <= 0 || o.warmupShare >= 1:
		return errors.New("-settle must be ≥ 0, -slow positive and -warmup-share within (0, 1)")
	case o.goroutineSlack < 0 || o.rssFactor < 1:
		return errors.New("-goroutine-slack must be ≥ 0 and -rss-factor ≥ 1")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	case o.afterDataLoss != "restore" && o.afterDataLoss != "refusals_only":
		return fmt.Errorf("-after-data-loss %q: want restore or refusals_only", o.afterDataLoss)
	}
	if o.restartAt == 0 {
		o.restartAt = o.duration * 4 / 10
	}
	return nil
}

func soakMain(args []string, w io.Writer) int {
	var o soakOptions
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen soak:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := runSoak(ctx, &o, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen soak:", err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintln(w, "interrupted: the figures cover a partial run")
		return 130
	}
	if len(sum.Problems) > 0 {
		return 1
	}
	return 0
}

// soakInstance is one of the two consentgate processes.
type soakInstance struct {
	name          string
	proc          *proxyProc
	public, admin string
	hits          *fasthttp.HostClient // the load's connections
	api           *fasthttp.HostClient // consent writes, reload checks
	adm           *fasthttp.HostClient // the admin listener
	// version is the config_version last seen in force, route the index of the
	// route its config had then (controller goroutine only).
	version string
	route   int
}

// soakRun is one soak: its processes and what happened to them.
type soakRun struct {
	o       *soakOptions
	w       io.Writer
	dir     string
	cfgPath string
	geoPath string
	dbs     [2]string // what the configured GeoIP path holds in turn: City, then the other
	base    proxyConfig
	redis   *redisServer
	sink    *sink
	inst    [2]*soakInstance
	stream  *consentStream
	start   time.Time

	loadBefore string // the machine's load averages when the load started

	mu         sync.Mutex
	gone, back time.Time // the Redis restart: the old server dead, the new one answering
	problems   []string
	ctl        controlCounts
	resources  [2][]resourceSample
	ops        []time.Duration // when each operation (reload, swap, Redis kill and return) began
	slowHits   *slowHits
}

// problemsShown bounds the problems printed, as they happen and in the summary: a
// systematic failure repeats for every visitor and sample.
const problemsShown = 20

// problem records a failed check; the run goes on, and fails at the end.
func (r *soakRun) problem(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.mu.Lock()
	r.problems = append(r.problems, msg)
	n := len(r.problems)
	r.mu.Unlock()
	switch {
	case n <= problemsShown:
		r.logf("PROBLEM: %s", msg)
	case n == problemsShown+1:
		r.logf("PROBLEM: more than %d: the others are counted in the summary", problemsShown)
	}
}

// logf prints a progress line with the time since the load started.
func (r *soakRun) logf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := time.Duration(0)
	if !r.start.IsZero() {
		at = time.Since(r.start).Round(100 * time.Millisecond)
	}
	fmt.Fprintf(r.w, "%8s  %s\n", "+"+at.String(), fmt.Sprintf(format, a...))
}

// operation notes that an operation begins now.
func (r *soakRun) operation() {
	r.mu.Lock()
	r.ops = append(r.ops, time.Since(r.start))
	r.mu.Unlock()
}

// restartTimes says when Redis went and came back (zero before the restart).
func (r *soakRun) restartTimes() (gone, back time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone, r.back
}

var soakSnapshotKeys = []string{"Sq7Vn2Lx9Kc4Wz8Rt1Hb6Jm3Pd5Fg0Ya", "Sw3Ek8Tz1Qn6Lv9Xc2Rb5Hm7Jp4Dg0Uf"}

func runSoak(ctx context.Context, o *soakOptions, w io.Writer) (*soakSummary, error) {
	r := &soakRun{o: o, w: w}
	if err := r.setUp(); err != nil {
		r.tearDown()
		return nil, err
	}
	defer r.tearDown()
	if err := r.stream.populate(ctx); err != nil {
		return nil, err
	}

	spec, err := mixByName("realistic")
	if err != nil {
		return nil, err
	}
	// The stream's visitors stand in for the realistic mix's consented ones.
	spec.consent = []uint64{0, 0, consentWeights[consentNone], consentWeights[consentGranted] + consentWeights[consentDeniedMarketing]}
	vp, err := buildVisitorPool(spec, nil, nil, r.stream.live)
	if err != nil {
		return nil, err
	}
	mix, err := newPicker(templateWeights(spec.templates))
	if err != nil {
		return nil, err
	}

	r.logf("soak: %s, %.0f hits/s over instances A (pid %d) and B (pid %d), %.0f consent writes/s over %d visitors; Redis restart at +%s",
		o.duration, o.rate, r.inst[0].proc.Pid(), r.inst[1].proc.Pid(), o.consentRate, o.visitors, o.restartAt)
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	r.loadBefore, _ = loadAvg()
	r.mu.Lock()
	r.start = time.Now()
	r.slowHits = newSlowHits(r.start, o.slow, o.duration)
	r.mu.Unlock()
	for _, f := range []func(context.Context){r.stream.run, r.stream.sampleDecisions, r.control, r.restartRedis, r.sampleResources} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(bg)
		}()
	}
	var loads [2]*runStats
	var lwg sync.WaitGroup
	for i, inst := range r.inst {
		lr := &loadRun{hc: inst.hits, baseURL: "http://" + inst.public, templates: spec.templates, mix: mix, visitors: vp,
			seed: o.seed + uint64(i), timeout: o.timeout, rate: o.rate / 2, abort: inst.proc.exited, slow: r.slowHits}
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			loads[i] = lr.run(ctx, o.connections, o.duration, 1)
		}()
	}
	lwg.Wait()
	stopBG()
	wg.Wait()
	elapsed := time.Since(r.start)
	r.logf("load done; checking every acknowledged consent write")

	hits := newRunStats(len(spec.templates))
	for _, l := range loads {
		hits.merge(l)
	}
	hits.elapsed = elapsed
	for _, inst := range r.inst {
		if inst.proc.Exited() {
			r.problem("instance %s died during the run (%v); its output:\n%s", inst.name, inst.proc.waitErr, inst.proc.logTail(30))
		}
	}
	final := r.stream.verifyAll(ctx)
	metrics := r.finalMetrics()
	for _, inst := range r.inst {
		if !inst.proc.Exited() {
			if err := inst.proc.stop(15 * time.Second); err != nil {
				r.problem("instance %s: %v", inst.name, err)
			}
		}
	}
	sum := r.summarise(hits, final, metrics)
	sum.print(w)
	return sum, nil
}

// setUp starts Redis, the sink and both instances on one config file, with their
// listeners set by the environment as in a fleet that shares its config.
func (r *soakRun) setUp() error {
	o := r.o
	city, err := findGeoIP(o.geoip)
	if err != nil {
		return err
	}
	alt := o.geoipAlt
	if alt == "" {
		alt = filepath.Join(filepath.Dir(city), "GeoIP2-Country-Test.mmdb")
	}
	if _, err := os.Stat(alt); err != nil {
		return fmt.Errorf("-geoip-alt: %w", err)
	}
	r.dbs = [2]string{city, alt}
	if r.dir, err = os.MkdirTemp("", "consentgate-soak-"); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if o.keep {
		fmt.Fprintf(r.w, "keeping config, GeoIP copy and proxy logs in %s\n", r.dir)
	}
	r.geoPath = filepath.Join(r.dir, "GeoIP.mmdb")
	if err := swapFile(city, r.geoPath); err != nil {
		return err
	}
	if r.redis, err = startRedis(r.dir, ""); err != nil {
		return err
	}
	if r.sink, err = startSink("127.0.0.1:0"); err != nil {
		return err
	}
	r.base = proxyConfig{GeoIP: r.geoPath, SinkAddr: r.sink.Addr(), RedisAddr: r.redis.Addr, SnapshotKeys: soakSnapshotKeys,
		AfterDataLoss: o.afterDataLoss}
	r.cfgPath = filepath.Join(r.dir, "consentgate.yaml")
	if err := r.writeConfig(0); err != nil {
		return err
	}
	for i, name := range []string{"A", "B"} {
		inst, err := r.startInstance(name)
		if err != nil {
			return err
		}
		r.inst[i] = inst
	}
	r.stream = newConsentStream(r)
	for _, inst := range r.inst {
		if inst.version, err = configVersion(inst); err != nil {
			return fmt.Errorf("instance %s: %w", inst.name, err)
		}
	}
	return nil
}

func (r *soakRun) startInstance(name string) (*soakInstance, error) {
	pub, err := freePort()
	if err != nil {
		return nil, err
	}
	adm, err := freePort()
	if err != nil {
		return nil, err
	}
	inst := &soakInstance{name: name, public: fmt.Sprintf("127.0.0.1:%d", pub), admin: fmt.Sprintf("127.0.0.1:%d", adm)}
	env := []string{"CONSENTGATE_LISTEN=" + inst.public, "CONSENTGATE_ADMIN_LISTEN=" + inst.admin}
	if inst.proc, err = startProxyEnv(r.o.binary, r.cfgPath, filepath.Join(r.dir, "proxy-"+name+".log"), env); err != nil {
		return nil, err
	}
	if err := inst.proc.waitHealthy(inst.admin, 15*time.Second); err != nil {
		inst.proc.kill()
		return nil, fmt.Errorf("instance %s: %w", name, err)
	}
	client := func(addr string, conns int) *fasthttp.HostClient {
		return &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: r.o.timeout, WriteTimeout: r.o.timeout,
			MaxIdleConnDuration: time.Minute, NoDefaultUserAgentHeader: true}
	}
	inst.hits = client(inst.public, r.o.connections+4)
	inst.api = client(inst.public, 8)
	inst.adm = client(inst.admin, 8)
	return inst, nil
}

func (r *soakRun) tearDown() {
	for _, inst := range r.inst {
		if inst != nil {
			inst.proc.kill()
		}
	}
	if r.redis != nil && r.redis.cmd != nil {
		r.redis.stop()
	}
	if r.sink != nil {
		_ = r.sink.Close()
	}
	if r.dir != "" && !r.o.keep {
		_ = os.RemoveAll(r.dir)
	}
}

// kill ends a proxy at once unless it has exited (the teardown after a failure).
func (p *proxyProc) kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// swapFile copies src over dst atomically: a reader sees the old file or the new one,
// never half of one, as with a GeoIP updater's rename.
func swapFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("swap %s: %w", dst, err)
	}
	return writeAtomic(dst, b)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename over %s: %w", path, err)
	}
	return nil
}
