package geo

import "slices"

// Group is a named jurisdiction: the places (countries, or subdivisions such as US-CA) that
// share a consent regime. Its name labels metrics and dashboards.
type Group struct {
	Name   string   // short metric-safe name: "eea", "uk", "ch", "us-ca", "us-states"
	Regime Regime   // consent regime applied here
	GPC    bool     // Sec-GPC: 1 opts the visitor out of marketing here
	Codes  []string // ISO 3166-1 alpha-2 ("DE") or ISO 3166-2 ("US-CA") codes
}

// Names of the two groups every Table adds after the configured ones.
const (
	OtherGroup   = "other"   // known location in no group: no consent rules apply
	UnknownGroup = "unknown" // no location: the configured unknown regime applies
)

// BuiltinGroups returns the default jurisdictions, a fresh copy on every call.
//
// eea is the EU-27 plus Iceland, Liechtenstein and Norway, plus EU territory that GeoIP
// reports under its own country code: Åland (AX, part of Finland) and the French outermost
// regions Guadeloupe, French Guiana, Martinique, Réunion, Mayotte and Saint-Martin (GP, GF,
// MQ, RE, YT, MF), where the GDPR applies as in mainland France.
//
// us-states are the US states with a comprehensive consumer privacy law in force or
// enacted (as of 2025) other than California, which has its own group: all are opt-out
// regimes where a Global Privacy Control signal is an opt-out of sale/targeted advertising.
func BuiltinGroups() []Group {
	return []Group{
		{Name: "eea", Regime: OptIn, Codes: []string{
			// EU-27
			"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
			"IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
			// EEA EFTA states
			"IS", "LI", "NO",
			// EU territory with its own ISO 3166-1 code
			"AX", "GP", "GF", "MQ", "RE", "YT", "MF",
		}},
		{Name: "uk", Regime: OptIn, Codes: []string{"GB"}},
		{Name: "ch", Regime: OptIn, Codes: []string{"CH"}},
		{Name: "us-ca", Regime: OptOut, GPC: true, Codes: []string{"US-CA"}},
		{Name: "us-states", Regime: OptOut, GPC: true, Codes: []string{
			"US-CO", "US-CT", "US-VA", "US-UT", "US-OR", "US-TX", "US-MT", "US-DE", "US-IA",
			"US-NE", "US-NH", "US-NJ", "US-TN", "US-MN", "US-MD", "US-IN", "US-KY", "US-RI",
		}},
	}
}

// MergeGroups applies configured groups to builtin ones. A configured group with a built-in
// name replaces it in place; the others are appended in order. A code named by a configured
// group is removed from every built-in group, so the configured group wins it. Country and
// subdivision codes are distinct: configuring "US" leaves "US-CA" in us-ca, and since
// a subdivision match beats a country match, Californians stay in us-ca.
//
// Inputs are not modified. Conflicts among configured groups (duplicate names, a code in
// two of them) are left for NewTable to report.
func MergeGroups(builtin, configured []Group) []Group {
	claimed := make(map[string]bool)
	for _, g := range configured {
		for _, c := range g.Codes {
			claimed[c] = true
		}
	}
	out := make([]Group, 0, len(builtin)+len(configured))
	used := make([]bool, len(configured))
	for _, b := range builtin {
		if i := slices.IndexFunc(configured, func(g Group) bool { return g.Name == b.Name }); i >= 0 {
			out = append(out, cloneGroup(configured[i]))
			used[i] = true
			continue
		}
		b = cloneGroup(b)
		b.Codes = slices.DeleteFunc(b.Codes, func(c string) bool { return claimed[c] })
		out = append(out, b)
	}
	for i, g := range configured {
		if !used[i] {
			out = append(out, cloneGroup(g))
		}
	}
	return out
}

func cloneGroup(g Group) Group {
	g.Codes = slices.Clone(g.Codes)
	return g
}
