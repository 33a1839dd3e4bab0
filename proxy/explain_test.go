package proxy

import (
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// explainBase is the config of the golden cases: fixed upstreams (explain sends nothing)
// and a fixed secret, clock and salt (pinnedHasher), so every byte of the output is stable.
const explainBase = `admin_token: "` + testToken + `"
trusted_proxies: ["127.0.0.1/32"]
anonymise:
  secret: "Gd8Qv3Ln7Xz2Kw6Rc9Tm4Bp1Hj5Sy0"
upstreams:
  ga4: "https://ga4.upstream.test"
  meta: "https://meta.upstream.test"
  bing: "https://bing.upstream.test"
  linkedin: "https://linkedin.upstream.test"
`

// TestExplainGolden: (config, hit) → explain JSON, one golden file per case in
// testdata/explain. Run with -update to rewrite after an intended change.
func TestExplainGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/explain/*.json")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Config  string         `json:"config"`
				Request ExplainRequest `json:"request"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			yaml := explainBase + c.Config
			if !strings.Contains(c.Config, "geo:") {
				yaml += "geo:\n  database: \"../testdata/geoip/GeoIP2-City-Test.mmdb\"\n"
			}
			cfg, err := testLoader.LoadBytes(name+".yaml", []byte(yaml))
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			srv, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Hasher: pinnedHasher(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(t.Context())
			code, got := srv.Explain(t.Context(), c.Request)
			if code != 200 {
				t.Fatalf("explain: %d %s", code, got)
			}
			golden := strings.TrimSuffix(path, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(got) != string(want) {
				t.Errorf("explain output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestExplainAdminEndpoint: the same report over the admin listener, and its errors.
func TestExplainAdminEndpoint(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	auth := []string{"Authorization", "Bearer " + testToken}
	r := p.adminDo("POST", "/admin/explain",
		`{"method":"GET","url":"/g/collect?v=2&cid=1.2","headers":{"X-Forwarded-For":"89.160.20.112","Sec-GPC":"1"},"remote_addr":"127.0.0.1"}`, auth...)
	if r.Status != 200 {
		t.Fatalf("explain: %d %s", r.Status, r.Body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"vendor": "ga4", "client_ip": ipSE, "country": "SE", "subdivision": "E",
		"jurisdiction": "eea", "regime": "opt_in", "action": "anonymise", "reason": "consent_missing"} {
		if out[k] != want {
			t.Errorf("%s = %v, want %v", k, out[k], want)
		}
	}
	for _, k := range []string{"consent", "signals", "upstream"} {
		if out[k] == nil {
			t.Errorf("%s missing", k)
		}
	}
	up.none(t) // explain never sends
	for body, code := range map[string]int{`{"url":"/nope"}`: 404, `{"url":`: 400, `{"url":"/g/collect","bogus":1}`: 400} {
		if r := p.adminDo("POST", "/admin/explain", body, auth...); r.Status != code {
			t.Errorf("explain %s: %d, want %d", body, r.Status, code)
		}
	}
}
