package proxy

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/redistest"
)

// fleetReport is /api/stats as these tests read it: statsReport plus the scope fields.
type fleetReport struct {
	statsReport
	Scope  string   `json:"scope"`
	Scopes []string `json:"scopes"`
	Fleet  *struct {
		Instances           int `json:"instances"`
		InstancesLastMinute int `json:"instances_last_minute"`
		PublishSeconds      int `json:"publish_seconds"`
	} `json:"fleet"`
}

func (p *testProxy) statsReport(t *testing.T, query string) fleetReport {
	t.Helper()
	r := p.adminDo("GET", "/api/stats"+query, "")
	if r.Status != 200 {
		t.Fatalf("/api/stats%s: %d %s", query, r.Status, r.Body)
	}
	var rep fleetReport
	if err := json.Unmarshal([]byte(r.Body), &rep); err != nil {
		t.Fatalf("/api/stats%s: %v", query, err)
	}
	return rep
}

// publish has the instance publish its fleet figures now, as its 10-second ticker would.
func (p *testProxy) publish(t *testing.T) {
	t.Helper()
	if err := p.fleet.Publish(context.Background()); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// sumKeyed adds up keyed rows from several reports.
func sumKeyed(lists ...[]statsKeyed) map[string]statsCounts {
	out := map[string]statsCounts{}
	for _, l := range lists {
		for _, k := range l {
			c := out[k.Key]
			c.Forward += k.Forward
			c.Anonymise += k.Anonymise
			c.Drop += k.Drop
			c.Total += k.Total
			out[k.Key] = c
		}
	}
	return out
}

func keyed(l []statsKeyed) map[string]statsCounts { return sumKeyed(l) }

// TestFleetStats: three instances on one Redis (a single node, and a three-master
// Cluster), each sent a known mix of hits (the third twice over). On every instance,
// /api/stats answers the fleet by default and it is the sum of the three instances'
// own figures, which are the mixes sent; scope=instance is each one's own.
func TestFleetStats(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		rs := redistest.Start(t)
		testFleetStats(t, rs.Addr)
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, 3)
		testFleetStats(t, c.Addrs...)
	})
}

func testFleetStats(t *testing.T, addrs ...string) {
	up := startSink(t)
	up.discard = true
	var ps []*testProxy
	for range 3 {
		ps = append(ps, startProxy(t, redisConfig(up.URL(), addrs...)))
	}
	want := map[[4]string]int{}
	for i, p := range ps {
		for range 1 + i/2 {
			for k, n := range knownMix(t, p) {
				want[k] += n
			}
		}
	}
	var inst []fleetReport
	for _, p := range ps {
		p.publish(t)
		inst = append(inst, p.statsReport(t, "?scope=instance&window=15m"))
	}
	var total int
	for _, n := range want {
		total += n
	}

	for i, p := range ps {
		for _, query := range []string{"?window=15m", "?scope=fleet&window=15m", "?scope=fleet&window=24h"} {
			f := p.statsReport(t, query)
			if f.Scope != "fleet" || !slices.Equal(f.Scopes, []string{"fleet", "instance"}) || f.Fleet == nil || f.Fleet.Instances != 3 || f.Fleet.PublishSeconds != 10 {
				t.Fatalf("instance %d %s: scope %q scopes %v fleet %+v, want the fleet of 3", i, query, f.Scope, f.Scopes, f.Fleet)
			}
			if f.Totals.Total != total || f.Totals.Total != inst[0].Totals.Total+inst[1].Totals.Total+inst[2].Totals.Total {
				t.Errorf("instance %d %s: fleet total %d, want the %d hits sent to all three", i, query, f.Totals.Total, total)
			}
			for _, c := range []struct {
				what  string
				fleet []statsKeyed
				parts [][]statsKeyed
			}{
				{"by_vendor", f.ByVendor, [][]statsKeyed{inst[0].ByVendor, inst[1].ByVendor, inst[2].ByVendor}},
				{"by_jurisdiction", f.ByJurisdiction, [][]statsKeyed{inst[0].ByJurisdiction, inst[1].ByJurisdiction, inst[2].ByJurisdiction}},
				{"by_reason", f.ByReason, [][]statsKeyed{inst[0].ByReason, inst[1].ByReason, inst[2].ByReason}},
			} {
				if got, want := keyed(c.fleet), sumKeyed(c.parts...); !maps.Equal(got, want) {
					t.Errorf("instance %d %s %s: fleet %v, sum of instances %v", i, query, c.what, got, want)
				}
			}
			if got := f.Instance.ConfigVersion; got != p.Config().Version() {
				t.Errorf("instance %d: the answering instance's config %q, want its own %q", i, got, p.Config().Version())
			}
		}
	}
	// Each instance's own view is its own mix; together they are what was sent.
	vj := map[[2]string]int{}
	for k, n := range want {
		vj[[2]string{k[0], k[3]}] += n
	}
	f := ps[1].statsReport(t, "")
	got := map[[2]string]int{}
	for _, r := range f.ByVJ {
		got[[2]string{r.Vendor, r.Jurisdiction}] += r.Total
	}
	if !reflect.DeepEqual(got, vj) {
		t.Errorf("fleet by vendor × jurisdiction %v, want %v", got, vj)
	}
	if inst[2].Totals.Total != 2*inst[0].Totals.Total || inst[0].Totals != inst[1].Totals {
		t.Errorf("instance totals %+v %+v %+v, want the third twice the others", inst[0].Totals, inst[1].Totals, inst[2].Totals)
	}
}

