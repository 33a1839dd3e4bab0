package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	benchAdminToken = "Bn5Wq9Lx2Kz7Vc3Rm8Tb1Hp4Jd6S"
	benchSecret     = "Bs2Xk7Lq4Vz9Wn1Rc6Tm3Hb8Jp5D"
)

// Every vendor goes to the sink: the benchmark must never send a hit off the machine.
var upstreamVendors = []string{"ga4", "meta", "google_ads", "bing", "linkedin", "tiktok", "matomo", "plausible"}

// geoipCandidates are tried in order when -geoip is not given: the repo's copy, then
// the shared test data beside the repo, relative to where `make bench` runs.
var geoipCandidates = []string{
	"testdata/geoip/GeoIP2-City-Test.mmdb",
	"../shared/testdata/geoip/GeoIP2-City-Test.mmdb",
}

func findGeoIP(flagPath string) (string, error) {
	if flagPath != "" {
		if _, err := os.Stat(flagPath); err != nil {
			return "", fmt.Errorf("-geoip: %w", err)
		}
		return filepath.Abs(flagPath)
	}
	for _, p := range geoipCandidates {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("no GeoIP test database found at %s: run from the repo root or pass -geoip", strings.Join(geoipCandidates, " or "))
}

// freePort asks the kernel for a port and gives it back. Another process could take
// it before the proxy binds; on a bench machine that is rare enough, and the proxy
// then fails to start with a clear error rather than measuring the wrong thing.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type proxyConfig struct {
	Listen, AdminListen, GeoIP, SinkAddr string
	RedisAddr                            string // "" = the in-memory consent store
	// For loadgen scale: the memory store's bounds, and the Redis cache's bounds and TTL
	// (0: the defaults).
	MaxEntries, MaxBytes, CacheMaxEntries, CacheMaxBytes int
	CacheTTL                                             time.Duration
	// RedisTimeout is consent.redis.timeout (0: the default, 5 ms): loadgen scale
	// raises it for the instance that only creates the visitors.
	RedisTimeout time.Duration
	// SnapshotKeys are consent.snapshot.keys (none: each process signs with a random
	// key of its own); loadgen soak sets them so that both instances, and a restarted
	// Redis, honour the cookies either instance issued.
	SnapshotKeys []string
	// AfterDataLoss is consent.snapshot.after_data_loss ("": the default, restore).
	AfterDataLoss string
	// Routes are extra routes, path → endpoint: loadgen soak's harmless config change.
	Routes [][2]string
}

func (c proxyConfig) yaml() []byte {
	var b strings.Builder
	q := strconv.Quote
	b.WriteString("# written by bench/cmd/loadgen\n")
	// Without the listeners (loadgen soak), each instance is given them as
	// CONSENTGATE_LISTEN and CONSENTGATE_ADMIN_LISTEN: one config for the fleet.
	if c.Listen != "" {
		fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\n", q(c.Listen), q(c.AdminListen))
	}
	fmt.Fprintf(&b, "admin_token: %s\n", q(benchAdminToken))
	// The generator connects from 127.0.0.1 and names the visitor in X-Forwarded-For.
	b.WriteString("trusted_proxies: [\"127.0.0.1/32\"]\n")
	// Per-hit logging would measure the disk, not the proxy.
	b.WriteString("log_level: warn\n")
	fmt.Fprintf(&b, "geo:\n  database: %s\n", q(c.GeoIP))
	b.WriteString("upstreams:\n")
	for _, v := range upstreamVendors {
		fmt.Fprintf(&b, "  %s: %s\n", v, q("http://"+c.SinkAddr))
	}
	fmt.Fprintf(&b, "anonymise:\n  secret: %s\n", q(benchSecret))
	// The visitors are created from 127.0.0.1 in a burst, as no site's visitors are: the
	// consent API's rate limits (limits.*) are off, so -visitors-* may be any number.
	b.WriteString("limits:\n  consent_writes: {per_ip: {per_minute: 0}, per_net: {per_minute: 0}}\n" +
		"  new_ids: {per_ip: {per_minute: 0}, per_net: {per_minute: 0}}\n")
	b.WriteString("consent:\n")
	if c.RedisAddr != "" {
		fmt.Fprintf(&b, "  store: redis\n  redis:\n    addrs: [%s]\n", q(c.RedisAddr))
		if c.RedisTimeout > 0 {
			// A consent write's budget may not be smaller than a hit's lookup.
			fmt.Fprintf(&b, "    timeout: %s\n    write_timeout: %s\n", c.RedisTimeout, max(c.RedisTimeout, 250*time.Millisecond))
		}
	} else {
		b.WriteString("  store: memory\n")
	}
	if len(c.SnapshotKeys) > 0 || c.AfterDataLoss != "" {
		b.WriteString("  snapshot:\n")
	}
	if len(c.SnapshotKeys) > 0 {
		b.WriteString("    keys: [")
		for i, k := range c.SnapshotKeys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(q(k))
		}
		b.WriteString("]\n")
	}
	if c.AfterDataLoss != "" {
		fmt.Fprintf(&b, "    after_data_loss: %s\n", c.AfterDataLoss)
	}
	if c.MaxEntries > 0 {
		fmt.Fprintf(&b, "  max_entries: %d\n", c.MaxEntries)
	}
	if c.MaxBytes > 0 {
		fmt.Fprintf(&b, "  max_bytes: %d\n", c.MaxBytes)
	}
	if c.CacheMaxEntries > 0 || c.CacheMaxBytes > 0 || c.CacheTTL > 0 {
		b.WriteString("  cache:\n")
		if c.CacheMaxEntries > 0 {
			fmt.Fprintf(&b, "    max_entries: %d\n", c.CacheMaxEntries)
		}
		if c.CacheMaxBytes > 0 {
			fmt.Fprintf(&b, "    max_bytes: %d\n", c.CacheMaxBytes)
		}
		if c.CacheTTL > 0 {
			fmt.Fprintf(&b, "    ttl: %s\n", c.CacheTTL)
		}
	}
	if len(c.Routes) > 0 {
		b.WriteString("routes:\n")
		for _, r := range c.Routes {
			fmt.Fprintf(&b, "  - {path: %s, endpoint: %s}\n", q(r[0]), q(r[1]))
		}
	}
	return []byte(b.String())
}

