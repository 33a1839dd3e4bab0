//go:build browser

// Browser tests: a real headless Chromium loads the dashboard and the tests read what a
// person would see. Run with `make test-browser` or
//
//	go test -tags browser -count=1 -run Browser -v ./telemetry/dashboard
//
// They need Chromium (Debian: apt-get install chromium); set CHROMIUM to use another
// binary than /usr/bin/chromium. Screenshots go to $ARTIFACTS_DIR, or else to
// telemetry/dashboard/testdata/artifacts/.
//
// The first half of this file is general: start a browser, open a page on a base URL,
// collect console errors and uncaught exceptions, read text by data-testid, take a
// screenshot. It knows nothing of the fixtures, so a test that runs the real proxy can
// use it too. The second half is TestBrowserDashboard, which serves the dashboard with
// /api/stats answered from testdata/stats-*.json.
package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"
)

// ---- general helpers --------------------------------------------------------------

// chromiumPath is $CHROMIUM, or Debian's /usr/bin/chromium.
func chromiumPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no Chromium at %s (install it with `apt-get install chromium`, or set CHROMIUM): %v", p, err)
	}
	return p
}

// startBrowser starts one headless Chromium with a fresh profile for the test and returns
// a context for it; openPage opens tabs in it. The browser ends with the test.
func startBrowser(t testing.TB) context.Context {
	t.Helper()
	profile := t.TempDir() // registered first, so removed after the browser has exited
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Do with no action starts the browser (and its first, blank tab). It must get
	// browserCtx itself: the browser lives as long as the context of its first Do.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return browserCtx
}

// Page is one browser tab. It records every console error, failed assertion, uncaught
// exception and error-level browser log entry (a failed load, a CSP violation) from the
// moment the tab opens; the test fails on any of them at its end unless Allow says the
// test expects it.
type Page struct {
	t   testing.TB
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	allowed  []func(string) bool
}

// PageOptions set up a tab before it loads anything.
type PageOptions struct {
	Width, Height int64         // viewport; 1280×900 if zero
	Timezone      string        // IANA name, e.g. "UTC"; the machine's if empty
	Timeout       time.Duration // for everything the tab does; 90 s if zero
}

// openPage opens a new tab in the browser of browserCtx. The tab closes, and its problems
// are reported, when the test ends.
func openPage(t testing.TB, browserCtx context.Context, o PageOptions) *Page {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	p := &Page{t: t}
	tabCtx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithListener(p.listen))
	t.Cleanup(cancelTab)
	// As with the browser, the tab lives as long as the context of its first Do.
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(tabCtx, o.Timeout)
	p.Ctx = ctx
	t.Cleanup(func() {
		p.CheckProblems()
		cancelTimeout()
	})
	p.do(chromedp.EmulateViewport(o.Width, o.Height))
	if o.Timezone != "" {
		if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: o.Timezone}); err != nil {
			t.Fatalf("timezone %s: %v", o.Timezone, err)
		}
	}
	return p
}

// listen runs in the tab's event loop: it must return fast and send no command.
func (p *Page) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			args = append(args, remoteText(a))
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		msg = fmt.Sprintf("uncaught exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, text)
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Level != cdplog.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("browser log [%s] %s (%s)", e.Source, e.Text, e.URL)
	default:
		return
	}
	p.mu.Lock()
	p.problems = append(p.problems, msg)
	p.mu.Unlock()
}

func remoteText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}

// Allow marks problems the test expects (match gets the problem's text).
func (p *Page) Allow(match func(problem string) bool) {
	p.mu.Lock()
	p.allowed = append(p.allowed, match)
	p.mu.Unlock()
}

