package geo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func builtinTable(tb testing.TB, unknown Regime) *Table {
	tb.Helper()
	tab, err := NewTable(BuiltinGroups(), unknown)
	if err != nil {
		tb.Fatal(err)
	}
	return tab
}

// TestResolveEndToEnd goes from an address through a real database to a group and regime.
func TestResolveEndToEnd(t *testing.T) {
	for _, unknown := range []Regime{OptIn, None} {
		tab := builtinTable(t, unknown)
		db := openTestDB(t, "GeoIP2-City-Test")
		check := func(ip, group string, regime Regime, gpc bool) {
			t.Helper()
			id := tab.Resolve(db.Lookup(mustAddr(t, ip)))
			g := tab.Group(id)
			if g == nil || g.Name != group || g.Regime != regime || g.GPC != gpc || tab.Names()[id] != group {
				t.Errorf("unknown=%s: %s resolves to %d %+v, want %s %s gpc=%v", unknown, ip, id, g, group, regime, gpc)
			}
		}
		check("89.160.20.112", "eea", OptIn, false)      // SE
		check("81.2.69.142", "uk", OptIn, false)         // GB-ENG: no subdivision group, country wins
		check("2a02:d000::1", "ch", OptIn, false)        // CH
		check("214.78.120.1", "us-ca", OptOut, true)     // US-CA
		check("216.160.83.56", "other", None, false)     // US-WA: no state law, no US group
		check("67.43.156.1", "other", None, false)       // BT
		check("175.16.199.1", "other", None, false)      // CN-22
		check("2a02:d500::1", "unknown", unknown, false) // in the DB, no country
		check("10.0.0.1", "unknown", unknown, false)     // not in the DB
		check("127.0.0.1", "unknown", unknown, false)
	}

	// The Country database has no subdivisions: California is just the US, so "other".
	tab := builtinTable(t, OptIn)
	db := openTestDB(t, "GeoIP2-Country-Test")
	if g := tab.Group(tab.Resolve(db.Lookup(mustAddr(t, "214.78.120.1")))); g.Name != "other" {
		t.Errorf("US from a Country DB resolves to %s, want other", g.Name)
	}
}

func TestResolve(t *testing.T) {
	tab, err := NewTable([]Group{
		{Name: "us", Regime: OptOut, Codes: []string{"US"}},
		{Name: "us-ca", Regime: OptOut, GPC: true, Codes: []string{"US-CA"}},
		{Name: "gb-eng", Regime: OptIn, Codes: []string{"GB-ENG"}},
		{Name: "cn22", Regime: OptIn, Codes: []string{"CN-22"}},
		{Name: "zz", Regime: None, Codes: []string{"ZZ", "AA"}},
	}, OptOut)
	if err != nil {
		t.Fatal(err)
	}
	check := func(l Location, want string) {
		t.Helper()
		if got := tab.Names()[tab.Resolve(l)]; got != want {
			t.Errorf("Resolve(%q/%q) = %s, want %s", l.CountryCode(), l.SubdivisionCode(), got, want)
		}
	}
	check(loc("US", "CA"), "us-ca") // subdivision beats country
	check(loc("US", "WA"), "us")    // unmatched subdivision falls back to the country
	check(loc("US", ""), "us")
	check(loc("GB", "ENG"), "gb-eng")
	check(loc("GB", "WLS"), "other") // country in no group
	check(loc("GB", ""), "other")
	check(loc("CN", "22"), "cn22")
	check(loc("ZZ", ""), "zz") // array corners
	check(loc("AA", ""), "zz")
	check(loc("AB", ""), "other")
	check(Location{}, "unknown")
	check(Location{Subdivision: [3]byte{'C', 'A'}}, "unknown")
	// Malformed locations (only hand-made ones can be) must not index out of the array.
	check(Location{Country: [2]byte{'u', 's'}}, "other")
	check(Location{Country: [2]byte{0xff, 0}}, "other")
	check(Location{Country: [2]byte{'U', '['}}, "other")

	if tab.Group(tab.Unknown()).Regime != OptOut || tab.Names()[tab.Unknown()] != "unknown" {
		t.Errorf("unknown group: %+v", tab.Group(tab.Unknown()))
	}
	if g := tab.Group(tab.Other()); g.Name != "other" || g.Regime != None || g.GPC {
		t.Errorf("other group: %+v", g)
	}
	if want := []string{"us", "us-ca", "gb-eng", "cn22", "zz", "other", "unknown"}; !slices.Equal(tab.Names(), want) {
		t.Errorf("Names() = %v, want %v", tab.Names(), want)
	}
	if tab.Group(GroupID(len(tab.Names()))) != nil {
		t.Error("Group(out of range) is not nil")
	}
}

