package telemetry

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// The dashboard and the alert rules in deploy/ name metrics and labels as strings; these
// tests hold them to what a real scrape exposes, so renaming a metric, a label or a label
// value in the code fails here instead of leaving an empty panel or an alert that can
// never fire.

const (
	dashboardPath = "../deploy/grafana/consentgate.json"
	alertsPath    = "../deploy/prometheus/alerts.yml"
	promPath      = "../deploy/prometheus/prometheus.yml"
	promDir       = "../deploy/prometheus"
)

// exposed is what /metrics shows once everything has been recorded at least once: family
// by name, and per family the label names and the values seen for each.
type exposed struct {
	families map[string]*dto.MetricFamily
	labels   map[string]map[string]map[string]bool // family → label → values
}

func exposedFamilies(t *testing.T) exposed {
	t.Helper()
	m := newTestMetrics(t)
	j := intern(t, m, "eea", "us-ca")
	for a := range testActions {
		for r := range testReasons {
			m.Hit(a%len(testVendors), a, r, j[r%len(j)])
		}
	}
	for v := range testVendors {
		m.UpstreamRequest(v)
		m.UpstreamDone(v, UpstreamOK, 20*time.Millisecond)
		m.UpstreamRequest(v)
		m.UpstreamError(v, UpstreamTimeout)
		m.UpstreamDone(v, UpstreamTimeout.Outcome(), 2*time.Second)
	}
	m.ConsentLookup(LookupCache, LookupHit)
	m.StoreUp(true)
	m.SaltFallback()
	m.ConfigReload(true, time.Now())
	m.GeoIPReload(false, time.Now(), time.Time{})
	m.GeoIPReload(true, time.Now(), time.Now().AddDate(0, 0, -3))
	m.TLSReload(false, time.Time{})
	m.TLSReload(true, time.Now().AddDate(0, 2, 0))

	fams := serve(t, m).scrape(t).families
	e := exposed{families: fams, labels: map[string]map[string]map[string]bool{}}
	for name, f := range fams {
		labels := map[string]map[string]bool{}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if labels[l.GetName()] == nil {
					labels[l.GetName()] = map[string]bool{}
				}
				labels[l.GetName()][l.GetValue()] = true
			}
		}
		e.labels[name] = labels
	}
	return e
}

// family resolves a name in an expression to the family that exposes it: itself, or a
// histogram's _bucket, _sum or _count series. extra is the label the series adds (le).
func (e exposed) family(name string) (fam string, extra []string, ok bool) {
	if _, ok := e.families[name]; ok {
		return name, nil, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suffix)
		if f, ok := e.families[base]; found && ok && f.GetType() == dto.MetricType_HISTOGRAM {
			if suffix == "_bucket" {
				extra = []string{"le"}
			}
			return base, extra, true
		}
		// A summary (go_gc_duration_seconds) has _sum and _count but no _bucket.
		if f, ok := e.families[base]; found && ok && suffix != "_bucket" && f.GetType() == dto.MetricType_SUMMARY {
			return base, nil, true
		}
	}
	return "", nil, false
}

// runtimeFamilies are the Go runtime and process families (telemetry/runtime.go) the
// dashboard must show: the ones that reveal a leak, a pile-up or descriptor exhaustion.
// The others are exposed for ad-hoc queries and need no panel.
var runtimeFamilies = []string{
	"go_goroutines", "go_threads", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds",
	"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
}

// isRuntime tells a Go runtime or process family from consentgate's own.
func isRuntime(family string) bool {
	return strings.HasPrefix(family, "go_") || strings.HasPrefix(family, "process_")
}

var (
	selectorRE    = regexp.MustCompile(`\b((?:consentgate|go|process)_[a-z_]+)(\{[^}]*\})?`)
	matcherRE     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
	byRE          = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	labelValuesRE = regexp.MustCompile(`label_values\(\s*(consentgate_[a-z_]+)\s*,\s*([a-zA-Z_]+)\s*\)`)
)

// Labels Prometheus adds at scrape time (and the le of a histogram's buckets).
var targetLabels = []string{"instance", "job", "le"}

