//go:build browser

// Browser tests: a real headless Chromium loads the demo shop, clicks its banner, and the
// tests read what reached the sink and the consent receipts. Run with `make test-browser`
// or
//
//	go test -tags browser -count=1 -run Browser -v ./internal/demo
//
// They need Chromium (Debian: apt-get install chromium; CHROMIUM names another binary)
// and build the consentgate binary once. Screenshots go to $ARTIFACTS_DIR, or else to
// internal/demo/testdata/artifacts/.
//
// This file holds the browser helpers, a trimmed copy of telemetry/dashboard's: a
// browser, tabs that collect console errors and exceptions, evaluation, screenshots.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// binary is the consentgate binary the tests run, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consentgate-browser-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "consentgate")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/consentgate").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build consentgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

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

// startBrowser starts a headless Chromium for the test; flags are added to its command
// line (e.g. host-resolver-rules).
func startBrowser(t testing.TB, flags map[string]any) context.Context {
	t.Helper()
	profile := t.TempDir()
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
	for k, v := range flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return browserCtx
}

// Page is a tab in a browser context of its own (its own cookies and storage, as a new
// visitor has). Console errors, uncaught exceptions and error-level browser log entries
// fail the test at its end unless Allow says the test expects them.
type Page struct {
	t   testing.TB
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	allowed  []func(string) bool
	// sinkBase is how many hits the sink held when the page opened: the page's own
	// hits come after it (tests share a demo, one page at a time).
	sinkBase int
}

func openPage(t testing.TB, browserCtx context.Context) *Page {
	t.Helper()
	p := &Page{t: t}
	tabCtx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, 90*time.Second)
	p.Ctx = ctx
	t.Cleanup(func() {
		p.CheckProblems()
		cancel()
	})
	p.do(chromedp.EmulateViewport(1280, 900))
	return p
}

func (p *Page) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
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
		if ev.Entry.Level != cdplog.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("browser log [%s] %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	p.mu.Lock()
	p.problems = append(p.problems, msg)
	p.mu.Unlock()
}

// Allow marks problems the test expects.
func (p *Page) Allow(match func(problem string) bool) {
	p.mu.Lock()
	p.allowed = append(p.allowed, match)
	p.mu.Unlock()
}

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

func (p *Page) Navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression and decodes its value into T.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %.100q: %v (problems so far: %q)", expr, err, p.Problems())
	}
	return v
}

// Await evaluates an expression that yields a Promise and decodes what it resolves to,
// waiting for at most d.
func Await[T any](p *Page, expr string, d time.Duration) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, d)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("awaiting %.100q: %v (problems so far: %q)", expr, err, p.Problems())
	}
	return v
}

func (p *Page) Click(selector string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
}

func (p *Page) WaitFor(selector string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(selector))); err != nil {
		p.t.Fatalf("waiting for %s: %v (problems: %q)", selector, err, p.Problems())
	}
}

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

// Screenshot saves a PNG of the whole page as name in the artifacts directory.
func (p *Page) Screenshot(name string) {
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
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
