package consent

import (
	"github.com/consentgate/consentgate/internal/enum"
	"time"
)

// Purpose is one of the Cookiebot cookie categories. The values index fixed-size arrays on
// the hit path, so they are dense and start at zero.
type Purpose uint8

const (
	Necessary Purpose = iota
	Preferences
	Statistics
	Marketing
	NumPurposes
)

var purposeNames = enum.New("purpose", NumPurposes, "necessary", "preferences", "statistics", "marketing")

func (p Purpose) String() string { return purposeNames.String(p) }

// ParsePurpose maps a purpose name to its value.
func ParsePurpose(s string) (Purpose, bool) { return purposeNames.Parse(s) }

// PurposeNames lists the purpose names in index order.
func PurposeNames() []string { return purposeNames.List() }

// Status is what the visitor said about one purpose. Unset is the zero value: a visitor
// we know nothing about has every purpose unset.
type Status uint8

const (
	Unset Status = iota
	Granted
	Denied
	NumStatuses
)

var statusNames = enum.New("status", NumStatuses, "unset", "granted", "denied")

func (s Status) String() string { return statusNames.String(s) }

// ParseStatus maps a status name to its value.
func ParseStatus(s string) (Status, bool) { return statusNames.Parse(s) }

// Cause records which source set a purpose's effective status, so that a decision can
// give a reason a marketer understands ("gpc_opt_out" rather than "denied").
type Cause uint8

const (
	CauseNone        Cause = iota // nothing known: no stored state, no signal
	CauseStore                    // the stored consent state
	CauseGPC                      // Sec-GPC: 1
	CauseConsentMode              // Google Consent Mode gcs / gcd
	CauseStoreError               // the store could not answer; fail closed
	CauseTCF                      // an IAB TCF TC string, for this vendor
	CauseTCFInvalid               // a TC string that does not decode: counts as no consent
	CauseGPP                      // an IAB GPP string's opt-out of sale, sharing or targeted ads
	CauseGPPInvalid               // a GPP string that does not decode: marketing refused
	CauseUSP                      // an IAB US Privacy string's opt-out of sale
	CauseUSPInvalid               // a US Privacy string that does not decode: marketing refused
	CauseCMP                      // a consent banner's cookie (Cookiebot, OneTrust)
	CauseSnapshot                 // the signed snapshot in the consent cookie (snapshot.go)
	NumCauses
)

var causeNames = enum.New("cause", NumCauses, "none", "store", "gpc", "consent_mode", "store_error",
	"tcf", "tcf_invalid", "gpp", "gpp_invalid", "usp", "usp_invalid", "cmp", "snapshot")

func (c Cause) String() string { return causeNames.String(c) }

// Purposes holds one status per purpose.
type Purposes [NumPurposes]Status

// State is the stored consent of one consent ID.
type State struct {
	Purposes Purposes
	Source   string // who wrote it: "api", "admin", ...
	Version  int64  // bumped on every write
	// TCF is an IAB TC string written through the consent API; hits read it like a
	// euconsent-v2 cookie, per vendor. Empty when none was written.
	TCF     string
	Created time.Time
	Updated time.Time
}

// Effective is the consent that the decision sees for one hit: the stored state merged with
// the signals the hit carries, each purpose with the cause of its status. It is a plain
// value so that building it allocates nothing.
type Effective struct {
	Status [NumPurposes]Status
	Cause  [NumPurposes]Cause
}

// FromState starts an Effective from a stored state.
func FromState(st *State) Effective {
	var e Effective
	if st == nil {
		return e
	}
	for i, s := range st.Purposes {
		e.Status[i] = s
		if s != Unset {
			e.Cause[i] = CauseStore
		}
	}
	return e
}

// FromSnapshot starts an Effective from a verified snapshot, which stands in for the
// state when the store cannot answer: each purpose as the snapshot has it, caused by it.
func FromSnapshot(s *Snapshot) Effective {
	var e Effective
	for i, st := range s.Purposes {
		e.Status[i] = st
		if st != Unset {
			e.Cause[i] = CauseSnapshot
		}
	}
	return e
}

// DenyFrom denies every purpose that s denies, with cause CauseSnapshot: a snapshot's
// refusals, kept where the store has no record or an older one. It reports whether s
// denied anything.
func (e *Effective) DenyFrom(s *Snapshot) bool {
	denied := false
	for p, st := range s.Purposes {
		if st == Denied {
			e.Deny(Purpose(p), CauseSnapshot)
			denied = true
		}
	}
	return denied
}

// Deny marks purpose p denied by cause c unless it is already denied: the most protective
// signal wins, and the first denial keeps its cause.
func (e *Effective) Deny(p Purpose, c Cause) {
	if e.Status[p] == Denied {
		return
	}
	e.Status[p] = Denied
	e.Cause[p] = c
}

// Grant marks purpose p granted by cause c, but only where nothing has been said yet:
// a signal may supply a consent that is missing, never overrule a denial or a
// "no consent" verdict (NoConsent) that another signal gave.
func (e *Effective) Grant(p Purpose, c Cause) {
	if e.Status[p] != Unset || e.Cause[p] != CauseNone {
		return
	}
	e.Status[p] = Granted
	e.Cause[p] = c
}

// NoConsent takes back a grant of purpose p (the purpose becomes unset, with cause c)
// unless it is denied: for a signal that must count as "no consent", such as a TC
// string that does not decode, which is not a refusal but cannot be a consent either.
func (e *Effective) NoConsent(p Purpose, c Cause) {
	if e.Status[p] == Denied {
		return
	}
	e.Status[p] = Unset
	e.Cause[p] = c
}

// DenyAll marks every purpose denied by cause c; used when consent cannot be known.
func (e *Effective) DenyAll(c Cause) {
	for p := Purpose(0); p < NumPurposes; p++ {
		e.Deny(p, c)
	}
}
