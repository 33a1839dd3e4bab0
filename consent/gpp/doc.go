// Package gpp decodes IAB Global Privacy Platform (GPP) strings, as carried by the
// __gpp cookie or the gpp / gpp_sid request parameters.
//
// Decoded: the header (type, version, section IDs) and the sections
//
//	2  tcfeuv2  raw payload only (a TCF TC string; decoded by consent/tcf)
//	6  uspv1    the 4 CCPA characters
//	7  usnat    versions 1 and 2 (v2: 16 sensitive-data fields, 3 known-child fields)
//	8  usca, 9 usva, 10 usco, 11 usut, 12 usct   version 1
//
// including the GPC sub-section (usnat, usca, usco, usct). Every other section ID is
// listed in the header but skipped (Section.Supported is false); ParseSection reports
// ErrUnsupportedSection for it.
//
// Parse reads what can be read: the header and its section IDs, and every listed
// section that is present and decodes. A section that is missing (the string holds
// fewer sections than its header lists), blank or malformed is left out and named in
// the error (ErrMissingSection, or what is wrong with it). OptOut fails closed: such a
// section is an error there (the caller denies marketing).
//
// Why not github.com/prebid/go-gpp v0.2.0: it was evaluated and is used only as a test
// oracle (differential tests in gogpp_test.go and fuzz_test.go). It decodes the header and usnat/usca/usva/
// usco/usut/usct and agrees with this package on those layouts (differential fuzzing),
// but: (1) it allocates 15 times for a one-section usnat string and 48 times for six
// US sections (strings.Split, a base64 buffer and a BitStream per segment, slices,
// fmt errors), ~440 ns and ~1.8 us, where OptOut must be allocation-free on every hit
// (0 allocs, ~0.2 us and ~0.85 us for the same strings); (2) it does
// not decode uspv1 (returned as an opaque generic section) nor usnat version 2 (always
// reads 12/2 fields, so v2 strings are misread); (3) it accepts any header/section
// version and 2-bit value 3, which the spec does not define; (4) its errors are
// fmt strings, not sentinels, and unsupported sections are indistinguishable from
// supported ones. The bit layouts here follow the IAB GPP specification
// (https://github.com/InteractiveAdvertisingBureau/Global-Privacy-Platform).
package gpp
