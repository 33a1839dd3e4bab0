package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

var bearer = []string{"Authorization", "Bearer " + testToken}

// reloadReply is the body of POST /admin/reload.
type reloadReply struct {
	ConfigVersion  string   `json:"config_version"`
	ConfigLoadedAt string   `json:"config_loaded_at"`
	Reloaded       bool     `json:"reloaded"`
	Error          string   `json:"error"`
	Errors         []string `json:"errors"`
}

func (p *testProxy) reloadAPI(t *testing.T) (int, reloadReply) {
	t.Helper()
	r := p.adminDo("POST", "/admin/reload", "", bearer...)
	var a reloadReply
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
		t.Fatalf("POST /admin/reload: %d %v: %s", r.Status, err, r.Body)
	}
	return r.Status, a
}

// fileProxy starts a proxy on yaml that Reload re-reads from a file the test rewrites.
func fileProxy(t *testing.T, yaml string) (*testProxy, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "consentgate.yaml")
	yaml = strings.Replace(yaml, "../testdata", mustAbs(t, "../testdata"), 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, yaml)
	p.opts.ConfigPath = path
	return p, path
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAPI: POST /admin/reload applies a good file (200, the new config_version,
// in force at once), refuses a bad one with every problem at FILE:LINE:COL (400, the
// running config still serving), and is counted like a SIGHUP reload.
func TestReloadAPI(t *testing.T) {
	up := startSink(t)
	good := strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)
	p, path := fileProxy(t, good)
	first := p.Config().Version()
	ga4 := func() int {
		t.Helper()
		if r := p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipSE); r.Status >= 400 {
			t.Fatalf("hit: %d", r.Status)
		}
		return len(up.take())
	}
	if ga4() != 1 {
		t.Fatal("an EEA GA4 hit without consent was not anonymised and sent before the reload")
	}

	t.Run("access", func(t *testing.T) {
		for _, tc := range []struct {
			method  string
			headers []string
			status  int
		}{
			{"POST", nil, 401},
			{"POST", []string{"Authorization", "Bearer wrong-token-0123456789"}, 401},
			{"GET", bearer, 405},
			{"PUT", bearer, 405},
		} {
			if r := p.adminDo(tc.method, "/admin/reload", "", tc.headers...); r.Status != tc.status {
				t.Errorf("%s with %v: %d %s, want %d", tc.method, tc.headers, r.Status, r.Body, tc.status)
			}
		}
		if v := p.Config().Version(); v != first {
			t.Errorf("a refused call changed the config: %s → %s", first, v)
		}
	})

	var second string
	t.Run("valid", func(t *testing.T) {
		writeFile(t, path, good+"policy:\n  opt_in:\n    unset:\n      statistics: drop\n")
		code, a := p.reloadAPI(t)
		if code != 200 || !a.Reloaded || a.ConfigVersion == first || a.ConfigVersion != p.Config().Version() || a.Error != "" || len(a.Errors) != 0 {
			t.Fatalf("%d %+v, want 200 with the new version (running %s, was %s)", code, a, p.Config().Version(), first)
		}
		second = a.ConfigVersion
		if ga4() != 0 {
			t.Error("the reloaded policy (drop) is not in force")
		}
		m := p.metricsText(t)
		if !strings.Contains(m, "consentgate_config_last_reload_successful 1") {
			t.Errorf("metrics after a good reload:\n%s", grep(m, "reload"))
		}
	})

	t.Run("invalid", func(t *testing.T) {
		// Two load problems in the file: both are reported, each at its position.
		bad := good + "policy:\n  opt_in:\n    unset:\n      statistics: drop\nmax_body_size: lots\nbogus_key: 1\n"
		writeFile(t, path, bad)
		lines := strings.Count(good, "\n")
		code, a := p.reloadAPI(t)
		want := []string{
			fmt.Sprintf("%s:%d:16: max_body_size: want a whole number, got \"lots\"", path, lines+5),
			fmt.Sprintf("%s:%d:1: unknown key \"bogus_key\" at top level", path, lines+6),
		}
		if code != 400 || a.Reloaded || a.ConfigVersion != second || !strings.Contains(a.Error, "the running config stays in force") || len(a.Errors) != len(want) {
			t.Fatalf("%d %+v, want 400 with %d problems and version %s", code, a, len(want), second)
		}
		for i, w := range want {
			if !strings.HasPrefix(a.Errors[i], w) {
				t.Errorf("problem %d: %q, want it to start %q", i, a.Errors[i], w)
			}
		}
		if ga4() != 0 || p.Config().Version() != second {
			t.Error("the running config changed after a refused reload")
		}
		m := p.metricsText(t)
		for _, w := range []string{"consentgate_config_last_reload_successful 0", "consentgate_config_reload_errors_total 1"} {
			if !strings.Contains(m, w) {
				t.Errorf("metrics lack %q:\n%s", w, grep(m, "reload"))
			}
		}
	})

	t.Run("compile and restart-only errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, yaml string
			want       *regexp.Regexp
		}{
			// The loader takes it; compiling the routes refuses it.
			{"route that cannot match its endpoint", good + "routes:\n  - path: /x/*\n    endpoint: ga4_collect\n",
				regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+:\d+: route /x/\*: ends in "\*", but endpoint ga4_collect has a fixed path`)},
			{"listen changed", strings.Replace(good, `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, 1),
				regexp.MustCompile(`^listen and admin_listen cannot change on reload: restart the process$`)},
		} {
			writeFile(t, path, tc.yaml)
			code, a := p.reloadAPI(t)
			if code != 400 || a.ConfigVersion != second || len(a.Errors) != 1 || !tc.want.MatchString(a.Errors[0]) {
				t.Errorf("%s: %d %+v, want 400 matching %s", tc.name, code, a, tc.want)
			}
		}
	})

	t.Run("valid again", func(t *testing.T) {
		writeFile(t, path, good)
		if code, a := p.reloadAPI(t); code != 200 || a.ConfigVersion != first {
			t.Fatalf("%d %+v, want 200 back on %s", code, a, first)
		}
		if ga4() != 1 {
			t.Error("the first config is not in force again")
		}
	})
}

