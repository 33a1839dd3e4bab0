package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

type options struct {
	store       string
	binary      string
	duration    time.Duration
	warmup      time.Duration
	connections int
	mix         string
	outDir      string
	keep        bool
	target      string
	adminAddr   string
	sinkListen  string
	geoip       string
	seed        uint64
	granted     int
	denied      int
	timeout     time.Duration
	cpuProfile  string
	rate        float64
}

func main() {
	// Subcommands; without one, loadgen loads one proxy as it always did.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "compare":
			os.Exit(compareMain(os.Args[2:], os.Stdout))
		case "profile":
			os.Exit(profileMain(os.Args[2:], os.Stdout))
		case "scale":
			os.Exit(scaleMain(os.Args[2:], os.Stdout))
		case "soak":
			os.Exit(soakMain(os.Args[2:], os.Stdout))
		case "chart":
			os.Exit(chartMain(os.Args[2:], os.Stdout))
		}
	}
	var o options
	flag.StringVar(&o.binary, "binary", "bin/consentgate", "consentgate binary to start")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured load duration")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before the measurement (connections, caches, GC)")
	flag.IntVar(&o.connections, "connections", 32, "concurrent workers, one keep-alive connection each")
	flag.StringVar(&o.mix, "mix", "realistic", "hit mix: realistic, ga4-only or all-forward (every visitor in a regime-none location, nothing refused)")
	flag.StringVar(&o.store, "store", "memory", "consent store of the started proxy: memory, or redis (starts a throwaway redis-server)")
	flag.StringVar(&o.outDir, "out", "", "directory to write a JSON summary to (none if empty)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary config and proxy log")
	flag.StringVar(&o.target, "target", "", "load an already-running proxy at this loopback URL (e.g. http://127.0.0.1:8081) instead of starting -binary")
	flag.StringVar(&o.adminAddr, "admin", "", "with -target: the proxy's admin host:port, for /metrics (optional)")
	flag.StringVar(&o.sinkListen, "sink-listen", "127.0.0.1:0", "sink address; fix it when a -target proxy must find the sink")
	flag.StringVar(&o.geoip, "geoip", "", "GeoIP City test database (default: testdata/geoip/GeoIP2-City-Test.mmdb, then ../shared/testdata/geoip/)")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed for the hit and visitor mix")
	flag.IntVar(&o.granted, "visitors-granted", 70, "consented visitors (statistics+marketing) to create through POST /consent")
	flag.IntVar(&o.denied, "visitors-denied", 30, "visitors who grant statistics but deny marketing")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.Float64Var(&o.rate, "rate", 0, "offered load in req/s over all connections (open loop, latency from when each hit was due); 0 = closed loop")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile of the measured run to this file, to check it is not the bottleneck")
	flag.Parse()

	code, err := run(o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func (o options) validate() error {
	// The caps keep every run bounded, whatever the flags.
	if o.duration <= 0 || o.duration > 30*time.Minute {
		return fmt.Errorf("-duration %s: want between 0 and 30m", o.duration)
	}
	if o.warmup < 0 || o.warmup > 5*time.Minute {
		return fmt.Errorf("-warmup %s: want between 0 and 5m", o.warmup)
	}
	if o.connections < 1 || o.connections > 4096 {
		return fmt.Errorf("-connections %d: want 1..4096", o.connections)
	}
	if o.rate < 0 || o.rate > 1e6 {
		return fmt.Errorf("-rate %v: want 0..1e6", o.rate)
	}
	if o.granted < 0 || o.denied < 0 || o.granted+o.denied > 100000 {
		return fmt.Errorf("-visitors-granted/-visitors-denied: want 0..100000 in total")
	}
	if err := requireLoopback(o.sinkListen); err != nil {
		return fmt.Errorf("-sink-listen: %w", err)
	}
	if o.target != "" {
		u, err := url.Parse(o.target)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("-target %q: want http://127.0.0.1:PORT", o.target)
		}
		if err := requireLoopback(u.Host); err != nil {
			return fmt.Errorf("-target: %w", err)
		}
	}
	if o.adminAddr != "" {
		if err := requireLoopback(o.adminAddr); err != nil {
			return fmt.Errorf("-admin: %w", err)
		}
	}
	return nil
}

