package proxy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type statsCounts struct {
	Forward   int `json:"forward"`
	Anonymise int `json:"anonymise"`
	Drop      int `json:"drop"`
	Total     int `json:"total"`
}

type statsKeyed struct {
	Key string `json:"key"`
	statsCounts
}

type statsReport struct {
	Window      string      `json:"window"`
	StepSeconds int         `json:"step_seconds"`
	Totals      statsCounts `json:"totals"`
	Series      []struct {
		T string `json:"t"`
		statsCounts
	} `json:"series"`
	ByVendor       []statsKeyed `json:"by_vendor"`
	ByJurisdiction []statsKeyed `json:"by_jurisdiction"`
	ByReason       []statsKeyed `json:"by_reason"`
	ByVJ           []struct {
		Vendor       string `json:"vendor"`
		Jurisdiction string `json:"jurisdiction"`
		statsCounts
		Reasons []statsKeyed `json:"reasons"`
	} `json:"by_vendor_jurisdiction"`
	Instance struct {
		Version       string `json:"version"`
		ConfigVersion string `json:"config_version"`
		GeoIPBuild    string `json:"geoip_build"`
	} `json:"instance"`
}

// knownMix sends a fixed mix of hits and returns, per vendor/action/reason/jurisdiction,
// how many of each it sent.
func knownMix(t *testing.T, p *testProxy) map[[4]string]int {
	t.Helper()
	const ga4 = "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view"
	mix := []struct {
		n                                    int
		target, ip                           string
		headers                              []string
		vendor, action, reason, jurisdiction string
	}{
		{7, ga4, ipUSCA, nil, "ga4", "forward", "not_opted_out", "us-ca"},
		{5, ga4, ipSE, nil, "ga4", "anonymise", "consent_missing", "eea"},
		{3, ga4 + "&gdpr_consent=" + tcRejectAll, ipSE, nil, "ga4", "drop", "tcf_denied", "eea"},
		{4, "/tr?id=1&ev=PageView", ipSE, nil, "meta", "drop", "consent_missing", "eea"},
		{2, "/tr?id=1&ev=PageView", ipUSCA, []string{"Sec-GPC", "1"}, "meta", "drop", "gpc_opt_out", "us-ca"},
		{6, "/tr?id=1&ev=PageView", ipUSWA, nil, "meta", "forward", "no_consent_required", "other"},
		{1, "/tr?id=1&ev=PageView&us_privacy=1YYN", ipUSCA, nil, "meta", "drop", "usp_opt_out", "us-ca"},
	}
	want := map[[4]string]int{}
	var wg sync.WaitGroup
	for _, m := range mix {
		want[[4]string{m.vendor, m.action, m.reason, m.jurisdiction}] += m.n
		for range m.n {
			wg.Go(func() {
				r := p.do("GET", m.target, "", append([]string{"X-Forwarded-For", m.ip}, m.headers...)...)
				if r.Status >= 500 {
					t.Errorf("%s: status %d", m.target, r.Status)
				}
			})
		}
	}
	wg.Wait()
	return want
}