// TestReloadAPIUnderLoad: 100 reloads through the API, alternating two configs, while
// four clients send hits. No hit fails, every hit is counted, and each was decided by
// one config or the other (anonymised or dropped, never an error).
func TestReloadAPIUnderLoad(t *testing.T) {
	up := startSink(t)
	up.discard = true
	good := strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)
	dropping := good + "policy:\n  opt_in:\n    unset:\n      statistics: drop\n"
	p, path := fileProxy(t, good)

	var stop atomic.Bool
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{}
			for !stop.Load() {
				req, _ := http.NewRequest("GET", p.public+"/g/collect?v=2&tid=G-1&cid=1.2&en=page_view", nil)
				req.Header.Set("X-Forwarded-For", ipSE)
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil || resp.StatusCode >= 300 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v %v", err, resp))
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	versions := map[string]int{}
	for i := range 100 {
		content := good
		if i%2 == 0 {
			content = dropping
		}
		writeFile(t, path, content)
		code, a := p.reloadAPI(t)
		if code != 200 || !a.Reloaded {
			t.Errorf("reload %d: %d %+v", i, code, a)
		}
		versions[a.ConfigVersion]++
	}
	stop.Store(true)
	wg.Wait()

	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d hits failed during the reloads; first: %v", f, sent.Load(), firstFailure.Load())
	}
	if len(versions) != 2 || versions[p.Config().Version()] != 50 {
		t.Errorf("versions answered: %v, want two configs 50 times each", versions)
	}
	anon := p.hits(t, "ga4", "anonymise", "consent_missing", "eea")
	drop := p.hits(t, "ga4", "drop", "consent_missing", "eea")
	if n := int64(anon + drop); n != sent.Load() || anon == 0 && drop == 0 {
		t.Errorf("hits counted: %d anonymised + %d dropped = %d, want all %d sent, each by one config", anon, drop, n, sent.Load())
	}
	t.Logf("%d hits during 100 reloads: %d anonymised (first config), %d dropped (second)", sent.Load(), anon, drop)
	m := p.metricsText(t)
	if !strings.Contains(m, "consentgate_config_last_reload_successful 1") || !strings.Contains(m, "consentgate_config_reload_errors_total 0") {
		t.Errorf("reload metrics:\n%s", grep(m, "reload"))
	}
}
