//go:build !race

// The race detector makes the leak test ten times slower and adds nothing to it (the
// proxy's concurrency is covered by the other tests): the file is built only without it,
// and `make test` runs it in its first pass.

package proxy

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/canary"
	"github.com/consentgate/consentgate/internal/corpus"
	"github.com/consentgate/consentgate/rules"
)

var leakReport = flag.String("leakreport", "", "write every leak the generative leak test finds to this TSV file")

// leakRegime is one (jurisdiction, consent) under which a hit is sent, and the action
// the policy gives it there.
type leakRegime struct {
	name, ip, cookie, action string
}

// leakCase is one hit of the generative leak test.
type leakCase struct {
	ep     *rules.Endpoint
	base   corpus.Hit
	pos    position
	canary canary.Canary
	enc    string
	regime string // key of the worker's regimes
}

func (c *leakCase) String() string {
	return fmt.Sprintf("%s %s %s=%q %s %s [%s]", c.ep.Name, c.pos.Class, c.pos.Where, c.pos.Name, c.canary.Kind, c.enc, c.regime)
}

// leakPolicy anonymises every purpose without consent in opt-in regimes, so anonymised
// hits exist for every vendor (the default drops marketing).
const leakPolicy = "policy:\n  opt_in:\n    unset:\n      statistics: anonymise\n      marketing: anonymise\n      preferences: anonymise\n"

// leakRegimes are the regimes × actions every case runs under; the first of each action
// runs every encoding, the others the plain one.
var leakRegimes = []leakRegime{
	{name: "forward/eea-granted", ip: ipSE, cookie: "granted", action: "forward"},
	{name: "anonymise/eea-unset", ip: ipSE, action: "anonymise"},
	{name: "drop/eea-denied", ip: ipSE, cookie: "denied", action: "drop"},
	{name: "forward/none", ip: ipUSWA, action: "forward"},
	{name: "forward/opt-out-unset", ip: ipUSCA, action: "forward"},
	{name: "anonymise/unknown-location", ip: ipUnknown, action: "anonymise"},
}

// encodingsFor are the encodings a position is planted in.
func encodingsFor(p position) []string {
	switch p.Where {
	case inQuery:
		return []string{canary.Plain, canary.Percent, canary.Double, canary.Semicolon, canary.Duplicate, canary.NamePct}
	case inBody:
		return []string{canary.Plain, canary.Percent, canary.Double, canary.Semicolon, canary.Gzip, canary.Duplicate, canary.NamePct}
	case inJSON:
		if !strings.ContainsAny(p.Name, ".[") {
			return []string{canary.Plain, canary.JSONEsc, canary.Gzip, canary.Duplicate}
		}
		return []string{canary.Plain, canary.JSONEsc, canary.Gzip}
	case inHeader:
		return []string{canary.Plain, canary.Percent}
	}
	return []string{canary.Plain}
}

// kindsFor are the canary kinds planted at a position: every click ID where click IDs
// travel (a parameter of their own, a URL's query), the other shapes everywhere.
func kindsFor(p position) []string {
	if p.clickOnly {
		return canary.AllKinds()[len(canary.Kinds):]
	}
	switch p.Class {
	case "url:query", "url:utm-semicolon":
		return canary.AllKinds()
	}
	return append(append([]string(nil), canary.Kinds...), "click:gclid")
}

// leakCases lists every case: every catalogue endpoint (on its first corpus hit) ×
// position × canary kind × encoding × regime.
func leakCases(t testing.TB) []leakCase {
	hits, err := corpus.Load("../rules/testdata/hits")
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	bases := map[string]corpus.Hit{}
	for _, h := range hits {
		if _, ok := bases[h.Endpoint]; !ok {
			bases[h.Endpoint] = h
		}
	}
	var cases []leakCase
	serial := 0
	for i := range rules.Builtin() {
		ep := &rules.Builtin()[i]
		base, ok := bases[ep.Name]
		if !ok {
			t.Fatalf("endpoint %s has no corpus hit to plant canaries in", ep.Name)
		}
		for _, pos := range endpointPositions(ep) {
			for _, kind := range kindsFor(pos) {
				for ei, enc := range encodingsFor(pos) {
					for ri, rg := range leakRegimes {
						if ei > 0 && ri >= 3 {
							continue // other regimes: the plain encoding only
						}
						if rg.action != "anonymise" && enc != canary.Plain && enc != canary.Gzip {
							continue // forward and drop: plain and gzip
						}
						if rg.action == "drop" && enc != canary.Plain {
							continue
						}
						serial++
						cases = append(cases, leakCase{ep: ep, base: base, pos: pos,
							canary: canary.New(kind, serial), enc: enc, regime: rg.name})
					}
				}
			}
		}
	}
	return cases
}

