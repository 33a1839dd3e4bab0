package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConsentAPI(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "allowed_origins: [\"https://www.example.com\"]\n"))

	if r := p.do("GET", "/consent", ""); r.Status != 404 {
		t.Errorf("GET without cookie: %d, want 404", r.Status)
	}
	r := p.do("POST", "/consent", `{"purposes":{"statistics":true,"marketing":false,"preferences":true}}`,
		"Origin", "https://www.example.com")
	if r.Status != 200 {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	if r.Header.Get("Access-Control-Allow-Origin") != "https://www.example.com" || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("CORS for an allowed origin: %v", r.Header)
	}
	setCookie := r.Header.Get("Set-Cookie")
	for _, want := range []string{"cg_id=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=34128000"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("Set-Cookie %q lacks %q", setCookie, want)
		}
	}
	var st struct {
		Purposes map[string]string `json:"purposes"`
		Version  int               `json:"version"`
	}
	if err := json.Unmarshal([]byte(r.Body), &st); err != nil {
		t.Fatalf("POST body %q: %v", r.Body, err)
	}
	want := map[string]string{"necessary": "unset", "preferences": "granted", "statistics": "granted", "marketing": "denied"}
	for k, v := range want {
		if st.Purposes[k] != v {
			t.Errorf("purpose %s = %q, want %q", k, st.Purposes[k], v)
		}
	}
	cookie := "cg_id=" + strings.TrimPrefix(strings.Split(setCookie, ";")[0], "cg_id=")
	// A second write keeps the ID (the cookie's snapshot is rewritten) and bumps the version.
	r = p.do("POST", "/consent", `{"purposes":{"marketing":true}}`, "Cookie", cookie)
	if !strings.HasPrefix(r.Header.Get("Set-Cookie"), cookie[:len("cg_id=")+22+1]) || !strings.Contains(r.Body, `"version":2`) {
		t.Errorf("rewrite: cookie %q body %s", r.Header.Get("Set-Cookie"), r.Body)
	}
	if r = p.do("GET", "/consent", "", "Cookie", cookie); r.Status != 200 || !strings.Contains(r.Body, `"marketing":"granted"`) {
		t.Errorf("GET: %d %s", r.Status, r.Body)
	}

	// Bad input: 400 with a message, nothing stored (the state is unchanged).
	bad := map[string]string{
		"not json":        `{"purposes":`,
		"unknown purpose": `{"purposes":{"ads":true}}`,
		"wrong type":      `{"purposes":{"marketing":"yes"}}`,
		"unknown key":     `{"purposes":{},"extra":1}`,
		"no purposes":     `{}`,
	}
	for name, body := range bad {
		r := p.do("POST", "/consent", body, "Cookie", cookie)
		if r.Status != 400 || !strings.Contains(r.Body, `"error"`) {
			t.Errorf("%s: %d %s, want 400 with an error message", name, r.Status, r.Body)
		}
	}
	if r = p.do("GET", "/consent", "", "Cookie", cookie); !strings.Contains(r.Body, `"version":2`) {
		t.Errorf("a bad write changed the state: %s", r.Body)
	}
	// A bad write from a new visitor creates no ID.
	if r = p.do("POST", "/consent", `{"purposes":{"ads":true}}`); r.Header.Get("Set-Cookie") != "" {
		t.Errorf("a rejected write set a cookie: %q", r.Header.Get("Set-Cookie"))
	}
	if r = p.do("PATCH", "/consent", ""); r.Status != 405 {
		t.Errorf("PATCH: %d", r.Status)
	}
}

