package dashboard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/rules"
)

// serveTest runs h on a real fasthttp server on a free loopback port and returns its base
// URL. The server stops when the test ends.
func serveTest(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		// Shutdown waits for open connections to go idle; a browser may hold one it
		// opened ahead of need (it is idle only after a first request), so do not wait
		// for long. Shutdown closes the listener only once Serve has taken it, so close
		// it here too in case the test ended before Serve started.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown: %v", err)
		}
		ln.Close()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return "http://" + ln.Addr().String()
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func checkSecurityHeaders(t *testing.T, what string, r response) {
	t.Helper()
	if got := r.header.Get("Content-Security-Policy"); got != CSP {
		t.Errorf("%s: Content-Security-Policy = %q, want %q", what, got, CSP)
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", what, got)
	}
	if got := r.header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("%s: Cache-Control = %q, want no-cache", what, got)
	}
}

func TestServesPageAndAssets(t *testing.T) {
	base := serveTest(t, Handler())
	index := do(t, "GET", base+"/dashboard", nil)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/dashboard", "text/html; charset=utf-8", `data-testid="dashboard"`},
		{"/dashboard/", "text/html; charset=utf-8", `data-testid="dashboard"`},
		{"/dashboard?window=24h&vendor=ga4", "text/html; charset=utf-8", `data-testid="dashboard"`},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "/api/stats?window="},
		{"/dashboard/app.css", "text/css; charset=utf-8", "--forward"},
		{"/dashboard/favicon.svg", "image/svg+xml", "<svg"},
	} {
		r := do(t, "GET", base+tc.path, nil)
		if r.status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", tc.path, r.status)
			continue
		}
		if got := r.header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if !strings.Contains(r.body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		if r.header.Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", tc.path)
		}
		checkSecurityHeaders(t, "GET "+tc.path, r)
		if strings.HasPrefix(tc.path, "/dashboard/") && tc.contentType == index.header.Get("Content-Type") && r.body != index.body {
			t.Errorf("GET %s differs from GET /dashboard", tc.path)
		}
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	base := serveTest(t, Handler())
	for _, p := range []string{
		"/dashboard/nope.js", "/dashboard/index.html/", "/dashboard/assets/app.js",
		"/dashboard/../dashboard/app.jsx", "/dashboardx", "/", "/api/stats",
	} {
		r := do(t, "GET", base+p, nil)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, r.status)
		}
		checkSecurityHeaders(t, "GET "+p, r)
	}
}

func TestMethods(t *testing.T) {
	base := serveTest(t, Handler())
	get := do(t, "GET", base+"/dashboard/app.js", nil)

	head := do(t, "HEAD", base+"/dashboard/app.js", nil)
	if head.status != http.StatusOK {
		t.Fatalf("HEAD: status %d, want 200", head.status)
	}
	if head.body != "" {
		t.Errorf("HEAD: body of %d bytes, want none", len(head.body))
	}
	if got, want := head.header.Get("Content-Length"), get.header.Get("Content-Length"); got != want || want == "" {
		t.Errorf("HEAD: Content-Length %q, GET has %q", got, want)
	}
	if got := head.header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD: Content-Type %q", got)
	}

	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/dashboard", "/dashboard/app.css"} {
			r := do(t, m, base+p, nil)
			if r.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, p, r.status)
			}
			if got := r.header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q, want \"GET, HEAD\"", m, p, got)
			}
			checkSecurityHeaders(t, m+" "+p, r)
		}
	}
}

func TestConditionalGet(t *testing.T) {
	base := serveTest(t, Handler())
	first := do(t, "GET", base+"/dashboard/app.css", nil)
	etag := first.header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
		t.Fatalf("ETag %q is not a quoted hex digest", etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		r := do(t, "GET", base+"/dashboard/app.css", map[string]string{"If-None-Match": inm})
		if r.status != http.StatusNotModified || r.body != "" {
			t.Errorf("If-None-Match %s: status %d, body %d bytes; want 304 and none", inm, r.status, len(r.body))
		}
		if r.header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: 304 lacks the ETag", inm)
		}
	}
	r := do(t, "GET", base+"/dashboard/app.css", map[string]string{"If-None-Match": `"stale"`})
	if r.status != http.StatusOK || r.body != first.body {
		t.Errorf("stale If-None-Match: status %d, want 200 with the body", r.status)
	}
	if other := do(t, "GET", base+"/dashboard/app.js", nil).header.Get("ETag"); other == etag {
		t.Errorf("app.js and app.css share the ETag %s", etag)
	}
}