func TestNewTableCopiesInput(t *testing.T) {
	groups := []Group{{Name: "de", Regime: OptIn, Codes: []string{"DE"}}}
	tab, err := NewTable(groups, OptIn)
	if err != nil {
		t.Fatal(err)
	}
	groups[0].Codes[0] = "FR"
	groups[0].Name = "fr"
	if g := tab.Group(0); g.Name != "de" || g.Codes[0] != "DE" {
		t.Errorf("table changed with its input: %+v", g)
	}
	tab.Names()[0] = "changed"
	if tab.Names()[0] != "de" {
		t.Error("Names() exposes the table's slice")
	}
}

func TestNewTableErrors(t *testing.T) {
	ok := Group{Name: "ok", Regime: OptIn, Codes: []string{"DE"}}
	many := make([]Group, MaxGroups+1)
	for i := range many {
		many[i] = Group{Name: fmt.Sprintf("g%d", i)}
	}
	cases := []struct {
		name    string
		groups  []Group
		unknown Regime
		want    []string // one substring per expected error, in order
	}{
		{"lower-case code", []Group{ok, {Name: "x", Codes: []string{"fr"}}}, OptIn,
			[]string{`group "x": code "fr": bad code`}},
		{"bad codes", []Group{{Name: "x", Codes: []string{"D", "DEU", "D1", "US-", "US-ABCD", "US-ca", "US_CA", "US-C A", " DE", ""}}}, OptIn,
			[]string{`code "D"`, `code "DEU"`, `code "D1"`, `code "US-"`, `code "US-ABCD"`, `code "US-ca"`, `code "US_CA"`, `code "US-C A"`, `code " DE"`, `code ""`}},
		{"duplicate name", []Group{ok, {Name: "ok", Codes: []string{"FR"}}}, OptIn,
			[]string{`group "ok": duplicate group name (also group #1)`}},
		{"code in two groups", []Group{ok, {Name: "y", Codes: []string{"FR", "DE"}}}, OptIn,
			[]string{`group "y": code "DE": already in group "ok"`}},
		{"subdivision in two groups", []Group{{Name: "a", Codes: []string{"US-CA"}}, {Name: "b", Codes: []string{"US-CA"}}}, OptIn,
			[]string{`group "b": code "US-CA": already in group "a"`}},
		{"code twice in a group", []Group{{Name: "a", Codes: []string{"FR", "FR"}}}, OptIn,
			[]string{`group "a": code "FR": already in group "a"`}},
		{"reserved other", []Group{{Name: "other", Codes: []string{"FR"}}}, OptIn,
			[]string{`group "other": name is reserved`}},
		{"reserved unknown", []Group{{Name: "unknown"}}, OptIn,
			[]string{`group "unknown": name is reserved`}},
		{"bad names", []Group{{Name: ""}, {Name: "EEA"}, {Name: "1eu"}, {Name: "e.u"}, {Name: "-eu"}, {Name: strings.Repeat("a", 33)}}, OptIn,
			[]string{`group "": bad name (group #1)`, `group "EEA": bad name`, `group "1eu": bad name`, `group "e.u": bad name`, `group "-eu": bad name`, `bad name (group #6)`}},
		{"bad regime", []Group{{Name: "x", Regime: NumRegimes}}, OptIn,
			[]string{`group "x": bad regime 3`}},
		{"bad unknown regime", []Group{ok}, Regime(9),
			[]string{`geo: unknown location regime: bad regime 9`}},
		{"too many groups", many, OptIn,
			[]string{`geo: 61 groups, at most 60`}},
		{"everything at once", []Group{{Name: "Bad", Codes: []string{"xx"}}, {Name: "other"}, ok, ok}, None,
			[]string{`group "Bad": bad name`, `group "Bad": code "xx"`, `group "other": name is reserved`, `group "ok": duplicate`, `group "ok": code "DE": already in group "ok"`}},
	}
	for _, c := range cases {
		tab, err := NewTable(c.groups, c.unknown)
		if err == nil {
			t.Errorf("%s: NewTable succeeded: %v", c.name, tab.Names())
			continue
		}
		var list []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		if len(list) != len(c.want) {
			t.Errorf("%s: %d errors, want %d:\n%v", c.name, len(list), len(c.want), err)
			continue
		}
		for i, e := range list {
			var te *TableError
			if !errors.As(e, &te) || !strings.HasPrefix(e.Error(), "geo: ") || !strings.Contains(e.Error(), c.want[i]) {
				t.Errorf("%s: error %d = %q, want a *TableError containing %q", c.name, i, e, c.want[i])
			}
		}
	}

	// Exactly MaxGroups is fine.
	if _, err := NewTable(many[:MaxGroups], OptIn); err != nil {
		t.Errorf("%d groups: %v", MaxGroups, err)
	}
}