// TestStatsAndMetricsReportTheMix: /metrics and /api/stats report exactly the mix sent.
func TestStatsAndMetricsReportTheMix(t *testing.T) {
	up := startSink(t)
	up.discard = true
	p := startProxy(t, testConfig(up.URL(), ""))
	want := knownMix(t, p)

	var total int
	vendor, jur, reason := map[string]statsCounts{}, map[string]statsCounts{}, map[string]statsCounts{}
	add := func(m map[string]statsCounts, key, action string, n int) {
		c := m[key]
		switch action {
		case "forward":
			c.Forward += n
		case "anonymise":
			c.Anonymise += n
		case "drop":
			c.Drop += n
		}
		c.Total += n
		m[key] = c
	}
	var totals statsCounts
	for k, n := range want {
		if got := p.hits(t, k[0], k[1], k[2], k[3]); got != n {
			t.Errorf("/metrics hits%v = %d, want %d", k, got, n)
		}
		total += n
		add(vendor, k[0], k[1], n)
		add(reason, k[2], k[1], n)
		add(jur, k[3], k[1], n)
		m := map[string]statsCounts{"": totals}
		add(m, "", k[1], n)
		totals = m[""]
	}

	for _, window := range []string{"15m", "1h", "24h"} {
		r := p.adminDo("GET", "/api/stats?window="+window, "")
		if r.Status != 200 {
			t.Fatalf("/api/stats: %d %s", r.Status, r.Body)
		}
		var rep statsReport
		if err := json.Unmarshal([]byte(r.Body), &rep); err != nil {
			t.Fatalf("/api/stats: %v\n%s", err, r.Body)
		}
		if rep.Window != window || rep.StepSeconds != 60 {
			t.Errorf("window %q step %d", rep.Window, rep.StepSeconds)
		}
		if rep.Totals != totals || totals.Total != total {
			t.Errorf("%s totals %+v, want %+v", window, rep.Totals, totals)
		}
		var series statsCounts
		for _, pt := range rep.Series {
			series.Forward += pt.Forward
			series.Anonymise += pt.Anonymise
			series.Drop += pt.Drop
			series.Total += pt.Total
		}
		if series != totals {
			t.Errorf("%s series sum %+v, want %+v", window, series, totals)
		}
		check := func(what string, got []statsKeyed, want map[string]statsCounts) {
			t.Helper()
			if len(got) != len(want) {
				t.Errorf("%s %s: %d keys, want %d: %+v", window, what, len(got), len(want), got)
			}
			for _, k := range got {
				if k.statsCounts != want[k.Key] {
					t.Errorf("%s %s[%s] = %+v, want %+v", window, what, k.Key, k.statsCounts, want[k.Key])
				}
			}
		}
		check("by_vendor", rep.ByVendor, vendor)
		check("by_jurisdiction", rep.ByJurisdiction, jur)
		check("by_reason", rep.ByReason, reason)
		for _, vj := range rep.ByVJ {
			if vj.Vendor == "ga4" && vj.Jurisdiction == "eea" {
				if vj.Total != 8 || vj.Drop != 3 || vj.Anonymise != 5 || len(vj.Reasons) != 2 {
					t.Errorf("ga4 × eea = %+v", vj)
				}
			}
		}
		if rep.Instance.Version != "test-build" || len(rep.Instance.ConfigVersion) != 12 || !strings.HasPrefix(rep.Instance.GeoIPBuild, "20") {
			t.Errorf("instance %+v", rep.Instance)
		}
	}
	if r := p.adminDo("GET", "/api/stats?window=2h", ""); r.Status != 400 || !strings.Contains(r.Body, "15m") {
		t.Errorf("window=2h: %d %s", r.Status, r.Body)
	}
}

// TestLogsCarryNoPersonalData: everything that logs — hits with the decision log on,
// consent writes and reads, admin calls, a failed reload, a panic — leaves no raw IP,
// consent ID or client ID in the log.
func TestLogsCarryNoPersonalData(t *testing.T) {
	up := startSink(t)
	var logs syncBuffer
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	yaml := testConfig(up.URL(), "telemetry:\n  decision_log:\n    sample_ratio: 1\n")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxyLog(t, yaml, &logs)
	p.opts.ConfigPath = cfgPath

	const cid, uid, email = "1234567890.1712345678", "user-42-secret", "jane%40example.com"
	ips := []string{ipSE, ipUSCA, ipUSWA, ipGB, ipCH6, "198.51.100.77"}
	var ids []string
	for _, ip := range ips {
		cookie := p.consentCookie(`{"statistics":true}`)
		ids = append(ids, strings.TrimPrefix(cookie, "cg_id="))
		p.do("GET", "/g/collect?v=2&tid=G-1&cid="+cid+"&uid="+uid+"&ep.email="+email+"&en=page_view", "",
			"X-Forwarded-For", "203.0.113.9, "+ip, "Cookie", cookie+"; _ga=GA1.1."+cid)
		p.do("POST", "/mp/collect?measurement_id=G-1&api_secret=s", `{"client_id":"`+cid+`","user_id":"`+uid+`","events":[{"name":"x"}]}`,
			"X-Forwarded-For", ip, "Content-Type", "application/json")
		p.do("DELETE", "/consent", "", "Cookie", cookie, "X-Forwarded-For", ip)
	}
	id := ids[0]
	auth := []string{"Authorization", "Bearer " + testToken}
	p.adminDo("PUT", "/admin/consent/"+id, `{"purposes":{"marketing":true}}`, auth...)
	p.adminDo("GET", "/admin/consent/"+id, "", auth...)
	p.adminDo("GET", "/admin/consent/"+id+"/history", "", auth...)
	p.adminDo("DELETE", "/admin/consent/"+id+"?erase=true", "", auth...)
	p.adminDo("POST", "/admin/explain", `{"url":"/g/collect?cid=`+cid+`","headers":{"X-Forwarded-For":"`+ipSE+`"}}`, auth...)
	// A reload that fails logs its error; the config names no visitor, but check anyway.
	if err := os.WriteFile(cfgPath, []byte(yaml+"bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil {
		t.Fatal("reload of a bad config succeeded")
	}

	out := logs.String()
	if !strings.Contains(out, `"msg":"decision"`) || !strings.Contains(out, `"msg":"consent written"`) || !strings.Contains(out, "reload failed") {
		t.Fatalf("the log lacks the lines this test is about:\n%s", out)
	}
	secrets := append([]string{cid, uid, "jane@example.com", email, "203.0.113.9"}, ips...)
	secrets = append(secrets, ids...)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q", s)
		}
	}
	// Every line is JSON: a log shipper must not choke on a half-line.
	for i, line := range bytes.Split(bytes.TrimSpace([]byte(out)), []byte("\n")) {
		if !json.Valid(line) {
			t.Errorf("log line %d is not JSON: %s", i, line)
		}
	}
	t.Logf("%d log lines checked for %d values", strings.Count(out, "\n"), len(secrets))
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConfigVersionLeavesSecretsOut: the version shown on the unauthenticated stats API
// does not change with (and so cannot be used to guess) a secret, but does with any
// other value.
func TestConfigVersionLeavesSecretsOut(t *testing.T) {
	load := func(extra string) string {
		t.Helper()
		cfg, err := testLoader.LoadBytes("v.yaml", []byte("listen: \"127.0.0.1:0\"\n"+extra))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Version()
	}
	base := load("")
	for _, secret := range []string{
		"admin_token: \"An3Xq8Lz5Vw1Kn7Rb4Tc9Hm2Pj6Dy0\"\n",
		"anonymise:\n  secret: \"As9Kv2Nx6Lq4Wz8Rc1Tm5Hb3J\"\n",
		"consent:\n  redis:\n    password: \"pw-0123\"\n",
	} {
		if v := load(secret); v != base {
			t.Errorf("version changed with a secret (%q): %s vs %s", secret, v, base)
		}
	}
	if v := load("telemetry:\n  otlp:\n    endpoint: \"http://c:4318\"\n    headers:\n      x-key: a\n"); v != load("telemetry:\n  otlp:\n    endpoint: \"http://c:4318\"\n    headers:\n      x-key: b\n") {
		t.Errorf("version changed with an OTLP header value")
	}
	if load("max_body_size: 2048\n") == base {
		t.Error("version did not change with max_body_size")
	}
}

