package tcf

import (
	"fmt"
	"time"
	"unsafe"
)

// TCString is a fully decoded TC string. Purpose, special-feature and vendor lists hold
// the 1-based ids whose bit is set, in ascending order (empty, not nil, when none).
type TCString struct {
	// Core segment.
	Version                    int
	Created, LastUpdated       time.Time // UTC, decisecond precision
	CmpID, CmpVersion          int
	ConsentScreen              int
	ConsentLanguage            string // two letters, e.g. "EN"
	VendorListVersion          int
	PolicyVersion              int // TcfPolicyVersion: 2 for TCF v2.0, 4 for v2.2
	IsServiceSpecific          bool
	UseNonStandardTexts        bool // "UseNonStandardStacks" in TCF v2.0
	SpecialFeatureOptIns       []int
	PurposeConsents            []int
	PurposeLegitimateInterests []int
	PurposeOneTreatment        bool
	PublisherCC                string // two letters, e.g. "DE"

	MaxVendorConsentID        int
	VendorConsents            []int
	MaxVendorLIID             int
	VendorLegitimateInterests []int
	PublisherRestrictions     []PublisherRestriction

	// Optional segments; nil when absent.
	DisclosedVendors []int        // segment type 1
	AllowedVendors   []int        // segment type 2 (TCF v2.0 only)
	PublisherTC      *PublisherTC // segment type 3
}

// PublisherRestriction is one entry of the core segment's publisher restrictions. Its
// vendors are kept as the encoded ranges: unlike the vendor sections they have no
// MaxVendorId bound, so expanding them could cost ~65535 ints per entry.
type PublisherRestriction struct {
	Purpose int
	Type    RestrictionType
	Ranges  []VendorRange
}

// VendorRange is an inclusive range of vendor ids; a single vendor has Start == End.
type VendorRange struct{ Start, End int }

// Vendors expands the restriction's ranges into sorted, de-duplicated vendor ids.
func (p PublisherRestriction) Vendors() []int {
	var set vendorSet
	for _, r := range p.Ranges {
		set.add(r.Start, r.End)
	}
	return nonNil(set.list())
}

// Contains reports whether vendor is named by the restriction.
func (p PublisherRestriction) Contains(vendor int) bool {
	for _, r := range p.Ranges {
		if vendor >= r.Start && vendor <= r.End {
			return true
		}
	}
	return false
}

// PublisherTC is the publisher purposes segment.
type PublisherTC struct {
	PurposeConsents                  []int
	PurposeLegitimateInterests       []int
	NumCustomPurposes                int
	CustomPurposeConsents            []int
	CustomPurposeLegitimateInterests []int
}

func nonNil(l []int) []int {
	if l == nil {
		return []int{}
	}
	return l
}

func deciTime(ds int64) time.Time { return time.UnixMilli(ds * 100).UTC() }