func TestTableErrorFields(t *testing.T) {
	_, err := NewTable([]Group{{Name: "a", Codes: []string{"DE"}}, {Name: "b", Codes: []string{"de"}}}, OptIn)
	var te *TableError
	if !errors.As(err, &te) || te.Index != 1 || te.Group != "b" || te.Code != "de" {
		t.Errorf("TableError = %+v", te)
	}
}

func TestBuiltinGroups(t *testing.T) {
	tab := builtinTable(t, OptIn) // compiles: names valid, no code in two groups
	want := map[string]struct {
		regime Regime
		gpc    bool
		n      int
	}{
		"eea":       {OptIn, false, 27 + 3 + 7},
		"uk":        {OptIn, false, 1},
		"ch":        {OptIn, false, 1},
		"us-ca":     {OptOut, true, 1},
		"us-states": {OptOut, true, 18},
	}
	groups := BuiltinGroups()
	if len(groups) != len(want) {
		t.Fatalf("%d builtin groups, want %d", len(groups), len(want))
	}
	for _, g := range groups {
		w, ok := want[g.Name]
		if !ok || g.Regime != w.regime || g.GPC != w.gpc || len(g.Codes) != w.n {
			t.Errorf("builtin %s: regime %s gpc %v %d codes; want %+v", g.Name, g.Regime, g.GPC, len(g.Codes), w)
		}
	}
	check := func(cc, sub, group string) {
		t.Helper()
		if got := tab.Names()[tab.Resolve(loc(cc, sub))]; got != group {
			t.Errorf("%s-%s resolves to %s, want %s", cc, sub, got, group)
		}
	}
	for _, cc := range []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
		"IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO"} {
		check(cc, "", "eea")
	}
	check("RE", "", "eea")
	check("AX", "", "eea")
	check("GB", "SCT", "uk")
	check("CH", "ZH", "ch")
	check("US", "CA", "us-ca")
	for _, st := range []string{"CO", "CT", "VA", "UT", "OR", "TX", "MT", "DE", "IA", "NE", "NH", "NJ", "TN", "MN", "MD", "IN", "KY", "RI"} {
		check("US", st, "us-states")
	}
	check("US", "NY", "other")
	check("US", "", "other")
	check("JE", "", "other")

	// Each call returns a fresh copy.
	groups[0].Codes[0] = "XX"
	if BuiltinGroups()[0].Codes[0] != "AT" {
		t.Error("BuiltinGroups shares its slices")
	}
}

