package gpp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Section IDs (IAB GPP section registry).
const (
	SectionTCFEUv2 = 2
	SectionHeader  = 3
	SectionTCFCAv1 = 5
	SectionUSPv1   = 6
	SectionUSNat   = 7
	SectionUSCA    = 8
	SectionUSVA    = 9
	SectionUSCO    = 10
	SectionUSUT    = 11
	SectionUSCT    = 12
)

// Sentinel errors. Errors returned by Parse and OptOut wrap them with context (which
// section); OptOut's are preallocated so that it never allocates. Use errors.Is.
var (
	// ErrMalformedHeader: the header is not a GPP v1 header, its section-ID list is
	// invalid, or the string holds more sections than the header lists IDs.
	ErrMalformedHeader = errors.New("gpp: malformed header")
	// ErrMissingSection: the header lists a section that the string does not hold
	// (it holds fewer sections than the header lists) or holds blank ("~~").
	ErrMissingSection = errors.New("gpp: missing section")
	// ErrUnsupportedSection: the section ID is not one this package decodes. Parse and
	// OptOut skip such sections; only ParseSection returns this error.
	ErrUnsupportedSection = errors.New("gpp: unsupported section")
	// ErrUnsupportedVersion: a decoded section has a version whose layout is unknown.
	// Treated as malformed (fail closed): its opt-outs cannot be read.
	ErrUnsupportedVersion = errors.New("gpp: unsupported section version")
	// ErrMalformedSection: a decoded section has an invalid value (2-bit value 3, bad
	// uspv1 character, bad GPC sub-section type, unexpected sub-section, ...).
	ErrMalformedSection = errors.New("gpp: malformed section")
	// ErrBadBase64: a character outside the base64url alphabet.
	ErrBadBase64 = errors.New("gpp: bad base64")
	// ErrTruncated: the encoded bits end before the last field.
	ErrTruncated = errors.New("gpp: truncated")
	// ErrTrailingData: the header or a decoded section goes on past the group of four
	// characters (24 bits) that holds its last field. Encoders pad to a byte, to six bits
	// or to 24 bits, never further.
	ErrTrailingData = errors.New("gpp: data after the last field")
	// ErrTooLong: the string is longer than MaxLength.
	ErrTooLong = errors.New("gpp: string too long")
)

// MaxLength bounds a GPP string: room for a TC string of tcf.MaxLength and every US
// section besides. Longer strings are refused unread (OptOut fails closed).
const MaxLength = 8192

// bothErr matches two sentinels with errors.Is; preallocated so OptOut stays
// allocation-free.
type bothErr struct{ a, b error }

func (e *bothErr) Error() string   { return e.a.Error() + ": " + e.b.Error() }
func (e *bothErr) Unwrap() []error { return []error{e.a, e.b} }

var (
	errHeaderTruncated = &bothErr{ErrMalformedHeader, ErrTruncated}
	errHeaderBase64    = &bothErr{ErrMalformedHeader, ErrBadBase64}
	errHeaderTrailing  = &bothErr{ErrMalformedHeader, ErrTrailingData}
)

// What is wrong with a listed section (sectionError.kind): absent from the string (it
// holds fewer sections than listed), blank (an empty part), or the sentinel its decoder
// returned (kindErrs).
const (
	kindAbsent = iota
	kindBlank
	kindTruncated
	kindBadBase64
	kindMalformed
	kindVersion
	kindTrailing
	numKinds
)

var kindErrs = [numKinds]error{ErrMissingSection, ErrMissingSection, ErrTruncated, ErrBadBase64, ErrMalformedSection, ErrUnsupportedVersion, ErrTrailingData}

// kindOf maps a section decoder's sentinel to its kind.
func kindOf(err error) uint8 {
	switch err {
	case ErrTruncated:
		return kindTruncated
	case ErrBadBase64:
		return kindBadBase64
	case ErrUnsupportedVersion:
		return kindVersion
	case ErrTrailingData:
		return kindTrailing
	}
	return kindMalformed
}

// sectionError is what is wrong with one listed section; it wraps the kind's sentinel.
type sectionError struct {
	id           uint16
	kind         uint8
	listed, held uint8 // kindAbsent, from Parse: sections the header lists and the string holds
}

func (e *sectionError) Error() string {
	s := "gpp: section " + strconv.Itoa(int(e.id))
	if name := SectionName(int(e.id)); name != "" {
		s += " (" + name + ")"
	}
	switch e.kind {
	case kindAbsent:
		if e.listed > 0 {
			return fmt.Sprintf("%s is missing: the header lists %d sections, the string holds %d", s, e.listed, e.held)
		}
		return s + " is missing: the string holds fewer sections than its header lists"
	case kindBlank:
		return s + " is blank"
	}
	return s + ": " + kindErrs[e.kind].Error()
}