// Problems returns the console errors and exceptions seen so far that were not allowed.
func (p *Page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
next:
	for _, m := range p.problems {
		for _, ok := range p.allowed {
			if ok(m) {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// CheckProblems fails the test for each console error or uncaught exception not allowed.
func (p *Page) CheckProblems() {
	p.t.Helper()
	for _, m := range p.Problems() {
		p.t.Errorf("browser: %s", m)
	}
}

func (p *Page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.Ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v (problems so far: %q)", err, p.Problems())
	}
}

// Navigate loads url and waits for its load event.
func (p *Page) Navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// WaitFor waits until an element matches the CSS selector, for at most d.
func (p *Page) WaitFor(selector string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(selector))); err != nil {
		state, _ := chromedp.Run(p.Ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector('[data-testid="dashboard"]'); return e ? JSON.stringify(e.dataset) : document.documentElement.outerHTML.slice(0, 500); })()`))
		p.t.Fatalf("waiting for %s: %v (page: %s; problems: %q)", selector, err, state, p.Problems())
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its value into T.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %.80q: %v", expr, err)
	}
	return v
}

// Click clicks the element the CSS selector matches, with the mouse.
func (p *Page) Click(selector string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
}

// Select chooses value in a <select> as a person would (the change event fires).
func (p *Page) Select(selector, value string) {
	p.t.Helper()
	got := Eval[string](p, fmt.Sprintf(`(() => {
		const s = document.querySelector(%q);
		s.value = %q;
		s.dispatchEvent(new Event('change', { bubbles: true }));
		return s.value;
	})()`, selector, value))
	if got != value {
		p.t.Fatalf("%s has no option %q", selector, value)
	}
}

// TestIDText is the visible text (innerText, trimmed) of the element with the data-testid,
// or "" if there is none.
func (p *Page) TestIDText(id string) string {
	p.t.Helper()
	return Eval[string](p, fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]'); return e ? e.innerText.trim() : ''; })()`, id))
}

// TestIDVisible tells whether the element with the data-testid is rendered (present, not
// hidden, with a box).
func (p *Page) TestIDVisible(id string) bool {
	p.t.Helper()
	return Eval[bool](p, fmt.Sprintf(`(() => { const e = document.querySelector('[data-testid=%q]'); return !!e && e.getClientRects().length > 0; })()`, id))
}

// TestIDTexts maps every data-testid on the page to its visible text.
func (p *Page) TestIDTexts() map[string]string {
	p.t.Helper()
	return Eval[map[string]string](p, `Object.fromEntries(Array.from(document.querySelectorAll('[data-testid]'), (e) => [e.dataset.testid, e.innerText.trim()]))`)
}

// Row is a table row found by its data-testid prefix: Key is the rest of the testid and
// Cells maps each data-col of its cells to their visible text.
type Row struct {
	Key   string
	Cells map[string]string
}

// Rows returns the rows whose data-testid starts with prefix, in page order.
func (p *Page) Rows(prefix string) []Row {
	p.t.Helper()
	return Eval[[]Row](p, fmt.Sprintf(`Array.from(document.querySelectorAll('[data-testid^=%q]'), (r) => ({
		Key: r.dataset.testid.slice(%d),
		Cells: Object.fromEntries(Array.from(r.querySelectorAll('[data-col]'), (c) => [c.dataset.col, c.innerText.trim()])),
	}))`, prefix, len(prefix)))
}

// artifactsDir is $ARTIFACTS_DIR, or testdata/artifacts/ beside the test.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// Screenshot saves a PNG of the whole page (not just the viewport) as name in the
// artifacts directory, logs its path and returns it.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactsDir(p.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// ---- the dashboard against fixtures ------------------------------------------------

// stats is the /api/stats answer, as the test reads the fixtures.
type stats struct {
	Window   string `json:"window"`
	Instance struct {
		Version        string `json:"version"`
		ConfigVersion  string `json:"config_version"`
		ConfigLoadedAt string `json:"config_loaded_at"`
		GeoIPBuild     string `json:"geoip_build"`
	} `json:"instance"`
	GeneratedAt string `json:"generated_at"`
	Totals      counts `json:"totals"`
	Series      []struct {
		T string `json:"t"`
		counts
	} `json:"series"`
	ByVendor       []counts `json:"by_vendor"`
	ByJurisdiction []counts `json:"by_jurisdiction"`
	ByReason       []counts `json:"by_reason"`
	ByVJ           []struct {
		Vendor       string `json:"vendor"`
		Jurisdiction string `json:"jurisdiction"`
		counts
		Reasons []counts `json:"reasons"`
	} `json:"by_vendor_jurisdiction"`
}

