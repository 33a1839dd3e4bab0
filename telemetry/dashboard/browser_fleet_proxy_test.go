//go:build browser

package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/redistest"
)

// TestBrowserFleetRealProxies: three real consentgate processes share one Redis; each
// gets its own number of hits. The dashboard any of them serves shows the sum and says
// three instances reported; switched to "This instance" it shows that one's hits only.
func TestBrowserFleetRealProxies(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "consentgate")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/consentgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rs := redistest.Start(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(upstream.Close)
	geoDB, err := filepath.Abs("../../testdata/geoip/GeoIP2-City-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}

	type instance struct{ public, admin string }
	var insts []instance
	for i := range 3 {
		in := instance{public: freeAddr(t), admin: freeAddr(t)}
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "listen: %q\nadmin_listen: %q\ntrusted_proxies: [\"127.0.0.1/32\"]\ngeo:\n  database: %q\n", in.public, in.admin, geoDB)
		fmt.Fprintf(&cfg, "consent:\n  store: redis\n  redis:\n    addrs: [%q]\n    timeout: 200ms\nupstreams:\n", rs.Addr)
		for _, v := range []string{"ga4", "meta", "google_ads", "bing", "linkedin", "tiktok", "matomo", "plausible"} {
			fmt.Fprintf(&cfg, "  %s: %q\n", v, upstream.URL)
		}
		path := filepath.Join(dir, fmt.Sprintf("consentgate-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--config", path)
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("consentgate %d log:\n%s", i, logs.String())
			}
		})
		waitHTTP(t, "http://"+in.admin+"/readyz")
		insts = append(insts, in)
	}

	// Instance i gets 3+2i GA4 hits from the EEA (anonymised) and i Meta hits from
	// Washington (forwarded): 3+5+7 = 15 anonymised and 0+1+2 = 3 forwarded in all.
	const ga4 = "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view"
	send := func(in instance, n int, target, ip string) {
		for range n {
			req, _ := http.NewRequest("GET", "http://"+in.public+target, nil)
			req.Header.Set("X-Forwarded-For", ip)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	for i, in := range insts {
		send(in, 3+2*i, ga4, "89.160.20.112")
		send(in, i, "/tr?id=1&ev=PageView", "216.160.83.57")
	}

	// Instances publish every 10 s: wait until all three have, as seen from the second.
	total := func(scope string) (int, int) {
		resp, err := http.Get("http://" + insts[1].admin + "/api/stats?window=15m&scope=" + scope)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Totals struct {
				Total int `json:"total"`
			} `json:"totals"`
			Fleet struct {
				Instances int `json:"instances"`
			} `json:"fleet"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("/api/stats: %d %v: %s", resp.StatusCode, err, b)
		}
		return r.Totals.Total, r.Fleet.Instances
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, k := total("fleet")
		if n == 18 && k == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet total %d from %d instances after 30 s, want 18 from 3", n, k)
		}
		time.Sleep(200 * time.Millisecond)
	}

	browser := startBrowser(t)
	p := openPage(t, browser, PageOptions{Timezone: "UTC"})
	p.Navigate("http://" + insts[1].admin + "/dashboard?window=15m")
	p.WaitFor(scoped("15m", "fleet", "ready"), 15*time.Second)
	for id, want := range map[string]string{
		"count-total": "18", "count-anonymise": "15", "count-forward": "3", "count-drop": "0", "fleet-instances": "3",
	} {
		if got := p.TestIDText(id); got != want {
			t.Errorf("fleet: %s shows %q, want %q", id, got, want)
		}
	}
	rows := map[string]string{}
	for _, r := range p.Rows("vendor-row-") {
		rows[r.Key] = r.Cells["total"]
	}
	if rows["ga4"] != "15" || rows["meta"] != "3" {
		t.Errorf("fleet vendor rows %v, want ga4 15 and meta 3", rows)
	}
	p.Screenshot("real-fleet-15m.png")

	p.Click(`[data-testid="scope-instance"]`)
	p.WaitFor(scoped("15m", "instance", "ready"), 15*time.Second)
	for id, want := range map[string]string{"count-total": "6", "count-anonymise": "5", "count-forward": "1"} {
		if got := p.TestIDText(id); got != want {
			t.Errorf("this instance: %s shows %q, want %q", id, got, want)
		}
	}
	if got := p.TestIDText("scope-note"); !strings.HasPrefix(got, "Figures from this consentgate instance only") {
		t.Errorf("scope note %q", got)
	}
	p.Screenshot("real-fleet-this-instance-15m.png")
}