// Parse fully decodes s. Errors wrap exactly one of the package's sentinel errors; a
// string that does not decode must be treated as no consent.
func Parse(s string) (*TCString, error) {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read-only view
	if err := validate(b); err != nil {
		return nil, fmt.Errorf("tcf: parse: %w", err)
	}
	seg, next := nextSegment(b, 0)
	r := reader{s: seg}
	var c core
	if err := readCore(&r, &c); err != nil {
		return nil, fmt.Errorf("tcf: core segment: %w", err)
	}
	t := &TCString{
		Version:                    c.version,
		Created:                    deciTime(c.created),
		LastUpdated:                deciTime(c.updated),
		CmpID:                      c.cmpID,
		CmpVersion:                 c.cmpVersion,
		ConsentScreen:              c.consentScreen,
		ConsentLanguage:            string(c.lang[:]),
		VendorListVersion:          c.vendorListVersion,
		PolicyVersion:              c.policyVersion,
		IsServiceSpecific:          c.serviceSpecific,
		UseNonStandardTexts:        c.nonStandardTexts,
		SpecialFeatureOptIns:       maskList(uint64(c.specialFeatures)),
		PurposeConsents:            maskList(uint64(c.purposeConsent)),
		PurposeLegitimateInterests: maskList(uint64(c.purposeLI)),
		PurposeOneTreatment:        c.purposeOneTreament,
		PublisherCC:                string(c.cc[:]),
	}
	var vc, vli vendorSet
	var err error
	if t.MaxVendorConsentID, _, err = vendorSection(&r, 0, &vc); err != nil {
		return nil, fmt.Errorf("tcf: vendor consents: %w", err)
	}
	if t.MaxVendorLIID, _, err = vendorSection(&r, 0, &vli); err != nil {
		return nil, fmt.Errorf("tcf: vendor legitimate interests: %w", err)
	}
	t.VendorConsents = nonNil(vc.list())
	t.VendorLegitimateInterests = nonNil(vli.list())
	sink := restrictionSink{list: []PublisherRestriction{}}
	if _, err := pubRestrictions(&r, 0, 0, &sink); err != nil {
		return nil, fmt.Errorf("tcf: publisher restrictions: %w", err)
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("tcf: core segment: %w", err)
	}
	for i := range sink.list {
		if sink.list[i].Ranges == nil {
			sink.list[i].Ranges = []VendorRange{}
		}
	}
	t.PublisherRestrictions = sink.list
	if err := otherSegments(b, next, &segmentSink{t: t}); err != nil {
		return nil, fmt.Errorf("tcf: segment: %w", err)
	}
	return t, nil
}

// Allowed decides whether vendorID may process for purpose (1-based ids). It returns the
// two legal bases separately:
//
//	consent: purpose consent for P and vendor consent for V
//	li:      purpose legitimate interest for P and vendor legitimate interest for V,
//	         where P admits legitimate interest: never purpose 1, and not purposes 3-6
//	         under TCF policy version >= 4 (TCF v2.2)
//
// then narrowed by publisher restrictions naming (P, V): type 0 (not allowed) clears
// both, type 1 (require consent) clears li, type 2 (require legitimate interest) clears
// consent; conflicting restrictions clear both. The vendor may process when either
// result is true AND the Global Vendor List declares P under that basis for V (or as
// flexible) — the GVL is not in the string and is the caller's concern. Restrictions are
// applied whether or not the vendor is flexible, which can only make the answer
// stricter. PurposeOneTreatment is decoded but not applied. Out-of-range ids (vendor < 1,
// purpose outside 1-24) yield false, false.
func (t *TCString) Allowed(vendorID, purpose int) (consent, li bool) {
	c := core{policyVersion: t.PolicyVersion}
	for _, p := range t.PurposeConsents {
		c.purposeConsent |= 1 << (p - 1)
	}
	for _, p := range t.PurposeLegitimateInterests {
		c.purposeLI |= 1 << (p - 1)
	}
	var types uint8
	for _, pr := range t.PublisherRestrictions {
		if pr.Purpose == purpose && pr.Contains(vendorID) {
			types |= 1 << pr.Type
		}
	}
	return decide(&c, purpose, contains(t.VendorConsents, vendorID), contains(t.VendorLegitimateInterests, vendorID), types)
}

func contains(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// liAllowed reports whether purpose may rest on legitimate interest.
func liAllowed(purpose, policyVersion int) bool {
	if purpose == 1 {
		return false
	}
	if policyVersion >= 4 && purpose >= 3 && purpose <= 6 {
		return false
	}
	return true
}

func decide(c *core, purpose int, vendorConsent, vendorLI bool, types uint8) (consent, li bool) {
	if purpose < 1 || purpose > 24 {
		return false, false
	}
	bit := uint32(1) << (purpose - 1)
	consent = c.purposeConsent&bit != 0 && vendorConsent
	li = c.purposeLI&bit != 0 && vendorLI && liAllowed(purpose, c.policyVersion)
	if types&(1<<NotAllowed) != 0 {
		return false, false
	}
	if types&(1<<RequireConsent) != 0 {
		li = false
	}
	if types&(1<<RequireLI) != 0 {
		consent = false
	}
	return consent, li
}