// checkExpr checks every metric, matcher and grouping label in one PromQL expression and
// returns the families it uses.
func (e exposed) checkExpr(t *testing.T, where, expr string) []string {
	t.Helper()
	var used []string
	known := map[string]bool{}
	for _, l := range targetLabels {
		known[l] = true
	}
	sels := selectorRE.FindAllStringSubmatch(expr, -1)
	for _, sel := range sels {
		fam, extra, ok := e.family(sel[1])
		if !ok {
			t.Errorf("%s: %s is not exposed by /metrics", where, sel[1])
			continue
		}
		used = append(used, fam)
		labels := e.labels[fam]
		for l := range labels {
			known[l] = true
		}
		for _, mt := range matcherRE.FindAllStringSubmatch(sel[2], -1) {
			name, op, value := mt[1], mt[2], mt[3]
			summaryQuantile := name == "quantile" && e.families[fam].GetType() == dto.MetricType_SUMMARY
			if _, ok := labels[name]; !ok && !slices.Contains(extra, name) && !summaryQuantile {
				t.Errorf("%s: %s has no label %q", where, sel[1], name)
				continue
			}
			// A literal value must be one the code produces; variables and regexes are
			// the user's business. A summary's quantiles are not label values of its
			// series here (client_model keeps them apart).
			if name == "quantile" && e.families[fam].GetType() == dto.MetricType_SUMMARY {
				continue
			}
			if op == "=" && !strings.Contains(value, "$") && name != "le" && !labels[name][value] {
				t.Errorf("%s: %s{%s=%q}: no such value; exposed: %v", where, sel[1], name, value, slices.Sorted(maps.Keys(labels[name])))
			}
		}
	}
	if len(sels) == 0 && strings.Contains(expr, "consentgate_") {
		t.Errorf("%s: could not read the metric names in %q", where, expr)
	}
	for _, by := range byRE.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(by[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !known[l] {
				t.Errorf("%s: grouping by %q, which none of %v has", where, l, used)
			}
		}
	}
	return used
}

