package rules

import (
	"github.com/consentgate/consentgate/internal/enum"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
)

// Reason is the stable, snake_case why of a decision. Marketers read these on the
// dashboard and in metrics, so a name never changes meaning once released.
type Reason uint8

const (
	ReasonConsentGranted    Reason = iota // every purpose the endpoint needs is granted
	ReasonNoConsentRequired               // regime none, nothing said
	ReasonNotOptedOut                     // regime opt_out, the visitor has not objected
	ReasonConsentMissing                  // regime opt_in, the visitor has not agreed
	ReasonConsentDenied                   // the stored consent denies a purpose
	ReasonGPCOptOut                       // Sec-GPC: 1 where the jurisdiction honours it
	ReasonConsentModeDenied               // Google Consent Mode (gcs, gcd, npa, MP consent) says denied
	ReasonTCFGranted                      // an IAB TC string allows the vendor what it needs
	ReasonTCFDenied                       // an IAB TC string does not allow the vendor
	ReasonTCFInvalid                      // a TC string that does not decode: no consent
	ReasonGPPOptOut                       // an IAB GPP string opts out of sale, sharing or targeted ads
	ReasonGPPInvalid                      // a GPP string that does not decode: marketing refused
	ReasonUSPOptOut                       // an IAB US Privacy string opts out of sale
	ReasonUSPInvalid                      // a US Privacy string that does not decode: marketing refused
	ReasonCMPGranted                      // the consent banner's cookie grants (no stored state)
	ReasonCMPDenied                       // the consent banner's cookie refuses
	ReasonStoreUnavailable                // the consent store did not answer; fail closed
	ReasonAnonymiseFailed                 // the hit could not be rewritten safely, so it was dropped
	ReasonMethodNotAllowed                // method the endpoint does not accept
	ReasonBodyTooLarge                    // body over max_body_size
	ReasonInternalError                   // a bug; the hit was dropped rather than risked
	ReasonBadPath                         // a path not of the shape the vendor's tag sends (Endpoint.PathTail)
	ReasonBadBodyEncoding                 // a Content-Encoding not supported, or a body that does not decode as it says
	NumReasons
)

var reasonNames = enum.New("reason", NumReasons, "consent_granted",
	"no_consent_required",
	"not_opted_out",
	"consent_missing",
	"consent_denied",
	"gpc_opt_out",
	"consent_mode_denied",
	"tcf_granted",
	"tcf_denied",
	"tcf_invalid",
	"gpp_opt_out",
	"gpp_invalid",
	"usp_opt_out",
	"usp_invalid",
	"cmp_granted",
	"cmp_denied",
	"store_unavailable",
	"anonymise_failed",
	"method_not_allowed",
	"body_too_large",
	"internal_error",
	"bad_path",
	"bad_body_encoding")

func (r Reason) String() string { return reasonNames.String(r) }

// ReasonNames lists the reason names in index order (metrics use the index).
func ReasonNames() []string { return reasonNames.List() }

// PolicyCells is the decision table of one vendor: regime × status × purpose → action.
type PolicyCells [geo.NumRegimes][consent.NumStatuses][consent.NumPurposes]Action

// DefaultPolicy is the built-in table (README "How it decides"). Necessary purposes are
// never blocked unless denied; preferences, like marketing, need consent where consent is
// required because nothing about them can be anonymised into harmlessness.
func DefaultPolicy() PolicyCells {
	var p PolicyCells
	set := func(r geo.Regime, s consent.Status, nec, pref, stat, mkt Action) {
		p[r][s] = [consent.NumPurposes]Action{nec, pref, stat, mkt}
	}
	set(geo.OptIn, consent.Granted, Forward, Forward, Forward, Forward)
	set(geo.OptIn, consent.Unset, Forward, Drop, Anonymise, Drop)
	set(geo.OptIn, consent.Denied, Drop, Drop, Drop, Drop)
	for _, r := range []geo.Regime{geo.OptOut, geo.None} {
		set(r, consent.Granted, Forward, Forward, Forward, Forward)
		set(r, consent.Unset, Forward, Forward, Forward, Forward)
		set(r, consent.Denied, Drop, Drop, Anonymise, Drop)
	}
	return p
}

// reasonFor names why one purpose got its status. Unset reasons depend on the regime
// because "nobody said anything" means different things in each.
func reasonFor(regime geo.Regime, st consent.Status, cause consent.Cause) Reason {
	switch st {
	case consent.Granted:
		switch cause {
		case consent.CauseTCF:
			return ReasonTCFGranted
		case consent.CauseCMP:
			return ReasonCMPGranted
		}
		return ReasonConsentGranted
	case consent.Denied:
		switch cause {
		case consent.CauseGPC:
			return ReasonGPCOptOut
		case consent.CauseConsentMode:
			return ReasonConsentModeDenied
		case consent.CauseStoreError:
			return ReasonStoreUnavailable
		case consent.CauseTCF:
			return ReasonTCFDenied
		case consent.CauseTCFInvalid:
			return ReasonTCFInvalid
		case consent.CauseGPP:
			return ReasonGPPOptOut
		case consent.CauseGPPInvalid:
			return ReasonGPPInvalid
		case consent.CauseUSP:
			return ReasonUSPOptOut
		case consent.CauseUSPInvalid:
			return ReasonUSPInvalid
		case consent.CauseCMP:
			return ReasonCMPDenied
		default:
			return ReasonConsentDenied
		}
	}
	switch cause {
	case consent.CauseTCFInvalid:
		return ReasonTCFInvalid // unset because the TC string was unreadable
	case consent.CauseStoreError:
		return ReasonStoreUnavailable // unset because the store could not say (a TC string it held)
	}
	switch regime {
	case geo.OptIn:
		return ReasonConsentMissing
	case geo.OptOut:
		return ReasonNotOptedOut
	default:
		return ReasonNoConsentRequired
	}
}

// statusWeight orders statuses by how little consent they carry, to pick the purpose a
// reason is about when several purposes give the same action.
var statusWeight = [consent.NumStatuses]uint8{consent.Granted: 0, consent.Unset: 1, consent.Denied: 2}

// Decide is the whole policy: a pure function of the endpoint's purposes, the regime and
// the effective consent. The most protective outcome over the purposes wins; its reason
// comes from the purpose that caused it. It allocates nothing.
func Decide(cells *PolicyCells, purposes []consent.Purpose, regime geo.Regime, eff *consent.Effective) (Action, Reason) {
	if regime >= geo.NumRegimes {
		regime = geo.OptIn // fail closed on a corrupt value
	}
	best := Action(0)
	var bestP consent.Purpose
	found := false
	for _, p := range purposes {
		st := eff.Status[p]
		if st >= consent.NumStatuses {
			st = consent.Denied
		}
		a := cells[regime][st][p]
		if !found || a > best || (a == best && statusWeight[st] > statusWeight[eff.Status[bestP]]) {
			best, bestP, found = a, p, true
		}
	}
	if !found {
		// An endpoint with no purposes is a catalogue bug; never let it through silently.
		return Drop, ReasonConsentMissing
	}
	return best, reasonFor(regime, eff.Status[bestP], eff.Cause[bestP])
}