// removedCount reads consentgate_anonymise_removed_total for one vendor and kind from
// the real /metrics output.
func (p *testProxy) removedCount(t *testing.T, vendor, kind string) int {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(p.metricsText(t)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, m := range fams["consentgate_anonymise_removed_total"].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if got["vendor"] == vendor && got["kind"] == kind {
			return int(m.GetCounter().GetValue())
		}
	}
	t.Fatalf("no consentgate_anonymise_removed_total{vendor=%q,kind=%q}: every series is exported from zero", vendor, kind)
	return 0
}

// TestAnonymiseRemovedCounted: values an anonymised hit loses for not fitting their
// kind are counted by vendor and kind, the hit still goes out without them, and
// explain counts nothing.
func TestAnonymiseRemovedCounted(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	if n := p.removedCount(t, "ga4", "currency"); n != 0 {
		t.Fatalf("before any hit: %d", n)
	}
	hit := "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view&cu=jane%40doe.com&sr=wide&dl=javascript%3Aalert(1)&dt=Hi%20jane%40doe.com"
	r := p.do("GET", hit, "", "X-Forwarded-For", ipSE)
	if r.Status != 204 {
		t.Fatalf("status %d", r.Status)
	}
	got := up.one(t)
	if strings.Contains(got.Query, "cu=") || strings.Contains(got.Query, "sr=") || strings.Contains(got.Query, "dl=") ||
		!strings.Contains(got.Query, "dt=Hi%20%3Aemail") || !strings.Contains(got.Query, "en=page_view") {
		t.Errorf("upstream query %q", got.Query)
	}
	auth := []string{"Authorization", "Bearer " + testToken}
	if r := p.adminDo("POST", "/admin/explain", `{"method":"GET","url":"`+hit+`","headers":{"X-Forwarded-For":"`+ipSE+`"},"remote_addr":"127.0.0.1"}`, auth...); r.Status != 200 {
		t.Fatalf("explain: %d %s", r.Status, r.Body)
	}
	for kind, want := range map[string]int{"currency": 1, "screen": 1, "url": 1, "text": 0, "id": 0} {
		if n := p.removedCount(t, "ga4", kind); n != want {
			t.Errorf("ga4 %s: %d removed, want %d", kind, n, want)
		}
	}
	if n := p.removedCount(t, "meta", "currency"); n != 0 {
		t.Errorf("meta currency: %d", n)
	}
}
