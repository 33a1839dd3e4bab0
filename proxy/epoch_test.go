package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/redistest"
)

// afterDataLoss are the two values of consent.snapshot.after_data_loss, as the extra of
// integrityRedisConfig (which ends inside consent.snapshot) and of a memory config.
var afterDataLoss = []struct {
	name    string
	extra   string
	restore bool
}{
	{"restore (default)", "", true},
	{"refusals_only", "    after_data_loss: refusals_only\n", false},
}

// explainStore is what explain says the consent cookie led to ("signals.store"), and the
// cause of each purpose.
func explainStore(t *testing.T, p *testProxy, target, cookie string) (string, map[string]string) {
	t.Helper()
	code, body := p.Explain(context.Background(), ExplainRequest{URL: target,
		Headers: map[string]string{"X-Forwarded-For": ipSE, "Cookie": cookie}, RemoteAddr: "127.0.0.1"})
	var out struct {
		Sources map[string]string `json:"consent_sources"`
		Signals struct {
			Store string `json:"store"`
		} `json:"signals"`
	}
	if err := json.Unmarshal(body, &out); err != nil || code != 200 {
		t.Fatalf("explain: %d %s", code, body)
	}
	return out.Signals.Store, out.Sources
}

// TestRedisDataLossRestoresSnapshot: Redis restarts without persistence and loses every
// record (issue 13's soak). With after_data_loss: restore, within a few seconds (the next
// health check renews the dataset epoch) a consenting visitor's hits are forwarded again,
// decided by their cookie's snapshot (counted as dataset_lost, explained so), a refusing
// visitor's stay refused, and what a stored TC string decided counts as no consent. A
// record written in the new dataset and then deleted through the admin API, or a
// snapshot issued since the loss without a record, gives its refusals only: the epoch
// tells a lost record from a deleted one. With refusals_only, nothing is revived.
func TestRedisDataLossRestoresSnapshot(t *testing.T) {
	for _, tc := range afterDataLoss {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.Start(t)
			up := startSink(t)
			clk := newTestClock(fixedNow())
			cfg, err := testLoader.LoadBytes("test.yaml", []byte(integrityRedisConfig(up.URL(), rs.Addr, tc.extra)))
			if err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			p := startProxyWith(t, cfg, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clk.now})
			auth := []string{"Authorization", "Bearer " + testToken}
			meta := func(cookie string) int {
				t.Helper()
				p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", cookie)
				return len(up.take())
			}
			granted := p.consentCookie(`{"statistics":true,"marketing":true}`)
			refused := p.consentCookie(`{"statistics":true,"marketing":false}`)
			r := p.do("POST", "/consent", `{"purposes":{"statistics":true,"marketing":true},"tcf":"`+validTCString+`"}`)
			withTCF := "cg_id=" + setCookieValue(r)
			// Withdrawn through the admin API before the loss: the withdrawal goes with the
			// dataset (README: the trade-off of restore).
			withdrawnBefore := p.consentCookie(`{"statistics":true,"marketing":true}`)
			if r := p.adminDo("DELETE", "/admin/consent/"+cookieID(t, withdrawnBefore), "", auth...); r.Status != 200 {
				t.Fatalf("admin withdrawal: %d %s", r.Status, r.Body)
			}
			if meta(granted) != 1 || meta(withdrawnBefore) != 0 {
				t.Fatal("before the loss: the grant is not forwarded, or the withdrawn grant is")
			}

			clk.add(time.Minute)
			restarted := time.Now()
			rs.Restart(t)
			if !tc.restore {
				// The epoch moves all the same; wait for it, then check nothing is revived.
				lost := fixedNow().Add(time.Minute).Unix()
				eventually(t, 15*time.Second, "the epoch renewed", func() bool {
					v, err := redistest.Do(rs.Addr, "GET", "consentgate:epoch")
					return err == nil && v == strconv.FormatInt(lost, 10)
				})
				if meta(granted) != 0 || meta(withdrawnBefore) != 0 || meta(refused) != 0 {
					t.Error("refusals_only: a grant was revived after the loss")
				}
				if p.metric(t, "consentgate_consent_snapshot_used_total", "when", "dataset_lost") != 0 {
					t.Error("refusals_only: dataset_lost counted")
				}
				if store, _ := explainStore(t, p, "/tr?id=1&ev=PageView", granted); store != "not_found" {
					t.Errorf("refusals_only: explain store %q, want not_found", store)
				}
				return
			}
			eventually(t, 15*time.Second, "the consenting visitor's hit forwarded again", func() bool { return meta(granted) == 1 })
			t.Logf("grants applied again %s after Redis was restarted", time.Since(restarted).Round(time.Millisecond))
			// Operations hear of the loss, once, with the new epoch.
			if out := logs.String(); strings.Count(out, "consent dataset epoch moved") != 1 ||
				!strings.Contains(out, `"epoch":"`+fixedNow().Add(time.Minute).Format(time.RFC3339)+`","previous":"unknown"`) {
				t.Errorf("the epoch's move not logged once:\n%s", grep(out, "epoch"))
			}
			if p.metric(t, "consentgate_consent_snapshot_used_total", "when", "dataset_lost") < 1 {
				t.Error("dataset_lost not counted")
			}
			if store, src := explainStore(t, p, "/tr?id=1&ev=PageView", granted); store != "dataset_lost" || src["marketing"] != "snapshot" {
				t.Errorf("explain: store %q, marketing from %q; want dataset_lost, snapshot", store, src["marketing"])
			}
			if meta(refused) != 0 || p.hits(t, "meta", "drop", "consent_denied", "eea") < 1 {
				t.Error("the refusing visitor's hit was not dropped as consent_denied")
			}
			if meta(withdrawnBefore) != 1 {
				t.Error("a withdrawal made before the loss was not lost with it (the documented trade-off changed: update the README)")
			}
			// After the loss, the admin API finds nothing to withdraw for the consenting
			// visitor (404), which cannot stop the snapshot; writing the refusal does.
			if r := p.adminDo("DELETE", "/admin/consent/"+cookieID(t, granted), "", auth...); r.Status != 404 || meta(granted) != 1 {
				t.Errorf("admin withdrawal of a lost record: %d, or it stopped the snapshot (documented: it cannot)", r.Status)
			}
			if r := p.adminDo("PUT", "/admin/consent/"+cookieID(t, granted), `{"purposes":{"statistics":false,"marketing":false}}`, auth...); r.Status != 200 {
				t.Fatalf("admin refusal: %d %s", r.Status, r.Body)
			}
			if meta(granted) != 0 {
				t.Error("a refusal written through the admin API after the loss did not win over the snapshot")
			}
			// ga4 is on the Global Vendor List: the stored TC string would decide, and the
			// snapshot does not carry it.
			up.take()
			p.do("GET", "/g/collect?v=2&cid=1.2", "", "X-Forwarded-For", ipSE, "Cookie", withTCF)
			if n := p.hits(t, "ga4", "anonymise", "store_unavailable", "eea"); n != 1 {
				t.Errorf("ga4 with a lost TC string: %d anonymised as store_unavailable, want 1", n)
			}
			up.take()

			// In the new dataset: a grant written and then withdrawn through the admin API
			// is not revived, nor is a snapshot issued since the loss with no record.
			deletedNow := p.consentCookie(`{"statistics":true,"marketing":true}`)
			clk.add(time.Minute)
			if r := p.adminDo("DELETE", "/admin/consent/"+cookieID(t, deletedNow), "", auth...); r.Status != 200 {
				t.Fatalf("admin withdrawal: %d %s", r.Status, r.Body)
			}
			id, err := consent.NewID()
			if err != nil {
				t.Fatal(err)
			}
			issuedSince := "cg_id=" + p.rt.Load().snap.Cookie(id, consent.Snapshot{
				Purposes: consent.Purposes{consent.Statistics: consent.Granted, consent.Marketing: consent.Granted},
				Version:  3, Issued: clk.now().Add(-30 * time.Second).Truncate(time.Second)})
			for name, cookie := range map[string]string{"deleted in this dataset": deletedNow, "issued since the loss": issuedSince} {
				if meta(cookie) != 0 {
					t.Errorf("%s: a snapshot's grant was revived", name)
				}
				if store, _ := explainStore(t, p, "/tr?id=1&ev=PageView", cookie); store != "not_found" {
					t.Errorf("%s: explain store %q, want not_found", name, store)
				}
			}
		})
	}
}

