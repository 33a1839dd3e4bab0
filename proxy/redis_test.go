package proxy

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/redistest"
)

func redisConfig(sinkURL string, addrs ...string) string {
	return testConfig(sinkURL, `consent:
  store: redis
  redis:
    addrs: ["`+strings.Join(addrs, `", "`)+`"]
    timeout: 200ms
  cache:
    ttl: 30s
    negative_ttl: 30s
`)
}

// eventually polls cond until it holds or the bound passes.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisTwoInstancesShareConsent: consent written through instance A changes the
// decision on instance B within a second, although B had cached the visitor (the cache
// TTLs are 30 s here, so only the invalidation can explain it).
func TestRedisTwoInstancesShareConsent(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	a := startProxy(t, redisConfig(up.URL(), rs.Addr))
	b := startProxy(t, redisConfig(up.URL(), rs.Addr))
	testTwoInstances(t, up, a, b)
}

func testTwoInstances(t *testing.T, up *sink, a, b *testProxy) {
	t.Helper()
	cookie := a.consentCookie(`{"statistics":true,"marketing":false}`)
	meta := func(p *testProxy) int {
		p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", cookie)
		return len(up.take())
	}
	if n := meta(b); n != 0 {
		t.Fatalf("B forwarded a marketing hit the visitor denied")
	}
	// Now cached on B as denied. Grant through A.
	if r := a.do("POST", "/consent", `{"purposes":{"statistics":true,"marketing":true}}`, "Cookie", cookie); r.Status != 200 {
		t.Fatalf("grant through A: %d %s", r.Status, r.Body)
	}
	start := time.Now()
	eventually(t, time.Second, "B sees A's grant", func() bool { return meta(b) == 1 })
	t.Logf("B saw A's write after %s", time.Since(start).Round(time.Millisecond))
	// Repeat hits are answered by B's cache, with no Redis call.
	for range 3 {
		if meta(b) != 1 {
			t.Fatalf("B stopped forwarding a consented hit")
		}
	}
	// Withdraw through A: B drops again.
	a.do("DELETE", "/consent", "", "Cookie", cookie)
	eventually(t, time.Second, "B sees A's withdrawal", func() bool { return meta(b) == 0 })
	if b.hits(t, "meta", "forward", "consent_granted", "eea") < 1 {
		t.Errorf("B's forward was not counted")
	}
	m := b.metricsText(t)
	for _, want := range []string{`consentgate_consent_lookups_total{result="hit",source="cache"}`, `consentgate_consent_lookups_total{result="hit",source="redis"}`} {
		if !strings.Contains(m, want) || strings.Contains(m, want+" 0\n") {
			t.Errorf("no %s counted:\n%s", want, grep(m, "lookups"))
		}
	}
}

func TestRedisClusterTwoInstances(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	up := startSink(t)
	a := startProxy(t, redisConfig(up.URL(), c.Addrs...))
	b := startProxy(t, redisConfig(up.URL(), c.Addrs...))
	testTwoInstances(t, up, a, b)
}