// TestPageFitsCSP checks statically what the browser would refuse under the CSP: inline
// scripts, inline style blocks or attributes, inline event handlers, and any reference to
// another origin.
func TestPageFitsCSP(t *testing.T) {
	html := string(assets["/dashboard"].body)
	js := string(assets["/dashboard/app.js"].body)
	css := string(assets["/dashboard/app.css"].body)

	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)(?:src|href)\s*=\s*"(?:https?:)?//`),
		regexp.MustCompile(`(?i)javascript:`),
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("index.html has %q, which the CSP forbids", m)
		}
	}
	// Every local script and style sheet the page names must be served.
	for _, m := range regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(html, -1) {
		if assets[m[1]] == nil {
			t.Errorf("index.html refers to %s, which is not served", m[1])
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", `setAttribute("style"`, "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(js, "http://www.w3.org/2000/svg", ""), bad) {
			t.Errorf("app.js uses %q", bad)
		}
	}
	if strings.Contains(css, "@import") || strings.Contains(css, "url(") {
		t.Error("app.css loads another resource")
	}
}

// TestTestIDs keeps the data-testid values that browser tests read in the page or script.
func TestTestIDs(t *testing.T) {
	html := string(assets["/dashboard"].body)
	js := string(assets["/dashboard/app.js"].body)
	for _, id := range []string{
		"dashboard", "window-15m", "window-1h", "window-24h", "filter-vendor", "filter-jurisdiction",
		"error", "error-detail", "loading", "empty", "summary", "clear-filters",
		"count-total", "share-forward", "share-anonymise", "share-drop", "count-forward", "count-anonymise", "count-drop",
		"chart", "chart-note", "vendor-table", "jurisdiction-table", "reason-table", "reasons-title", "reasons-note", "reasons-none",
		"instance-version", "instance-config-version", "instance-config-loaded", "instance-geoip", "updated-at",
	} {
		if !strings.Contains(html, `data-testid="`+id+`"`) {
			t.Errorf("index.html lacks data-testid=%q", id)
		}
	}
	for _, prefix := range []string{"'vendor-row-'", "'jurisdiction-row-'", "'reason-row-'"} {
		if !strings.Contains(js, prefix) {
			t.Errorf("app.js lacks the row prefix %s", prefix)
		}
	}
}

// TestEveryNameHasWords makes a new reason, vendor or jurisdiction of the proxy fail here
// until the page explains it in words; an unknown key would otherwise show as its code.
func TestEveryNameHasWords(t *testing.T) {
	js := string(assets["/dashboard/app.js"].body)
	reasons := append(rules.ReasonNames(),
		// from the consent signal decoders (TCF, GPP, USP, CMP)
		"tcf_invalid", "tcf_denied", "gpp_opt_out", "usp_opt_out", "cmp_denied", "cmp_consent_granted")
	for _, r := range reasons {
		if !strings.Contains(js, `"`+r+`": {`) {
			t.Errorf("app.js has no explanation for the reason %q", r)
		}
	}
	vendors := []string{"ga4", "meta_pixel", "google_ads", "ms_uet", "linkedin", "tiktok", "matomo", "plausible"}
	for _, e := range rules.Builtin() {
		vendors = append(vendors, e.Vendor)
	}
	for _, v := range vendors {
		if !strings.Contains(js, `"`+v+`": "`) {
			t.Errorf("app.js has no display name for the vendor %q", v)
		}
	}
	groups := []string{geo.OtherGroup, geo.UnknownGroup}
	for _, g := range geo.BuiltinGroups() {
		groups = append(groups, g.Name)
	}
	for _, g := range groups {
		if !strings.Contains(js, `"`+g+`": { name: `) {
			t.Errorf("app.js has no display name for the jurisdiction %q", g)
		}
	}
}
