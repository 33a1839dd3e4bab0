package config

// Vocabulary is the names a config may use that are defined outside this package. A name
// not listed is reported as unknown, with the list and the closest name as a hint.
type Vocabulary struct {
	Vendors   []string // catalogue vendors: upstreams, anonymise.allow, policy.vendors, signals.tcf.vendors
	Endpoints []string // catalogue endpoints: routes[].endpoint
	Regimes   []string // geo.unknown_regime, jurisdictions.groups.*.regime, policy
	Statuses  []string // consent statuses, the second level of a policy table
	Purposes  []string // consent purposes: policy, signals.tcf.purposes, signals.cmp.onetrust_groups
	Actions   []string // policy cells
	Scripts   []string // built-in tag scripts: scripts.<name> overrides one, any other name adds one
}