// dashboard is the part of a Grafana dashboard JSON these tests read.
type dashboard struct {
	Inputs        []input `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct{ Type, UID string }

type input struct{ Name, Type, PluginID string }

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

const dsRef = "${DS_PROMETHEUS}"

func TestDashboardMatchesMetrics(t *testing.T) {
	e := exposedFamilies(t)
	d := loadDashboard(t)

	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: want an importable dashboard (schema ≥ 36)", d.SchemaVersion, d.UID, d.Title)
	}
	if !slices.ContainsFunc(d.Inputs, func(in input) bool {
		return in.Name == "DS_PROMETHEUS" && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		t.Errorf("no DS_PROMETHEUS datasource input: %+v", d.Inputs)
	}

	used := map[string]bool{}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != dsRef {
			t.Errorf("variable %s: datasource %+v, want %s", v.Name, v.Datasource, dsRef)
		}
		m := labelValuesRE.FindStringSubmatch(v.Definition)
		if m == nil || !strings.Contains(string(v.Query), v.Definition) {
			t.Errorf("variable %s: definition %q / query %s is not one label_values over a consentgate metric", v.Name, v.Definition, v.Query)
			continue
		}
		fam, _, ok := e.family(m[1])
		if !ok {
			t.Errorf("variable %s: %s is not exposed", v.Name, m[1])
			continue
		}
		used[fam] = true
		if _, ok := e.labels[fam][m[2]]; !ok {
			t.Errorf("variable %s: %s has no label %q", v.Name, m[1], m[2])
		}
	}
	for _, want := range []string{"DS_PROMETHEUS", "vendor", "jurisdiction"} {
		if !vars[want] {
			t.Errorf("no template variable %q", want)
		}
	}

	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %q", p.Title)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		if p.Datasource == nil || p.Datasource.UID != dsRef {
			t.Errorf("%s: datasource %+v, want %s", where, p.Datasource, dsRef)
		}
		for _, tg := range p.Targets {
			w := where + " query " + tg.RefID
			if tg.Datasource == nil || tg.Datasource.UID != dsRef {
				t.Errorf("%s: datasource %+v, want %s", w, tg.Datasource, dsRef)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: empty expression", w)
			}
			for _, v := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !strings.HasPrefix(v[1], "__") && !vars[v[1]] {
					t.Errorf("%s: uses $%s, which is not a template variable", w, v[1])
				}
			}
			for _, f := range e.checkExpr(t, w, tg.Expr) {
				used[f] = true
			}
		}
	}

	// The other way round: a metric added to the code gets a panel, or this fails.
	for _, name := range slices.Sorted(maps.Keys(e.families)) {
		if !used[name] && (!isRuntime(name) || slices.Contains(runtimeFamilies, name)) {
			t.Errorf("%s is exposed but no dashboard panel shows it", name)
		}
	}
	for _, name := range runtimeFamilies {
		if _, ok := e.families[name]; !ok {
			t.Errorf("%s is not exposed by /metrics (telemetry/runtime.go)", name)
		}
	}
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesMatchMetrics(t *testing.T) {
	e := exposedFamilies(t)
	raw, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true) // a misspelt key would be silently ignored by Prometheus' loader too late
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	seen := map[string]bool{}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			where := fmt.Sprintf("alert %q", r.Alert)
			switch {
			case r.Alert == "":
				t.Errorf("group %s: a rule without an alert name", g.Name)
			case seen[r.Alert]:
				t.Errorf("%s defined twice", where)
			}
			seen[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: needs a severity label and a summary annotation", where)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", where, r.For, err)
				}
			}
			e.checkExpr(t, where, r.Expr)
		}
	}
	// The alerts the deploy docs promise.
	for _, want := range []string{"ConsentgateConsentStoreDown", "ConsentgateConfigReloadFailing", "ConsentgateGeoIPReloadFailing", "ConsentgateUpstreamErrorRatioHigh", "ConsentgateDropShareJump",
		"ConsentgateGoroutinesGrowing", "ConsentgateMemoryGrowing", "ConsentgateFileDescriptorsRunningOut", "ConsentgateFleetStatsBehind",
		"ConsentgateTLSCertificateExpiresSoon", "ConsentgateTLSCertificateExpiryCritical", "ConsentgateTLSReloadFailing"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
}

// TestPrometheusExampleScrapesAdminListener keeps the scrape example pointing where the
// admin listener serves /metrics by default, and loading the alert file next to it.
func TestPrometheusExampleScrapesAdminListener(t *testing.T) {
	raw, err := os.ReadFile(promPath)
	if err != nil {
		t.Fatal(err)
	}
	type scrapeConfig struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	}
	var cfg struct {
		RuleFiles     []string       `yaml:"rule_files"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", promPath, err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("rule_files %v does not load alerts.yml", cfg.RuleFiles)
	}
	i := slices.IndexFunc(cfg.ScrapeConfigs, func(s scrapeConfig) bool { return s.JobName == "consentgate" })
	if i < 0 {
		t.Fatal("no consentgate scrape job")
	}
	job := cfg.ScrapeConfigs[i]
	if job.MetricsPath != "/metrics" || len(job.StaticConfigs) == 0 || !slices.Contains(job.StaticConfigs[0].Targets, "127.0.0.1:9090") {
		t.Errorf("consentgate job %+v, want /metrics on 127.0.0.1:9090", job)
	}
}

// TestDeployFilesWithPromtool has Prometheus itself parse the alert rules and the
// dashboard's queries and run deploy/prometheus/alerts_test.yml (the rules' behaviour on
// made-up series). The tests above hold every name to the code; this adds PromQL syntax
// and alert semantics. promtool is required (.ci/run installs it), never skipped.
func TestDeployFilesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not on PATH: install it with `apt-get install prometheus` (.ci/run does): %v", err)
	}
	dashRules := dashboardAsRules(t)
	for _, run := range []struct {
		dir  string
		args []string
	}{
		{promDir, []string{"check", "config", "prometheus.yml"}},
		{promDir, []string{"test", "rules", "alerts_test.yml"}},
		{filepath.Dir(dashRules), []string{"check", "rules", filepath.Base(dashRules)}},
	} {
		cmd := exec.Command(promtool, run.args...)
		cmd.Dir = run.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(run.args, " "), err, out)
		}
	}
}

// dashboardAsRules writes the dashboard's queries as recording rules, Grafana's variables
// replaced by values Prometheus accepts, so promtool can parse them.
func dashboardAsRules(t *testing.T) string {
	t.Helper()
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$vendor", ".*", "$jurisdiction", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel%d:%s", p.ID, tg.RefID), Expr: vars.Replace(tg.Expr)})
		}
	}
	type group struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}
	out, err := yaml.Marshal(map[string][]group{"groups": {{Name: "dashboard", Rules: rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
