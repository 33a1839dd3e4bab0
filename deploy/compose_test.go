package deploy

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/rules"
)

const composeDir = "compose"

// composeModel is the resolved model `docker compose config` prints: merge keys and
// interpolation applied, paths absolute, volumes and ports in their long form.
type composeModel struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []struct {
		Type     string `yaml:"type"`
		Source   string `yaml:"source"`
		Target   string `yaml:"target"`
		ReadOnly bool   `yaml:"read_only"`
	} `yaml:"volumes"`
	Ports []struct {
		Target    int    `yaml:"target"`
		Published string `yaml:"published"`
		HostIP    string `yaml:"host_ip"`
	} `yaml:"ports"`
	ReadOnly bool     `yaml:"read_only"`
	CapDrop  []string `yaml:"cap_drop"`
}

// composeConfig resolves the Compose file with `docker compose config` where Docker
// Compose is installed, else with composecheck (tools/k8s: compose-go, the library
// Docker Compose loads files with, so the same schema and the same resolution).
func composeConfig(t testing.TB, path string) []byte {
	t.Helper()
	if docker, err := exec.LookPath("docker"); err == nil && exec.Command(docker, "compose", "version").Run() == nil {
		out, err := exec.Command(docker, "compose", "-f", path, "config").Output()
		if err != nil {
			t.Fatalf("docker compose config: %v", err)
		}
		t.Log("checked with docker compose config")
		return out
	}
	t.Log("Docker Compose is not installed: `docker compose config` was not run; compose-go (composecheck) resolved the file instead")
	cmd := exec.Command(needTools(t).composecheck, path)
	// Interpolation reads the environment: the test's must not decide what the file says.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("composecheck %s: %v\n%s", path, err, ee.Stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompose checks deploy/compose: resolved as Docker Compose would (the Compose
// schema, interpolation, paths), then the services the fleet needs, every bind mount a
// file of the repository, the build context and Dockerfile, each instance's config loaded
// by the product's loader in the instance's environment and matching its ports, and the
// Prometheus and Grafana provisioning wired to the services. No image is built or run
// here: there is no container engine on the test machines.
func TestCompose(t *testing.T) {
	path, err := filepath.Abs(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm composeModel
	if err := yaml.Unmarshal(composeConfig(t, path), &cm); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, want := range []string{"consentgate-1", "consentgate-2", "redis", "prometheus", "grafana", "otel-collector"} {
		if _, ok := cm.Services[want]; !ok {
			t.Errorf("%s: no service %s", path, want)
		}
	}
	hostPorts := map[string]string{}
	var instances []string
	for name, s := range cm.Services {
		where := "compose: " + name
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", where)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: build: %v", where, err)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, "go.mod")); err != nil {
				t.Errorf("%s: build context %s is not the repository", where, s.Build.Context)
			}
		}
		if _, tag, ok := strings.Cut(lastSegment(s.Image), ":"); s.Image != "" && (!ok || tag == "latest") {
			t.Errorf("%s: image %q is not pinned to a tag", where, s.Image)
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case "bind":
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount: %v", where, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable", where, v.Source)
				}
			case "volume":
				if _, ok := cm.Volumes[v.Source]; !ok {
					t.Errorf("%s: named volume %q is not declared", where, v.Source)
				}
			}
		}
		for _, p := range s.Ports {
			hostPort := p.HostIP + ":" + p.Published
			if other, ok := hostPorts[hostPort]; ok {
				t.Errorf("%s: host port %s is also %s's", where, hostPort, other)
			}
			hostPorts[hostPort] = name
		}
		if slices.Contains(s.Command, "serve") {
			instances = append(instances, name)
			checkComposeInstance(t, name, s)
		}
	}
	if len(instances) != 2 {
		t.Errorf("%s: %d consentgate instances (%v), want two", path, len(instances), instances)
	}
	checkComposePrometheus(t, instances)
	checkComposeGrafana(t, cm.Services["grafana"])
}

