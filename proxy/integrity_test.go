package proxy

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/consentgate/consentgate/consent"
)

// metric reads one series of a family from the real /metrics output: the one whose
// labels include every name=value pair given; 0 if there is none.
func (p *testProxy) metric(t *testing.T, family string, labels ...string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(p.metricsText(t)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	fam := fams[family]
	if fam == nil {
		return 0
	}
	for _, m := range fam.GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			for i := 0; i+1 < len(labels); i += 2 {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					match++
				}
			}
		}
		if match == len(labels)/2 {
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// startWithStore starts a proxy on yaml that talks to store, on the tests' fixed clock.
func startWithStore(t *testing.T, yaml string, store consent.Store) *testProxy {
	t.Helper()
	cfg, err := testLoader.LoadBytes("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return startProxyWith(t, cfg, Options{Store: store, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: fixedNow})
}

// snapCookie is a consent cookie for id whose snapshot this proxy signed, as if it had
// written p to the store at now.
func (p *testProxy) snapCookie(id string, version int64, purposes consent.Purposes) string {
	s := consent.Snapshot{Purposes: purposes, Version: version, Issued: fixedNow()}
	return "cg_id=" + p.rt.Load().snap.Cookie(id, s)
}

func setCookieValue(r resp) string {
	for _, c := range r.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(c, "cg_id="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

// TestCrossSiteWrites: a page of another site cannot write or withdraw a visitor's
// consent, whatever it sends; nothing is written and each refusal is counted. The site's
// own pages, allowed_origins and a backend (no Origin, no Referer) can.
func TestCrossSiteWrites(t *testing.T) {
	up := startSink(t)
	ms := consent.NewMemoryStore(10_000)
	p := startWithStore(t, testConfig(up.URL(), `allowed_origins: ["https://www.example.com"]`+"\n"), ms)
	own := "http://" + p.PublicAddr()
	cookie := p.consentCookie(`{"marketing":false}`)
	id := cookieID(t, cookie)
	body := `{"purposes":{"marketing":true}}`
	for _, c := range []struct {
		name    string
		method  string
		headers []string
		reason  string
	}{
		{"other origin", "POST", []string{"Origin", "https://evil.example"}, "origin"},
		{"other origin, text/plain (no preflight)", "POST", []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, "origin"},
		{"other origin, form", "POST", []string{"Origin", "https://evil.example", "Content-Type", "application/x-www-form-urlencoded"}, "origin"},
		{"allowed origin over http", "POST", []string{"Origin", "http://www.example.com"}, "origin"},
		{"sibling host of ours", "POST", []string{"Origin", "http://evil." + p.PublicAddr()}, "origin"},
		{"null origin", "POST", []string{"Origin", "null", "Content-Type", "text/plain"}, "null_origin"},
		{"foreign referer without origin", "POST", []string{"Referer", "https://evil.example/page?x=1"}, "referer"},
		{"referer that is not a URL", "POST", []string{"Referer", "evil"}, "referer"},
		{"referer with user information", "POST", []string{"Referer", "http://" + p.PublicAddr() + "@evil.example/"}, "referer"},
		{"cross-site fetch without origin or referer", "POST", []string{"Sec-Fetch-Site", "cross-site"}, "fetch_site"},
		{"withdrawal from another origin", "DELETE", []string{"Origin", "https://evil.example"}, "origin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.metric(t, "consentgate_consent_writes_refused_total", "reason", c.reason)
			entries := ms.Len()
			r := p.do(c.method, "/consent", body, append([]string{"Cookie", cookie}, c.headers...)...)
			if r.Status != 403 || setCookieValue(r) != "" {
				t.Fatalf("%d %s, cookie %q; want 403 and no cookie", r.Status, r.Body, setCookieValue(r))
			}
			// And for a new visitor, no ID.
			if r := p.do(c.method, "/consent", body, c.headers...); r.Status != 403 {
				t.Errorf("new visitor: %d", r.Status)
			}
			st, ok, _ := ms.Get(context.Background(), id)
			if !ok || st.Purposes[consent.Marketing] != consent.Denied || st.Version != 1 || ms.Len() != entries {
				t.Errorf("the store changed: %+v %v, %d entries (was %d)", st, ok, ms.Len(), entries)
			}
			if got := p.metric(t, "consentgate_consent_writes_refused_total", "reason", c.reason); got != before+2 {
				t.Errorf("refusals counted %v, want %v", got, before+2)
			}
		})
	}
	version := 1
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"own origin", []string{"Origin", own}},
		{"own origin over https, default port", []string{"Origin", "https://" + p.PublicAddr()}},
		{"allowed origin", []string{"Origin", "https://www.example.com"}},
		{"own referer", []string{"Referer", own + "/banner.html"}},
		{"allowed referer", []string{"Referer", "https://www.example.com/privacy#choices"}},
		{"backend: no origin, no referer", nil},
		{"same-origin fetch", []string{"Sec-Fetch-Site", "same-origin"}},
	} {
		r := p.do("POST", "/consent", body, append([]string{"Cookie", cookie}, c.headers...)...)
		version++
		if r.Status != 200 || !strings.Contains(r.Body, `"version":`+strconv.Itoa(version)) {
			t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
		}
	}
	if r := p.do("DELETE", "/consent", "", "Cookie", cookie, "Origin", own); r.Status != 200 || !strings.Contains(r.Body, `"withdrawn":true`) {
		t.Errorf("own withdrawal: %d %s", r.Status, r.Body)
	}
}

// TestServerMintedIDs: a write keeps the ID the cookie presents only if the store knows
// it or its signed snapshot proves this proxy issued it; a planted ID is replaced.
func TestServerMintedIDs(t *testing.T) {
	up := startSink(t)
	ms := consent.NewMemoryStore(10_000)
	p := startWithStore(t, testConfig(up.URL(), ""), ms)
	ctx := context.Background()
	body := `{"purposes":{"statistics":true}}`

	planted := "PLANTEDPLANTEDPLANTEDA"
	r := p.do("POST", "/consent", body, "Cookie", "cg_id="+planted)
	if got := setCookieValue(r); r.Status != 200 || strings.HasPrefix(got, planted) || len(got) != consent.CookieLen {
		t.Fatalf("a planted ID: %d, cookie %q; want a fresh ID", r.Status, got)
	}
	if _, ok, _ := ms.Get(ctx, planted); ok {
		t.Error("the planted ID was stored")
	}
	if p.metric(t, "consentgate_consent_ids_issued_total", "why", "unknown_id") != 1 {
		t.Error("the replaced ID was not counted")
	}

	// A planted ID with a snapshot signed by another key (another deployment, a forger).
	other, _ := consent.NewSnapshotKeys([]string{"Fq8Zm3Vk6Wx1Lr9Tn4Hb2Pc"})
	forged := other.Cookie(planted, consent.Snapshot{Version: 5, Issued: fixedNow()})
	if got := setCookieValue(p.do("POST", "/consent", body, "Cookie", "cg_id="+forged)); strings.HasPrefix(got, planted) {
		t.Error("an ID with a foreign snapshot was kept")
	}
	if p.metric(t, "consentgate_consent_snapshot_rejected_total", "reason", "unknown_key") != 1 {
		t.Error("the foreign snapshot was not counted")
	}

	// An ID the proxy issued, whose record is gone (evicted, flushed): its snapshot
	// proves it, so the ID stays and the version counts on.
	cookie := p.consentCookie(`{"marketing":false}`)
	id := cookieID(t, cookie)
	p.do("POST", "/consent", `{"purposes":{"marketing":false,"statistics":true}}`, "Cookie", cookie) // version 2
	cookie = "cg_id=" + setCookieValue(p.do("POST", "/consent", `{"purposes":{"marketing":false}}`, "Cookie", cookie))
	if _, err := ms.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	r = p.do("POST", "/consent", body, "Cookie", cookie)
	if got := setCookieValue(r); !strings.HasPrefix(got, id+".") || !strings.Contains(r.Body, `"version":4`) {
		t.Errorf("a proven ID: cookie %q, body %s; want the same ID at version 4", got, r.Body)
	}
	if p.metric(t, "consentgate_consent_snapshot_used_total", "when", "id_proven") != 1 {
		t.Error("the proven ID was not counted")
	}
	// The same ID with its snapshot cut off is not proven.
	if _, err := ms.Erase(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := setCookieValue(p.do("POST", "/consent", body, "Cookie", "cg_id="+id)); strings.HasPrefix(got, id) {
		t.Error("an unknown ID without its snapshot was kept")
	}
}

// TestSnapshotKeepsRefusals: where the store has no record, a valid snapshot's refusals
// decide (never its grants); where the store has an older record than the snapshot (a
// write the store lost), the store decides and the snapshot's refusals apply on top.
func TestSnapshotKeepsRefusals(t *testing.T) {
	up := startSink(t)
	// On the proxy's clock: the store's dataset begins with the snapshots below, so a
	// record gone is one deleted in it (TestMemoryRestartRestoresSnapshot: lost with an
	// older one).
	ms := consent.NewMemoryStoreWith(consent.MemoryOptions{MaxEntries: 10_000, Now: fixedNow})
	p := startWithStore(t, testConfig(up.URL(), ""), ms)
	ctx := context.Background()
	meta := func(cookie, ip string) int {
		p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ip, "Cookie", cookie)
		return len(up.take())
	}

	// A refusal in US-CA (opt_out), its record gone: without the snapshot the hit would
	// be forwarded as not_opted_out (the flood attack).
	refused := p.consentCookie(`{"marketing":false,"statistics":true}`)
	if _, err := ms.Erase(ctx, cookieID(t, refused)); err != nil {
		t.Fatal(err)
	}
	if meta(refused, ipUSCA) != 0 {
		t.Fatal("a refusal whose record is gone was forwarded")
	}
	if p.hits(t, "meta", "drop", "consent_denied", "us-ca") != 1 || p.metric(t, "consentgate_consent_snapshot_used_total", "when", "no_record") != 1 {
		t.Errorf("not dropped as consent_denied by the snapshot:\n%s", grep(p.metricsText(t), "snapshot"))
	}
	if meta("cg_id="+cookieID(t, refused), ipUSCA) != 1 {
		t.Error("the same ID without its snapshot was not decided as unknown")
	}

	// A grant whose record is gone decides nothing: the record may have been withdrawn
	// or erased through the admin API.
	granted := p.consentCookie(`{"marketing":true,"statistics":true}`)
	if _, err := ms.Erase(ctx, cookieID(t, granted)); err != nil {
		t.Fatal(err)
	}
	if meta(granted, ipSE) != 0 {
		t.Error("a snapshot's grant was taken without a record")
	}

	// Tampered snapshots are rejected and counted, never believed.
	// The last character becomes another of the base64url alphabet, so the snapshot still
	// decodes and only its MAC is wrong (flipping a bit could make it malformed instead).
	tampered := []byte(refused)
	if tampered[len(tampered)-1] == 'A' {
		tampered[len(tampered)-1] = 'B'
	} else {
		tampered[len(tampered)-1] = 'A'
	}
	if meta(string(tampered), ipUSCA) != 1 {
		t.Error("a tampered snapshot decided")
	}
	if p.metric(t, "consentgate_consent_snapshot_rejected_total", "reason", "forged") != 1 {
		t.Error("the forgery was not counted")
	}

	// The store lost the latest write (a failover): it holds version 1, a grant, while
	// the visitor's cookie carries version 2, a refusal.
	id := cookieID(t, p.consentCookie(`{"marketing":true}`))
	older := consent.State{Purposes: consent.Purposes{consent.Marketing: consent.Granted}, Version: 1, Source: "api",
		Created: fixedNow().Add(-time.Hour), Updated: fixedNow().Add(-time.Hour)}
	if err := ms.Put(ctx, id, older, time.Hour, consent.Receipt{}); err != nil {
		t.Fatal(err)
	}
	newer := p.snapCookie(id, 2, consent.Purposes{consent.Marketing: consent.Denied})
	if meta(newer, ipSE) != 0 {
		t.Error("a refusal newer than the stored grant was not kept")
	}
	if p.metric(t, "consentgate_consent_snapshot_used_total", "when", "newer_than_store") != 1 {
		t.Error("the newer snapshot was not counted")
	}
	// An older snapshot than the record never overrides it: the store's later grant wins.
	stale := p.snapCookie(id, 0, consent.Purposes{consent.Marketing: consent.Denied})
	if meta(stale, ipSE) != 1 {
		t.Error("an older snapshot's refusal overrode the store")
	}
}

// TestRateLimits: consent writes and new IDs are limited per address and per network;
// the answer is 429 with Retry-After, counted by limit. The tests' clock stands still,
// so exactly the burst goes through.
func TestRateLimits(t *testing.T) {
	up := startSink(t)
	p := startWithStore(t, testConfig(up.URL(), `limits:
  new_ids:
    per_ip: { per_minute: 60, burst: 3 }
    per_net: { per_minute: 60, burst: 5 }
  consent_writes:
    per_ip: { per_minute: 60, burst: 8 }
  hits:
    per_ip: { per_minute: 60, burst: 2 }
`), consent.NewMemoryStore(10_000))
	post := func(ip, cookie string) resp {
		return p.do("POST", "/consent", `{"purposes":{"statistics":true}}`, "X-Forwarded-For", ip, "Cookie", cookie)
	}
	var cookie string
	for i := range 3 {
		r := post("198.51.100.1", "")
		if r.Status != 200 {
			t.Fatalf("new ID %d: %d %s", i, r.Status, r.Body)
		}
		cookie = "cg_id=" + setCookieValue(r)
	}
	r := post("198.51.100.1", "")
	if r.Status != 429 || r.Header.Get("Retry-After") != "1" || setCookieValue(r) != "" {
		t.Fatalf("past the new-ID burst: %d %q cookie %q", r.Status, r.Header.Get("Retry-After"), setCookieValue(r))
	}
	// The visitor with an ID still writes: only minting is limited so far.
	if r := post("198.51.100.1", cookie); r.Status != 200 {
		t.Errorf("a known visitor's write: %d", r.Status)
	}
	// The rest of the /24 shares its network's bucket (5: two left).
	for i, want := range []int{200, 200, 429} {
		if r := post("198.51.100."+strconv.Itoa(10+i), ""); r.Status != want {
			t.Errorf("neighbour %d: %d, want %d", i, r.Status, want)
		}
	}
	if r := post("203.0.113.9", ""); r.Status != 200 {
		t.Errorf("another network: %d", r.Status)
	}
	// Writes: 8 per address, the failed ones included.
	for range 3 {
		post("198.51.100.1", cookie)
	}
	if r := post("198.51.100.1", cookie); r.Status != 429 {
		t.Errorf("past the write burst: %d", r.Status)
	}
	for limit, want := range map[string]float64{"new_ids_ip": 1, "new_ids_net": 1, "consent_writes_ip": 1} {
		if got := p.metric(t, "consentgate_rate_limited_total", "limit", limit); got != want {
			t.Errorf("%s counted %v, want %v", limit, got, want)
		}
	}
	// Hits, when configured.
	for i, want := range []int{204, 204, 429} {
		r := p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE)
		if r.Status != want && !(want == 204 && r.Status == 200) {
			t.Errorf("hit %d: %d, want %d", i, r.Status, want)
		}
	}
	if p.metric(t, "consentgate_rate_limited_total", "limit", "hits_ip") != 1 {
		t.Error("the limited hit was not counted")
	}
}