// leakFinding is one canary that reached the upstream where it may not.
type leakFinding struct {
	c                   *leakCase
	needle, form, where string
	sent                string
}

func (f leakFinding) class() string {
	k := f.c.canary.Kind
	if strings.HasPrefix(k, "click:") {
		k = "click"
	}
	action, _, _ := strings.Cut(f.c.regime, "/")
	return action + " · " + f.c.pos.Class + " · " + k
}

// TestLeakGenerative is the privacy guarantee, proven: it plants a unique canary (e-mail,
// phone, token, UUID, name, IPv4, IPv6 with and without an embedded IPv4, every click ID)
// in every position of every catalogue endpoint's hit (each allow-listed, identifier,
// reply, unknown and prefixed parameter in query and body; inside URL values: path,
// query, utm_*, fragment, userinfo, host, cross-site; inside text; JSON fields at depth;
// headers incl. identity, CDN and IP headers; cookies; the path; the fragment), in plain,
// percent-encoded, double-encoded, ';'-joined, JSON-escaped and gzip forms, and sends
// each through the real proxy to a recording sink under every regime × action. Then:
//   - drop: nothing reaches the sink;
//   - anonymise: no canary reaches it in any encoding (percent-encoded any number of
//     times, JSON-escaped, base64), except the known limits PRIVACY.md states;
//   - forward: a canary planted in one of the hit's own parameters may reach the vendor
//     in the hit's parameters (that is what the visitor consented to), never in the
//     path, in a header or cookie, or as the IP; one planted anywhere else never.
func TestLeakGenerative(t *testing.T) {
	cases := leakCases(t)
	findings, counts := runLeakCases(t, cases, 3)
	reportLeaks(t, cases, findings, counts)
}

// runLeakCases sends the cases on workers, each with its own proxy and sink so that what
// the sink receives belongs to the one case in flight.
func runLeakCases(t *testing.T, cases []leakCase, workers int) ([]leakFinding, map[string]int) {
	var mu sync.Mutex
	var findings []leakFinding
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wk := newLeakWorker(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wk.close()
			for i := w; i < len(cases); i += workers {
				c := &cases[i]
				fs, outcome := wk.run(c)
				mu.Lock()
				findings = append(findings, fs...)
				counts[outcome]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return findings, counts
}

type leakWorker struct {
	t       testing.TB
	p       *testProxy
	up      *sink
	cookies map[string]string
	conn    net.Conn
	br      *bufio.Reader
}

func newLeakWorker(t testing.TB) *leakWorker {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), leakPolicy))
	return &leakWorker{t: t, p: p, up: up, cookies: map[string]string{
		"granted": p.consentCookie(`{"necessary":true,"preferences":true,"statistics":true,"marketing":true}`),
		"denied":  p.consentCookie(`{"necessary":true,"preferences":false,"statistics":false,"marketing":false}`),
	}}
}

func (w *leakWorker) close() {
	if w.conn != nil {
		w.conn.Close()
	}
}

// run sends one case and judges what the sink received. outcome says what happened, for
// the counts in the report.
func (w *leakWorker) run(c *leakCase) ([]leakFinding, string) {
	var rg leakRegime
	for _, r := range leakRegimes {
		if r.name == c.regime {
			rg = r
		}
	}
	req, err := buildLeakRequest(c.ep, c.base, c.pos, c.canary, c.enc)
	if err != nil {
		return []leakFinding{{c: c, where: "build: " + err.Error()}}, "build error"
	}
	status, err := w.send(req, rg)
	if err != nil {
		return []leakFinding{{c: c, where: "send: " + err.Error()}}, "send error"
	}
	got := w.up.take()
	if status >= 500 {
		return []leakFinding{{c: c, where: fmt.Sprintf("browser got %d", status)}}, "5xx"
	}
	var out []leakFinding
	for _, r := range got {
		if f, ok := judgeLeak(c, rg, r); ok {
			out = append(out, f)
		}
	}
	outcome := rg.action + ": " + strconv.Itoa(len(got)) + " upstream"
	if rg.action == "drop" && len(got) > 0 {
		out = append(out, leakFinding{c: c, where: "a dropped hit went upstream", sent: got[0].Raw})
	}
	return out, outcome
}