func (e *sectionError) Unwrap() error { return kindErrs[e.kind] }

// sectionErrs are OptOut's errors, preallocated per kind and section ID below 64 (the
// registry's IDs); for a larger ID OptOut returns the bare sentinel.
var sectionErrs = func() (t [numKinds][64]sectionError) {
	for k := range t {
		for id := range t[k] {
			t[k][id] = sectionError{id: uint16(id), kind: uint8(k)}
		}
	}
	return t
}()

func sectionErr(kind uint8, id int) error {
	if id < len(sectionErrs[kind]) {
		return &sectionErrs[kind][id]
	}
	return kindErrs[kind]
}

// sectionErrors is Parse's error when several sections are wrong, in header order.
type sectionErrors []error

func (e sectionErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e sectionErrors) Unwrap() []error { return e }

// maxSections bounds the number of section IDs in a header (the registry has ~25).
const maxSections = 64

// Field is a 2-bit GPP field: 0 not applicable, 1 and 2 as defined per field (for
// opt-outs 1 = opted out, 2 = did not opt out; notices 1 = provided, 2 = not provided;
// consents 1 = no consent, 2 = consent). Absent (-1) marks a field the section does
// not have.
type Field int8

const (
	Absent        Field = -1
	NotApplicable Field = 0
	OptedOut      Field = 1 // value 1 of an opt-out field
	DidNotOptOut  Field = 2 // value 2 of an opt-out field
)

// String is a decoded GPP string.
type String struct {
	Header Header
	// Sections are the listed sections the string holds that decode (supported) or are
	// skipped (unsupported), in header order. Without an error from Parse there is one
	// per listed ID; a missing, blank or malformed section is left out.
	Sections []Section
}

// Header is the GPP header section.
type Header struct {
	Type       int // always 3
	Version    int // always 1
	SectionIDs []int
}

// Section is one listed section. Exactly one of TCFEUv2, USPv1, US is set when
// Supported.
type Section struct {
	ID        int
	Name      string // registry API prefix, e.g. "usnat"; "" if unknown
	Raw       string // the section as it appears in the string
	Supported bool   // false: listed but skipped
	TCFEUv2   string // tcfeuv2: the TC string, for consent/tcf
	USPv1     *USPv1
	US        *US
}

// USPv1 is the uspv1 (CCPA) section: 4 characters.
type USPv1 struct {
	Version     byte // '1'
	Notice      byte // 'Y', 'N' or '-'
	OptOutSale  byte // 'Y' = opted out of sale
	LSPACovered byte
}

// US is a usnat or US state section. Fields the section does not define are Absent and
// their slices nil.
type US struct {
	Version int

	SharingNotice                       Field
	SaleOptOutNotice                    Field
	SharingOptOutNotice                 Field
	TargetedAdvertisingOptOutNotice     Field
	SensitiveDataProcessingOptOutNotice Field
	SensitiveDataLimitUseNotice         Field

	SaleOptOut                Field
	SharingOptOut             Field
	TargetedAdvertisingOptOut Field

	SensitiveDataProcessing         []Field
	KnownChildSensitiveDataConsents []Field
	PersonalDataConsents            Field

	MspaCoveredTransaction  Field
	MspaOptOutOptionMode    Field
	MspaServiceProviderMode Field

	// GPCSegmentIncluded: the section carries the GPC sub-section (".<base64>").
	GPCSegmentIncluded bool
	GPC                bool
}

// OptedOut reports a sale, sharing or targeted-advertising opt-out.
func (u *US) OptedOut() bool {
	return u.SaleOptOut == OptedOut || u.SharingOptOut == OptedOut || u.TargetedAdvertisingOptOut == OptedOut
}

// SectionName returns the registry API prefix of a section ID, or "".
func SectionName(id int) string {
	switch id {
	case 1:
		return "tcfeuv1"
	case SectionTCFEUv2:
		return "tcfeuv2"
	case SectionHeader:
		return "header"
	case SectionTCFCAv1:
		return "tcfcav1"
	case SectionUSPv1:
		return "uspv1"
	case SectionUSNat:
		return "usnat"
	case SectionUSCA:
		return "usca"
	case SectionUSVA:
		return "usva"
	case SectionUSCO:
		return "usco"
	case SectionUSUT:
		return "usut"
	case SectionUSCT:
		return "usct"
	}
	return ""
}

