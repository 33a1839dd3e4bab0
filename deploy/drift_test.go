package deploy

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that collects failures instead of failing, so a test can
// assert that the checks catch a broken manifest. Fatal ends only the goroutine the
// checks run in.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) add(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

func (r *recorder) Errorf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }
func (r *recorder) Error(args ...any)                 { r.add(fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.add(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fail()             { r.add("Fail") }
func (r *recorder) FailNow()          { r.add("FailNow"); runtime.Goexit() }

// runChecks runs parse and checkManifests on a stream and returns what they reported.
func runChecks(t *testing.T, label string, stream []byte, o checkOpts) []string {
	t.Helper()
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkManifests(rec, parseManifests(rec, label, stream), o)
	}()
	<-done
	return rec.msgs
}

// TestChecksCatchDrift: a manifest that drifts from the binary, or from the rules, fails
// the checks. Each case breaks one thing in a good rendering of the chart and names what
// the failure must say.
func TestChecksCatchDrift(t *testing.T) {
	needTools(t)
	renders := map[string][]byte{}
	for name, values := range map[string]string{
		"default":   "",
		"geoip":     "geoip: {enabled: true, accountID: \"1\", licenseKey: \"abcdefABCDEF0123_mmk\"}\nserviceMonitor: {enabled: true}\ningress: {enabled: true}\nnetworkPolicy: {enabled: true, adminFrom: [{podSelector: {}}]}\n",
		"geoipcron": "geoip: {enabled: true, updater: cronjob, accountID: \"1\", licenseKey: \"abcdefABCDEF0123_mmk\"}\n",
	} {
		out, err := helmTemplate(t, values)
		if err != nil {
			t.Fatal(err)
		}
		renders[name] = out
		if msgs := runChecks(t, name, out, checkOpts{}); len(msgs) > 0 {
			t.Fatalf("the %s rendering fails the checks before any change:\n%s", name, strings.Join(msgs, "\n"))
		}
	}
	// replace changes the n-th occurrence (1-based; 0: all) of old; -1: every line
	// holding old, removed whole (with its indentation).
	replace := func(s, old, new string, n int) string {
		switch n {
		case 0:
			return strings.ReplaceAll(s, old, new)
		case -1:
			return regexp.MustCompile(`(?m)^[ \t-]*`+regexp.QuoteMeta(old)).ReplaceAllString(s, new)
		}
		i := -1
		for range n {
			j := strings.Index(s[i+1:], old)
			if j < 0 {
				return s
			}
			i += 1 + j
		}
		return s[:i] + new + s[i+len(old):]
	}
	for _, tc := range []struct {
		name, render, old, new string
		n                      int
		want                   string
	}{
		// Against the binary.
		{"flag the binary lacks", "default", "- --drain-delay=5s", "- --drain-delay=5s\n            - --drain-timeout=30s", 1, `has no such flag`},
		{"flag value of the wrong type", "default", "--drain-delay=5s", "--drain-delay=5", 1, `"--drain-delay=5"`},
		{"subcommand the binary lacks", "default", "- serve\n", "- run\n", 1, `not a subcommand`},
		{"config key the loader refuses", "default", "on_store_error: deny", "on_store_eror: deny", 1, `does not load`},
		{"config value the loader refuses", "default", "on_store_error: deny", "on_store_error: allow", 1, `on_store_error`},
		{"environment variable the loader does not read", "default", "name: CONSENTGATE_ADMIN_LISTEN", "name: CONSENTGATE_ADMIN_LISTENER", 1, `CONSENTGATE_ADMIN_LISTENER is not a setting`},
		{"weak secret", "default", "CONSENTGATE_ADMIN_TOKEN: ", "CONSENTGATE_ADMIN_TOKEN: \"Y2hhbmdlLW1lLXRvLWEtbG9uZy1yYW5kb20tc3RyaW5n\"\n  X: ", 1, `does not load`},
		{"config path not mounted", "default", "--config=/etc/consentgate/consentgate.yaml", "--config=/etc/consentgate.yaml", 1, `not in a ConfigMap`},
		{"config file not in the ConfigMap", "default", "--config=/etc/consentgate/consentgate.yaml", "--config=/etc/consentgate/config.yaml", 1, `no such key`},
		{"admin port not the listener's", "default", "containerPort: 9090", "containerPort: 9191", 1, `containerPort admin 9191`},
		{"public port not the listener's", "default", "containerPort: 8080", "containerPort: 80", 1, `containerPort http 80`},
		{"admin listener on loopback", "default", `value: ":9090"`, `value: "127.0.0.1:9090"`, 1, `loopback`},
		{"readiness on a path the binary does not serve", "default", "path: /readyz", "path: /ready", 1, `want /readyz`},
		{"liveness on the public port", "default", "path: /healthz\n              port: admin", "path: /healthz\n              port: http", 1, `not the admin listener's`},
		{"readiness timeout within the store ping", "default", "timeoutSeconds: 3", "timeoutSeconds: 1", 1, `timeoutSeconds 1`},
		{"secret written in the ConfigMap", "default", "    log_level: info\n", "    log_level: info\n    admin_token: \"uR4-kq9ZtW2mXv7LpB3nYc8HdJ6sFa1G\"\n", 1, `admin_token is written in the ConfigMap`},
		{"OTLP API key in the ConfigMap", "default", "    log_level: info\n", "    log_level: info\n    telemetry:\n      otlp:\n        endpoint: https://o.example.com\n        headers: {Authorization: x}\n", 1, `telemetry.otlp.headers.Authorization is written in the ConfigMap`},
		// Drain.
		{"preStop shorter than the drain", "default", "seconds: 5", "seconds: 2", 1, `preStop sleeps 2s, --drain-delay is 5s`},
		{"no preStop", "default", "          lifecycle:\n            preStop:\n              sleep:\n                seconds: 5\n", "", 1, `no preStop sleep`},
		{"grace shorter than the drain", "default", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 12", 1, `terminationGracePeriodSeconds 12`},
		// Scale-out.
		{"memory store behind an HPA", "default", "store: redis", "store: memory", 1, `consent.store memory`},
		{"HPA on another Deployment", "default", "    kind: Deployment\n    name: cg-consentgate", "    kind: Deployment\n    name: consentgate", 1, `not Deployment/cg-consentgate`},
		{"PDB that selects nothing", "default", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: consentgate", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: consentgat", 1, `does not select the proxy's pods`},
		{"PDB that blocks drains", "default", "  maxUnavailable: 1\n", "  maxUnavailable: 0\n", 1, `no node could ever be drained`},
		// Services.
		{"Service port to a port the pod lacks", "default", "targetPort: http", "targetPort: web", 1, `which Deployment/cg-consentgate does not have`},
		{"admin Service exposed", "default", "  type: ClusterIP\n  selector:", "  type: LoadBalancer\n  selector:", 2, `exposes the admin listener`},
		{"admin port in the public Service", "default", "      targetPort: http\n", "      targetPort: http\n    - name: admin\n      port: 9090\n      targetPort: admin\n", 1, `same Service as the public one`},
		{"Ingress to the admin Service", "geoip", "name: cg-consentgate\n                port:\n                  name: http", "name: cg-consentgate-admin\n                port:\n                  name: admin", 1, `the admin listener`},
		{"ServiceMonitor on the wrong path", "geoip", "path: /metrics", "path: /metric", 1, `want /metrics`},
		{"NetworkPolicy opens the admin port", "geoip", "    - from:\n        - podSelector: {}\n", "    - from: []\n", 1, `opens the admin port to every peer`},
		// Pod security.
		{"root", "default", "runAsNonRoot: true", "runAsNonRoot: false", 0, `runAsNonRoot is not true`},
		{"user by name", "default", "runAsUser: 65532\n", "", -1, `no numeric non-zero runAsUser`},
		{"privilege escalation", "default", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1, `allowPrivilegeEscalation`},
		{"writable root filesystem", "default", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1, `readOnlyRootFilesystem`},
		{"capabilities kept", "default", "- ALL", "- NET_RAW", 1, `do not drop ALL`},
		{"no seccomp", "default", "type: RuntimeDefault", "type: Unconfined", 0, `seccompProfile`},
		{"no memory limit", "default", "limits:\n              memory: 384Mi\n", "", 1, `no memory limit`},
		{"memory limit below the consent cache", "default", "memory: 384Mi", "memory: 64Mi", 1, `consent.cache.max_entries alone may hold`},
		{"memory store above the memory limit", "default", "store: redis", "store: memory\n      max_entries: 1500000", 1, `consent.max_entries alone may hold 329 MiB`},
		{"unpinned image", "default", "image: consentgate:0.1.0", "image: consentgate:latest", 1, `not pinned`},
		{"shared process namespace", "geoip", "      automountServiceAccountToken: false\n", "      automountServiceAccountToken: false\n      shareProcessNamespace: true\n", 1, `shares its process namespace`},
		{"service account token mounted", "default", "      automountServiceAccountToken: false\n", "", 1, `automountServiceAccountToken`},
		{"misspelt field", "default", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1, `unknown field`},
		// GeoIP.
		{"database no one downloads", "geoip", "value: \"GeoLite2-City\"", "value: \"GeoLite2-Country\"", 0, `nothing runs geoipupdate`},
		{"database downloaded only at start", "geoip", "geoipupdate -v ||", "true ||", 1, `only once (an init container or a Job)`},
		{"no CronJob download, only the first Job", "geoipcron", `command: ["geoipupdate", "-v"]`, `command: ["true", "-v"]`, 1, `only once (an init container or a Job)`},
		{"GeoIP volume one node can mount", "geoipcron", "accessModes: [ReadWriteMany]", "accessModes: [ReadWriteOnce]", 1, `the pods on other nodes could not mount it`},
		{"CronJob pods taken for the proxy's", "geoipcron", "app.kubernetes.io/name: consentgate-geoipupdate", "app.kubernetes.io/name: consentgate", 0, `carry Deployment/cg-consentgate's selector labels`},
		{"database on the ConfigMap", "geoip", "database: /var/lib/GeoIP/GeoLite2-City.mmdb", "database: /etc/consentgate/GeoLite2-City.mmdb", 1, `which nothing updates`},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			good := string(renders[tc.render])
			bad := replace(good, tc.old, tc.new, tc.n)
			if bad == good {
				t.Fatalf("%q is not in the %s rendering", tc.old, tc.render)
			}
			msgs := runChecks(t, tc.name, []byte(bad), checkOpts{})
			for _, m := range msgs {
				if strings.Contains(m, tc.want) {
					return
				}
			}
			t.Errorf("no failure says %q; got:\n%s", tc.want, strings.Join(msgs, "\n"))
		})
	}
}
