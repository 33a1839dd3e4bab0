//go:build browser

package dashboard

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// scopeServer serves the dashboard and a /api/stats that answers by scope: "" (the
// server's default) and "fleet" from fleet, "instance" from instance, a fixture name or
// "" for the 503 a fleet query gets when Redis is down.
type scopeServer struct {
	URL string

	mu              sync.Mutex
	fleet, instance string
	asked           []string // scope parameters, in order
}

func newScopeServer(t *testing.T, fleet, instance string) *scopeServer {
	t.Helper()
	s := &scopeServer{fleet: fleet, instance: instance}
	dash := Handler()
	s.URL = serveTest(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/api/stats" {
			dash(ctx)
			return
		}
		scope := string(ctx.QueryArgs().Peek("scope"))
		s.mu.Lock()
		s.asked = append(s.asked, scope)
		name := s.fleet
		if scope == "instance" {
			name = s.instance
		}
		s.mu.Unlock()
		if name == "" {
			ctx.SetContentType("application/json")
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"error":"fleet figures unavailable: Redis did not answer (dial tcp: connection refused); scope=instance shows this instance's figures"}`)
			return
		}
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	})
	return s
}

func (s *scopeServer) setFleet(name string) {
	s.mu.Lock()
	s.fleet = name
	s.mu.Unlock()
}

func scoped(window, scope, state string) string {
	return loaded(window, state) + `[data-scope="` + scope + `"]`
}

// TestBrowserFleetScope: with fleet figures the page shows them by default, says how many
// instances reported, switches to this instance and back, and when the fleet cannot be
// read says so and still lets the reader switch to this instance.
func TestBrowserFleetScope(t *testing.T) {
	browser := startBrowser(t)
	fleet := loadFixture(t, "stats-fleet-15m.json")
	inst := loadFixture(t, "stats-instance-15m.json")
	srv := newScopeServer(t, "stats-fleet-15m.json", "stats-instance-15m.json")
	p := openPage(t, browser, PageOptions{Timezone: "UTC"})
	p.Navigate(srv.URL + "/dashboard?window=15m")
	p.WaitFor(scoped("15m", "fleet", "ready"), 10*time.Second)

	pressed := func(id string) string {
		return Eval[string](p, `document.querySelector('[data-testid="`+id+`"]').getAttribute('aria-pressed')`)
	}
	if !p.TestIDVisible("scope-control") || pressed("scope-fleet") != "true" || pressed("scope-instance") != "false" {
		t.Errorf("scope control visible %v, fleet pressed %s, instance %s: want it shown, on the fleet", p.TestIDVisible("scope-control"), pressed("scope-fleet"), pressed("scope-instance"))
	}
	if got := p.TestIDText("fleet-instances"); got != "3" {
		t.Errorf("instance count shows %q, want 3", got)
	}
	if got, want := p.TestIDText("scope-note"), "Figures from 3 consentgate instances that reported in the last 15 minutes. Each sends its figures every 10 seconds, so the last few seconds may not be in yet."; got != want {
		t.Errorf("scope note %q, want %q", got, want)
	}
	checkDashboard(t, p, fleet, "15m", "", "")
	if got := p.TestIDText("count-total"); got != "834" {
		t.Errorf("fleet total shows %q, want 834", got)
	}
	checkFits(t, p)
	p.Screenshot("fleet-15m-1280.png")

	p.Click(`[data-testid="scope-instance"]`)
	p.WaitFor(scoped("15m", "instance", "ready"), 10*time.Second)
	checkDashboard(t, p, inst, "15m", "", "")
	if got := p.TestIDText("count-total"); got != "264" {
		t.Errorf("this instance's total shows %q, want 264", got)
	}
	if pressed("scope-instance") != "true" || pressed("scope-fleet") != "false" {
		t.Error("the control does not show this instance as chosen")
	}
	if got := p.TestIDText("scope-note"); !strings.HasPrefix(got, "Figures from this consentgate instance only") || p.TestIDText("fleet-instances") != "" {
		t.Errorf("scope note for this instance: %q", got)
	}
	if loc := Eval[string](p, `location.search`); loc != "?window=15m&scope=instance" {
		t.Errorf("address shows %q", loc)
	}
	// Filters and windows keep the scope.
	p.Select(`[data-testid="filter-vendor"]`, "ga4")
	checkDashboard(t, p, inst, "15m", "ga4", "")
	p.Screenshot("fleet-this-instance-ga4-1280.png")
	p.Select(`[data-testid="filter-vendor"]`, "")

	// Redis down: the fleet cannot be read; the page says so and how to see this instance.
	srv.setFleet("")
	p.Allow(regexp.MustCompile(`^browser log \[network\] Failed to load resource: the server responded with a status of 503 \(Service Unavailable\) \(http://127\.0\.0\.1:\d+/api/stats\?window=15m&scope=fleet\)$`).MatchString)
	p.Click(`[data-testid="scope-fleet"]`)
	p.WaitFor(dashboardSel+`[data-state="error"]`, 10*time.Second)
	msg := p.TestIDText("error")
	for _, want := range []string{"HTTP 503", "fleet figures unavailable", `Choose "This instance" above`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if !p.TestIDVisible("scope-control") || p.TestIDVisible("count-total") {
		t.Error("with the fleet unreadable, the scope control must stay and no fleet numbers show")
	}
	p.Screenshot("fleet-unavailable-1280.png")
	p.Click(`[data-testid="scope-instance"]`)
	p.WaitFor(scoped("15m", "instance", "ready"), 10*time.Second)
	checkDashboard(t, p, inst, "15m", "", "")

	// Reloaded on the fleet address, with Redis back: the fleet again.
	srv.setFleet("stats-fleet-15m.json")
	p.Navigate(srv.URL + "/dashboard?window=15m&scope=fleet")
	p.WaitFor(scoped("15m", "fleet", "ready"), 10*time.Second)
	checkDashboard(t, p, fleet, "15m", "", "")
}

// TestBrowserNoFleet: an instance without fleet figures (the memory store) shows no
// scope control and no scope note.
func TestBrowserNoFleet(t *testing.T) {
	browser := startBrowser(t)
	srv := newStatsServer(t, map[string]string{"15m": "stats-15m.json"})
	p := openPage(t, browser, PageOptions{Timezone: "UTC"})
	p.Navigate(srv.URL + "/dashboard?window=15m")
	p.WaitFor(loaded("15m", "ready"), 10*time.Second)
	if p.TestIDVisible("scope-control") || p.TestIDVisible("scope-note") {
		t.Error("a scope control or note shows on an instance without fleet figures")
	}
	if asked := srv.asked(); len(asked) == 0 {
		t.Error("no stats request")
	}
}

// TestBrowserFleetNarrowScreen: the extra control still fits a phone's width.
func TestBrowserFleetNarrowScreen(t *testing.T) {
	browser := startBrowser(t)
	srv := newScopeServer(t, "stats-fleet-15m.json", "stats-instance-15m.json")
	p := openPage(t, browser, PageOptions{Width: 390, Height: 844, Timezone: "UTC"})
	p.Navigate(srv.URL + "/dashboard?window=15m")
	p.WaitFor(scoped("15m", "fleet", "ready"), 10*time.Second)
	checkDashboard(t, p, loadFixture(t, "stats-fleet-15m.json"), "15m", "", "")
	checkFits(t, p)
	p.Screenshot("fleet-15m-390.png")
}