// proxyProc is the consentgate binary under test, run as a child process so the
// benchmark sees exactly what an operator would deploy.
type proxyProc struct {
	cmd     *exec.Cmd
	logPath string
	redis   *redisServer // the throwaway consent store of -store redis, if any
	exited  chan struct{}
	waitErr error
}

func startProxy(binary, configPath, logPath string) (*proxyProc, error) {
	return startProxyEnv(binary, configPath, logPath, nil)
}

// startProxyEnv is startProxy with extra environment variables (KEY=value), which
// override the config file's settings as CONSENTGATE_* variables do.
func startProxyEnv(binary, configPath, logPath string, env []string) (*proxyProc, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("proxy binary %s: %w (build it with `make build`)", binary, err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create proxy log: %w", err)
	}
	cmd := exec.Command(binary, "serve", "--config", configPath, "--drain-delay", "0s")
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &proxyProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *proxyProc) Pid() int { return p.cmd.Process.Pid }

func (p *proxyProc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// logTail returns the end of the proxy's output, for error messages.
func (p *proxyProc) logTail(maxLines int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read proxy log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}

// waitHealthy polls /healthz until it answers 200, the proxy dies, or timeout.
func (p *proxyProc) waitHealthy(adminAddr string, timeout time.Duration) error {
	url := "http://" + adminAddr + "/healthz"
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("proxy exited before it was healthy (%v); its output:\n%s", p.waitErr, p.logTail(40))
		}
		status, _, err := fasthttp.GetTimeout(nil, url, 500*time.Millisecond)
		if err == nil && status == fasthttp.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			last := fmt.Sprintf("status %d", status)
			if err != nil {
				last = err.Error()
			}
			return fmt.Errorf("proxy not healthy at %s after %s (last: %s); its output:\n%s", url, timeout, last, p.logTail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as an orchestrator would, and waits for the drain. A proxy
// that ignores it is killed so the benchmark always ends.
func (p *proxyProc) stop(timeout time.Duration) error {
	if p.redis != nil {
		defer p.redis.stop() // after the proxy: it drains first
	}
	if p.Exited() {
		return fmt.Errorf("proxy had already exited: %v", p.waitErr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM proxy: %w", err)
	}
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if errors.As(p.waitErr, &ee) {
			return fmt.Errorf("proxy exited with %v after SIGTERM; its output:\n%s", ee, p.logTail(20))
		}
		return p.waitErr
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("proxy did not stop within %s of SIGTERM; killed", timeout)
	}
}

// hitCounter is one consentgate_hits_total series.
type hitCounter struct {
	Vendor, Action, Reason, Jurisdiction string
}

// scrapeHits reads consentgate_hits_total from the admin /metrics. It parses the
// Prometheus text format itself rather than pulling in a client library for one
// metric family.
func scrapeHits(adminAddr string) (map[hitCounter]float64, error) {
	body, err := scrapeMetrics(adminAddr)
	if err != nil {
		return nil, err
	}
	return parseHits(body)
}

// scrapeMallocs reads go_memstats_mallocs_total, the Go heap allocations so far.
func scrapeMallocs(adminAddr string) (float64, error) {
	body, err := scrapeMetrics(adminAddr)
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(body, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("go_memstats_mallocs_total ")); ok {
			v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			if err != nil {
				return 0, fmt.Errorf("go_memstats_mallocs_total: %w", err)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("scrape /metrics: no go_memstats_mallocs_total")
}

// scrapeMetrics fetches the admin /metrics text.
func scrapeMetrics(adminAddr string) ([]byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + adminAddr + "/metrics")
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: status %d", resp.StatusCode())
	}
	return bytes.Clone(resp.Body()), nil
}

// scrapeLookups reads consentgate_consent_lookups_total by "source/result".
func scrapeLookups(adminAddr string) (map[string]float64, error) {
	body, err := scrapeMetrics(adminAddr)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range bytes.Split(body, []byte("\n")) {
		rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("consentgate_consent_lookups_total{"))
		if !ok {
			continue
		}
		labels, value, err := parseLabels(rest)
		if err != nil {
			return nil, err
		}
		if f := strings.Fields(string(value)); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return nil, err
			}
			out[labels["source"]+"/"+labels["result"]] += v
		}
	}
	return out, nil
}

