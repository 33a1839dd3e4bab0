package dashboard

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	statsapi "github.com/consentgate/consentgate/telemetry/stats"
)

// TestFixturesMatchTheStatsContract: the browser tests' /api/stats answers decode into
// statsapi.Report with no field left over, and add up, so the page is tested against what
// the server can really send.
func TestFixturesMatchTheStatsContract(t *testing.T) {
	names, err := filepath.Glob("testdata/stats-*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var r statsapi.Report
		if err := dec.Decode(&r); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var series, vendors statsapi.Counts
		for _, p := range r.Series {
			addCounts(&series, p.Counts)
		}
		for _, k := range r.ByVendor {
			addCounts(&vendors, k.Counts)
		}
		if series != r.Totals || vendors != r.Totals {
			t.Errorf("%s: totals %+v, series sum %+v, by_vendor sum %+v", name, r.Totals, series, vendors)
		}
		if r.Scope == statsapi.ScopeFleet && (r.Fleet == nil || r.Fleet.Instances < 1) {
			t.Errorf("%s: a fleet report without its instances", name)
		}
	}
}

func addCounts(c *statsapi.Counts, o statsapi.Counts) {
	c.Forward += o.Forward
	c.Anonymise += o.Anonymise
	c.Drop += o.Drop
	c.Total += o.Total
}