// TestFleetStatsNeedRedis: with the memory store there is no fleet: the default is this
// instance, and scope=fleet is refused with what it needs.
func TestFleetStatsNeedRedis(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	if rep := p.statsReport(t, ""); rep.Scope != "instance" || !slices.Equal(rep.Scopes, []string{"instance"}) || rep.Fleet != nil {
		t.Errorf("default: scope %q scopes %v fleet %+v, want this instance only", rep.Scope, rep.Scopes, rep.Fleet)
	}
	r := p.adminDo("GET", "/api/stats?scope=fleet", "")
	if r.Status != 400 || !strings.Contains(r.Body, "consent.store: redis") {
		t.Errorf("scope=fleet with the memory store: %d %s", r.Status, r.Body)
	}
}

// TestFleetStatsFlushedAtShutdown: an instance that drains publishes what it counted
// since its last tick, so a rolling restart loses no hits from the fleet figures.
func TestFleetStatsFlushedAtShutdown(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	up.discard = true
	a := startProxy(t, redisConfig(up.URL(), rs.Addr))
	b := startProxy(t, redisConfig(up.URL(), rs.Addr))
	want := 0
	for _, n := range knownMix(t, b) {
		want += n
	}
	// A keep-alive connection the server is reading from holds its shutdown for up to
	// read_timeout; a client that is done says so.
	b.client.CloseIdleConnections()
	if err := b.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := a.statsReport(t, "?scope=fleet&window=15m"); got.Totals.Total != want || got.Fleet.Instances < 1 {
		t.Errorf("after b drained: fleet total %d from %d instances, want b's %d hits", got.Totals.Total, got.Fleet.Instances, want)
	}
}

// TestFleetStatsRedisDown: with Redis gone, hits are served as ever, publishing fails and
// is counted with the counts kept, the fleet view answers 503 naming scope=instance, which
// still answers. Once Redis is back (empty: it kept nothing), the kept counts go in.
func TestFleetStatsRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	up.discard = true
	p := startProxy(t, redisConfig(up.URL(), rs.Addr))
	p.publish(t)
	rs.Stop()
	sent := 0
	for _, n := range knownMix(t, p) { // knownMix fails the test on any 5xx
		sent += n
	}
	if err := p.fleet.Publish(context.Background()); err == nil {
		t.Fatal("publish succeeded with Redis down")
	}
	// The instance's own 10-second ticker may have failed too: at least one each.
	m := p.metricsText(t)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^consentgate_fleet_stats_publishes_total\{result="error"\} [1-9]`),
		regexp.MustCompile(`(?m)^consentgate_fleet_stats_pending_batches [1-9]`),
	} {
		if !want.MatchString(m) {
			t.Errorf("metrics lack %s:\n%s", want, grep(m, "fleet"))
		}
	}
	r := p.adminDo("GET", "/api/stats", "")
	if r.Status != 503 || !strings.Contains(r.Body, "scope=instance") {
		t.Errorf("fleet view with Redis down: %d %s", r.Status, r.Body)
	}
	if rep := p.statsReport(t, "?scope=instance&window=15m"); rep.Totals.Total != sent {
		t.Errorf("this instance's view with Redis down: %d hits, want %d", rep.Totals.Total, sent)
	}

	rs.Restart(t)
	p.publish(t)
	if rep := p.statsReport(t, "?window=15m"); rep.Scope != "fleet" || rep.Totals.Total != sent {
		t.Errorf("after Redis came back: %s total %d, want the %d hits kept while it was down", rep.Scope, rep.Totals.Total, sent)
	}
	if m := p.metricsText(t); !strings.Contains(m, "consentgate_fleet_stats_pending_batches 0") {
		t.Errorf("batches still pending:\n%s", grep(m, "fleet"))
	}
}
