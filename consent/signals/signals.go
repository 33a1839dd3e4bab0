package signals

import (
	"github.com/consentgate/consentgate/internal/enum"
	"unsafe"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
)

// Request is what signals are read from. The proxy adapts its request to it without
// copying; the slices returned alias the request and are only read during the hit.
type Request interface {
	Param(name string) []byte  // query parameter
	Cookie(name string) []byte // request cookie
	Header(name string) []byte // request header
	Body() []byte
}

// Hit is what the journey has established before the signals are read.
type Hit struct {
	Stored   *consent.State // the stored state, nil when none was found
	StoreErr bool           // the store lookup failed
	// StoredTCFUnknown: the store did not answer, the signed snapshot decided instead, and
	// the state it stands for held a TC string the snapshot does not carry. For a vendor
	// that string would decide, its purposes count as no consent (cause store_error).
	StoredTCFUnknown bool
	OptIn            bool // the visitor's regime is opt_in
	GPC              bool // the visitor's jurisdiction honours Global Privacy Control
	VendorIndex      int  // the endpoint's vendor, an index into the vendors Compile was given
	ConsentMode      bool // the endpoint carries Google Consent Mode
	JSONBody         bool // the endpoint's body is JSON (Measurement Protocol consent{})
}

// State is what the signals of one hit said, kept for explain. Raw values alias the request
// and live only as long as it; explain decodes them again in full. The caller pools it.
type State struct {
	gpc    gpcState
	cmp    cmpState
	gpp    gppState
	tcf    tcfState
	usp    uspState
	cm     consentModeState
	Errors Errors // the signals present that could not be read
}

// Reset clears s for the next hit, keeping its buffers.
func (s *State) Reset() { *s = State{} }

// Reader is the compiled signals section of a config: what each signal means for the
// catalogue. It is shared by every hit of that config; only its TC string cache changes.
type Reader struct {
	tcf tcfSettings
	cmp cmpSettings
}

// Compile builds the reader for cfg. vendors are the catalogue's vendors in index order and
// gvl gives a vendor's built-in Global Vendor List ID (0: not on the GVL). The loader has
// validated every name and number.
func Compile(cfg *config.SignalsConfig, vendors []string, gvl func(vendor string) int) *Reader {
	r := &Reader{}
	r.tcf.compile(&cfg.TCF, vendors, gvl)
	r.cmp.compile(&cfg.CMP)
	return r
}

// Read applies every signal req carries to eff. The order matters only for which cause a
// denial keeps (the first); the outcome is the most protective of all. A signal that
// cannot be read is recorded in st.Errors for the caller to count.
func (r *Reader) Read(req Request, h *Hit, st *State, eff *consent.Effective) {
	r.readGPC(req, h, st, eff)
	r.readCMP(req, h, st, eff)
	r.readGPPSections(req, st)
	r.readTCF(req, h, st, eff)
	r.readGPP(h, st, eff)
	r.readUSP(req, st, eff)
	if h.ConsentMode {
		r.readConsentMode(req, h, st, eff)
	}
}

// Explanation is the explain view of a hit's signals: everything decoded, so an operator
// can see why a string decided what it did. Absent signals are null.
type Explanation struct {
	GPC         *ExplainGPC         `json:"gpc"`
	ConsentMode *ExplainConsentMode `json:"consent_mode"`
	TCF         *ExplainTCF         `json:"tcf"`
	GPP         []ExplainGPP        `json:"gpp"`
	USP         []ExplainUSP        `json:"usp"`
	CMP         *ExplainCMP         `json:"cmp"`
}

// Explain describes the signals of a hit that Read has seen with st.
func (r *Reader) Explain(req Request, h *Hit, st *State) Explanation {
	return Explanation{
		GPC:         explainGPC(req, h, st),
		ConsentMode: explainConsentMode(st),
		TCF:         r.explainTCF(req, h, st),
		GPP:         explainGPP(st),
		USP:         explainUSP(st),
		CMP:         r.explainCMP(st),
	}
}

// Kind names a signal whose value can be unreadable, the label of
// consentgate_signal_errors_total.
type Kind uint8

const (
	KindTCF       Kind = iota // IAB TC string (decoded where it decides)
	KindGPP                   // IAB GPP string
	KindGPPSID                // gpp_sid list
	KindUSP                   // IAB US Privacy string
	KindGCS                   // Google Consent Mode gcs
	KindGCD                   // Google Consent Mode gcd
	KindMPConsent             // Measurement Protocol consent{}
	KindCookiebot             // Cookiebot CookieConsent cookie
	KindOneTrust              // OneTrust OptanonConsent cookie
	NumKinds
)

var kindNames = enum.New("signal", NumKinds, "tcf", "gpp", "gpp_sid", "usp", "gcs", "gcd", "mp_consent", "cookiebot", "onetrust")

func (k Kind) String() string { return kindNames.String(k) }

// KindNames lists the kinds' labels in index order.
func KindNames() []string { return kindNames.List() }

// Errors is a set of Kinds.
type Errors uint16

func (e *Errors) add(k Kind) { *e |= 1 << k }

// Has reports whether k is in the set.
func (e Errors) Has(k Kind) bool { return e&(1<<k) != 0 }

// b2s views b as a string without copying, for lookups that do not keep it.
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// s2b views s as bytes without copying; the bytes must not be written.
func s2b(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func strPtr(s string) *string { return &s }