// requireLoopback refuses any address off this machine: a load generator pointed
// at someone else's server is an attack, whatever the intent.
func requireLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.0/8 or ::1)", hostport)
	}
	return nil
}

func run(o options, w io.Writer) (int, error) {
	if err := o.validate(); err != nil {
		return 2, err
	}
	spec, err := mixByName(o.mix)
	if err != nil {
		return 2, err
	}
	templates := spec.templates
	weights := make([]uint64, len(templates))
	for i, t := range templates {
		weights[i] = t.weight
	}
	mix, err := newPicker(weights)
	if err != nil {
		return 2, err
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	sk, err := startSink(o.sinkListen)
	if err != nil {
		return 1, err
	}
	defer sk.Close()

	var (
		proxy     *proxyProc
		baseURL   string
		adminAddr = o.adminAddr
		tmpDir    string
	)
	if o.target == "" {
		tmpDir, err = os.MkdirTemp("", "consentgate-bench-")
		if err != nil {
			return 1, fmt.Errorf("temp dir: %w", err)
		}
		if o.keep {
			fmt.Fprintf(w, "keeping config and proxy log in %s\n", tmpDir)
		} else {
			defer os.RemoveAll(tmpDir)
		}
		proxy, baseURL, adminAddr, err = launch(o, sk.Addr(), tmpDir)
		if err != nil {
			return 1, err
		}
		defer func() {
			if !proxy.Exited() {
				_ = proxy.cmd.Process.Kill()
				<-proxy.exited
			}
		}()
	} else {
		baseURL = strings.TrimRight(o.target, "/")
	}
	u, _ := url.Parse(baseURL)

	hc := &fasthttp.HostClient{
		Addr: u.Host,
		// One connection per worker, plus slack for the setup requests: more would
		// hide queueing in the client, fewer would serialise workers.
		MaxConns:                 o.connections + 4,
		ReadTimeout:              o.timeout,
		WriteTimeout:             o.timeout,
		MaxIdleConnDuration:      time.Minute,
		NoDefaultUserAgentHeader: true,
	}

	var granted, denied [][]byte
	granted, denied, err = createVisitors(hc, baseURL, o.granted, o.denied)
	if err != nil {
		if proxy != nil {
			return 1, fmt.Errorf("create consented visitors: %w", err)
		}
		// A plain reverse proxy (the peer comparison) has no consent API; its hits
		// all go out as visitors without a cookie.
		fmt.Fprintf(w, "note: no consent API at the target (%v); all visitors without cookie\n", err)
		granted, denied = nil, nil
	}
	visitors, err := newVisitorPool(spec, granted, denied)
	if err != nil {
		return 1, err
	}

	lr := &loadRun{hc: hc, baseURL: baseURL, templates: templates, mix: mix, visitors: visitors, seed: o.seed, timeout: o.timeout, rate: o.rate}
	if proxy != nil {
		lr.abort = proxy.exited
	}

	fmt.Fprintf(w, "consentgate load: target %s, mix %s, %d connections, %s measured after %s warm-up, %d+%d consented visitors\n",
		baseURL, o.mix, o.connections, o.duration, o.warmup, len(granted), len(denied))
	if o.warmup > 0 {
		warm := lr.run(ctx, o.connections, o.warmup, 0)
		fmt.Fprintf(w, "warm-up: %d requests, %d errors\n", warm.requests(), warm.errorCount())
	}

	// Snapshots between the phases: no request is in flight, so the deltas belong
	// to the measured run alone.
	var before, after map[hitCounter]float64
	var metricsErr error
	if adminAddr != "" {
		before, metricsErr = scrapeHits(adminAddr)
	}
	sinkBefore := sk.snapshot()
	var proxyCPUBefore time.Duration
	if proxy != nil {
		proxyCPUBefore, _ = procCPU(proxy.Pid())
	}
	selfBefore := selfCPU()

	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return 1, err
	}
	stats := lr.run(ctx, o.connections, o.duration, 1)
	stopProfile()

	selfUsed := selfCPU() - selfBefore
	sinkDelta := sk.snapshot().sub(sinkBefore)
	sum := summary{
		Mix: o.mix, Target: baseURL, Connections: o.connections,
		DurationSeconds: stats.elapsed.Seconds(), WarmupSeconds: o.warmup.Seconds(),
		Requests: stats.requests(), Sink: sinkDelta,
		LoadgenCPUCores:   selfUsed.Seconds() / stats.elapsed.Seconds(),
		ConsentedVisitors: map[string]int{"granted": len(granted), "denied_marketing": len(denied)},
	}
	if proxy != nil {
		if c, err := procCPU(proxy.Pid()); err == nil {
			sum.ProxyCPUCores = (c - proxyCPUBefore).Seconds() / stats.elapsed.Seconds()
		}
		if rss, err := procRSS(proxy.Pid()); err == nil {
			sum.ProxyRSSBytes = rss
		}
	}
	if adminAddr != "" && metricsErr == nil {
		after, metricsErr = scrapeHits(adminAddr)
	}
	if adminAddr != "" && metricsErr == nil {
		sum.Lookups, _ = scrapeLookups(adminAddr)
	}
	if adminAddr != "" {
		if metricsErr != nil {
			sum.MetricsError = metricsErr.Error()
		} else {
			sum.fillHits(diffHits(after, before))
		}
	}
	sum.fillStats(stats, templates)

	report(w, &sum)

	code := 0
	if ctx.Err() != nil {
		fmt.Fprintln(w, "interrupted: the figures cover a partial run")
		code = 130
	}
	if proxy != nil {
		if proxy.Exited() {
			fmt.Fprintf(w, "\n!!! THE PROXY DIED DURING THE LOAD (%v); its output:\n%s\n", proxy.waitErr, proxy.logTail(40))
			code = 1
		} else if err := proxy.stop(15 * time.Second); err != nil {
			fmt.Fprintf(w, "\n!!! proxy stop: %v\n", err)
			code = 1
		} else {
			fmt.Fprintln(w, "proxy stopped cleanly on SIGTERM")
		}
	}
	if sum.Status5xx > 0 || sum.Sink.LeakedCookie > 0 {
		code = 1
	}
	if o.outDir != "" {
		path, err := writeSummary(o.outDir, &sum)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(w, "summary written to %s\n", path)
	}
	return code, nil
}