type counts struct {
	Key       string `json:"key"`
	Forward   int64  `json:"forward"`
	Anonymise int64  `json:"anonymise"`
	Drop      int64  `json:"drop"`
	Total     int64  `json:"total"`
}

func (c *counts) add(o counts) {
	c.Forward += o.Forward
	c.Anonymise += o.Anonymise
	c.Drop += o.Drop
	c.Total += o.Total
}

func (c counts) of(action string) int64 {
	switch action {
	case "forward":
		return c.Forward
	case "anonymise":
		return c.Anonymise
	case "drop":
		return c.Drop
	}
	return c.Total
}

func loadFixture(t *testing.T, name string) *stats {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var s stats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &s
}

// pct is how the page must show part of total: one decimal, half rounded up.
func pct(part, total int64) string {
	if total <= 0 {
		return "–"
	}
	tenths := (2000*part + total) / (2 * total)
	return fmt.Sprintf("%d.%d%%", tenths/10, tenths%10)
}

// count is how the page must show a number of hits: digits grouped by commas.
func count(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

var vendorNames = map[string]string{
	"ga4": "Google Analytics 4", "meta_pixel": "Meta Pixel", "google_ads": "Google Ads",
	"ms_uet": "Microsoft UET", "linkedin": "LinkedIn Insight", "tiktok": "TikTok Pixel",
	"matomo": "Matomo", "plausible": "Plausible",
}

var jurisdictionNames = map[string]string{
	"eea": "EEA", "uk": "United Kingdom", "ch": "Switzerland", "us-ca": "California",
	"us-states": "Other US privacy states", "other": "Rest of world", "unknown": "Unknown location",
}

var jurisdictionWhere = map[string]string{
	"eea": "in the EEA", "uk": "in the United Kingdom", "ch": "in Switzerland", "us-ca": "in California",
	"us-states": "in other US privacy states", "other": "in the rest of the world", "unknown": "whose location is unknown",
}

func friendly(names map[string]string, key string) string {
	if n, ok := names[key]; ok {
		return n
	}
	return key
}

// reasonWords is a phrase each reason's explanation must contain.
var reasonWords = map[string]string{
	"consent_granted":     "agreed to this kind of tracking",
	"cmp_consent_granted": "consent banner (CMP)",
	"cmp_granted":         "consent banner (CMP)",
	"tcf_granted":         "allows this vendor",
	"no_consent_required": "do not require asking",
	"not_opted_out":       "had not",
	"consent_missing":     "had not agreed",
	"consent_denied":      "said no",
	"gpc_opt_out":         "Global Privacy Control",
	"consent_mode_denied": "Google Consent Mode",
	"store_unavailable":   "could not look up",
	"anonymise_failed":    "could not be cleaned",
	"method_not_allowed":  "wrong HTTP method",
	"body_too_large":      "more data than consentgate accepts",
	"internal_error":      "went wrong inside consentgate",
	"bad_path":            "does not look like the one this vendor",
	"bad_body_encoding":   "compressed in a way consentgate does not read",
	"tcf_invalid":         "TCF consent string that could not be read",
	"tcf_denied":          "did not allow this vendor",
	"gpp_opt_out":         "Global Privacy Platform",
	"gpp_invalid":         "Global Privacy Platform string that could not be read",
	"usp_opt_out":         "US Privacy (CCPA)",
	"usp_invalid":         "US Privacy (CCPA) string that could not be read",
	"cmp_denied":          "did not allow this kind of tracking",
}

func genericReason(key string) string {
	return `consentgate reported the reason "` + key + `", which this dashboard does not describe yet. Ask your engineering team what it means.`
}

// expected is what the page must show for a fixture and a choice of filters, worked out
// here independently of app.js.
type expected struct {
	totals                 counts
	vendors, jurisdictions []counts
	dropReasons            []counts // all with drops, most first
	scope                  string   // "Google Analytics 4 hits from visitors in the EEA"
}

func expect(s *stats, vendor, jurisdiction string) expected {
	var e expected
	if vendor == "" && jurisdiction == "" {
		e.totals, e.vendors, e.jurisdictions = s.Totals, s.ByVendor, s.ByJurisdiction
		e.dropReasons = s.ByReason
	} else {
		byV, byJ, byR := map[string]*counts{}, map[string]*counts{}, map[string]*counts{}
		get := func(m map[string]*counts, k string) *counts {
			if m[k] == nil {
				m[k] = &counts{Key: k}
			}
			return m[k]
		}
		for _, r := range s.ByVJ {
			if (vendor != "" && r.Vendor != vendor) || (jurisdiction != "" && r.Jurisdiction != jurisdiction) {
				continue
			}
			e.totals.add(r.counts)
			get(byV, r.Vendor).add(r.counts)
			get(byJ, r.Jurisdiction).add(r.counts)
			for _, rr := range r.Reasons {
				get(byR, rr.Key).add(rr)
			}
		}
		flat := func(m map[string]*counts) []counts {
			var out []counts
			for _, c := range m {
				out = append(out, *c)
			}
			sort.Slice(out, func(i, j int) bool {
				if out[i].Total != out[j].Total {
					return out[i].Total > out[j].Total
				}
				return out[i].Key < out[j].Key
			})
			return out
		}
		e.vendors, e.jurisdictions, e.dropReasons = flat(byV), flat(byJ), flat(byR)
	}
	var drops []counts
	for _, r := range e.dropReasons {
		if r.Drop > 0 {
			drops = append(drops, r)
		}
	}
	sort.SliceStable(drops, func(i, j int) bool {
		if drops[i].Drop != drops[j].Drop {
			return drops[i].Drop > drops[j].Drop
		}
		return drops[i].Key < drops[j].Key
	})
	e.dropReasons = drops

	e.scope = "tracking hits"
	if vendor != "" {
		e.scope = friendly(vendorNames, vendor) + " hits"
	}
	if jurisdiction != "" {
		where, ok := jurisdictionWhere[jurisdiction]
		if !ok {
			where = `in "` + jurisdiction + `"`
		}
		e.scope += " from visitors " + where
	}
	return e
}

var windowSince = map[string]string{"15m": "In the last 15 minutes", "1h": "In the last hour", "24h": "In the last 24 hours"}

// checkDashboard compares everything the page shows with what the fixture implies.
func checkDashboard(t *testing.T, p *Page, s *stats, window, vendor, jurisdiction string) {
	t.Helper()
	e := expect(s, vendor, jurisdiction)
	got := p.TestIDTexts()

	want := map[string]string{"count-total": count(e.totals.Total)}
	for _, a := range []string{"forward", "anonymise", "drop"} {
		want["count-"+a] = count(e.totals.of(a))
		want["share-"+a] = pct(e.totals.of(a), e.totals.Total)
	}
	want["summary"] = fmt.Sprintf("%s, consentgate handled %s %s: %s were forwarded, %s anonymised and %s dropped.",
		windowSince[window], count(e.totals.Total), e.scope,
		pct(e.totals.Forward, e.totals.Total), pct(e.totals.Anonymise, e.totals.Total), pct(e.totals.Drop, e.totals.Total))
	if vendor == "" && jurisdiction == "" {
		want["reasons-title"] = "Why hits were dropped"
	} else {
		want["reasons-title"] = "Why " + e.scope + " were dropped"
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: page shows %q, want %q", k, got[k], v)
		}
	}

	checkRows(t, "vendor", p.Rows("vendor-row-"), e.vendors, vendorNames)
	checkRows(t, "jurisdiction", p.Rows("jurisdiction-row-"), e.jurisdictions, jurisdictionNames)

	shown := e.dropReasons
	if len(shown) > 8 {
		shown = shown[:8]
	}
	rows := p.Rows("reason-row-")
	if len(rows) != len(shown) {
		t.Errorf("%d drop reasons shown, want %d", len(rows), len(shown))
	}
	for i := 0; i < len(rows) && i < len(shown); i++ {
		r, w := rows[i], shown[i]
		if r.Key != w.Key {
			t.Errorf("drop reason %d is %s, want %s", i+1, r.Key, w.Key)
			continue
		}
		if r.Cells["drop"] != count(w.Drop) || r.Cells["share"] != pct(w.Drop, e.totals.Drop) {
			t.Errorf("reason %s: drop %q share %q, want %q %q", w.Key, r.Cells["drop"], r.Cells["share"], count(w.Drop), pct(w.Drop, e.totals.Drop))
		}
		text := r.Cells["explanation"]
		if phrase, known := reasonWords[w.Key]; known {
			if !strings.Contains(text, phrase) {
				t.Errorf("reason %s explained as %q, which lacks %q", w.Key, text, phrase)
			}
		} else if text != genericReason(w.Key) {
			t.Errorf("unknown reason %s explained as %q, want the generic sentence", w.Key, text)
		}
		if !strings.Contains(r.Cells["reason"], w.Key) {
			t.Errorf("reason row %s does not show its key: %q", w.Key, r.Cells["reason"])
		}
	}
}

