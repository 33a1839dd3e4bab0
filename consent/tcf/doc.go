// Package tcf decodes IAB TCF v2 (v2.0 and v2.2) TC strings.
//
// Parse fully decodes a string into a TCString (for the decision, explain and the
// consent API); TCString.Allowed answers "may vendor V process for purpose P" from it.
// Parse allocates, so a caller on the hit path decodes a raw string once and caches the
// answers keyed by it. A string that does not decode is an error, and the caller must
// treat it as no consent.
//
// The decoder reads bit fields straight out of the base64url characters (no decoding
// buffer). Each segment may end in '=' padding as a padding base64url encoder writes it
// (one or two '=' completing a group of four characters): iabtcf-java, the IAB's
// reference decoder, reads such strings. '=' anywhere else is invalid.
//
// Why not github.com/prebid/go-gdpr (evaluated at v1.12.1, vendorconsent/tcf2): it
// decodes the core-segment vectors correctly, but (1) it allocates 7-8 times per parse
// (392-668 B for ordinary strings, ~17 KB for a large one: a base64 copy, interface
// values, a map and range slices for publisher restrictions), (2) it ignores every
// segment after the core one (disclosed vendors, allowed vendors, publisher TC) and does
// not expose the publisher country code, IsServiceSpecific, UseNonStandardTexts, or the
// lists behind its lookups, (3) its errors are fmt.Errorf strings, not sentinels,
// (4) it accepts any version >= 2 and rejects a one-vendor range written as start==end.
// Its bit layout matches ours field for field (checked by a differential test and fuzz
// run against it outside the repo), and its test strings are reused as vectors in this
// package's tests. No code from it is imported, so there is no new dependency.
//
// The tests hold an allocation-free Check (check_test.go) that walks the same decoder
// without building a TCString, as an oracle for Parse and Allowed.
package tcf