// redisServer is a throwaway redis-server for -store redis: loopback only, nothing on
// disk, stopped with the run.
type redisServer struct {
	cmd  *exec.Cmd
	Addr string
	argv []string
}

// startRedis starts it on a free port; with cpus it is pinned there (taskset), so
// that it does not run on the proxy's core.
func startRedis(dir, cpus string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("-store redis needs redis-server: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv := []string{bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", dir}
	if cpus != "" {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("pinning redis-server needs taskset (util-linux): %w", err)
		}
		argv = append([]string{ts, "-c", cpus}, argv...)
	}
	r := &redisServer{Addr: addr, argv: argv}
	if err := r.launch(); err != nil {
		return nil, err
	}
	return r, nil
}

// launch starts the server and waits until it accepts connections.
func (r *redisServer) launch() error {
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	// Like the proxy, it must not outlive an interrupted benchmark.
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			r.cmd = cmd
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("redis-server on %s did not start: %w", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

func parseHits(text []byte) (map[hitCounter]float64, error) {
	out := map[hitCounter]float64{}
	for lineNo, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		rest, ok := bytes.CutPrefix(line, []byte("consentgate_hits_total{"))
		if !ok {
			continue
		}
		labels, value, err := parseLabels(rest)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", lineNo+1, err)
		}
		fields := strings.Fields(string(value))
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %d: no value", lineNo+1)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value: %w", lineNo+1, err)
		}
		k := hitCounter{labels["vendor"], labels["action"], labels["reason"], labels["jurisdiction"]}
		out[k] += v // other labels (e.g. OpenTelemetry scope) are summed away
	}
	return out, nil
}

// parseLabels reads `name="value",...}` and returns the labels and what follows '}'.
func parseLabels(b []byte) (map[string]string, []byte, error) {
	labels := map[string]string{}
	for {
		b = bytes.TrimLeft(b, " ,")
		if len(b) > 0 && b[0] == '}' {
			return labels, b[1:], nil
		}
		eq := bytes.IndexByte(b, '=')
		if eq < 0 || eq+1 >= len(b) || b[eq+1] != '"' {
			return nil, nil, fmt.Errorf("malformed label set")
		}
		name := string(bytes.TrimSpace(b[:eq]))
		b = b[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c == '\\' && i+1 < len(b) {
				i++
				switch b[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(b[i])
				}
				continue
			}
			if c == '"' {
				b = b[i+1:]
				closed = true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, nil, fmt.Errorf("unterminated label value for %s", name)
		}
		labels[name] = val.String()
	}
}

func diffHits(after, before map[hitCounter]float64) map[hitCounter]float64 {
	d := map[hitCounter]float64{}
	for k, v := range after {
		if x := v - before[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}