func checkRows(t *testing.T, what string, rows []Row, want []counts, names map[string]string) {
	t.Helper()
	if len(rows) != len(want) {
		t.Errorf("%d %s rows, want %d", len(rows), what, len(want))
	}
	for i := 0; i < len(rows) && i < len(want); i++ {
		r, w := rows[i], want[i]
		if r.Key != w.Key {
			t.Errorf("%s row %d is %s, want %s", what, i+1, r.Key, w.Key)
			continue
		}
		cells := map[string]string{
			"name":      friendly(names, w.Key),
			"total":     count(w.Total),
			"forward":   pct(w.Forward, w.Total),
			"anonymise": pct(w.Anonymise, w.Total),
			"drop":      pct(w.Drop, w.Total),
		}
		for col, v := range cells {
			if r.Cells[col] != v {
				t.Errorf("%s row %s, %s: page shows %q, want %q", what, w.Key, col, r.Cells[col], v)
			}
		}
	}
}

// checkFits fails the test if the page, or any table in it, is wider than the screen
// and so needs sideways scrolling.
func checkFits(t *testing.T, p *Page) {
	t.Helper()
	over := Eval[map[string]int](p, `(() => {
		const out = {};
		const d = document.documentElement;
		if (d.scrollWidth > d.clientWidth) out.page = d.scrollWidth - d.clientWidth;
		for (const w of document.querySelectorAll('.table-wrap')) {
			const id = w.querySelector('[data-testid]').dataset.testid;
			if (w.scrollWidth > w.clientWidth) out[id] = w.scrollWidth - w.clientWidth;
		}
		return out;
	})()`)
	for what, px := range over {
		t.Errorf("%s is %dpx wider than its space at a %dpx wide screen", what, px, Eval[int](p, `window.innerWidth`))
	}
}

