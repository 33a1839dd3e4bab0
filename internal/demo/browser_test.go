//go:build browser

package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// startDemo runs the demo (sink, proxy binary, shop) for one test.
func startDemo(t *testing.T, o Options) *Demo {
	t.Helper()
	o.Binary = binary
	d, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consentgate output:\n%s", d.Proxy.Output())
		}
		if err := d.Stop(); err != nil {
			t.Errorf("stopping the demo: %v", err)
		}
	})
	return d
}

// allowExpected allows what the demo page does on purpose: GET /consent answers 404
// while nothing is stored, which the browser logs as a failed load.
func allowExpected(p *Page) {
	p.Allow(func(m string) bool { return strings.Contains(m, "/consent") && strings.Contains(m, "404") })
}

// outcome is what one view of the page did at the vendors.
type outcome struct{ GA4, Meta string }

var (
	anonymisedDropped = outcome{"anonymised", "none"}
	forwardedBoth     = outcome{"forwarded", "forwarded"}
	forwardedNoMeta   = outcome{"forwarded", "none"}
)

// view waits for the page's view n (its pixel answered) and for its GA4 beacon at the
// sink, and says what each vendor got: "forwarded" (the page's own IDs and URL, click ID
// included), "anonymised" (a pseudonym or no ID, the click ID gone) or "none".
func view(t *testing.T, p *Page, d *Demo, n int) outcome {
	t.Helper()
	after := p.sinkBase
	tr := Await[struct {
		N        int
		CID, FBP string
	}](p, fmt.Sprintf("demo.waitTrack(%d)", n), 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	title := fmt.Sprintf("Demo shop view %d", n)
	ga, err := d.Sink.Wait(ctx, after, func(h Hit) bool { return h.Vendor == "ga4" && h.Param("dt") == title })
	if err != nil {
		t.Fatalf("view %d: the GA4 beacon did not reach the sink: %v", n, err)
	}
	var o outcome
	click := "gclid=Cj0DemoClickId"
	switch {
	case ga.Param("cid") == tr.CID && strings.Contains(ga.Param("dl"), click):
		o.GA4 = "forwarded"
	case ga.Param("cid") != tr.CID && !strings.Contains(ga.Query+ga.Body, tr.CID) && !strings.Contains(ga.Param("dl"), "gclid"):
		o.GA4 = "anonymised"
	default:
		t.Fatalf("view %d: GA4 hit neither forwarded nor anonymised: %+v (page cid %s)", n, ga, tr.CID)
	}
	if ga.Cookie {
		t.Errorf("view %d: a cookie reached GA4", n)
	}
	o.Meta = "none"
	for _, h := range d.Sink.Hits()[after:] {
		if h.Vendor != "meta" || h.Param("cd[view]") != fmt.Sprint(n) {
			continue
		}
		if h.Param("fbp") != tr.FBP || !strings.Contains(h.Param("dl"), click) {
			t.Fatalf("view %d: Meta hit not intact: %+v", n, h)
		}
		o.Meta = "forwarded"
	}
	return o
}

// receipt is one proof-of-consent receipt as the admin API gives it.
type receipt struct {
	Action   string            `json:"action"`
	Purposes map[string]string `json:"purposes"`
	TCF      string            `json:"tcf"`
	Source   string            `json:"source"`
}

func (r receipt) String() string {
	if r.Action == "withdraw" {
		return "withdraw"
	}
	s := fmt.Sprintf("statistics=%s marketing=%s", r.Purposes["statistics"], r.Purposes["marketing"])
	if r.TCF != "" {
		s += " +tcf"
	}
	return s
}

// receipts reads the visitor's receipts the way the demo page's panel does.
func receipts(t *testing.T, p *Page) []string {
	t.Helper()
	j := Await[struct{ Receipts []receipt }](p, `fetch('/demo/receipts').then(r => r.json())`, 10*time.Second)
	out := make([]string, len(j.Receipts))
	for i, r := range j.Receipts {
		out[i] = r.String()
	}
	return out
}

func expect[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func expectList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// flow is one banner's accept / reject / withdraw run and what each step must do.
type flow struct {
	cmp                        string
	start, reject, accept, out outcome
	receipts                   []string // after reject, accept, withdraw
}

var (
	deny       = "statistics=denied marketing=denied"
	grant      = "statistics=granted marketing=granted"
	optInFlows = []flow{
		{"own", anonymisedDropped, anonymisedDropped, forwardedBoth, anonymisedDropped, []string{deny, grant, "withdraw"}},
		{"cookiebot", anonymisedDropped, anonymisedDropped, forwardedBoth, anonymisedDropped, []string{deny, grant, deny}},
		{"onetrust", anonymisedDropped, anonymisedDropped, forwardedBoth, anonymisedDropped, []string{deny, grant, deny}},
		{"tcf", anonymisedDropped, anonymisedDropped, forwardedBoth, anonymisedDropped, []string{deny + " +tcf", grant + " +tcf", deny + " +tcf"}},
		{"consentmode", anonymisedDropped, anonymisedDropped, forwardedBoth, anonymisedDropped, []string{deny, grant, deny}},
	}
	// GPP carries US opt-outs, which speak of marketing only, and grants nothing in an
	// opt_in jurisdiction: it runs where it applies, an opt_out one, where analytics goes
	// through unless refused.
	gppFlow = flow{"gpp", forwardedBoth, forwardedNoMeta, forwardedBoth, forwardedNoMeta,
		[]string{"statistics=unset marketing=denied", "statistics=unset marketing=granted", "statistics=unset marketing=denied"}}
)

// TestBrowserDemo is the whole loop in a real browser, for the shop's own banner
// (consentgate.set) and for each bridge against a stand-in for its banner's API: reject →
// the GA4 beacon reaches the sink anonymised and the Meta pixel not at all; accept → both
// intact; withdraw → back; and the receipts show each change.
func TestBrowserDemo(t *testing.T) {
	browser := startBrowser(t, nil)
	optIn := startDemo(t, Options{})
	optOut := startDemo(t, Options{UnknownRegime: "opt_out"})
	for _, f := range append(optInFlows, gppFlow) {
		t.Run(f.cmp, func(t *testing.T) {
			d := optIn
			if f.cmp == "gpp" {
				d = optOut
			}
			p := openPage(t, browser)
			p.sinkBase = len(d.Sink.Hits())
			allowExpected(p)
			p.Navigate(d.ShopURL + "/?cmp=" + f.cmp)
			p.WaitFor(`[data-testid="hits"]`, 10*time.Second)
			expect(t, "regime", Eval[string](p, "consentgate.regime"), map[bool]string{true: "opt_out", false: "opt_in"}[f.cmp == "gpp"])
			expect(t, "jurisdiction", Eval[string](p, "consentgate.jurisdiction"), "unknown")
			if f.cmp != "own" {
				bridges := Eval[[]string](p, "consentgate.bridges")
				want := map[string]string{"cookiebot": "cookiebot", "onetrust": "onetrust", "tcf": "tcf", "gpp": "gpp", "consentmode": ""}[f.cmp]
				if want != "" && !strings.Contains(strings.Join(bridges, ","), want) {
					t.Errorf("bridges %v, want %s among them", bridges, want)
				}
			}
			expect(t, "view 1, no choice yet", view(t, p, d, 1), f.start)
			expectList(t, "receipts before any choice", receipts(t, p), nil)

			steps := []struct {
				button string
				want   outcome
				shot   string
			}{{"reject", f.reject, "rejected"}, {"accept", f.accept, "accepted"}, {"withdraw", f.out, "withdrawn"}}
			for i, s := range steps {
				p.Click(`[data-testid="` + s.button + `"]`)
				expect(t, fmt.Sprintf("view %d, after %s", i+2, s.button), view(t, p, d, i+2), s.want)
				expectList(t, "receipts after "+s.button, receipts(t, p), f.receipts[:i+1])
				if f.cmp == "own" || f.cmp == "cookiebot" {
					// The panels as a newcomer sees them: the rows of this view and the receipts.
					Await[bool](p, `demo.refresh(), new Promise(r => setTimeout(() => r(true), 300))`, 5*time.Second)
					p.WaitFor(fmt.Sprintf(`[data-testid="hit-ga4-%d"]`, i+2), 10*time.Second)
					p.Screenshot(fmt.Sprintf("demo-%s-%s.png", f.cmp, s.shot))
				}
			}
			// Only the clicks posted: nothing was sent twice.
			expect(t, "receipts in all", len(receipts(t, p)), len(f.receipts))
		})
	}
}

// TestBrowserChoiceBeforeLoad: the banner already has a choice (from an earlier visit)
// when consentgate.js loads, here after the page has loaded; the bridge picks it up and
// posts it before the first view. Reloading the page posts nothing: the proxy holds that
// choice and filled it into the script.
func TestBrowserChoiceBeforeLoad(t *testing.T) {
	browser := startBrowser(t, nil)
	optIn := startDemo(t, Options{})
	optOut := startDemo(t, Options{UnknownRegime: "opt_out"})
	for _, tc := range []struct {
		cmp, prior string
		want       outcome
		receipt    string
	}{
		{"cookiebot", "accept", forwardedBoth, grant},
		{"cookiebot", "reject", anonymisedDropped, deny},
		{"onetrust", "accept", forwardedBoth, grant},
		{"tcf", "accept", forwardedBoth, grant + " +tcf"},
		{"tcf", "reject", anonymisedDropped, deny + " +tcf"},
		{"consentmode", "accept", forwardedBoth, grant},
		{"gpp", "reject", forwardedNoMeta, "statistics=unset marketing=denied"},
	} {
		t.Run(tc.cmp+"-"+tc.prior, func(t *testing.T) {
			d := optIn
			if tc.cmp == "gpp" {
				d = optOut
			}
			p := openPage(t, browser)
			p.sinkBase = len(d.Sink.Hits())
			allowExpected(p)
			p.Navigate(d.ShopURL + "/?late=1&cmp=" + tc.cmp + "&prior=" + tc.prior)
			expect(t, "view 1", view(t, p, d, 1), tc.want)
			expectList(t, "receipts", receipts(t, p), []string{tc.receipt})
			// Same choice on the next page: nothing posted, same outcome.
			p.Navigate(d.ShopURL + "/?cmp=" + tc.cmp + "&prior=" + tc.prior)
			Await[bool](p, "demo.waitTrack(1).then(() => true)", 20*time.Second)
			expectList(t, "receipts after a reload", receipts(t, p), []string{tc.receipt})
		})
	}
}

// TestBrowserPlausibleTracker loads Plausible's own tracker (the npm package, vendored
// in testdata) in the page, pointed at the proxy. Served from the page's own origin (the
// site routes a path to the proxy), without consent the sink gets the pageview
// anonymised (no click ID, the IP cut to its /24), with statistics granted intact. From
// another origin the tracker's fetch carries no cookies (credentials "same-origin"), so
// the proxy never learns the visitor's choice and anonymises either way: Plausible's
// tracker needs the proxy on the page's own origin for a consent to count.
func TestBrowserPlausibleTracker(t *testing.T) {
	var proxy *url.URL
	mux := http.NewServeMux()
	mux.Handle("/test/plausible-tracker/", http.StripPrefix("/test/", http.FileServer(http.Dir("testdata"))))
	// The site's own origin routes /test/cg/ to the proxy, as a site's front server would.
	mux.Handle("/test/cg/", http.StripPrefix("/test/cg", &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(proxy)
		r.Out.Host = r.In.Host
	}}))
	mux.HandleFunc("/test/plausible.html", func(w http.ResponseWriter, r *http.Request) {
		base := proxy.String()
		if r.URL.Query().Get("origin") == "same" {
			base = "/test/cg"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><link rel="icon" href="data:,">
<script src="%[1]s/consentgate.js" data-endpoint="%[1]s/consent"></script>
<script type="module">
import { init, track } from '/test/plausible-tracker/plausible.js';
// The tracker leaves out automated browsers (navigator.webdriver) unless this is set,
// and local addresses unless captureOnLocalhost.
window.__plausible = true;
init({ domain: 'shop.example', endpoint: %[2]s, autoCapturePageviews: false, captureOnLocalhost: true, logging: false });
window.pageview = (n) => new Promise((resolve) => track('pageview', {
  url: location.origin + '/landing/' + n + '?fbclid=IwARDemoClick&utm_source=newsletter', callback: resolve }));
window.ready = true;
</script></head><body>plausible</body></html>`, base, jsonString(base+"/api/event"))
	})
	d := startDemo(t, Options{Extra: mux})
	proxy, _ = url.Parse(d.ProxyURL)
	browser := startBrowser(t, nil)
	// seen are the sink's hits a subtest has taken already (the subtests share the sink).
	seen := map[int]bool{}

	for _, tc := range []struct {
		origin  string
		granted bool // statistics granted reaches the proxy
	}{{"same", true}, {"cross", false}} {
		t.Run(tc.origin, func(t *testing.T) {
			p := openPage(t, browser)
			p.sinkBase = len(d.Sink.Hits())
			allowExpected(p)
			p.Navigate(d.ShopURL + "/test/plausible.html?origin=" + tc.origin)
			Await[bool](p, `new Promise(r => { const c = () => window.ready ? r(true) : setTimeout(c, 20); c(); })`, 10*time.Second)
			n := 0
			event := func() (Hit, string) {
				t.Helper()
				n++
				res := Await[map[string]any](p, fmt.Sprintf("pageview(%d)", n), 20*time.Second)
				if res["status"] == nil {
					t.Fatalf("the tracker's request failed: %v", res)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				h, err := d.Sink.Wait(ctx, 0, func(h Hit) bool {
					u, _ := h.JSON()["u"].(string)
					return h.Vendor == "plausible" && h.JSON()["n"] == "pageview" && strings.Contains(u, fmt.Sprintf("/landing/%d?", n)) && !seen[h.Seq]
				})
				if err != nil {
					t.Fatalf("pageview %d did not reach the sink: %v", n, err)
				}
				seen[h.Seq] = true
				m := h.JSON()
				if m["n"] != "pageview" || m["d"] != "shop.example" {
					t.Fatalf("pageview %d: sink got %+v", n, h)
				}
				u, _ := m["u"].(string)
				return h, u
			}
			anonymised := func(what string, h Hit, u string) {
				t.Helper()
				if strings.Contains(u, "fbclid") || !strings.Contains(u, "utm_source=newsletter") || h.ForwardedFor != "127.0.0.0" {
					t.Errorf("%s: url %q, X-Forwarded-For %q; want the click ID gone, utm_source kept, the /24 127.0.0.0", what, u, h.ForwardedFor)
				}
			}
			h, u := event()
			anonymised("no consent", h, u)
			Await[map[string]any](p, `consentgate.set({statistics: true})`, 10*time.Second)
			h, u = event()
			if !tc.granted {
				anonymised("statistics granted, tracker on another origin", h, u)
				return
			}
			if !strings.Contains(u, "fbclid=IwARDemoClick") || h.ForwardedFor != "127.0.0.1" {
				t.Errorf("statistics granted: url %q, X-Forwarded-For %q; want it intact, the visitor's 127.0.0.1", u, h.ForwardedFor)
			}
		})
	}
}

// TestBrowserCrossOrigin: the page and the proxy are two origins of one site. With the
// page's origin in allowed_origins (here www.shop.test and t.shop.test, both on this
// machine) the consent API answers it with credentials and the cookie the proxy sets
// reaches it with every tag; without, the browser refuses the call (CORS) before
// anything is written, and the hits stay as for a visitor who chose nothing.
func TestBrowserCrossOrigin(t *testing.T) {
	t.Run("allowed", func(t *testing.T) {
		shopAddr, proxyAddr := freeAddr(t), freeAddr(t)
		_, shopPort, _ := strings.Cut(shopAddr, ":")
		_, proxyPort, _ := strings.Cut(proxyAddr, ":")
		shopOrigin := "http://www.shop.test:" + shopPort
		d := startDemo(t, Options{ShopAddr: shopAddr, ProxyAddr: proxyAddr, ShopOrigins: []string{shopOrigin}, ProxyOrigin: "http://t.shop.test:" + proxyPort})
		browser := startBrowser(t, map[string]any{"host-resolver-rules": "MAP *.shop.test 127.0.0.1"})
		p := openPage(t, browser)
		p.sinkBase = len(d.Sink.Hits())
		allowExpected(p)
		p.Navigate(shopOrigin + "/")
		expect(t, "endpoint", Eval[string](p, "consentgate.endpoint"), "http://t.shop.test:"+proxyPort+"/consent")
		expect(t, "view 1", view(t, p, d, 1), anonymisedDropped)
		p.Click(`[data-testid="accept"]`)
		expect(t, "view 2, accepted", view(t, p, d, 2), forwardedBoth)
		// The consent cookie is the proxy host's own, and its receipt is there.
		res, err := chromedp.Call(p.Ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{"http://t.shop.test:" + proxyPort + "/"}})
		if err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, c := range res.Cookies {
			if c.Name == "cg_id" {
				id, _, _ = strings.Cut(c.Value, ".")
				expect(t, "cookie domain", c.Domain, "t.shop.test")
				expect(t, "cookie HttpOnly", c.HTTPOnly, true)
			}
		}
		if id == "" {
			t.Fatalf("no cg_id cookie for t.shop.test: %+v", res.Cookies)
		}
		code, body, err := d.Proxy.Admin("GET", "/admin/consent/"+url.PathEscape(id)+"/history")
		var rs []receipt
		if err != nil || code != 200 || json.Unmarshal(body, &rs) != nil || len(rs) != 1 || rs[0].String() != grant {
			t.Errorf("receipts: %d %s %v", code, body, err)
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		d := startDemo(t, Options{NoAllowedOrigins: true})
		browser := startBrowser(t, nil)
		p := openPage(t, browser)
		p.sinkBase = len(d.Sink.Hits())
		allowExpected(p)
		// The browser reports the refused preflight; that is what this test is about.
		p.Allow(func(m string) bool {
			return strings.Contains(m, "CORS") || strings.Contains(m, "Access-Control") || strings.Contains(m, "Failed to fetch") || strings.Contains(m, "ERR_FAILED")
		})
		p.Navigate(d.ShopURL + "/")
		expect(t, "view 1", view(t, p, d, 1), anonymisedDropped)
		msg := Await[string](p, `consentgate.set({statistics: true, marketing: true}).then(() => 'stored', (e) => 'refused: ' + e.message)`, 10*time.Second)
		if !strings.HasPrefix(msg, "refused") {
			t.Errorf("set from a page not in allowed_origins: %s", msg)
		}
		Await[bool](p, "demo.track('page_view').then(() => true)", 10*time.Second)
		expect(t, "view 2, after the refused call", view(t, p, d, 2), anonymisedDropped)
		expectList(t, "receipts", receipts(t, p), nil)
	})
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

// TestBrowserScriptAPI checks consentgate.js's own API in the page: set refuses what the
// consent API would, get and withdraw answer, the consentgate:change event fires, and
// data-consent-mode-defaults puts the regime's defaults into the dataLayer first, then
// every choice as an update.
func TestBrowserScriptAPI(t *testing.T) {
	browser := startBrowser(t, nil)
	for _, tc := range []struct {
		regime, dflt string
	}{{"opt_in", "denied"}, {"opt_out", "granted"}} {
		t.Run(tc.regime, func(t *testing.T) {
			d := startDemo(t, Options{UnknownRegime: tc.regime})
			p := openPage(t, browser)
			p.sinkBase = len(d.Sink.Hits())
			allowExpected(p)
			p.Navigate(d.ShopURL + "/")
			Await[bool](p, "demo.waitTrack(1).then(() => true)", 20*time.Second)
			for _, bad := range []string{`null`, `{foo: true}`, `{statistics: 'yes'}`, `{marketing: 1}`} {
				got := Await[string](p, `consentgate.set(`+bad+`).then(() => 'stored', (e) => e.name)`, 5*time.Second)
				expect(t, "set("+bad+")", got, "TypeError")
			}
			expect(t, "get before any choice", Await[string](p, `consentgate.get().then((s) => JSON.stringify(s))`, 5*time.Second), "null")
			Eval[bool](p, `window.changes = [], addEventListener('consentgate:change', (e) => changes.push(e.detail.action + ':' + e.detail.source)), true`)
			st := Await[map[string]any](p, `consentgate.set({statistics: true, marketing: false})`, 5*time.Second)
			if ps, _ := st["purposes"].(map[string]any); ps["statistics"] != "granted" || ps["marketing"] != "denied" || ps["preferences"] != "unset" {
				t.Errorf("set answered %v", st)
			}
			got := Await[map[string]any](p, `consentgate.get()`, 5*time.Second)
			if ps, _ := got["purposes"].(map[string]any); ps["statistics"] != "granted" {
				t.Errorf("get answered %v", got)
			}
			if _, ok := got["id"]; ok {
				t.Error("get names the consent ID")
			}
			w := Await[map[string]any](p, `consentgate.withdraw()`, 5*time.Second)
			expect(t, "withdraw", w["withdrawn"], any(true))
			expect(t, "events", Eval[string](p, `changes.join(',')`), "set:api,withdraw:api")
			expect(t, "get after withdrawal", Await[string](p, `consentgate.get().then((s) => JSON.stringify(s))`, 5*time.Second), "null")

			// The dataLayer: the defaults first, then the set (statistics granted, ads
			// denied) and the withdrawal (back to the defaults) as updates.
			dl := Eval[[]string](p, `dataLayer.filter((e) => e[0] === 'consent').map((e) => e[1] + ' ' + e[2].analytics_storage + ' ' + e[2].ad_storage)`)
			want := []string{"default " + tc.dflt + " " + tc.dflt, "update granted denied", "update " + tc.dflt + " " + tc.dflt}
			expectList(t, "Consent Mode commands", dl, want)

			// A second copy of the script on the page stands aside.
			Await[bool](p, `new Promise((resolve, reject) => {
				window.firstCopy = consentgate;
				const s = document.createElement('script');
				s.src = consentgate.endpoint.replace(/consent$/, 'consentgate.js');
				s.onload = () => resolve(window.consentgate === window.firstCopy);
				s.onerror = reject;
				document.head.appendChild(s);
			})`, 10*time.Second)
			expect(t, "the first copy stays", Eval[bool](p, "window.consentgate === window.firstCopy"), true)
		})
	}
}