// checkComposeInstance loads an instance's config as the container would (the image's
// environment, then compose's) and checks its ports: the admin one published on
// loopback only.
func checkComposeInstance(t testing.TB, name string, s composeService) {
	t.Helper()
	where := "compose: " + name
	_, flags, errs := binFacts(t).parseArgs(s.Command)
	for _, e := range errs {
		t.Errorf("%s: command %v: %s", where, s.Command, e)
	}
	env := map[string]string{}
	for k, v := range readDockerfile(t).env {
		env[k] = v
	}
	for k, v := range s.Environment {
		env[k] = v
	}
	var cfgHost string
	for _, v := range s.Volumes {
		if v.Type == "bind" && v.Target == flags["config"] {
			cfgHost = v.Source
		}
	}
	if cfgHost == "" {
		t.Fatalf("%s: --config %s is not a bind-mounted file", where, flags["config"])
	}
	ld := &load.Loader{Vocabulary: rules.Vocabulary(), Getenv: func(k string) string { return env[k] }}
	cfg, err := ld.Load(cfgHost)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if cfg.Consent.Store != "redis" {
		t.Errorf("%s: consent.store %s: two instances share consent only through Redis", where, cfg.Consent.Store)
	}
	_, pub, _ := net.SplitHostPort(cfg.Listen)
	_, adm, _ := net.SplitHostPort(cfg.AdminListen)
	published := map[string]string{} // container port → host address
	for _, p := range s.Ports {
		published[strconv.Itoa(p.Target)] = p.HostIP
	}
	if _, ok := published[pub]; !ok {
		t.Errorf("%s: the public listener's port %s is not published (%+v)", where, pub, s.Ports)
	}
	if host, ok := published[adm]; ok && host != "127.0.0.1" {
		t.Errorf("%s: the admin port %s is published on %q: bind it to 127.0.0.1", where, adm, host)
	}
	if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
		t.Errorf("%s: want read_only and cap_drop ALL, as in Kubernetes", where)
	}
	if u := cfg.Telemetry.OTLP.Endpoint; !strings.Contains(u, "otel-collector:4318") {
		t.Errorf("%s: telemetry.otlp.endpoint %q is not the collector service", where, u)
	}
	for _, a := range cfg.Consent.Redis.Addrs {
		if host, _, _ := net.SplitHostPort(a); host != "redis" {
			t.Errorf("%s: consent.redis.addrs %v: not the redis service", where, cfg.Consent.Redis.Addrs)
		}
	}
}

// checkComposePrometheus: the compose Prometheus scrapes each instance's admin port and
// loads the repository's alert rules; promtool checks the file when it is installed
// (telemetry's tests require it and .ci/run installs it).
func checkComposePrometheus(t testing.TB, instances []string) {
	t.Helper()
	path := filepath.Join(composeDir, "prometheus.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "consentgate" {
			continue
		}
		// alerts.yml selects up{job="consentgate"}.
		if sc.MetricsPath != "/metrics" {
			t.Errorf("%s: metrics_path %q", path, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, inst := range instances {
		if !slices.Contains(targets, inst+":9090") {
			t.Errorf("%s: job consentgate does not scrape %s:9090 (targets %v)", path, inst, targets)
		}
	}
	if !slices.Contains(prom.RuleFiles, "alerts.yml") {
		t.Errorf("%s: rule_files %v: want alerts.yml (deploy/prometheus, mounted beside it)", path, prom.RuleFiles)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		// The rules file is mounted beside it in the container: do the same here.
		dir := t.TempDir()
		for src, dst := range map[string]string{path: "prometheus.yml", "prometheus/alerts.yml": "alerts.yml"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
			t.Errorf("promtool check config %s: %v\n%s", path, err, out)
		}
	} else {
		t.Log("promtool is not installed: the compose Prometheus config was checked structurally only")
	}
}

// checkComposeGrafana: the provisioned data source is the Prometheus service and the
// dashboard provider reads the directory the dashboard is mounted in.
func checkComposeGrafana(t testing.TB, s composeService) {
	t.Helper()
	var dashDir string
	for _, v := range s.Volumes {
		if v.Type == "bind" && strings.HasSuffix(v.Source, "deploy/grafana/consentgate.json") {
			dashDir = filepath.Dir(v.Target)
		}
	}
	if dashDir == "" {
		t.Fatal("compose: grafana does not mount deploy/grafana/consentgate.json")
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err := os.ReadFile(filepath.Join(composeDir, "grafana/dashboards/consentgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prov); err != nil || len(prov.Providers) != 1 || prov.Providers[0].Options.Path != dashDir {
		t.Errorf("compose: the dashboard provider reads %+v, the dashboard is mounted in %s (%v)", prov.Providers, dashDir, err)
	}
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	b, err = os.ReadFile(filepath.Join(composeDir, "grafana/datasources/prometheus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ds); err != nil || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("compose: data source %+v (%v), want the prometheus service", ds.Datasources, err)
	}
}