// statsServer serves the dashboard and a /api/stats whose answer per window the test sets.
type statsServer struct {
	URL string

	mu       sync.Mutex
	answers  map[string]string // window → fixture file name, or "" for HTTP 500
	requests []string          // windows asked for, in order
}

func newStatsServer(t *testing.T, answers map[string]string) *statsServer {
	t.Helper()
	s := &statsServer{answers: answers}
	dash := Handler()
	s.URL = serveTest(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/api/stats" {
			dash(ctx)
			return
		}
		w := string(ctx.QueryArgs().Peek("window"))
		s.mu.Lock()
		s.requests = append(s.requests, w)
		name, ok := s.answers[w]
		s.mu.Unlock()
		switch {
		case !ok:
			ctx.Error(`{"error":"unknown window"}`, fasthttp.StatusBadRequest)
		case name == "":
			ctx.Error(`{"error":"stats unavailable"}`, fasthttp.StatusInternalServerError)
		default:
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
				return
			}
			ctx.SetContentType("application/json")
			ctx.SetBody(b)
		}
	})
	return s
}

func (s *statsServer) set(window, fixture string) {
	s.mu.Lock()
	s.answers[window] = fixture
	s.mu.Unlock()
}

func (s *statsServer) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

const dashboardSel = `[data-testid="dashboard"]`

