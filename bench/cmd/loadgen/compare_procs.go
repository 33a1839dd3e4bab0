package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// startProxy starts one proxy for a mix, on the proxy's core, and waits until it answers.
func (cr *compareRun) startProxy(mi int, name string) (*liveProxy, error) {
	o := cr.o
	dir := filepath.Join(cr.dir, fmt.Sprintf("%s-%d", name, mi))
	switch name {
	case "consentgate", baselinePeer:
		return cr.startConsentgateAs(name, dir, o.proxyCPU, o.gomaxprocs, nil)
	case sinkPeer:
		return &liveProxy{name: sinkPeer, version: cr.report.Versions[sinkPeer], url: "http://" + cr.sink.Addr(),
			cpus: o.loadCPU, hc: cr.client(cr.sink.Addr())}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	lp := &liveProxy{name: name, version: cr.report.Versions[name], url: "http://" + listen, cpus: o.proxyCPU}
	run, _, err := writePeerConfig(name, cr.bins[name], newPeerConfig(dir, listen, cr.sink.Addr()))
	if err != nil {
		return nil, err
	}
	if lp.proc, err = startPinned(run, nil, o.proxyCPU, filepath.Join(dir, "stdout.log")); err != nil {
		return nil, err
	}
	if err := lp.proc.waitHTTP(listen, 15*time.Second); err != nil {
		lp.proc.killGroup(2 * time.Second)
		return nil, err
	}
	fmt.Fprintf(cr.w, "started %s: pid %d (and its process group) on %s\n", name, lp.proc.Pid(), listen)
	lp.hc = cr.client(listen)
	return lp, nil
}

// startConsentgate starts the binary on cpus with GOMAXPROCS, the Redis store and
// the sink as every vendor; tweak, if not nil, changes the config first.
func (cr *compareRun) startConsentgate(dir, cpus string, gomaxprocs int, tweak func(*proxyConfig)) (*liveProxy, error) {
	return cr.startConsentgateAs("consentgate", dir, cpus, gomaxprocs, tweak)
}

// startConsentgateAs starts the build the peer name stands for (consentgate or the
// baseline).
func (cr *compareRun) startConsentgateAs(name, dir, cpus string, gomaxprocs int, tweak func(*proxyConfig)) (*liveProxy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := proxyConfig{Listen: listen, AdminListen: admin, GeoIP: cr.geoip, SinkAddr: cr.sink.Addr()}
	if cr.redis != nil {
		cfg.RedisAddr = cr.redis.Addr
	}
	if tweak != nil {
		tweak(&cfg)
	}
	cfgPath := filepath.Join(dir, "consentgate.yaml")
	if err := os.WriteFile(cfgPath, cfg.yaml(), 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	env := []string{fmt.Sprintf("GOMAXPROCS=%d", gomaxprocs)}
	if cr.o.profileDir != "" {
		env = append(env, "CONSENTGATE_PROFILE_DIR="+cr.o.profileDir)
	}
	lp := &liveProxy{name: name, version: cr.report.Versions[name], url: "http://" + listen, admin: admin, cpus: cpus}
	lp.proc, err = startPinned([]string{cr.bins[name], "serve", "--config", cfgPath, "--drain-delay", "0s"}, env, cpus, filepath.Join(dir, "proxy.log"))
	if err != nil {
		return nil, err
	}
	if err := lp.proc.waitHealthy(admin, 15*time.Second); err != nil {
		lp.proc.killGroup(2 * time.Second)
		return nil, err
	}
	fmt.Fprintf(cr.w, "started %s: pid %d on %s (admin %s), CPU %s, GOMAXPROCS=%d\n", name, lp.proc.Pid(), listen, admin, cpus, gomaxprocs)
	lp.hc = cr.client(listen)
	return lp, nil
}

func (cr *compareRun) client(addr string) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                     addr,
		MaxConns:                 cr.o.connections + 4,
		ReadTimeout:              cr.o.timeout,
		WriteTimeout:             cr.o.timeout,
		MaxIdleConnDuration:      time.Minute,
		NoDefaultUserAgentHeader: true,
	}
}

func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

func (cr *compareRun) stopAll() {
	for _, lp := range cr.proxies {
		if lp.proc != nil {
			lp.proc.killGroup(5 * time.Second)
		}
	}
	cr.proxies = nil
}

// stopAllChecked stops consentgate as an orchestrator would (SIGTERM, clean exit
// expected), and the peers by their group.
func (cr *compareRun) stopAllChecked() error {
	var err error
	for _, lp := range cr.proxies {
		if isConsentgate(lp.name) {
			if e := lp.proc.stop(15 * time.Second); e != nil && err == nil {
				err = fmt.Errorf("%s did not stop cleanly: %w", lp.name, e)
			}
		}
	}
	cr.stopAll()
	return err
}

// machineCPUs counts the machine's CPUs, whatever this process's affinity (which is
// what runtime.NumCPU reports, and is one CPU once pinned).
func machineCPUs() int {
	c, err := readCPUTimes()
	if err != nil {
		return runtime.NumCPU()
	}
	return len(c)
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
