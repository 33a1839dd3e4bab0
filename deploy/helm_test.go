package deploy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config"
)

const chartDir = "helm/consentgate"

// helmTemplate renders the chart with a values file (YAML; "" for the defaults).
func helmTemplate(t testing.TB, values string) ([]byte, error) {
	t.Helper()
	args := []string{"template", "cg", chartDir, "--namespace", "web"}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", f)
	}
	cmd := exec.Command(needTools(t).helm, args...)
	cmd.Env = helmEnv(t)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil, fmt.Errorf("helm template: %v\n%s", err, ee.Stderr)
	}
	return out, err
}

// helmEnv keeps Helm's caches and config in the test's directory: it never reads the
// machine's repositories or plugins.
func helmEnv(t testing.TB) []string {
	home := t.TempDir()
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "HELM_CACHE_HOME=" + home + "/cache",
		"HELM_CONFIG_HOME=" + home + "/config", "HELM_DATA_HOME=" + home + "/data"}
}

func wantStore(mode string) func(*config.Config) error {
	return func(cfg *config.Config) error {
		r := cfg.Consent.Redis
		switch {
		case mode == "none" && cfg.Consent.Store != "memory":
			return fmt.Errorf("redis.mode none: consent.store %s", cfg.Consent.Store)
		case mode == "none":
			return nil
		case cfg.Consent.Store != "redis":
			return fmt.Errorf("redis.mode %s: consent.store %s", mode, cfg.Consent.Store)
		case mode == "single" && (len(r.Addrs) != 1 || r.Cluster || r.MasterName != ""):
			return fmt.Errorf("redis.mode single: addrs %v cluster %v master_name %q", r.Addrs, r.Cluster, r.MasterName)
		case mode == "sentinel" && (r.MasterName == "" || r.Cluster):
			return fmt.Errorf("redis.mode sentinel: master_name %q cluster %v", r.MasterName, r.Cluster)
		case mode == "cluster" && (!r.Cluster || r.MasterName != ""):
			return fmt.Errorf("redis.mode cluster: cluster %v master_name %q", r.Cluster, r.MasterName)
		}
		return nil
	}
}

// TestHelmChart renders the chart with its defaults and with every Redis mode and GeoIP
// updater, and holds each rendering to the binary (checkManifests); `helm lint` passes on
// each. The defaults and the fullest rendering also run the binary.
func TestHelmChart(t *testing.T) {
	needTools(t)
	cases := []struct {
		name   string
		values string
		opts   checkOpts
	}{
		{"default", "", checkOpts{live: true, redis: wantStore("single")}},
		{"redis none", `
redis: {mode: none}
replicaCount: 1
autoscaling: {enabled: false}
resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1536Mi}}
config:
  consent:
    max_entries: 2000000   # a number Helm must not write as 2e+06
`, checkOpts{live: true, redis: wantStore("none")}},
		{"redis sentinel", `
redis:
  mode: sentinel
  addrs: ["sentinel-0.sentinel:26379", "sentinel-1.sentinel:26379", "sentinel-2.sentinel:26379"]
  masterName: consent
  password: "s3ntinel-Redis-pass"
`, checkOpts{redis: wantStore("sentinel")}},
		{"redis cluster", `
redis:
  mode: cluster
  addrs: ["redis-cluster-0.redis-cluster:6379", "redis-cluster-1.redis-cluster:6379", "redis-cluster-2.redis-cluster:6379"]
  tls: true
  username: consentgate
config:
  consent:
    redis:
      timeout: 10ms
      pool_size: 64
    cache:
      max_entries: 500000
`, checkOpts{redis: wantStore("cluster")}},
		{"redis cluster one seed", `
redis: {mode: cluster, addrs: ["clustercfg.example.cache.amazonaws.com:6379"], tls: true}
`, checkOpts{redis: wantStore("cluster")}},
		{"everything", `
ports: {http: 8181, admin: 9191}
drainSeconds: 10
terminationGracePeriodSeconds: 60
secret:
  adminToken: "uR4-kq9ZtW2mXv7LpB3nYc8HdJ6sFa1G"
  anonymiseSecret: "Qm7vT2xKp9LwZ4rN8bYc3HsJ6dFa5Gu1"
  extra:
    CONSENTGATE_LOG_LEVEL: debug
redis: {mode: single, addrs: ["redis-master.redis:6379"], password: "r3dis-Pass-w0rd"}
geoip: {enabled: true, accountID: "123456", licenseKey: "abcdefABCDEF0123_mmk"}
ingress:
  enabled: true
  className: nginx
  hosts: [{host: t.example.com, paths: [{path: /, pathType: Prefix}]}]
serviceMonitor: {enabled: true}
networkPolicy:
  enabled: true
  adminFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
config:
  trusted_proxies: ["10.0.0.0/8"]
  allowed_origins: ["https://www.example.com"]
  upstream: {timeout: 5s}
  telemetry:
    decision_log: {sample_ratio: 0.001}
`, checkOpts{live: true, redis: wantStore("single")}},
		{"config in a secret", `
configSecret: true
config:
  telemetry:
    otlp:
      endpoint: "https://otlp.example.com"
      headers: {Authorization: "Bearer Zk4qX9wL2mT7vR3pN8yB5cH1dJ6sGa0U"}
`, checkOpts{live: true, redis: wantStore("single")}},
		{"geoip cronjob", `
geoip: {enabled: true, updater: cronjob, accountID: "123456", licenseKey: "abcdefABCDEF0123_mmk", edition: GeoIP2-City}
`, checkOpts{redis: wantStore("single")}},
		{"geoip existing claim", `
geoip: {enabled: true, updater: none, existingClaim: geoip-shared}
`, checkOpts{redis: wantStore("single"), externalGeoIP: true}},
		{"existing secret", `
secret: {existingSecret: consentgate-from-vault}
`, checkOpts{redis: wantStore("single"), externalSecrets: map[string]bool{"consentgate-from-vault": true}}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			out, err := helmTemplate(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			m := parseManifests(t, "helm "+tc.name, out)
			checkManifests(t, m, tc.opts)
			helmLint(t, tc.values)
		})
	}
}