func loaded(window, state string) string {
	return fmt.Sprintf(`%s[data-window=%q][data-state=%q]`, dashboardSel, window, state)
}

func TestBrowserDashboard(t *testing.T) {
	browser := startBrowser(t)
	fx15 := loadFixture(t, "stats-15m.json")
	fx24 := loadFixture(t, "stats-24h.json")
	utc := PageOptions{Timezone: "UTC"}

	t.Run("WindowsAndNumbers", func(t *testing.T) {
		srv := newStatsServer(t, map[string]string{"15m": "stats-15m.json", "24h": "stats-24h.json"})
		p := openPage(t, browser, utc)
		p.Navigate(srv.URL + "/dashboard?window=15m")
		p.WaitFor(loaded("15m", "ready"), 10*time.Second)

		// Spot values written out by hand, so a mistake shared by app.js and expect()
		// still shows.
		for id, want := range map[string]string{
			"count-total": "834", "count-forward": "514", "count-anonymise": "131", "count-drop": "189",
			"share-forward": "61.6%", "share-anonymise": "15.7%", "share-drop": "22.7%",
			"instance-version": "v1.4.2", "instance-config-version": "sha256:3f9a1c0e",
			"instance-config-loaded": "22 Nov 2026 09:12:05", "instance-geoip": "1 Nov 2026", "updated-at": "11:00:37",
		} {
			if got := p.TestIDText(id); got != want {
				t.Errorf("%s: page shows %q, want %q", id, got, want)
			}
		}
		checkDashboard(t, p, fx15, "15m", "", "")
		if p.TestIDVisible("error") || p.TestIDVisible("empty") || p.TestIDVisible("loading") {
			t.Error("an error, empty or loading message is showing beside the numbers")
		}
		// The chart has one bar per minute, and the first says what the first minute holds.
		if n := Eval[int](p, `document.querySelectorAll('[data-testid="chart"] svg g.bar').length`); n != len(fx15.Series) {
			t.Errorf("chart has %d bars, want %d", n, len(fx15.Series))
		}
		first := fx15.Series[0]
		wantTitle := fmt.Sprintf("10:46: %s hits (%s forwarded, %s anonymised, %s dropped)",
			count(first.Total), count(first.Forward), count(first.Anonymise), count(first.Drop))
		if got := Eval[string](p, `document.querySelector('[data-testid="chart"] svg g.bar title').textContent`); got != wantTitle {
			t.Errorf("first bar: %q, want %q", got, wantTitle)
		}
		checkFits(t, p)
		p.Screenshot("dashboard-15m-1280.png")

		p.Click(`[data-testid="window-24h"]`)
		p.WaitFor(loaded("24h", "ready"), 10*time.Second)
		if asked := srv.asked(); len(asked) < 2 || asked[len(asked)-1] != "24h" {
			t.Errorf("/api/stats was asked for windows %v, want 24h last", asked)
		}
		checkDashboard(t, p, fx24, "24h", "", "")
		if got := p.TestIDText("instance-geoip"); got != "not reported" {
			t.Errorf("absent geoip_build shows %q, want \"not reported\"", got)
		}
		if got := Eval[string](p, `document.querySelector('[data-testid="window-24h"]').getAttribute('aria-pressed')`); got != "true" {
			t.Errorf("24h button aria-pressed = %q", got)
		}
		if loc := Eval[string](p, `location.search`); loc != "?window=24h" {
			t.Errorf("address shows %q, want ?window=24h", loc)
		}
		// 24 hours are drawn as 144 bars of 10 minutes.
		if n := Eval[int](p, `document.querySelectorAll('[data-testid="chart"] svg g.bar').length`); n != 144 {
			t.Errorf("24h chart has %d bars, want 144", n)
		}
		checkFits(t, p)
		p.Screenshot("dashboard-24h-1280.png")

		p.Click(`[data-testid="window-15m"]`)
		p.WaitFor(loaded("15m", "ready"), 10*time.Second)
		checkDashboard(t, p, fx15, "15m", "", "")
	})

	t.Run("VendorAndJurisdictionFilters", func(t *testing.T) {
		srv := newStatsServer(t, map[string]string{"15m": "stats-15m.json", "24h": "stats-24h.json"})
		p := openPage(t, browser, utc)
		p.Navigate(srv.URL + "/dashboard?window=24h")
		p.WaitFor(loaded("24h", "ready"), 10*time.Second)

		// "What share of GA4 hits from the EEA were dropped yesterday, and why?"
		p.Select(`[data-testid="filter-vendor"]`, "ga4")
		checkDashboard(t, p, fx24, "24h", "ga4", "")
		p.Select(`[data-testid="filter-jurisdiction"]`, "eea")
		checkDashboard(t, p, fx24, "24h", "ga4", "eea")
		if !strings.HasPrefix(p.TestIDText("chart-note"), "The chart shows all vendors and locations") {
			t.Errorf("filtered chart note: %q", p.TestIDText("chart-note"))
		}
		if loc := Eval[string](p, `location.search`); loc != "?window=24h&vendor=ga4&jurisdiction=eea" {
			t.Errorf("address shows %q", loc)
		}
		p.Screenshot("dashboard-24h-ga4-eea-1280.png")

		// An unknown vendor shows its key, and an unknown reason its key with the
		// generic sentence.
		p.Select(`[data-testid="filter-jurisdiction"]`, "")
		p.Select(`[data-testid="filter-vendor"]`, "acme_pixel")
		checkDashboard(t, p, fx24, "24h", "acme_pixel", "")
		if rows := p.Rows("reason-row-rate_limited"); len(rows) != 1 {
			t.Error("the unknown reason rate_limited is not listed for acme_pixel")
		}

		// A filter that matches nothing in the window shows the empty state; clicking a
		// vendor's name in the table filters by it; the filters survive a reload.
		p.Select(`[data-testid="filter-vendor"]`, "linkedin")
		p.Select(`[data-testid="filter-jurisdiction"]`, "br")
		p.WaitFor(loaded("24h", "empty"), 5*time.Second)
		if got := p.TestIDText("empty"); !strings.Contains(got, "No hits match these filters") {
			t.Errorf("empty filter result shows %q", got)
		}
		p.Click(`[data-testid="clear-filters"]`)
		p.WaitFor(loaded("24h", "ready"), 5*time.Second)
		checkDashboard(t, p, fx24, "24h", "", "")
		p.Click(`[data-testid="vendor-row-meta_pixel"] [data-col="name"] button`)
		checkDashboard(t, p, fx24, "24h", "meta_pixel", "")
		p.Navigate(srv.URL + "/dashboard?window=24h&vendor=ga4&jurisdiction=uk")
		p.WaitFor(loaded("24h", "ready"), 10*time.Second)
		checkDashboard(t, p, fx24, "24h", "ga4", "uk")
	})

	t.Run("NarrowScreen", func(t *testing.T) {
		srv := newStatsServer(t, map[string]string{"15m": "stats-15m.json"})
		p := openPage(t, browser, PageOptions{Width: 390, Height: 844, Timezone: "UTC"})
		p.Navigate(srv.URL + "/dashboard?window=15m")
		p.WaitFor(loaded("15m", "ready"), 10*time.Second)
		checkDashboard(t, p, fx15, "15m", "", "")
		checkFits(t, p)
		p.Screenshot("dashboard-15m-390.png")
	})

	t.Run("FailingStatsThenRecovery", func(t *testing.T) {
		srv := newStatsServer(t, map[string]string{"15m": ""})
		p := openPage(t, browser, utc)
		// Chromium logs each failed request; those for /api/stats are what this test
		// causes. Anything else still fails it.
		statsFailure := regexp.MustCompile(`^browser log \[network\] Failed to load resource: the server responded with a status of 500 \(Internal Server Error\) \(http://127\.0\.0\.1:\d+/api/stats\?window=15m\)$`)
		p.Allow(statsFailure.MatchString)

		p.Navigate(srv.URL + "/dashboard?window=15m")
		p.WaitFor(dashboardSel+`[data-state="error"]`, 10*time.Second)
		msg := p.TestIDText("error")
		for _, want := range []string{"The numbers could not be loaded.", "HTTP 500", `It said: "stats unavailable".`, "tries again every 15 seconds"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error message %q lacks %q", msg, want)
			}
		}
		if p.TestIDVisible("count-total") {
			t.Error("numbers are shown although none were ever loaded")
		}
		p.Screenshot("dashboard-error-1280.png")

		// The page refreshes by itself every 15 s, so it recovers without a reload.
		srv.set("15m", "stats-15m.json")
		start := time.Now()
		p.WaitFor(loaded("15m", "ready"), 25*time.Second)
		t.Logf("recovered %v after the server did", time.Since(start).Round(time.Second))
		if p.TestIDVisible("error") {
			t.Error("the error message stays after a good answer")
		}
		checkDashboard(t, p, fx15, "15m", "", "")
		if n := len(srv.asked()); n < 2 {
			t.Errorf("/api/stats was asked %d times, want a refresh", n)
		}

		// A failure after good numbers keeps them, marked with their time.
		srv.set("15m", "")
		p.WaitFor(loaded("15m", "error"), 25*time.Second)
		if msg := p.TestIDText("error"); !strings.Contains(msg, "The numbers below are from 11:00:37.") {
			t.Errorf("error over stale numbers: %q", msg)
		}
		if got := p.TestIDText("count-total"); got != "834" {
			t.Errorf("stale total shows %q, want 834", got)
		}
	})

	t.Run("EmptyWindow", func(t *testing.T) {
		srv := newStatsServer(t, map[string]string{"15m": "stats-empty.json", "1h": "stats-empty.json"})
		p := openPage(t, browser, utc)
		// With no window in the address the page shows the last hour, at /dashboard/ too.
		p.Navigate(srv.URL + "/dashboard/")
		p.WaitFor(loaded("1h", "empty"), 10*time.Second)
		if loc := Eval[string](p, `location.pathname + location.search`); loc != "/dashboard/?window=1h" {
			t.Errorf("address shows %q, want /dashboard/?window=1h", loc)
		}
		p.Click(`[data-testid="window-15m"]`)
		p.WaitFor(loaded("15m", "empty"), 10*time.Second)
		if got := p.TestIDText("empty"); !strings.HasPrefix(got, "No hits in this window yet.") {
			t.Errorf("empty state shows %q", got)
		}
		for id, want := range map[string]string{"count-total": "0", "count-drop": "0", "share-forward": "–", "share-drop": "–"} {
			if got := p.TestIDText(id); got != want {
				t.Errorf("%s: %q, want %q", id, got, want)
			}
		}
		if p.TestIDVisible("vendor-table") || p.TestIDVisible("chart") {
			t.Error("tables or chart shown for an empty window")
		}
		p.Screenshot("dashboard-empty-1280.png")
	})
}
