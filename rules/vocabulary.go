package rules

import (
	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
)

// Vocabulary is the names a config may use: the built-in catalogue's vendors and
// endpoints, the regimes, the consent statuses and purposes, and the actions.
func Vocabulary() config.Vocabulary {
	v := config.Vocabulary{
		Vendors:  VendorNames(),
		Regimes:  geo.RegimeNames(),
		Purposes: consent.PurposeNames(),
		Actions:  ActionNames(),
		Scripts:  ScriptNames(),
	}
	for _, ep := range Builtin() {
		v.Endpoints = append(v.Endpoints, ep.Name)
	}
	for s := range consent.NumStatuses {
		v.Statuses = append(v.Statuses, s.String())
	}
	return v
}
