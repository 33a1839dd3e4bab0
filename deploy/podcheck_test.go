package deploy

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/consentgate/consentgate/config"
)

// check holds the consentgate container to the binary: flags, environment, ports,
// probes, drain, and the config's secrets, store and database.
func (p *pod) check(t testing.TB, o checkOpts) {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	errorf := func(format string, args ...any) { t.Errorf(where+": "+format, args...) }

	// Every CONSENTGATE_* variable is one the loader reads: it records where each value
	// came from, so a misspelt name (read by nothing) has no position.
	readFrom := map[string]bool{}
	for _, pos := range p.cfg.Pos {
		if name, ok := strings.CutPrefix(pos.File, "$"); ok {
			readFrom[name] = true
		}
	}
	for name, v := range p.env {
		if !strings.HasPrefix(name, "CONSENTGATE_") || v == "" {
			continue
		}
		if !readFrom[name] {
			errorf("environment variable %s is not a setting the config loader reads", name)
		}
	}
	// Secrets come from the environment, never from the ConfigMap: not even one the
	// environment overrides, which would still sit in it in clear text.
	if _, mt := p.fs.host(p.configPath); mt != nil && mt.volume.ConfigMap != nil {
		for _, key := range secretKeys(t, p.hostConfigPath) {
			errorf("%s is written in the ConfigMap (%s): secrets belong in a Secret", key, p.configPath)
		}
	}

	// Ports: the pod's are the config's listeners, and the admin one is reachable from
	// the kubelet.
	ports := map[string]int{}
	for _, cp := range p.c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	listenPort := func(addr string) (string, int) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			errorf("listener %q: %v", addr, err)
			return "", 0
		}
		n, _ := strconv.Atoi(port)
		return host, n
	}
	_, pub := listenPort(p.cfg.Listen)
	adminHost, adm := listenPort(p.cfg.AdminListen)
	if ports["http"] != pub {
		errorf("containerPort http %d, but the proxy listens on %s (listen, after the image's and the pod's environment)", ports["http"], p.cfg.Listen)
	}
	if ports["admin"] != adm {
		errorf("containerPort admin %d, but the admin listener is %s (admin_listen, after the image's and the pod's environment)", ports["admin"], p.cfg.AdminListen)
	}
	if pub == adm {
		errorf("listen %s and admin_listen %s share a port: the second listener cannot bind", p.cfg.Listen, p.cfg.AdminListen)
	}
	if ip := net.ParseIP(adminHost); adminHost == "localhost" || ip != nil && ip.IsLoopback() {
		errorf("admin_listen %s is loopback: the kubelet's probes cannot reach it", p.cfg.AdminListen)
	}

	// Probes: readiness on /readyz and liveness on /healthz, on the admin listener.
	// /readyz pings the store with a budget of one second (proxy/admin.go): a probe
	// timeout at or under it would take every pod out of rotation whenever Redis is slow,
	// though the proxy serves on (fail closed) with the store down.
	for _, pr := range []struct {
		name, path string
		probe      *probe
	}{{"readinessProbe", "/readyz", p.c.ReadinessProbe}, {"livenessProbe", "/healthz", p.c.LivenessProbe}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			errorf("no %s httpGet", pr.name)
		case pr.probe.HTTPGet.Path != pr.path:
			errorf("%s path %q, want %s", pr.name, pr.probe.HTTPGet.Path, pr.path)
		default:
			if port, ok := p.c.port(pr.probe.HTTPGet.Port); !ok || port != adm {
				errorf("%s port %q is not the admin listener's (%d)", pr.name, pr.probe.HTTPGet.Port, adm)
			}
			if pr.probe.TimeoutSeconds < 2 {
				errorf("%s timeoutSeconds %d: /readyz may take up to 1s to ping the store; want at least 2", pr.name, pr.probe.TimeoutSeconds)
			}
		}
	}

	// Drain: the preStop sleep matches --drain-delay, and the grace period covers the
	// sleep, the drain and the hits in flight (each within upstream.timeout).
	drain, err := time.ParseDuration(p.flags["drain-delay"])
	if err != nil {
		errorf("args %v: give --drain-delay explicitly, so the preStop sleep can match it", p.c.Args)
	}
	var preStop time.Duration
	if p.c.Lifecycle == nil || p.c.Lifecycle.PreStop == nil || p.c.Lifecycle.PreStop.Sleep == nil {
		errorf("no preStop sleep: a rolling update would close the listeners while the endpoints still route to the pod")
	} else {
		preStop = time.Duration(p.c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		if preStop != drain {
			errorf("preStop sleeps %v, --drain-delay is %v: they should match", preStop, drain)
		}
	}
	need := preStop + drain + p.cfg.Upstream.Timeout + 5*time.Second
	if g := p.spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < need {
		errorf("terminationGracePeriodSeconds %v: the drain needs %v (preStop %v + drain %v + upstream.timeout %v + 5s)", derefInt(g), need, preStop, drain, p.cfg.Upstream.Timeout)
	}

	// Several instances share consent only through Redis.
	replicas := 1
	var d deployment
	p.dep.as(t, &d)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	for _, h := range p.m.all("HorizontalPodAutoscaler") {
		var a hpa
		h.as(t, &a)
		if a.Spec.ScaleTargetRef.Name == p.dep.Metadata.Name {
			replicas = max(replicas, a.Spec.MaxReplicas)
		}
	}
	if replicas > 1 && p.cfg.Consent.Store != "redis" {
		errorf("up to %d instances with consent.store %s: each would keep its own visitors' consent", replicas, p.cfg.Consent.Store)
	}
	if o.redis != nil {
		if err := o.redis(p.cfg); err != nil {
			errorf("consent store: %v", err)
		}
	}
	if p.geoPath != "" {
		p.checkGeoIP(t, o)
	}

	// Memory: the limit holds the process at rest and its consent maps full, with room
	// for the collector, or the pod is OOM-killed at a visitor count that can be worked
	// out in advance.
	maps, what := int64(p.cfg.Consent.Cache.MaxEntries)*cachedVisitorBytes, "consent.cache.max_entries"
	if p.cfg.Consent.Store == "memory" {
		maps, what = int64(p.cfg.Consent.MaxEntries)*storedVisitorBytes, "consent.max_entries"
	}
	memNeed := baselineBytes + maps*5/4
	limit, err := quantity(p.c.Resources.Limits["memory"])
	if err != nil {
		errorf("limits.memory: %v", err)
	} else if limit < memNeed {
		errorf("limits.memory %s: %s alone may hold %d MiB (deploy/README.md \"Sizing\"); want at least %d MiB", p.c.Resources.Limits["memory"], what, maps>>20, memNeed>>20)
	}
}

// The sizing figures the memory check uses, measured by the BenchmarkSizing* benchmarks
// (without TC strings, which add their length, twice in the memory store).
const (
	baselineBytes      = 64 << 20 // 45 MiB RSS under `make bench-load`, rounded up
	cachedVisitorBytes = 80       // a visitor in the Redis store's local cache (79 at a million)
	storedVisitorBytes = 230      // a visitor in the memory store, state and receipt (226 at a million)
)

// quantity parses a Kubernetes memory quantity such as 384Mi or 1G.
func quantity(q string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a quantity such as 384Mi", q)
	}
	return v, nil
}

func derefInt(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// secretKeys lists the keys of a config file that hold secrets (config.IsSecret, the
// product's one list of them), set to a non-empty value.
func secretKeys(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, sub := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), sub)
			}
			return
		}
		if v != nil && fmt.Sprint(v) != "" && config.IsSecret(prefix) {
			out = append(out, prefix)
		}
	}
	walk("", doc)
	slices.Sort(out)
	return out
}