// Parse decodes a GPP string for explain/debugging. It allocates; the per-hit path is
// OptOut. It reads what can be read: when the header decodes, the returned String holds
// it (with every listed section ID) and the listed sections that decode, and the error,
// if any, names each section that is missing, blank or malformed, in header order (one
// *sectionError, or several joined by "; "), e.g.
//
//	gpp: section 6 (uspv1) is missing: the header lists 3 sections, the string holds 2
//	gpp: section 2 (tcfeuv2) is blank
//	gpp: section 8 (usca): gpp: truncated
//
// A header that does not decode (or a string with more sections than the header
// lists) returns an empty String and a "gpp: header: ..." error.
func Parse(s string) (String, error) {
	var out String
	var ids [maxSections]uint16
	n, err := parseHeader(s, &ids)
	if err != nil {
		return out, fmt.Errorf("gpp: header: %w", err)
	}
	out.Header = Header{Type: SectionHeader, Version: 1, SectionIDs: make([]int, n)}
	for i := range n {
		out.Header.SectionIDs[i] = int(ids[i])
	}
	out.Sections = make([]Section, 0, n)
	held := strings.Count(s, "~")
	var errs sectionErrors
	rest := s[headerLen(s):]
	for i := range n {
		id := ids[i]
		if len(rest) == 0 {
			errs = append(errs, &sectionError{id: id, kind: kindAbsent, listed: uint8(n), held: uint8(held)})
			continue
		}
		payload := nextPart(&rest)
		if len(payload) == 0 {
			errs = append(errs, &sectionError{id: id, kind: kindBlank})
			continue
		}
		sec, err := ParseSection(int(id), payload)
		if err != nil && !errors.Is(err, ErrUnsupportedSection) {
			errs = append(errs, &sectionError{id: id, kind: kindOf(err)})
			continue
		}
		out.Sections = append(out.Sections, sec)
	}
	switch len(errs) {
	case 0:
		return out, nil
	case 1:
		return out, errs[0]
	}
	return out, errs
}

// ParseSection decodes one section payload (the text between '~' separators).
// Unknown IDs return the Section with Supported false and ErrUnsupportedSection.
func ParseSection(id int, payload string) (Section, error) {
	sec := Section{ID: id, Name: SectionName(id), Raw: payload}
	switch id {
	case SectionTCFEUv2:
		if err := checkTCF(payload); err != nil {
			return sec, err
		}
		sec.Supported, sec.TCFEUv2 = true, payload
		return sec, nil
	case SectionUSPv1:
		if err := checkUSPv1(payload); err != nil {
			return sec, err
		}
		sec.Supported = true
		sec.USPv1 = &USPv1{payload[0], payload[1], payload[2], payload[3]}
		return sec, nil
	}
	if layoutFor(id, 1) == nil {
		return sec, ErrUnsupportedSection
	}
	var c usCore
	if err := decodeUS(payload, id, &c, true); err != nil {
		return sec, err
	}
	sec.Supported = true
	sec.US = c.export()
	return sec, nil
}

// OptOut answers, without allocating, whether any applicable section of the GPP string
// s expresses a sale, sharing or targeted-advertising opt-out (usnat/state value 1,
// uspv1 OptOutSale 'Y') and whether any applicable section carries GPC=1.
// applicableSections are the gpp_sid IDs; empty means every section in s applies.
// tcfeuv2 and unsupported sections never opt out here (TCF is consent/tcf's job);
// gpp_sid IDs the header does not list are ignored. It fails closed: a header that
// cannot be read, a section missing from the string, or an applicable section that is
// blank or malformed is an error, and callers must deny marketing. The error names the
// section (e.g. "gpp: section 6 (uspv1) is missing: ...") and wraps a sentinel.
func OptOut(s []byte, applicableSections []int) (optedOut, gpc bool, err error) {
	return optOut(s, applicableSections)
}