// TestFloodMemory is the flood against the memory store with a small bound: a
// US-CA visitor's stored refusal, then floods of new IDs from one address and from many
// networks. The visitor's marketing hits stay refused, the limiter answers 429 to the
// single address, and the store stays under its byte bound.
func TestFloodMemory(t *testing.T) {
	up := startSink(t)
	const maxBytes = 16 << 20
	p := startProxy(t, testConfig(up.URL(), "consent:\n  max_entries: 1000\n  max_bytes: "+strconv.Itoa(maxBytes)+"\n"))
	ms := p.store.Store.(*consent.MemoryStore)
	visitor := p.consentCookie(`{"marketing":false,"statistics":true}`)
	meta := func() int {
		p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipUSCA, "Cookie", visitor)
		return len(up.take())
	}
	if meta() != 0 {
		t.Fatal("the refusal was not honoured before the flood")
	}
	tc := `"` + validTCString + `"`
	flood := `{"purposes":{"marketing":true},"tcf":` + tc + `}`
	// One address: the default limits let a burst through, then 429.
	var ok, limited int
	for range 3000 {
		switch r := p.do("POST", "/consent", flood, "X-Forwarded-For", "192.0.2.66"); r.Status {
		case 200:
			ok++
		case 429:
			limited++
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("flood: %d %s", r.Status, r.Body)
		}
	}
	if ok != 100 || limited != 2900 {
		t.Errorf("one address: %d written, %d limited; want the burst of 100, then 429", ok, limited)
	}
	// Many networks (a botnet): each stays under its limits, and together they evict.
	for i := range 3000 {
		ip := "10." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250) + ".7"
		if r := p.do("POST", "/consent", flood, "X-Forwarded-For", ip); r.Status != 200 {
			t.Fatalf("botnet write %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The oldest entry goes first, and 3,100 IDs went into 1,000 places.
	if _, found, _ := ms.Get(context.Background(), cookieID(t, visitor)); found {
		t.Fatal("the visitor's record survived the flood: the test shows nothing")
	}
	if meta() != 0 {
		t.Fatal("after the flood, the visitor's refused marketing hit was forwarded")
	}
	if p.hits(t, "meta", "forward", "not_opted_out", "us-ca") != 0 {
		t.Error("a marketing hit was forwarded as not_opted_out")
	}
	if ms.Len() > 1000 || ms.Bytes() > maxBytes {
		t.Errorf("the store holds %d states, %d bytes; bounds 1000 and %d", ms.Len(), ms.Bytes(), maxBytes)
	}
	if got := p.metric(t, "consentgate_consent_store_bytes"); got <= 0 || got > maxBytes {
		t.Errorf("consentgate_consent_store_bytes = %v, want what the store holds, within %d", got, maxBytes)
	}
	// The first 200 writes pass the write limit and half of them the new-ID limit; the
	// rest are refused by the write limit before an ID is considered.
	if ids, writes := p.metric(t, "consentgate_rate_limited_total", "limit", "new_ids_ip"),
		p.metric(t, "consentgate_rate_limited_total", "limit", "consent_writes_ip"); ids != 100 || writes != 2800 {
		t.Errorf("limited writes counted as %v new_ids_ip and %v consent_writes_ip, want 100 and 2800", ids, writes)
	}
}

// validTCString decodes (consent/api_test.go's vector).
const validTCString = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
