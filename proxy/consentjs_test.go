package proxy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scriptConfig is what the proxy filled into a served consentgate.js.
type servedScriptConfig struct {
	Regime       string            `json:"regime"`
	Jurisdiction string            `json:"jurisdiction"`
	GPC          bool              `json:"gpc"`
	OneTrust     map[string]string `json:"onetrust"`
	TCF          map[string][]int  `json:"tcf"`
	Stored       *struct {
		Purposes map[string]string `json:"purposes"`
		TCF      string            `json:"tcf"`
		ID       string            `json:"id"`
		Source   string            `json:"source"`
		Version  int               `json:"version"`
		Created  string            `json:"created"`
		Updated  string            `json:"updated"`
	} `json:"stored"`
}

// readScriptConfig cuts the filled-in settings out of a served script: everything but
// them must be the embedded source, byte for byte.
func readScriptConfig(t *testing.T, body string) servedScriptConfig {
	t.Helper()
	head, tail, _ := strings.Cut(string(consentScriptSource), consentScriptMarker)
	if !strings.HasPrefix(body, head) || !strings.HasSuffix(body, tail) {
		t.Fatalf("served script is not the embedded source around the settings:\n%.300s", body)
	}
	raw := body[len(head) : len(body)-len(tail)]
	var c servedScriptConfig
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("settings %q: %v", raw, err)
	}
	return c
}

func TestConsentScriptHeaders(t *testing.T) {
	p := startProxy(t, testConfig(startSink(t).URL(), ""))
	r := p.do("GET", "/consentgate.js", "")
	if r.Status != 200 {
		t.Fatalf("GET /consentgate.js: %d %s", r.Status, r.Body)
	}
	for name, want := range map[string]string{
		"Content-Type":                "application/javascript; charset=utf-8",
		"X-Content-Type-Options":      "nosniff",
		"Cache-Control":               "private, no-store",
		"Vary":                        "Cookie",
		"Set-Cookie":                  "",
		"Access-Control-Allow-Origin": "",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	readScriptConfig(t, r.Body)
	if n := len(r.Body); n > 24<<10 {
		t.Errorf("consentgate.js is %d bytes; keep it small", n)
	}

	head := p.do("HEAD", "/consentgate.js", "")
	if head.Status != 200 || head.Body != "" || head.Header.Get("Content-Type") != "application/javascript; charset=utf-8" {
		t.Errorf("HEAD: %d %q %v", head.Status, head.Body, head.Header)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		r := p.do(m, "/consentgate.js", "x")
		if r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q; want 405, GET, HEAD", m, r.Status, r.Header.Get("Allow"))
		}
	}
	// Only the exact path: the script is not a prefix route.
	if r := p.do("GET", "/consentgate.js/x", ""); r.Status != 404 {
		t.Errorf("GET /consentgate.js/x: %d, want 404", r.Status)
	}
}

// The regime and jurisdiction are the visitor's, located as their hits are: by the
// client IP (X-Forwarded-For only behind a trusted proxy) and the GeoIP database.
func TestConsentScriptJurisdiction(t *testing.T) {
	sink := startSink(t)
	trusted := startProxy(t, testConfig(sink.URL(), ""))
	untrusted := startProxy(t, strings.Replace(testConfig(sink.URL(), ""), `trusted_proxies: ["127.0.0.1/32", "::1/128"]`, "trusted_proxies: []", 1))
	for _, tc := range []struct {
		name         string
		p            *testProxy
		xff          string
		jurisdiction string
		regime       string
		gpc          bool
	}{
		{"SE", trusted, ipSE, "eea", "opt_in", false},
		{"GB", trusted, ipGB, "uk", "opt_in", false},
		{"US-CA", trusted, ipUSCA, "us-ca", "opt_out", true},
		{"US-WA", trusted, ipUSWA, "other", "none", false},
		{"no location", trusted, "", "unknown", "opt_in", false},
		{"not in the database", trusted, "198.51.100.77", "unknown", "opt_in", false},
		{"spoofed X-Forwarded-For from an untrusted peer", untrusted, ipUSWA, "unknown", "opt_in", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.xff != "" {
				h = []string{"X-Forwarded-For", tc.xff}
			}
			c := readScriptConfig(t, tc.p.do("GET", "/consentgate.js", "", h...).Body)
			if c.Jurisdiction != tc.jurisdiction || c.Regime != tc.regime || c.GPC != tc.gpc {
				t.Errorf("got %s/%s gpc=%v, want %s/%s gpc=%v", c.Jurisdiction, c.Regime, c.GPC, tc.jurisdiction, tc.regime, tc.gpc)
			}
		})
	}
}