// TestRedisWriteCreatesEpoch: a consent write after Redis came back empty creates the new
// epoch itself, before its record lands, rather than leave it to the next health check:
// its snapshot must not count as older than the dataset its record is in, or the record,
// deleted later through the admin API, would be revived.
func TestRedisWriteCreatesEpoch(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	clk := newTestClock(fixedNow())
	cfg, err := testLoader.LoadBytes("test.yaml", []byte(integrityRedisConfig(up.URL(), rs.Addr, "")))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxyWith(t, cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: clk.now})
	p.consentCookie(`{"statistics":true}`)
	clk.add(time.Minute)
	rs.Restart(t)
	var cookie string
	eventually(t, 15*time.Second, "a consent write after the restart", func() bool {
		r := p.do("POST", "/consent", `{"purposes":{"statistics":true,"marketing":true}}`)
		cookie = "cg_id=" + setCookieValue(r)
		return r.Status == 200
	})
	want := strconv.FormatInt(clk.now().Unix(), 10)
	if v, err := redistest.Do(rs.Addr, "GET", "consentgate:epoch"); err != nil || v != want {
		t.Fatalf("epoch after the write: %q, %v; want the write's time %s", v, err, want)
	}
	// The health checks that follow, on a later clock, leave it.
	clk.add(time.Minute)
	if r := p.adminDo("DELETE", "/admin/consent/"+cookieID(t, cookie), "", "Authorization", "Bearer "+testToken); r.Status != 200 {
		t.Fatalf("admin withdrawal: %d %s", r.Status, r.Body)
	}
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", cookie)
	if len(up.take()) != 0 {
		t.Error("a grant written after the restart and withdrawn was revived")
	}
}