// TestRedisOutage: Redis dies while hits flow. No 5xx; a visitor whose cookie carries
// no signed snapshot (an ID alone, as before snapshots) fails closed (store_unavailable);
// readiness says degraded; a consent write is refused with 503 and leaves nothing
// behind; after Redis returns the proxy recovers without a restart.
// TestRedisStoppedSnapshotDecides covers the visitors whose cookie carries a snapshot.
func TestRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	cfg := strings.Replace(redisConfig(up.URL(), rs.Addr), "ttl: 30s\n    negative_ttl: 30s", "ttl: 100ms\n    negative_ttl: 100ms", 1)
	p := startProxy(t, cfg)
	cookie := "cg_id=" + cookieID(t, p.consentCookie(`{"statistics":true,"marketing":true}`))

	var stop atomic.Bool
	var fivexx atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r := p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipUSCA, "Cookie", cookie)
				if r.Status >= 500 {
					fivexx.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	rs.Stop()
	eventually(t, 5*time.Second, "hits decided store_unavailable", func() bool {
		return p.hits(t, "ga4", "anonymise", "store_unavailable", "us-ca") > 0
	})
	if r := p.adminDo("GET", "/readyz", ""); !strings.Contains(r.Body, `"store":"degraded"`) {
		t.Errorf("readyz during the outage: %d %s", r.Status, r.Body)
	}
	// Marketing fails closed too, in an opt_out region.
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipUSCA, "Cookie", cookie)
	if p.hits(t, "meta", "drop", "store_unavailable", "us-ca") != 1 {
		t.Errorf("marketing hit not dropped as store_unavailable")
	}
	// A write Redis cannot acknowledge is never reported as saved.
	r := p.do("POST", "/consent", `{"purposes":{"marketing":false}}`)
	if r.Status != 503 || r.Header.Get("Set-Cookie") != "" || r.Header.Get("Retry-After") == "" {
		t.Errorf("write during outage: %d %q cookie=%q", r.Status, r.Body, r.Header.Get("Set-Cookie"))
	}
	if m := p.metricsText(t); !strings.Contains(m, "consentgate_consent_store_up 0") {
		eventually(t, 5*time.Second, "store_up 0", func() bool {
			return strings.Contains(p.metricsText(t), "consentgate_consent_store_up 0")
		})
	}

	rs.Restart(t) // empty: this Redis keeps nothing on disk
	eventually(t, 10*time.Second, "readiness recovers", func() bool {
		return strings.Contains(p.adminDo("GET", "/readyz", "").Body, `"store":"ok"`)
	})
	stop.Store(true)
	wg.Wait()
	if n := fivexx.Load(); n != 0 {
		t.Errorf("%d hits got a 5xx during the outage", n)
	}
	// Nothing of the refused write exists; new consent is stored and used again.
	cookie2 := p.consentCookie(`{"statistics":true,"marketing":true}`)
	up.take()
	eventually(t, 5*time.Second, "consented hit forwarded after recovery", func() bool {
		p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", cookie2)
		return len(up.take()) == 1
	})
}

func TestRedisConsentAPIHistoryAndErasure(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	p := startProxy(t, redisConfig(up.URL(), rs.Addr))
	auth := []string{"Authorization", "Bearer " + testToken}
	cookie := p.consentCookie(`{"statistics":true}`)
	id := cookieID(t, cookie)
	if r := p.do("GET", "/consent", "", "Cookie", cookie); r.Status != 200 || !strings.Contains(r.Body, `"statistics":"granted"`) {
		t.Fatalf("read back: %d %s", r.Status, r.Body)
	}
	p.do("POST", "/consent", `{"purposes":{"statistics":false}}`, "Cookie", cookie, "User-Agent", "Mozilla/5.0 history")
	p.do("DELETE", "/consent", "", "Cookie", cookie)
	if r := p.do("GET", "/consent", "", "Cookie", cookie); r.Status != 404 {
		t.Errorf("after withdrawal: %d", r.Status)
	}
	r := p.adminDo("GET", "/admin/consent/"+id+"/history", "", auth...)
	if r.Status != 200 || strings.Count(r.Body, `"action":"consent"`) != 2 || strings.Count(r.Body, `"action":"withdraw"`) != 1 {
		t.Fatalf("history: %d %s", r.Status, r.Body)
	}
	if strings.Contains(r.Body, "Mozilla") || strings.Contains(r.Body, "127.0.0.1") {
		t.Errorf("history holds a raw user agent or IP: %s", r.Body)
	}
	// Withdrawing a made-up ID leaves no trail.
	ghost := "GGGGGGGGGGGGGGGGGGGGGA"
	if r := p.do("DELETE", "/consent", "", "Cookie", "cg_id="+ghost); r.Status != 200 || !strings.Contains(r.Body, `"withdrawn":false`) {
		t.Errorf("withdraw of an unknown ID: %d %s", r.Status, r.Body)
	}
	if r := p.adminDo("GET", "/admin/consent/"+ghost+"/history", "", auth...); strings.TrimSpace(r.Body) != "[]" {
		t.Errorf("an unknown ID got receipts: %s", r.Body)
	}
	if r := p.adminDo("DELETE", "/admin/consent/"+id+"?erase=maybe", "", auth...); r.Status != 400 {
		t.Errorf("bad erase flag: %d", r.Status)
	}
	if r := p.adminDo("DELETE", "/admin/consent/"+id+"?erase=true", "", auth...); r.Status != 200 {
		t.Errorf("erase: %d %s", r.Status, r.Body)
	}
	if r := p.adminDo("GET", "/admin/consent/"+id+"/history", "", auth...); r.Status != 200 || strings.TrimSpace(r.Body) != "[]" {
		t.Errorf("history after erasure: %d %s", r.Status, r.Body)
	}
}
