package geo

import "fmt"

// Regime is the consent regime a jurisdiction applies to tracking.
type Regime uint8

const (
	OptIn  Regime = iota // consent needed before tracking (GDPR/ePrivacy, UK, CH); the strictest, so the zero value
	OptOut               // tracking allowed until the visitor objects (US state privacy laws)
	None                 // no consent rules apply
	NumRegimes
)

var regimeNames = [NumRegimes]string{"opt_in", "opt_out", "none"}

func (r Regime) String() string {
	if r < NumRegimes {
		return regimeNames[r]
	}
	return fmt.Sprintf("regime(%d)", uint8(r))
}

// ParseRegime maps a regime name to its value.
func ParseRegime(s string) (Regime, bool) {
	for i, n := range regimeNames {
		if n == s {
			return Regime(i), true
		}
	}
	return 0, false
}

// RegimeNames lists the regime names in index order.
func RegimeNames() []string { return regimeNames[:] }