func TestAdminAPI(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	auth := []string{"Authorization", "Bearer " + testToken}
	id := "AAAAAAAAAAAAAAAAAAAAAA"

	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong-token-0123456789"}, {"Authorization", testToken}} {
		if r := p.adminDo("GET", "/admin/consent/"+id, "", h...); r.Status != 401 {
			t.Errorf("auth %v: %d, want 401", h, r.Status)
		}
	}
	if r := p.adminDo("GET", "/admin/consent/"+id, "", auth...); r.Status != 404 {
		t.Errorf("GET missing: %d", r.Status)
	}
	r := p.adminDo("PUT", "/admin/consent/"+id, `{"purposes":{"statistics":true,"marketing":true}}`, auth...)
	if r.Status != 200 || !strings.Contains(r.Body, `"id":"`+id+`"`) || !strings.Contains(r.Body, `"source":"admin"`) {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	// The backend's write decides the visitor's hits.
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", "cg_id="+id)
	up.one(t)
	if r := p.adminDo("PUT", "/admin/consent/"+id, `{"purposes":{"marketing":1}}`, auth...); r.Status != 400 {
		t.Errorf("bad PUT: %d", r.Status)
	}
	if r := p.adminDo("PUT", "/admin/consent/short", `{"purposes":{}}`, auth...); r.Status != 400 {
		t.Errorf("malformed ID: %d", r.Status)
	}
	if r := p.adminDo("DELETE", "/admin/consent/"+id, "", auth...); r.Status != 200 {
		t.Errorf("DELETE: %d %s", r.Status, r.Body)
	}
	if r := p.adminDo("DELETE", "/admin/consent/"+id, "", auth...); r.Status != 404 {
		t.Errorf("DELETE again: %d", r.Status)
	}
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", "cg_id="+id)
	up.none(t)

	// No token configured: the admin API is off, health and metrics stay on.
	off := startProxy(t, strings.Replace(testConfig(up.URL(), ""), `admin_token: "`+testToken+`"`, "", 1))
	if r := off.adminDo("GET", "/admin/consent/"+id, "", auth...); r.Status != 403 {
		t.Errorf("disabled admin API: %d, want 403", r.Status)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := off.adminDo("GET", path, ""); r.Status != 200 {
			t.Errorf("%s: %d", path, r.Status)
		}
	}
}

func TestReloadKeepsLastGoodConfig(t *testing.T) {
	up := startSink(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "consentgate.yaml")
	good := testConfig(up.URL(), "")
	good = strings.Replace(good, "../testdata", mustAbs(t, "../testdata"), 1)
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, good)
	p.opts.ConfigPath = path

	// A policy change through reload takes effect.
	if err := os.WriteFile(path, []byte(good+"policy:\n  opt_in:\n    unset:\n      statistics: drop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipSE)
	up.none(t)

	// A broken file is refused with positions, and the running config stays.
	if err := os.WriteFile(path, []byte(good+"bogus_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := p.Reload()
	if err == nil || !strings.Contains(err.Error(), "consentgate.yaml:") {
		t.Fatalf("bad reload: %v, want an error with file:line:col", err)
	}
	p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipSE)
	up.none(t)
	m := p.metricsText(t)
	for _, want := range []string{"consentgate_config_last_reload_successful 0", "consentgate_config_reload_errors_total 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(m, "reload"))
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDrainFailsReadinessFirst(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	p.opts.DrainDelay = 300 * time.Millisecond
	if r := p.adminDo("GET", "/readyz", ""); r.Status != 200 {
		t.Fatalf("readyz before drain: %d", r.Status)
	}
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(t.Context()) }()
	deadline := time.Now().Add(250 * time.Millisecond)
	for time.Now().Before(deadline) {
		if r := p.adminDo("GET", "/readyz", ""); r.Status == 503 {
			<-done
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("/readyz never failed during the drain delay")
}

// TestFailedReloadKeepsTheHashSecret: a reload that changes anonymise.secret but fails
// later (here at compile time) leaves the last good config hashing with its own secret.
func TestFailedReloadKeepsTheHashSecret(t *testing.T) {
	up := startSink(t)
	path := filepath.Join(t.TempDir(), "consentgate.yaml")
	good := strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)
	p := startProxy(t, good)
	p.opts.ConfigPath = path
	hashedCID := func() string {
		t.Helper()
		p.do("GET", "/g/collect?v=2&tid=G-1&cid=1234.5678", "", "X-Forwarded-For", ipSE)
		return query(t, up.one(t).Query).Get("cid")
	}
	before := hashedCID()
	if before == "" || before == "1234.5678" {
		t.Fatalf("cid not hashed: %q", before)
	}
	bad := strings.Replace(good, `secret: "Sx7Lq2Vn9Kz4Wc8Rm3Tb6Hp5Jd1G"`,
		"secret: \"Ot6Hn1Vz8Lq3Xk7Wc2Rm9Bp4Jd5S\"\n  allow:\n    ga4: [cid]", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil || !strings.Contains(err.Error(), "never kept") {
		t.Fatalf("reload: %v, want the anonymiser's refusal", err)
	}
	if after := hashedCID(); after != before {
		t.Errorf("cid hashed %q after a failed reload, %q before: the rejected secret leaked in", after, before)
	}
	// The next good reload, same secret as before, still hashes alike.
	if err := os.WriteFile(path, []byte(good+"allowed_origins: [\"https://www.example.com\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if after := hashedCID(); after != before {
		t.Errorf("cid hashed %q after the next good reload, %q before: the rejected secret leaked in", after, before)
	}
}