// launch writes the config, starts the binary on free ports and waits for it.
func launch(o options, sinkAddr, dir string) (p *proxyProc, baseURL, adminAddr string, err error) {
	geoip, err := findGeoIP(o.geoip)
	if err != nil {
		return nil, "", "", err
	}
	pub, err := freePort()
	if err != nil {
		return nil, "", "", err
	}
	adm, err := freePort()
	if err != nil {
		return nil, "", "", err
	}
	var rs *redisServer
	var redisAddr string
	switch o.store {
	case "memory":
	case "redis":
		if rs, err = startRedis(dir, ""); err != nil {
			return nil, "", "", err
		}
		redisAddr = rs.Addr
	default:
		return nil, "", "", fmt.Errorf("-store %q: want memory or redis", o.store)
	}
	cfg := proxyConfig{
		RedisAddr:   redisAddr,
		Listen:      fmt.Sprintf("127.0.0.1:%d", pub),
		AdminListen: fmt.Sprintf("127.0.0.1:%d", adm),
		GeoIP:       geoip,
		SinkAddr:    sinkAddr,
	}
	cfgPath := filepath.Join(dir, "consentgate.yaml")
	if err := os.WriteFile(cfgPath, cfg.yaml(), 0o600); err != nil {
		return nil, "", "", fmt.Errorf("write proxy config: %w", err)
	}
	p, err = startProxy(o.binary, cfgPath, filepath.Join(dir, "proxy.log"))
	if err != nil {
		if rs != nil {
			rs.stop()
		}
		return nil, "", "", err
	}
	p.redis = rs
	if err := p.waitHealthy(cfg.AdminListen, 10*time.Second); err != nil {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		return nil, "", "", err
	}
	return p, "http://" + cfg.Listen, cfg.AdminListen, nil
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
