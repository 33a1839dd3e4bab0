package deploy

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/rules"
)

// testGeoDB stands in for the database geoipupdate would download.
const testGeoDB = "../testdata/geoip/GeoLite2-City-Test.mmdb"

// pod is the consentgate container of a rendering, as the kubelet would start it: its
// environment (the image's, then the pod spec's, with Secrets resolved), its volumes laid
// out in a temporary directory, and the config the binary would load from there.
type pod struct {
	m    *manifests
	dep  *object
	spec *podSpec
	c    *container

	sub   string            // the subcommand
	flags map[string]string // its flags' values
	env   map[string]string
	fs    *podFS

	configPath     string // in the pod
	hostConfigPath string // where the test laid it out
	geoPath        string // geo.database in the pod, if any
	cfg            *config.Config
}

// podFS lays out a container's volume mounts under a temporary root.
type podFS struct {
	root   string
	mounts []fsMount // longest path first
}

type fsMount struct {
	path, host string
	volume     *volume
}

func (fs *podFS) host(p string) (string, *fsMount) {
	for i := range fs.mounts {
		mt := &fs.mounts[i]
		if rel, ok := strings.CutPrefix(p, mt.path); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
			return filepath.Join(mt.host, rel), mt
		}
	}
	return "", nil
}

// newPod resolves the consentgate container of dep. Errors about the pod are reported
// on t; a pod that cannot be resolved far enough to load its config is fatal.
func newPod(t testing.TB, m *manifests, dep *object, o checkOpts) *pod {
	t.Helper()
	var d deployment
	dep.as(t, &d)
	p := &pod{m: m, dep: dep, spec: &d.Spec.Template.Spec}
	p.c = p.spec.container("consentgate")
	where := fmt.Sprintf("%s: %s", m.label, dep)
	if p.c == nil {
		t.Fatalf("%s: no container named consentgate", where)
	}
	df := readDockerfile(t)
	if len(p.c.Command) > 0 {
		t.Errorf("%s: command %v replaces the image's entrypoint %v: give args only", where, p.c.Command, df.entrypoint)
	}
	var errs []string
	p.sub, p.flags, errs = binFacts(t).parseArgs(p.c.Args)
	for _, e := range errs {
		t.Errorf("%s: args %v: %s", where, p.c.Args, e)
	}
	if p.sub != "serve" {
		t.Fatalf("%s: args %v: the proxy runs `serve`", where, p.c.Args)
	}
	p.configPath = p.flags["config"]
	if p.configPath == "" {
		t.Fatalf("%s: args %v: no --config: the pod would run on the embedded defaults (memory store, admin listener on loopback)", where, p.c.Args)
	}
	p.env = p.environment(t, df, o)
	p.layOut(t)
	p.loadConfig(t)
	return p
}

// environment is the container's environment: the image's ENV, then envFrom, then env.
func (p *pod) environment(t testing.TB, df dockerfile, o checkOpts) map[string]string {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	env := map[string]string{}
	for k, v := range df.env {
		env[k] = v
	}
	secretValue := func(ref *keyRef) (string, bool) {
		data, ok := p.m.data(t, "Secret", ref.Name)
		if !ok {
			if !o.externalSecrets[ref.Name] {
				t.Errorf("%s: Secret %q is not in the manifests", where, ref.Name)
			}
			return "", false
		}
		v, ok := data[ref.Key]
		if !ok && (ref.Optional == nil || !*ref.Optional) {
			t.Errorf("%s: Secret %q has no key %q", where, ref.Name, ref.Key)
		}
		return v, ok
	}
	for _, ef := range p.c.EnvFrom {
		switch {
		case ef.SecretRef != nil:
			if ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
				t.Errorf("%s: envFrom Secret %q is optional: a missing Secret would start the pod without its admin token and keys", where, ef.SecretRef.Name)
			}
			data, ok := p.m.data(t, "Secret", ef.SecretRef.Name)
			if !ok {
				if !o.externalSecrets[ef.SecretRef.Name] {
					t.Errorf("%s: envFrom Secret %q is not in the manifests", where, ef.SecretRef.Name)
				}
				continue
			}
			for k, v := range data {
				env[ef.Prefix+k] = v
			}
		case ef.ConfigMapRef != nil:
			data, ok := p.m.data(t, "ConfigMap", ef.ConfigMapRef.Name)
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not in the manifests", where, ef.ConfigMapRef.Name)
			}
			for k, v := range data {
				env[ef.Prefix+k] = v
			}
		}
	}
	for _, e := range p.c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			if v, ok := secretValue(e.ValueFrom.SecretKeyRef); ok {
				env[e.Name] = v
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			data, _ := p.m.data(t, "ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name)
			env[e.Name] = data[e.ValueFrom.ConfigMapKeyRef.Key]
		default:
			if strings.HasPrefix(e.Name, "CONSENTGATE_") {
				t.Errorf("%s: env %s from the downward API: the tests cannot check its value", where, e.Name)
			}
		}
	}
	return env
}

