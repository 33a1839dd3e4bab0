package rules

import (
	"github.com/consentgate/consentgate/config"
	"testing"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
)

func TestDecideDefaultTable(t *testing.T) {
	cells := DefaultPolicy()
	stat := []consent.Purpose{consent.Statistics}
	mkt := []consent.Purpose{consent.Marketing}
	both := []consent.Purpose{consent.Statistics, consent.Marketing}
	eff := func(st, mk consent.Status, c consent.Cause) consent.Effective {
		var e consent.Effective
		e.Status[consent.Statistics], e.Status[consent.Marketing] = st, mk
		if st != consent.Unset {
			e.Cause[consent.Statistics] = c
		}
		if mk != consent.Unset {
			e.Cause[consent.Marketing] = c
		}
		return e
	}
	const (
		G = consent.Granted
		U = consent.Unset
		D = consent.Denied
	)
	check := func(name string, purposes []consent.Purpose, r geo.Regime, e consent.Effective, wantA Action, wantR Reason) {
		t.Helper()
		a, reason := Decide(&cells, purposes, r, &e)
		if a != wantA || reason != wantR {
			t.Errorf("%s: got %s/%s, want %s/%s", name, a, reason, wantA, wantR)
		}
	}
	// The README table, cell by cell.
	check("opt_in stat granted", stat, geo.OptIn, eff(G, U, consent.CauseStore), Forward, ReasonConsentGranted)
	check("opt_in stat unset", stat, geo.OptIn, eff(U, U, 0), Anonymise, ReasonConsentMissing)
	check("opt_in stat denied", stat, geo.OptIn, eff(D, U, consent.CauseStore), Drop, ReasonConsentDenied)
	check("opt_in mkt granted", mkt, geo.OptIn, eff(U, G, consent.CauseStore), Forward, ReasonConsentGranted)
	check("opt_in mkt unset", mkt, geo.OptIn, eff(U, U, 0), Drop, ReasonConsentMissing)
	check("opt_in mkt denied", mkt, geo.OptIn, eff(U, D, consent.CauseStore), Drop, ReasonConsentDenied)
	check("opt_out stat unset", stat, geo.OptOut, eff(U, U, 0), Forward, ReasonNotOptedOut)
	check("opt_out stat denied", stat, geo.OptOut, eff(D, U, consent.CauseStore), Anonymise, ReasonConsentDenied)
	check("opt_out mkt unset", mkt, geo.OptOut, eff(U, U, 0), Forward, ReasonNotOptedOut)
	check("opt_out mkt gpc", mkt, geo.OptOut, eff(U, D, consent.CauseGPC), Drop, ReasonGPCOptOut)
	check("opt_out mkt granted", mkt, geo.OptOut, eff(U, G, consent.CauseStore), Forward, ReasonConsentGranted)
	check("none stat unset", stat, geo.None, eff(U, U, 0), Forward, ReasonNoConsentRequired)
	check("none stat consent mode", stat, geo.None, eff(D, U, consent.CauseConsentMode), Anonymise, ReasonConsentModeDenied)
	check("none mkt denied", mkt, geo.None, eff(U, D, consent.CauseStore), Drop, ReasonConsentDenied)
	check("store error", stat, geo.None, eff(D, D, consent.CauseStoreError), Anonymise, ReasonStoreUnavailable)
	// Several purposes: the most protective outcome, with the reason of the purpose behind it.
	check("both: stat granted, mkt unset, opt_in", both, geo.OptIn, eff(G, U, consent.CauseStore), Drop, ReasonConsentMissing)
	check("both: stat unset, mkt granted, opt_in", both, geo.OptIn, eff(U, G, consent.CauseStore), Anonymise, ReasonConsentMissing)
	check("both granted", both, geo.OptIn, eff(G, G, consent.CauseStore), Forward, ReasonConsentGranted)
	check("both: granted+unset opt_out names the unset", both, geo.OptOut, eff(G, U, consent.CauseStore), Forward, ReasonNotOptedOut)
	// Fail closed on nonsense.
	check("no purposes", nil, geo.None, eff(G, G, consent.CauseStore), Drop, ReasonConsentMissing)
	check("corrupt regime", mkt, geo.Regime(9), eff(U, U, 0), Drop, ReasonConsentMissing)
}

func TestApplyPolicyOverrides(t *testing.T) {
	cells := DefaultPolicy()
	applyPolicy(&cells, config.PolicyTable{"opt_in": {"unset": {"statistics": "drop", "marketing": "anonymise"}}})
	if cells[geo.OptIn][consent.Unset][consent.Statistics] != Drop || cells[geo.OptIn][consent.Unset][consent.Marketing] != Anonymise {
		t.Errorf("override not applied: %v", cells[geo.OptIn][consent.Unset])
	}
	if cells[geo.OptOut][consent.Unset][consent.Statistics] != Forward {
		t.Errorf("override leaked into another regime")
	}
}

func TestDecideAllocatesNothing(t *testing.T) {
	cells := DefaultPolicy()
	var e consent.Effective
	e.Deny(consent.Marketing, consent.CauseGPC)
	purposes := []consent.Purpose{consent.Statistics, consent.Marketing}
	if n := testing.AllocsPerRun(1000, func() { Decide(&cells, purposes, geo.OptOut, &e) }); n != 0 {
		t.Errorf("Decide allocates %.1f times", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	cells := DefaultPolicy()
	var e consent.Effective
	e.Deny(consent.Marketing, consent.CauseGPC)
	purposes := []consent.Purpose{consent.Statistics, consent.Marketing}
	b.ReportAllocs()
	for b.Loop() {
		Decide(&cells, purposes, geo.OptOut, &e)
	}
}

func TestRouter(t *testing.T) {
	r := NewRouter([]RouteSpec{
		{Path: "/g/collect", Endpoint: 0},
		{Path: "/pagead/conversion/*", Endpoint: 1},
		{Path: "/pagead/*", Endpoint: 2},
		{Path: "/tr", Endpoint: 3},
		{Path: "/tr", Endpoint: -1}, // disabled by config
		{Host: "T.Example.com", Path: "/g/collect", Endpoint: 4},
		{Path: "/custom/ga", Endpoint: 0},
	})
	for _, c := range []struct {
		host, path string
		want       int
	}{
		{"", "/g/collect", 0},
		{"other.example", "/g/collect", 0},
		{"t.example.com", "/g/collect", 4},
		{"T.EXAMPLE.COM", "/g/collect", 4},
		{"", "/pagead/conversion/123/", 1},
		{"", "/pagead/other", 2},
		{"", "/tr", -1},
		{"", "/g/collect/", -1},
		{"", "/custom/ga", 0},
		{"", "/", -1},
	} {
		if got := r.Lookup([]byte(c.host), []byte(c.path)); got != c.want {
			t.Errorf("Lookup(%q, %q) = %d, want %d", c.host, c.path, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { r.Lookup([]byte("t.example.com"), []byte("/pagead/conversion/1/")) }); n != 0 {
		t.Errorf("Lookup allocates %.1f times", n)
	}
}
