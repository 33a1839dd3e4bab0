//go:build browser

package dashboard

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrowserDashboardRealProxy is the whole journey a marketer's question takes: the
// real consentgate binary receives a known mix of hits, and the dashboard it serves, in
// a real browser, shows that mix — including "what share of GA4 hits from the EEA were
// dropped, and why".
func TestBrowserDashboardRealProxy(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "consentgate")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/consentgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(upstream.Close)
	geoDB, err := filepath.Abs("../../testdata/geoip/GeoIP2-City-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	public, admin := freeAddr(t), freeAddr(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: %q\nadmin_listen: %q\ntrusted_proxies: [\"127.0.0.1/32\"]\ngeo:\n  database: %q\nupstreams:\n", public, admin, geoDB)
	for _, v := range []string{"ga4", "meta", "google_ads", "bing", "linkedin", "tiktok", "matomo", "plausible"} {
		fmt.Fprintf(&cfg, "  %s: %q\n", v, upstream.URL)
	}
	cfgPath := filepath.Join(dir, "consentgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("consentgate log:\n%s", logs.String())
		}
	})
	waitHTTP(t, "http://"+admin+"/readyz")

	// GA4 from the EEA: 6 anonymised (no consent), 3 dropped (TC string refuses), 1 dropped
	// (Consent Mode denies analytics); Meta: 4 dropped in the EEA, 5 forwarded in the US.
	const ga4 = "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view"
	const se, wa = "89.160.20.112", "216.160.83.57"
	const reject = "CQtB6GAQtB6GAAKACBENCWEgAAAAAAAAAAYgAAAAAAAA" // TCF: no purpose, no vendor
	mix := []struct {
		n          int
		target, ip string
	}{
		{6, ga4, se},
		{3, ga4 + "&gdpr_consent=" + reject, se},
		{1, ga4 + "&gcs=G100", se},
		{4, "/tr?id=1&ev=PageView", se},
		{5, "/tr?id=1&ev=PageView", wa},
	}
	for _, m := range mix {
		for range m.n {
			req, _ := http.NewRequest("GET", "http://"+public+m.target, nil)
			req.Header.Set("X-Forwarded-For", m.ip)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}

	browser := startBrowser(t)
	p := openPage(t, browser, PageOptions{Timezone: "UTC"})
	p.Navigate("http://" + admin + "/dashboard?window=15m")
	p.WaitFor(loaded("15m", "ready"), 15*time.Second)
	for id, want := range map[string]string{
		"count-total": "19", "count-forward": "5", "count-anonymise": "6", "count-drop": "8",
		"share-forward": "26.3%", "share-anonymise": "31.6%", "share-drop": "42.1%",
	} {
		if got := p.TestIDText(id); got != want {
			t.Errorf("all hits: %s shows %q, want %q", id, got, want)
		}
	}
	rows := map[string]map[string]string{}
	for _, r := range p.Rows("vendor-row-") {
		rows[r.Key] = r.Cells
	}
	if rows["ga4"]["total"] != "10" || rows["meta"]["total"] != "9" || len(rows) != 2 {
		t.Errorf("vendor rows %v", rows)
	}
	if v := p.TestIDText("instance-config-version"); v == "" {
		t.Error("the footer shows no config version")
	}
	p.Screenshot("real-proxy-all-15m.png")

	// The marketer's question: GA4 from the EEA.
	p.Select(`[data-testid="filter-vendor"]`, "ga4")
	p.Select(`[data-testid="filter-jurisdiction"]`, "eea")
	for id, want := range map[string]string{
		"count-total": "10", "count-anonymise": "6", "count-drop": "4",
		"share-drop": "40.0%", "share-anonymise": "60.0%", "share-forward": "0.0%",
	} {
		if got := p.TestIDText(id); got != want {
			t.Errorf("ga4 × eea: %s shows %q, want %q", id, got, want)
		}
	}
	// The chart follows the filters: its bars add up to the ten GA4 × EEA hits.
	p.WaitFor(`[data-testid="chart"] svg`, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	sumBars := `Array.from(document.querySelectorAll('[data-testid="chart"] svg g.bar title'), (t) => Number((t.textContent.match(/: ([0-9,]+) hits/) || [0, "0"])[1].replace(/,/g, ""))).reduce((a, b) => a + b, 0)`
	for Eval[int](p, sumBars) != 10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := Eval[int](p, sumBars); n != 10 {
		t.Errorf("chart bars add up to %d hits with the GA4 × EEA filter, want 10", n)
	}
	if note := p.TestIDText("chart-note"); strings.Contains(note, "not broken down") {
		t.Errorf("chart note says the chart ignores the filters: %q", note)
	}
	reasons := map[string]map[string]string{}
	for _, r := range p.Rows("reason-row-") {
		reasons[r.Key] = r.Cells
	}
	if reasons["tcf_denied"]["drop"] != "3" || reasons["consent_mode_denied"]["drop"] != "1" || len(reasons) != 2 {
		t.Errorf("drop reasons %v", reasons)
	}
	if e := reasons["tcf_denied"]["explanation"]; e == "" {
		t.Error("tcf_denied has no explanation")
	}
	p.Screenshot("real-proxy-ga4-eea-15m.png")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 in time", url)
}