// optOut is generic so that the tests can run it on strings (OptOutString).
func optOut[T ~string | ~[]byte](s T, applicable []int) (optedOut, gpc bool, err error) {
	var ids [maxSections]uint16
	n, err := parseHeader(s, &ids)
	if err != nil {
		return false, false, err
	}
	if held := countParts(s); held < n {
		return false, false, sectionErr(kindAbsent, int(ids[held]))
	}
	rest := s[headerLen(s):]
	for i := range n {
		payload := nextPart(&rest)
		id := int(ids[i])
		if !applies(id, applicable) {
			continue
		}
		if len(payload) == 0 {
			return false, false, sectionErr(kindBlank, id)
		}
		switch id {
		case SectionTCFEUv2:
			if err := checkTCF(payload); err != nil {
				return false, false, sectionErr(kindOf(err), id)
			}
		case SectionUSPv1:
			if err := checkUSPv1(payload); err != nil {
				return false, false, sectionErr(kindOf(err), id)
			}
			if payload[2] == 'Y' {
				optedOut = true
			}
		default:
			if layoutFor(id, 1) == nil {
				continue // unsupported: skipped
			}
			var c usCore
			if err := decodeUS(payload, id, &c, true); err != nil {
				return false, false, sectionErr(kindOf(err), id)
			}
			if c.f[fSaleOptOut] == OptedOut || c.f[fSharingOptOut] == OptedOut || c.f[fTargetedAdvertisingOptOut] == OptedOut {
				optedOut = true
			}
			if c.gpc {
				gpc = true
			}
		}
	}
	return optedOut, gpc, nil
}

func applies(id int, applicable []int) bool {
	if len(applicable) == 0 {
		return true
	}
	for _, a := range applicable {
		if a == id {
			return true
		}
	}
	return false
}

// AppendSID parses a gpp_sid value ("7" or "7,8" or "2_6", separators ',' or '_') and
// appends the IDs to dst. ok is false on anything else. Pass a stack array
// (var a [8]int; AppendSID(a[:0], v)) to avoid allocating.
func AppendSID(dst []int, v []byte) (ids []int, ok bool) {
	if len(v) == 0 {
		return dst, false
	}
	n, digits := 0, 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ',' || v[i] == '_' {
			if digits == 0 {
				return dst, false
			}
			dst = append(dst, n)
			n, digits = 0, 0
			continue
		}
		c := v[i]
		if c < '0' || c > '9' || digits >= 4 {
			return dst, false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return dst, true
}

// nextPart cuts the next '~'-separated part off rest.
func nextPart[T ~string | ~[]byte](rest *T) T {
	r := *rest
	if len(r) > 0 && r[0] == '~' {
		r = r[1:]
	}
	for i := 0; i < len(r); i++ {
		if r[i] == '~' {
			*rest = r[i:]
			return r[:i]
		}
	}
	*rest = r[len(r):]
	return r
}

// countParts counts the '~'-separated parts after the header.
func countParts[T ~string | ~[]byte](s T) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '~' {
			n++
		}
	}
	return n
}

func headerLen[T ~string | ~[]byte](s T) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '~' {
			return i
		}
	}
	return len(s)
}

func checkUSPv1[T ~string | ~[]byte](p T) error {
	if len(p) != 4 {
		if len(p) < 4 {
			return ErrTruncated
		}
		return ErrMalformedSection
	}
	if p[0] != '1' {
		return ErrUnsupportedVersion
	}
	for i := 1; i < 4; i++ {
		if c := p[i]; c != 'Y' && c != 'N' && c != '-' {
			return ErrMalformedSection
		}
	}
	return nil
}

// checkTCF only checks that the TC string is non-empty base64url segments separated
// by '.'; decoding is consent/tcf's. Unlike consent/tcf it takes no '=' padding: GPP
// sections are written in 6-bit characters without it (IAB GPP Consent String
// Specification, "Creating a GPP String"), and iabgpp-es refuses '=' in any section.
func checkTCF[T ~string | ~[]byte](p T) error {
	if len(p) == 0 {
		return ErrTruncated
	}
	seg := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			if seg == 0 {
				return ErrTruncated
			}
			seg = 0
			continue
		}
		if b64[p[i]] == 0xFF {
			return ErrBadBase64
		}
		seg++
	}
	if seg == 0 {
		return ErrTruncated
	}
	return nil
}

// TCFEUv2 returns the payload of the tcfeuv2 section of s (a TC string for consent/tcf)
// when s lists one and holds it non-blank, without allocating: the slice aliases s. ok
// is false when there is none, when it is missing or blank, or when the header is
// malformed (OptOut reports the error). Other sections being missing does not matter.
func TCFEUv2(s []byte) (tc []byte, ok bool) {
	var ids [maxSections]uint16
	n, err := parseHeader(s, &ids)
	if err != nil {
		return nil, false
	}
	rest := s[headerLen(s):]
	for i := 0; i < n && len(rest) > 0; i++ {
		payload := nextPart(&rest)
		if ids[i] == SectionTCFEUv2 {
			return payload, len(payload) > 0
		}
	}
	return nil, false
}