func TestMergeGroups(t *testing.T) {
	builtin := []Group{
		{Name: "eea", Regime: OptIn, Codes: []string{"DE", "FR", "IT"}},
		{Name: "uk", Regime: OptIn, Codes: []string{"GB"}},
		{Name: "us-ca", Regime: OptOut, GPC: true, Codes: []string{"US-CA"}},
	}
	type out struct {
		name   string
		regime Regime
		codes  string
	}
	cases := []struct {
		name       string
		configured []Group
		want       []out
	}{
		{"nothing configured", nil, []out{
			{"eea", OptIn, "DE FR IT"}, {"uk", OptIn, "GB"}, {"us-ca", OptOut, "US-CA"},
		}},
		{"replace a builtin in place", []Group{{Name: "uk", Regime: None, Codes: []string{"GB", "GG"}}}, []out{
			{"eea", OptIn, "DE FR IT"}, {"uk", None, "GB GG"}, {"us-ca", OptOut, "US-CA"},
		}},
		{"new group takes codes from builtins", []Group{{Name: "dach", Regime: OptIn, Codes: []string{"DE", "CH", "GB"}}}, []out{
			{"eea", OptIn, "FR IT"}, {"uk", OptIn, ""}, {"us-ca", OptOut, "US-CA"}, {"dach", OptIn, "DE CH GB"},
		}},
		{"country does not take subdivisions", []Group{{Name: "us", Regime: OptOut, Codes: []string{"US"}}}, []out{
			{"eea", OptIn, "DE FR IT"}, {"uk", OptIn, "GB"}, {"us-ca", OptOut, "US-CA"}, {"us", OptOut, "US"},
		}},
		{"replace and take", []Group{
			{Name: "us-ca", Regime: OptIn, Codes: []string{"US-CA"}},
			{Name: "fr", Regime: None, Codes: []string{"FR"}},
		}, []out{
			{"eea", OptIn, "DE IT"}, {"uk", OptIn, "GB"}, {"us-ca", OptIn, "US-CA"}, {"fr", None, "FR"},
		}},
		{"replacement moves a code out of another builtin", []Group{{Name: "uk", Regime: OptIn, Codes: []string{"GB", "IT"}}}, []out{
			{"eea", OptIn, "DE FR"}, {"uk", OptIn, "GB IT"}, {"us-ca", OptOut, "US-CA"},
		}},
	}
	for _, c := range cases {
		before := fmt.Sprint(builtin, c.configured)
		got := MergeGroups(builtin, c.configured)
		if after := fmt.Sprint(builtin, c.configured); after != before {
			t.Errorf("%s: inputs modified: %s -> %s", c.name, before, after)
		}
		var gotOut []out
		for _, g := range got {
			gotOut = append(gotOut, out{g.Name, g.Regime, strings.Join(g.Codes, " ")})
		}
		if !slices.Equal(gotOut, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, gotOut, c.want)
		}
		if _, err := NewTable(got, OptIn); err != nil {
			t.Errorf("%s: merged groups do not compile: %v", c.name, err)
		}
	}

	// Merged with the real builtins: a configured group wins Germany, the rest of the EEA stays.
	merged := MergeGroups(BuiltinGroups(), []Group{{Name: "de", Regime: OptIn, GPC: true, Codes: []string{"DE"}}})
	tab, err := NewTable(merged, OptIn)
	if err != nil {
		t.Fatal(err)
	}
	if n := tab.Names(); n[tab.Resolve(loc("DE", "BY"))] != "de" || n[tab.Resolve(loc("FR", ""))] != "eea" {
		t.Errorf("DE resolves to %s, FR to %s", n[tab.Resolve(loc("DE", ""))], n[tab.Resolve(loc("FR", ""))])
	}

	// Conflicts among configured groups are NewTable's to report.
	dup := MergeGroups(BuiltinGroups(), []Group{{Name: "a", Codes: []string{"FR"}}, {Name: "b", Codes: []string{"FR"}}})
	if _, err := NewTable(dup, OptIn); err == nil || !strings.Contains(err.Error(), `group "b": code "FR": already in group "a"`) {
		t.Errorf("conflicting configured groups: %v", err)
	}
}
