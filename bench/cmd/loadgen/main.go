package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
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
		s.ByConsent[n] = st.byConsent[i]
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