// The visitor's stored choice is in the script, so a bridge posts only a change; the
// consent ID never is.
func TestConsentScriptStoredChoice(t *testing.T) {
	p := startProxy(t, testConfig(startSink(t).URL(), ""))
	cookie := p.consentCookie(`{"statistics":true,"marketing":false}`)
	id := strings.TrimPrefix(cookie, "cg_id=")
	for _, tc := range []struct {
		name, cookie string
		want         map[string]string // nil: no stored choice
	}{
		{"no cookie", "", nil},
		{"stored", cookie, map[string]string{"necessary": "unset", "preferences": "unset", "statistics": "granted", "marketing": "denied"}},
		{"an ID with a signed part after a dot", cookie + ".c2lnbmVk", map[string]string{"necessary": "unset", "preferences": "unset", "statistics": "granted", "marketing": "denied"}},
		{"unknown ID", "cg_id=" + strings.Repeat("A", len(id)), nil},
		{"malformed ID", "cg_id=../../etc", nil},
		{"empty", "cg_id=", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.cookie != "" {
				h = []string{"Cookie", tc.cookie}
			}
			r := p.do("GET", "/consentgate.js", "", h...)
			c := readScriptConfig(t, r.Body)
			switch {
			case tc.want == nil && c.Stored != nil:
				t.Errorf("stored = %+v, want null", c.Stored)
			case tc.want != nil && (c.Stored == nil || !equalMaps(c.Stored.Purposes, tc.want)):
				t.Errorf("stored = %+v, want %v", c.Stored, tc.want)
			}
			if strings.Contains(r.Body, id) {
				t.Error("the script names the consent ID")
			}
		})
	}
	// After a withdrawal there is nothing stored.
	p.do("DELETE", "/consent", "", "Cookie", cookie)
	if c := readScriptConfig(t, p.do("GET", "/consentgate.js", "", "Cookie", cookie).Body); c.Stored != nil {
		t.Errorf("after withdrawal: stored = %+v", c.Stored)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The OneTrust group map and the TCF purpose map are the ones the proxy reads the same
// banners' cookies and strings with.
func TestConsentScriptMaps(t *testing.T) {
	sink := startSink(t)
	def := readScriptConfig(t, startProxy(t, testConfig(sink.URL(), "")).do("GET", "/consentgate.js", "").Body)
	if !equalMaps(def.OneTrust, map[string]string{"C0001": "necessary", "C0002": "statistics", "C0003": "preferences", "C0004": "marketing"}) {
		t.Errorf("default OneTrust map %v", def.OneTrust)
	}
	wantTCF := map[string][]int{"preferences": {1}, "statistics": {1, 8}, "marketing": {1, 2, 3, 4, 7}}
	if b, w := mustJSON(def.TCF), mustJSON(wantTCF); b != w {
		t.Errorf("default TCF map %s, want %s", b, w)
	}
	custom := readScriptConfig(t, startProxy(t, testConfig(sink.URL(), `signals:
  cmp:
    onetrust_groups: {C0001: necessary, C0002: statistics, C0004: marketing, C0005: marketing}
  tcf:
    purposes: {statistics: [1, 9]}
`)).do("GET", "/consentgate.js", "").Body)
	if !equalMaps(custom.OneTrust, map[string]string{"C0001": "necessary", "C0002": "statistics", "C0004": "marketing", "C0005": "marketing"}) {
		t.Errorf("configured OneTrust map %v", custom.OneTrust)
	}
	if got := mustJSON(custom.TCF["statistics"]); got != "[1,9]" {
		t.Errorf("configured TCF statistics %s", got)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A reload recompiles the script: a changed unknown_regime reaches visitors at once.
func TestConsentScriptReload(t *testing.T) {
	sink := startSink(t)
	path := filepath.Join(t.TempDir(), "consentgate.yaml")
	good := strings.Replace(testConfig(sink.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, good)
	p.opts.ConfigPath = path
	if c := readScriptConfig(t, p.do("GET", "/consentgate.js", "").Body); c.Regime != "opt_in" {
		t.Fatalf("before reload: %s", c.Regime)
	}
	optOut := strings.Replace(good, "GeoIP2-City-Test.mmdb\"\n", "GeoIP2-City-Test.mmdb\"\n  unknown_regime: opt_out\n", 1)
	if err := os.WriteFile(path, []byte(optOut), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if c := readScriptConfig(t, p.do("GET", "/consentgate.js", "").Body); c.Regime != "opt_out" || c.Jurisdiction != "unknown" {
		t.Errorf("after reload: %s/%s", c.Jurisdiction, c.Regime)
	}
}

func TestConsentScriptPlaceholder(t *testing.T) {
	saved := consentScriptSource
	t.Cleanup(func() { consentScriptSource = saved })
	for _, src := range []string{"no placeholder", "a " + consentScriptMarker + " b " + consentScriptMarker} {
		consentScriptSource = []byte(src)
		if _, err := compileConsentScript(&runtime{}); err == nil || !strings.Contains(err.Error(), "exactly once") {
			t.Errorf("%q: %v", src, err)
		}
	}
	if n := bytes.Count(saved, []byte(consentScriptMarker)); n != 1 {
		t.Errorf("the embedded script has the placeholder %d times", n)
	}
}