// layOut materialises the container's volume mounts.
func (p *pod) layOut(t testing.TB) {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	p.fs = &podFS{root: t.TempDir()}
	for _, vm := range p.c.VolumeMounts {
		v := p.spec.volume(vm.Name)
		if v == nil {
			t.Errorf("%s: volumeMount %q names no volume", where, vm.Name)
			continue
		}
		if vm.SubPath != "" {
			// A subPath mount of a ConfigMap is never updated in place.
			t.Errorf("%s: volumeMount %q uses subPath: the kubelet never updates it", where, vm.Name)
		}
		host := filepath.Join(p.fs.root, filepath.FromSlash(vm.MountPath))
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
		p.fs.mounts = append(p.fs.mounts, fsMount{path: vm.MountPath, host: host, volume: v})
		switch {
		case v.ConfigMap != nil, v.Secret != nil:
			kind, name := "ConfigMap", ""
			if v.ConfigMap != nil {
				name = v.ConfigMap.Name
			} else {
				kind, name = "Secret", v.Secret.SecretName
			}
			data, ok := p.m.data(t, kind, name)
			if !ok {
				t.Errorf("%s: volume %q: %s %q is not in the manifests", where, v.Name, kind, name)
				continue
			}
			files := map[string]string{}
			for k := range data {
				files[k] = k
			}
			if v.ConfigMap != nil && len(v.ConfigMap.Items) > 0 {
				files = map[string]string{}
				for _, it := range v.ConfigMap.Items {
					files[it.Key] = it.Path
				}
			}
			for k, rel := range files {
				if err := os.WriteFile(filepath.Join(host, rel), []byte(data[k]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if !vm.ReadOnly {
				t.Errorf("%s: volumeMount %q of a %s is not readOnly", where, vm.Name, kind)
			}
		case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
		default:
			t.Errorf("%s: volume %q: the proxy's volumes are a ConfigMap, a Secret, an emptyDir or a PVC", where, v.Name)
		}
	}
	sort.Slice(p.fs.mounts, func(i, j int) bool { return len(p.fs.mounts[i].path) > len(p.fs.mounts[j].path) })
}

// loadConfig loads the config file from the pod's ConfigMap with the product's loader, in
// the container's environment, the GeoIP database standing in for the downloaded one.
func (p *pod) loadConfig(t testing.TB) {
	t.Helper()
	where := fmt.Sprintf("%s: %s: container consentgate", p.m.label, p.dep)
	hostCfg, mt := p.fs.host(p.configPath)
	if mt == nil || mt.volume.ConfigMap == nil && mt.volume.Secret == nil {
		t.Fatalf("%s: --config %s is not in a ConfigMap or Secret volume the container mounts", where, p.configPath)
	}
	text, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatalf("%s: --config %s: the mounted ConfigMap has no such key: %v", where, p.configPath, err)
	}
	var file struct {
		Geo struct {
			Database string `yaml:"database"`
		} `yaml:"geo"`
	}
	if err := yaml.Unmarshal(text, &file); err != nil {
		t.Fatalf("%s: %s: %v", where, p.configPath, err)
	}
	p.geoPath = cmpOr(p.env["CONSENTGATE_GEO_DATABASE"], file.Geo.Database)
	if p.geoPath != "" {
		hostGeo, gm := p.fs.host(p.geoPath)
		switch {
		case gm == nil:
			t.Errorf("%s: geo.database %s is on no volume the container mounts", where, p.geoPath)
		case gm.volume.EmptyDir == nil && gm.volume.PersistentVolumeClaim == nil:
			t.Errorf("%s: geo.database %s is on volume %q, which nothing updates: want an emptyDir or a PVC that geoipupdate writes", where, p.geoPath, gm.volume.Name)
		default:
			db, err := os.ReadFile(testGeoDB)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(hostGeo), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hostGeo, db, 0o644); err != nil {
				t.Fatal(err)
			}
			text = []byte(strings.ReplaceAll(string(text), p.geoPath, hostGeo))
			for k, v := range p.env {
				p.env[k] = strings.ReplaceAll(v, p.geoPath, hostGeo)
			}
		}
	}
	if err := os.WriteFile(hostCfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p.hostConfigPath = hostCfg
	ld := &load.Loader{Vocabulary: rules.Vocabulary(), Getenv: func(k string) string { return p.env[k] }}
	cfg, err := ld.Load(hostCfg)
	if err != nil {
		t.Fatalf("%s: the config (%s, from the ConfigMap) in the pod's environment does not load:\n%v", where, p.configPath, err)
	}
	p.cfg = cfg
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkPod holds the consentgate container to the binary: flags, environment, ports,
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
	cachedVisitorBytes = 224      // a visitor in the Redis store's local cache
	storedVisitorBytes = 460      // a visitor in the memory store, state and receipt
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

// checkGeoIP: geoipupdate writes the file the config names, and something tells the
// proxy when it changed: a container of the pod that sends it SIGHUP.
func (p *pod) checkGeoIP(t testing.TB, o checkOpts) {
	t.Helper()
	where := fmt.Sprintf("%s: %s", p.m.label, p.dep)
	dir, file := path.Split(p.geoPath)
	edition := strings.TrimSuffix(file, ".mmdb")
	_, gm := p.fs.host(p.geoPath)
	if gm == nil {
		return // reported by loadConfig
	}
	for _, vm := range p.c.VolumeMounts {
		if vm.Name == gm.volume.Name && !vm.ReadOnly {
			t.Errorf("%s: consentgate mounts the GeoIP volume %q read-write", where, vm.Name)
		}
	}
	// Writers: containers of this pod or of a Job/CronJob that run geoipupdate into the
	// same volume (a PVC: the same claim).
	type writer struct {
		where string
		c     *container
		spec  *podSpec
	}
	var writers []writer
	for _, c := range p.spec.allContainers() {
		writers = append(writers, writer{"pod container " + c.Name, c, p.spec})
	}
	for _, jo := range p.m.all("CronJob") {
		var cj cronJob
		jo.as(t, &cj)
		spec := cj.Spec.JobTemplate.Spec.Template.Spec
		for _, c := range spec.allContainers() {
			writers = append(writers, writer{jo.String() + " container " + c.Name, c, &spec})
		}
	}
	for _, jo := range p.m.all("Job") {
		var j job
		jo.as(t, &j)
		spec := j.Spec.Template.Spec
		for _, c := range spec.allContainers() {
			writers = append(writers, writer{jo.String() + " container " + c.Name, c, &spec})
		}
	}
	sameVolume := func(spec *podSpec, name string) bool {
		v := spec.volume(name)
		if v == nil {
			return false
		}
		if spec == p.spec {
			return name == gm.volume.Name
		}
		return v.PersistentVolumeClaim != nil && gm.volume.PersistentVolumeClaim != nil &&
			v.PersistentVolumeClaim.ClaimName == gm.volume.PersistentVolumeClaim.ClaimName
	}
	found := false
	for _, w := range writers {
		if !strings.Contains(w.c.script(), "geoipupdate") {
			continue
		}
		env := map[string]string{}
		for _, e := range w.c.Env {
			env[e.Name] = e.Value
		}
		if env["GEOIPUPDATE_DB_DIR"] == "" {
			continue // the reloader of a CronJob deployment: it only reads
		}
		if strings.TrimSuffix(env["GEOIPUPDATE_DB_DIR"], "/")+"/" != dir {
			t.Errorf("%s: %s writes to %s, the config reads %s", where, w.where, env["GEOIPUPDATE_DB_DIR"], p.geoPath)
			continue
		}
		if !slices.Contains(strings.Fields(env["GEOIPUPDATE_EDITION_IDS"]), edition) {
			t.Errorf("%s: %s downloads %q, the config reads %s", where, w.where, env["GEOIPUPDATE_EDITION_IDS"], file)
			continue
		}
		mounted := false
		for _, vm := range w.c.VolumeMounts {
			if vm.MountPath+"/" == dir && sameVolume(w.spec, vm.Name) && !vm.ReadOnly {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s: %s does not write the volume consentgate reads %s from", where, w.where, p.geoPath)
			continue
		}
		found = true
	}
	// A claim the manifests make must be mountable on every node a replica or the
	// CronJob lands on.
	if gm.volume.PersistentVolumeClaim != nil {
		if co := p.m.get("PersistentVolumeClaim", gm.volume.PersistentVolumeClaim.ClaimName); co != nil {
			var c pvc
			co.as(t, &c)
			if !slices.Contains(c.Spec.AccessModes, "ReadWriteMany") {
				t.Errorf("%s: %s is %v: the pods on other nodes could not mount it", where, co, c.Spec.AccessModes)
			}
		}
	}
	if !found && gm.volume.PersistentVolumeClaim != nil && o.externalGeoIP {
		found = true // a claim something outside the manifests keeps up to date
	}
	if !found {
		t.Errorf("%s: nothing runs geoipupdate into %s", where, p.geoPath)
	}
	// The reloader: a container of the pod that sends consentgate SIGHUP, which needs one
	// process namespace and the same user (no capability is needed to signal one's own).
	reloader := false
	uid := effectiveUser(p.spec, p.c)
	for _, c := range p.spec.Containers {
		s := c.script()
		if !strings.Contains(s, "kill -HUP") || !strings.Contains(s, "pidof consentgate") {
			continue
		}
		reloader = true
		if !p.spec.ShareProcessNamespace {
			t.Errorf("%s: container %s signals consentgate, but the pod does not share its process namespace", where, c.Name)
		}
		if u := effectiveUser(p.spec, &c); u == nil || uid == nil || *u != *uid {
			t.Errorf("%s: container %s runs as user %v and consentgate as %v: it could not signal it", where, c.Name, derefUID(u), derefUID(uid))
		}
		if !strings.Contains(s, file) {
			t.Errorf("%s: container %s does not watch %s", where, c.Name, file)
		}
	}
	if !reloader {
		t.Errorf("%s: no container sends consentgate SIGHUP when %s changes: the proxy would keep the database it started with", where, p.geoPath)
	}
}

func effectiveUser(spec *podSpec, c *container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if spec.SecurityContext != nil {
		return spec.SecurityContext.RunAsUser
	}
	return nil
}

func derefUID(u *int64) any {
	if u == nil {
		return "the image's"
	}
	return *u
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
