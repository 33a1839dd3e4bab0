package geo

import (
	"github.com/consentgate/consentgate/internal/enum"
)

// Regime is the consent regime a jurisdiction applies to tracking.
type Regime uint8

const (
	OptIn  Regime = iota // consent needed before tracking (GDPR/ePrivacy, UK, CH); the strictest, so the zero value
	OptOut               // tracking allowed until the visitor objects (US state privacy laws)
	None                 // no consent rules apply
	NumRegimes
)

var regimeNames = enum.New("regime", NumRegimes, "opt_in", "opt_out", "none")

func (r Regime) String() string { return regimeNames.String(r) }

// ParseRegime maps a regime name to its value.
func ParseRegime(s string) (Regime, bool) { return regimeNames.Parse(s) }

// RegimeNames lists the regime names in index order.
func RegimeNames() []string { return regimeNames.List() }