// TestMemoryRestartRestoresSnapshot: the memory store's records die with the process, so
// a snapshot issued before the store began decides in full (as after a Redis loss), one
// issued since by its refusals only; refusals_only keeps to refusals throughout.
func TestMemoryRestartRestoresSnapshot(t *testing.T) {
	for _, tc := range afterDataLoss {
		t.Run(tc.name, func(t *testing.T) {
			up := startSink(t)
			ms := consent.NewMemoryStoreWith(consent.MemoryOptions{MaxEntries: 10_000, Now: fixedNow})
			extra := ""
			if tc.extra != "" {
				extra = "consent:\n  snapshot:\n" + tc.extra
			}
			p := startWithStore(t, testConfig(up.URL(), extra), ms)
			grant := consent.Purposes{consent.Statistics: consent.Granted, consent.Marketing: consent.Granted}
			cookie := func(issued time.Time) string {
				id, err := consent.NewID()
				if err != nil {
					t.Fatal(err)
				}
				return "cg_id=" + p.rt.Load().snap.Cookie(id, consent.Snapshot{Purposes: grant, Version: 2, Issued: issued})
			}
			meta := func(cookie string) int {
				p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE, "Cookie", cookie)
				return len(up.take())
			}
			before, since := cookie(fixedNow().Add(-time.Hour)), cookie(fixedNow())
			// An attacker's ways to a snapshot older than the dataset: one expired (older
			// than consent.ttl), one moved to another ID, one whose issue time was edited.
			// Each is rejected and counted, never revived.
			expired := cookie(fixedNow().Add(-p.Config().Consent.TTL - time.Hour))
			other, err := consent.NewID()
			if err != nil {
				t.Fatal(err)
			}
			moved := "cg_id=" + other + before[len("cg_id=")+22:]
			edited := []byte(since)
			// The issue time is bytes 10..13 of the snapshot, base64 characters 13..18
			// after "cg_id=<id>.": changing character 14 edits it.
			at := len("cg_id=") + 23 + 14
			edited[at] = map[bool]byte{true: 'A', false: 'B'}[edited[at] != 'A']
			for name, c := range map[string]string{"expired": expired, "moved to another ID": moved, "edited": string(edited)} {
				if meta(c) != 0 {
					t.Errorf("%s: a snapshot's grant was taken", name)
				}
			}
			if p.metric(t, "consentgate_consent_snapshot_rejected_total", "reason", "expired") != 1 ||
				p.metric(t, "consentgate_consent_snapshot_rejected_total", "reason", "forged") != 2 {
				t.Errorf("rejections not counted:\n%s", grep(p.metricsText(t), "snapshot_rejected"))
			}
			want := 0
			if tc.restore {
				want = 1
			}
			if got := meta(before); got != want {
				t.Errorf("a snapshot from before the store began: %d forwarded, want %d", got, want)
			}
			if meta(since) != 0 {
				t.Error("a snapshot issued since the store began was revived")
			}
			if got := p.metric(t, "consentgate_consent_snapshot_used_total", "when", "dataset_lost"); got != float64(want) {
				t.Errorf("dataset_lost counted %v, want %d", got, want)
			}
			if store, _ := explainStore(t, p, "/tr?id=1&ev=PageView", before); tc.restore != (store == "dataset_lost") {
				t.Errorf("explain store %q", store)
			}
			if got := p.metric(t, "consentgate_consent_snapshot_used_total", "when", "dataset_lost"); got != float64(want) {
				t.Errorf("explain counted: dataset_lost %v, want %d", got, want)
			}
		})
	}
}

// TestRedisEpochNotBelieved: an epoch key holding something that is not an epoch (written
// by hand) is logged, is not used, and does not stop consent writes: the key exists, which
// is all a write needs of it.
func TestRedisEpochNotBelieved(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	var logs syncBuffer
	p := startProxyLog(t, integrityRedisConfig(up.URL(), rs.Addr, ""), &logs)
	if _, err := redistest.Do(rs.Addr, "SET", "consentgate:epoch", "soon"); err != nil {
		t.Fatal(err)
	}
	p.consentCookie(`{"statistics":true}`)
	eventually(t, 15*time.Second, "the bad epoch logged", func() bool {
		return strings.Contains(logs.String(), "consent dataset epoch: cannot read it")
	})
	if got, _ := p.store.epoch.Time(); !got.IsZero() {
		t.Errorf("epoch %v, want the one read at start (0) kept", got)
	}
}