func helmLint(t testing.TB, values string) {
	t.Helper()
	args := []string{"lint", "--strict", chartDir}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", f)
	}
	cmd := exec.Command(needTools(t).helm, args...)
	cmd.Env = helmEnv(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestHelmChartRefuses: values that would deploy something broken or unsafe fail the
// render, with the value to change in the message.
func TestHelmChartRefuses(t *testing.T) {
	needTools(t)
	for _, tc := range []struct{ name, values, want string }{
		{"memory store with replicas", "redis: {mode: none}\nautoscaling: {enabled: false}\nreplicaCount: 3\n", "redis.mode none keeps consent in each instance's memory"},
		{"memory store with an HPA", "redis: {mode: none}\n", "redis.mode none keeps consent in each instance's memory"},
		{"unknown redis mode", "redis: {mode: replicated}\n", "'/redis/mode': value must be one of 'none', 'single', 'sentinel', 'cluster'"},
		{"sentinel without a master", "redis: {mode: sentinel, addrs: [\"s:26379\"]}\n", "redis.masterName"},
		{"single with several addresses", "redis: {mode: single, addrs: [\"a:6379\", \"b:6379\"]}\n", "redis.mode single takes one address"},
		{"no redis address", "redis: {mode: single, addrs: []}\n", "redis.addrs is empty"},
		{"admin token in the config", "config: {admin_token: \"uR4-kq9ZtW2mXv7LpB3nYc8HdJ6sFa1G\"}\n", "secret.adminToken"},
		{"anonymise secret in the config", "config: {anonymise: {secret: \"Qm7vT2xKp9LwZ4rN8bYc3HsJ6dFa5Gu1\"}}\n", "secret.anonymiseSecret"},
		{"redis password in the config", "config: {consent: {redis: {password: \"x\"}}}\n", "redis.password"},
		{"store in the config", "config: {consent: {store: memory}}\n", "redis.mode"},
		{"listener in the config", "config: {admin_listen: \"127.0.0.1:9090\"}\n", "ports.admin"},
		{"database in the config", "config: {geo: {database: /x.mmdb}}\n", "geoip"},
		{"grace shorter than the drain", "terminationGracePeriodSeconds: 10\n", "terminationGracePeriodSeconds"},
		{"grace shorter than a slow upstream", "config: {upstream: {timeout: 40s}}\n", "terminationGracePeriodSeconds"},
		{"no drain", "drainSeconds: 0\n", "drainSeconds"},
		{"geoip without credentials", "geoip: {enabled: true}\n", "geoip.licenseKey"},
		{"geoip none without a claim", "geoip: {enabled: true, updater: none}\n", "geoip.existingClaim"},
		{"extra secret not for the proxy", "secret: {extra: {PASSWORD: x}}\n", "CONSENTGATE_"},
		{"misspelt value", "redis: {mdoe: none}\n", "mdoe"},
		{"one port for both listeners", "ports: {http: 9090, admin: 9090}\n", "same port"},
		{"OTLP headers in a ConfigMap", "config: {telemetry: {otlp: {endpoint: \"https://o.example.com\", headers: {Authorization: x}}}}\n", "configSecret: true"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			out, err := helmTemplate(t, tc.values)
			if err == nil {
				t.Fatalf("rendered:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestHelmSecretGeneration: without values, the Secret gets generated keys that the
// proxy accepts (its strength check), different per key; given values are kept as is.
func TestHelmSecretGeneration(t *testing.T) {
	out, err := helmTemplate(t, "")
	if err != nil {
		t.Fatal(err)
	}
	m := parseManifests(t, "helm default", out)
	data, ok := m.data(t, "Secret", "cg-consentgate")
	if !ok {
		t.Fatal("no Secret cg-consentgate")
	}
	token, secret := data["CONSENTGATE_ADMIN_TOKEN"], data["CONSENTGATE_ANONYMISE_SECRET"]
	if len(token) < 32 || len(secret) < 32 || token == secret {
		t.Errorf("generated token %d chars, secret %d chars, equal %v", len(token), len(secret), token == secret)
	}
	// checkManifests loaded the config with these in the environment: the loader's
	// strength check accepted them. Here: the default render loads too.
	p := checkManifests(t, m, checkOpts{redis: wantStore("single")})
	if p.cfg.AdminToken != token {
		t.Error("the proxy does not see the generated admin token")
	}
}