// send writes the case's request on the worker's keep-alive connection and reads the
// answer.
func (w *leakWorker) send(req leakRequest, rg leakRegime) (int, error) {
	var b strings.Builder
	b.WriteString(req.method + " " + req.target + " HTTP/1.1\r\nHost: t.example.com\r\n")
	b.WriteString("X-Forwarded-For: " + rg.ip + "\r\n")
	hasUA, hasAL := false, false
	cookie := w.cookies[rg.cookie]
	for _, h := range req.header {
		switch {
		case strings.EqualFold(h[0], "Cookie"):
			if cookie != "" {
				cookie += "; "
			}
			cookie += h[1]
			continue
		case strings.EqualFold(h[0], "User-Agent"):
			hasUA = true
		case strings.EqualFold(h[0], "Accept-Language"):
			hasAL = true
		}
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	if !hasUA {
		b.WriteString("User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36\r\n")
	}
	if !hasAL {
		b.WriteString("Accept-Language: de-DE,de;q=0.9\r\n")
	}
	if cookie != "" {
		b.WriteString("Cookie: " + cookie + "\r\n")
	}
	if len(req.body) > 0 || req.method == "POST" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(req.body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(req.body)
	for attempt := 0; ; attempt++ {
		if w.conn == nil {
			c, err := net.DialTimeout("tcp", w.p.PublicAddr(), 2*time.Second)
			if err != nil {
				return 0, err
			}
			w.conn, w.br = c, bufio.NewReader(c)
		}
		w.conn.SetDeadline(time.Now().Add(10 * time.Second))
		status, keep, err := w.roundTrip(b.String())
		if err != nil || !keep {
			w.conn.Close()
			w.conn = nil
		}
		if err != nil && attempt == 0 {
			continue // a kept-alive connection the proxy had closed
		}
		return status, err
	}
}

func (w *leakWorker) roundTrip(raw string) (status int, keep bool, err error) {
	if _, err := io.WriteString(w.conn, raw); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return 0, false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, !resp.Close, nil
}

// judgeLeak applies the oracle of the case's action to one request the sink received.
func judgeLeak(c *leakCase, rg leakRegime, r received) (leakFinding, bool) {
	hay := r.Raw
	if ce := r.Header.Get("Content-Encoding"); ce != "" {
		hay += "\n" + string(canary.Inflate(ce, []byte(r.Body)))
	}
	if rg.action == "forward" && forwardMayCarry(c.pos) {
		// The visitor consented to this vendor: the hit's own parameters go as the tag
		// sent them. Everything but them (request path, headers) is still judged.
		head, _, _ := strings.Cut(r.Raw, "\r\n\r\n")
		line, headers, _ := strings.Cut(head, "\r\n")
		path, _, _ := strings.Cut(line, "?")
		hay = path + "\n" + headers
	}
	if rg.action == "anonymise" && strings.Contains(r.Raw, rg.ip) {
		// The visitor's own IP, which anonymisation truncates, in full.
		return leakFinding{c: c, needle: rg.ip, form: "visitor IP", where: whereFound(r, rg.ip), sent: r.Raw}, true
	}
	needle, form, found := canary.Find([]byte(hay), c.canary)
	if !found || knownLimit(c, rg) {
		return leakFinding{}, false
	}
	return leakFinding{c: c, needle: needle, form: form, where: whereFound(r, needle), sent: r.Raw}, true
}

// forwardMayCarry: a canary at p may reach the vendor of a consented hit, in the hit's
// parameters. Not the IP field (the proxy writes it), and no position outside the
// parameters.
func forwardMayCarry(p position) bool {
	switch p.Where {
	case inQuery, inBody, inJSON:
		return !p.IPField
	case inHeader:
		return false
	}
	return false
}

// forwardHeaders are the headers a consented hit passes to the vendor as the browser
// sent them (rules/headers.go): a canary the browser put in one arrives.
var forwardHeaders = map[string]bool{"User-Agent": true, "Accept-Language": true, "Sec-CH-UA": true, "Origin": true}

// knownLimit says whether a canary found upstream is one PRIVACY.md's "Known limits"
// states, narrowly:
//   - a personal name in free text, a URL path, a campaign value, an event name or a
//     product ID is not recognised when free text is scrubbed (anonymise.free_text: drop and
//     path templates cover it);
//   - the vendor's own opaque IDs (tag and pixel IDs, conversion labels, the MP API
//     secret: rules.Value.Opaque) are checked for charset and length only, so any
//     random-looking value of that charset passes; never an IP address.
//
// Every other finding fails the test.
func knownLimit(c *leakCase, rg leakRegime) bool {
	if rg.action == "forward" && c.pos.Where == inHeader && forwardHeaders[c.pos.Name] {
		return true // the browser's own header, relayed on a consented hit
	}
	if rg.action != "anonymise" {
		return false
	}
	f := c.pos.Field
	if f != nil && f.Opaque && c.pos.embed == nil && !strings.HasPrefix(c.canary.Kind, "ip") {
		return true
	}
	if c.canary.Kind != "name" {
		return false
	}
	if f != nil && f.Kind == rules.KindToken && c.pos.embed == nil {
		return true // an event name, a product ID "Velmora+Quast": what the charset admits
	}
	switch c.pos.Class {
	case "text:sentence", "param:text", "json:text", "url:path", "url:utm", "url:cross-site":
		return true
	}
	return false
}

// whereFound names the part of the received request a needle is in.
func whereFound(r received, needle string) string {
	low := strings.ToLower(r.Raw)
	i := strings.Index(low, needle)
	if i < 0 {
		return "encoded"
	}
	head, _, _ := strings.Cut(low, "\r\n\r\n")
	if i >= len(head) {
		return "body"
	}
	lineEnd := strings.Index(low, "\r\n")
	if i < lineEnd {
		return "request line"
	}
	start := strings.LastIndex(low[:i], "\r\n") + 2
	name, _, _ := strings.Cut(r.Raw[start:], ":")
	return "header " + name
}

// reportLeaks fails the test with one line per leak class (action · position · kind),
// the count and an example, and writes every finding to -leakreport.
func reportLeaks(t *testing.T, cases []leakCase, findings []leakFinding, counts map[string]int) {
	t.Helper()
	endpoints, positions, combos := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range cases {
		c := &cases[i]
		endpoints[c.ep.Name] = true
		p := c.ep.Name + " " + c.pos.Class + " " + c.pos.Where + " " + c.pos.Name
		positions[p] = true
		combos[p+" "+c.enc] = true
	}
	t.Logf("%d positions, %d (endpoint × position × encoding) combinations", len(positions), len(combos))
	var outcomes []string
	for k, v := range counts {
		outcomes = append(outcomes, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(outcomes)
	t.Logf("%d cases over %d endpoints; outcomes: %s", len(cases), len(endpoints), strings.Join(outcomes, ", "))
	if *leakReport != "" {
		var b strings.Builder
		b.WriteString("class\tcase\tneedle\tform\twhere\tsent\n")
		for _, f := range findings {
			fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%q\n", f.class(), f.c, f.needle, f.form, f.where, f.sent)
		}
		if err := os.WriteFile(*leakReport, []byte(b.String()), 0o644); err != nil {
			t.Errorf("leak report: %v", err)
		}
	}
	if len(findings) == 0 {
		return
	}
	byClass := map[string][]leakFinding{}
	for _, f := range findings {
		byClass[f.class()] = append(byClass[f.class()], f)
	}
	classes := sortedKeys(byClass)
	sort.SliceStable(classes, func(i, j int) bool { return len(byClass[classes[i]]) > len(byClass[classes[j]]) })
	for _, cl := range classes {
		f := byClass[cl][0]
		t.Errorf("LEAK %s: %d cases, e.g. %s: %q (%s) in %s\n    sent: %.400q", cl, len(byClass[cl]), f.c, f.needle, f.form, f.where, f.sent)
	}
}
