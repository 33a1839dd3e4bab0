package telemetry

import (
	"errors"
	"fmt"
	"testing"
)

// TestScriptCounters: interned scripts keep their index, every series of an interned
// script is exported from zero, counts land on their labels, and bad indices are dropped.
func TestScriptCounters(t *testing.T) {
	m := newTestMetrics(t)
	s := serve(t, m)
	if got := s.scrape(t).series; got[`consentgate_script_requests_total{outcome="hit",script="gtag"}`] != 0 {
		t.Fatal("a script series before the script was interned")
	}
	gtag, err := m.Script("gtag")
	if err != nil {
		t.Fatal(err)
	}
	plausible, _ := m.Script("plausible")
	if again, _ := m.Script("gtag"); again != gtag || plausible != 1 {
		t.Fatalf("indices gtag %d again %d, plausible %d", gtag, again, plausible)
	}
	m.ScriptRequest(gtag, ScriptHit)
	m.ScriptRequest(gtag, ScriptHit)
	m.ScriptRequest(plausible, ScriptStale)
	m.ScriptVendorError(plausible, ScriptVendorTooLarge)
	m.ScriptRequest(5, ScriptHit)            // not interned
	m.ScriptRequest(gtag, numScriptOutcomes) // out of range
	m.ScriptVendorError(gtag, numScriptErrorKinds)
	got := s.scrape(t).series
	want := map[string]float64{}
	for _, name := range []string{"gtag", "plausible"} {
		for o := range numScriptOutcomes {
			want[fmt.Sprintf(`consentgate_script_requests_total{outcome=%q,script=%q}`, o, name)] = 0
		}
		for k := range numScriptErrorKinds {
			want[fmt.Sprintf(`consentgate_script_vendor_errors_total{kind=%q,script=%q}`, k, name)] = 0
		}
	}
	want[`consentgate_script_requests_total{outcome="hit",script="gtag"}`] = 2
	want[`consentgate_script_requests_total{outcome="stale",script="plausible"}`] = 1
	want[`consentgate_script_vendor_errors_total{kind="too_large",script="plausible"}`] = 1
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (exported %v), want %v", k, g, ok, v)
		}
	}
	if d := got["consentgate_telemetry_dropped_observations_total"]; d != 3 {
		t.Errorf("dropped observations %v, want 3", d)
	}
	if m.ScriptRequestCount(gtag, ScriptHit) != 2 || m.ScriptVendorErrorCount(plausible, ScriptVendorTooLarge) != 1 {
		t.Error("counts read back wrong")
	}
}

func TestScriptCapacity(t *testing.T) {
	m := newTestMetrics(t)
	for i := range MaxScripts {
		if got, err := m.Script(fmt.Sprintf("s%d", i)); err != nil || got != i {
			t.Fatalf("Script(s%d) = %d, %v", i, got, err)
		}
	}
	if _, err := m.Script("one_too_many"); !errors.Is(err, ErrScriptCapacity) {
		t.Fatalf("err %v, want ErrScriptCapacity", err)
	}
	if got, err := m.Script("s63"); err != nil || got != 63 {
		t.Fatalf("a known name when full: %d, %v", got, err)
	}
	if _, err := m.Script(""); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestScriptRecordingAllocatesNothing(t *testing.T) {
	m := newTestMetrics(t)
	i, _ := m.Script("gtag")
	if n := testing.AllocsPerRun(1000, func() {
		m.ScriptRequest(i, ScriptHit)
		m.ScriptVendorError(i, ScriptVendorStatus)
	}); n != 0 {
		t.Errorf("%.1f allocations per record, want 0", n)
	}
}
