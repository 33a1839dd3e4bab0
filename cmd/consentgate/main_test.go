package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binary string

// TestMain builds the real binary once; the tests drive it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consentgate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "consentgate")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic("build consentgate: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), code
}

func TestCheck(t *testing.T) {
	good := writeFile(t, "good.yaml", "listen: \":8081\"\ntrusted_proxies: [\"10.0.0.0/8\"]\n")
	if out, code := runCmd(t, nil, "check", "--config", good); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("check good: exit %d, output %q", code, out)
	}
	bad := writeFile(t, "bad.yaml", "listen: \":8081\"\nbogus: 1\ntrusted_proxies: [\"10.0.0.0/33\"]\ngeo:\n  unknown_regime: maybe\n")
	out, code := runCmd(t, nil, "check", "--config", bad)
	if code != 1 {
		t.Errorf("check bad: exit %d, want 1", code)
	}
	for _, want := range []string{bad + ":2:1:", bad + ":3:19:", bad + ":5:19:"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestServeRefusesInvalidConfig(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "listen: [1, 2]\n")
	out, code := runCmd(t, nil, "serve", "--config", bad)
	if code != 1 || !strings.Contains(out, bad+":1:") || !strings.Contains(out, "refusing to start") {
		t.Errorf("serve on a bad config: exit %d\n%s", code, out)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if out, code := runCmd(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "consentgate ") {
		t.Errorf("version: %d %q", code, out)
	}
	if _, code := runCmd(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestExplainCLI(t *testing.T) {
	out, code := runCmd(t, nil, "explain", "--url", "/tr?id=1&ev=PageView&fbp=fb.1.2.3",
		"--header", "Sec-GPC: 1", "--remote-addr", "203.0.113.9")
	if code != 0 {
		t.Fatalf("explain: exit %d\n%s", code, out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("explain output is not JSON: %v\n%s", err, out)
	}
	// Embedded defaults: no GeoIP database, so unknown → opt_in → a marketing hit drops.
	for k, want := range map[string]any{"vendor": "meta", "jurisdiction": "unknown", "regime": "opt_in", "action": "drop", "reason": "consent_missing", "client_ip": "203.0.113.9"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if got["upstream"] != nil {
		t.Errorf("a drop has upstream %v, want null", got["upstream"])
	}
	if _, code := runCmd(t, nil, "explain", "--url", "/nope"); code != 1 {
		t.Errorf("explain of an unrouted URL: exit %d, want 1", code)
	}

	// A gzip body from a file: explain shows it decoded, rewritten and without its coding.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "en=page_view&_uip=9.9.9.9")
	zw.Close()
	bodyFile := filepath.Join(t.TempDir(), "body.gz")
	if err := os.WriteFile(bodyFile, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runCmd(t, nil, "explain", "--method", "POST", "--url", "/g/collect?v=2&tid=G-1&cid=1.2", "--body-file", bodyFile,
		"--header", "Content-Encoding: gzip", "--header", "Content-Type: text/plain", "--remote-addr", "203.0.113.9")
	var up struct {
		Action   string `json:"action"`
		Upstream struct {
			Body string `json:"body"`
			Wire string `json:"wire"`
		} `json:"upstream"`
	}
	if err := json.Unmarshal([]byte(out), &up); code != 0 || err != nil {
		t.Fatalf("explain --body-file: exit %d, %v\n%s", code, err, out)
	}
	if up.Action != "anonymise" || up.Upstream.Body != "en=page_view" || strings.Contains(up.Upstream.Wire, "9.9.9.9") ||
		strings.Contains(up.Upstream.Wire, "Content-Encoding") {
		t.Errorf("explain --body-file: %s", out)
	}
}

// TestServeDefaultsReloadAndDrain starts the binary on embedded defaults (ports moved to
// free ones through the env overrides), checks the start-up log lines, that SIGHUP with a
// bad config keeps serving, and that SIGTERM drains and exits 0.
func TestServeDefaultsReloadAndDrain(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--drain-delay", "200ms")
	cmd.Env = append(os.Environ(), "CONSENTGATE_LISTEN=127.0.0.1:0", "CONSENTGATE_ADMIN_LISTEN=127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	var public, admin string
	var defaults []string
	deadline := time.After(10 * time.Second)
	for public == "" || admin == "" || len(defaults) < 5 {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatal("serve exited early")
			}
			switch m["msg"] {
			case "listening":
				if m["listener"] == "public" {
					public = m["addr"].(string)
				} else {
					admin = m["addr"].(string)
				}
			case "default in force":
				defaults = append(defaults, m["setting"].(string))
			}
		case <-deadline:
			t.Fatalf("no start-up lines; got public=%q admin=%q defaults=%v", public, admin, defaults)
		}
	}
	for _, want := range []string{"config", "consent.store", "geo.database", "admin_token"} {
		if !contains(defaults, want) {
			t.Errorf("start-up log lacks the default %q (got %v)", want, defaults)
		}
	}
	get := func(url string) int {
		r, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	if code := get("http://" + admin + "/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	// Unknown location, no consent: a GA4 hit is anonymised and sent to Google's real
	// upstream, which this machine cannot reach: the browser still gets 204.
	if code := get("http://" + public + "/tr?id=1&ev=PageView"); code != 200 {
		t.Errorf("dropped Meta pixel: %d, want 200 (GIF)", code)
	}

	cmd.Process.Signal(syscall.SIGHUP) // defaults reload: must succeed and keep serving
	waitFor(t, lines, "reloaded")
	if code := get("http://" + admin + "/healthz"); code != 200 {
		t.Fatalf("/healthz after reload: %d", code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, lines, "draining")
	waitFor(t, lines, "stopped")
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func waitFor(t *testing.T, lines <-chan map[string]any, msg string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("process ended before %q", msg)
			}
			if m["msg"] == msg {
				return
			}
		case <-deadline:
			t.Fatalf("no %q log line", msg)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDeployExampleConfigChecks: the deploy example passes check as shipped (its secrets
// come from the environment), with generated secrets in the environment too, and is
// refused with the placeholder an older version of it showed.
func TestDeployExampleConfigChecks(t *testing.T) {
	const example = "../../deploy/consentgate.example.yaml"
	if out, code := runCmd(t, nil, "check", "--config", example); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("deploy example config: exit %d\n%s", code, out)
	}
	generated := []string{"CONSENTGATE_ADMIN_TOKEN=Yk3pW8vZq1Lx6Tn9Rb4Hc2Mj7Fs5Dg0a", "CONSENTGATE_ANONYMISE_SECRET=Qm8Rz3Lw6Xv1Kc9Tn4Hb7Pj2Fs5Dy0Gk"}
	if out, code := runCmd(t, generated, "check", "--config", example); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("deploy example with generated secrets: exit %d\n%s", code, out)
	}
	out, code := runCmd(t, []string{"CONSENTGATE_ADMIN_TOKEN=replace-me-with-32-random-characters"}, "check", "--config", example)
	if code != 1 || !strings.Contains(out, "$CONSENTGATE_ADMIN_TOKEN: admin_token: is the example value") {
		t.Errorf("deploy example with the old placeholder token: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "replace-me") {
		t.Errorf("the message repeats the secret:\n%s", out)
	}
}

// TestCheckRefusesWeakSecrets: check names the file, line and column of a placeholder or
// guessable secret and never repeats it.
func TestCheckRefusesWeakSecrets(t *testing.T) {
	bad := writeFile(t, "weak.yaml", "admin_token: \"change-me-to-a-long-random-string\"\nanonymise:\n  secret: \"hunter2hunter2hunter2hunter2\"\n")
	out, code := runCmd(t, nil, "check", "--config", bad)
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{bad + ":1:14: admin_token: is the example value", bad + ":3:11: anonymise.secret: too guessable"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"change-me", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("the output repeats a secret:\n%s", out)
		}
	}
}

// serveProcess is a running `consentgate serve` and its JSON log lines.
type serveProcess struct {
	cmd           *exec.Cmd
	lines         chan map[string]any
	public, admin string
}

// startServe starts serve with args on free loopback ports and waits for both
// listeners; the log lines before them are in seen.
func startServe(t *testing.T, args ...string) (p *serveProcess, seen []map[string]any) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "CONSENTGATE_LISTEN=127.0.0.1:0", "CONSENTGATE_ADMIN_LISTEN=127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p = &serveProcess{cmd: cmd, lines: make(chan map[string]any, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
		close(p.lines)
	}()
	deadline := time.After(10 * time.Second)
	for p.public == "" || p.admin == "" {
		select {
		case m, ok := <-p.lines:
			if !ok {
				t.Fatal("serve exited early")
			}
			seen = append(seen, m)
			if m["msg"] == "listening" {
				if m["listener"] == "public" {
					p.public = m["addr"].(string)
				} else {
					p.admin = m["addr"].(string)
				}
			}
		case <-deadline:
			t.Fatal("serve did not start listening")
		}
	}
	return p, seen
}

// TestSIGTERMWinsOverAHungReload: SIGHUP while the config path blocks on read (a FIFO
// nobody writes) leaves the process answering signals: a second SIGHUP is refused while
// the first runs, the reload is abandoned after --reload-timeout with the last good
// config in force (and counted), and SIGTERM drains and exits 0 although the read is
// still blocked.
func TestSIGTERMWinsOverAHungReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "consentgate.yaml")
	if err := os.WriteFile(path, []byte("log_level: info\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ := startServe(t, "--config", path, "--drain-delay", "100ms", "--reload-timeout", "1s")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	// Signals sent close together can merge into one, so SIGHUP is repeated until the
	// process says it put one off: proof the first reload is still hanging.
	ignored := make(chan struct{})
	go func() {
		for {
			select {
			case <-ignored:
				return
			case <-time.After(100 * time.Millisecond):
				p.cmd.Process.Signal(syscall.SIGHUP)
			}
		}
	}()
	waitFor(t, p.lines, "reload requested while one is still running; another runs when it is done")
	close(ignored)
	waitFor(t, p.lines, "reload timed out reading the config, keeping the last good config")
	r, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(body), "consentgate_config_last_reload_successful 0") {
		t.Errorf("the abandoned reload is not counted as failed:\n%s", grepLines(string(body), "reload"))
	}
	p.cmd.Process.Signal(syscall.SIGHUP) // a new reload, hung as well
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, p.lines, "draining")
	waitFor(t, p.lines, "stopped")
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestConfigWarnings: check prints a warning per risky setting with its position and
// still passes; serve logs the same warnings at start. A setting that is refused fails
// check.
func TestConfigWarnings(t *testing.T) {
	open := writeFile(t, "open.yaml", "admin_listen: \"0.0.0.0:9090\"\ntrusted_proxies: [\"8.0.0.0/8\"]\n")
	out, code := runCmd(t, nil, "check", "--config", open)
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "ok") {
		t.Errorf("check with warnings: exit %d\n%s", code, out)
	}
	for _, want := range []string{"warning: " + open + ":1:15: admin_listen: ", "warning: " + open + ":2:19: trusted_proxies.0: "} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	readable := writeFile(t, "readable.yaml", "anonymise:\n  secret: \"Qm8Rz3Lw6Xv1Kc9Tn4Hb7Pj2Fs5Dy0Gk\"\n")
	if err := os.Chmod(readable, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCmd(t, nil, "check", "--config", readable)
	if code != 0 || !strings.Contains(out, "warning: "+readable+": readable by every user") || strings.Contains(out, "Qm8Rz3") {
		t.Errorf("check of a world-readable file with a secret: exit %d\n%s", code, out)
	}
	_, seen := startServe(t, "--config", readable)
	logged := false
	for _, m := range seen {
		if m["msg"] == "config warning" && m["level"] == "WARN" && strings.Contains(m["problem"].(string), "readable by every user") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("serve did not log the warning at start: %v", seen)
	}

	whole := writeFile(t, "whole.yaml", "trusted_proxies: [\"0.0.0.0/0\"]\n")
	if out, code := runCmd(t, nil, "check", "--config", whole); code != 1 || !strings.Contains(out, whole+":1:19: trusted_proxies.0: \"0.0.0.0/0\" covers all or much of the Internet") {
		t.Errorf("check of trusted_proxies 0.0.0.0/0: exit %d\n%s", code, out)
	}
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
