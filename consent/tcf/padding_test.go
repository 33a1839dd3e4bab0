package tcf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Padded TC strings. The vectors come from the IAB's reference decoder,
// github.com/InteractiveAdvertisingBureau/iabtcf-java (commit 1bc03e64eb87), directory
// iabtcf-decoder/src/test/java/com/iabtcf/decoder/; the expected values are the ones its
// tests assert. iabtcf-java decodes every segment with java.util.Base64's URL decoder,
// which takes trailing '=' padding (and requires the right number of them when present).
const (
	// TCStringV2Test.java testCanParseAllParts: core, disclosed vendors, allowed vendors
	// and publisher TC, the last segment padded with one '='.
	javaAllParts = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA" +
		".IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA.cAAAAAAAITg="
	// TCStringV2Test.java testCanConstructTCModelFromBase64String (core only, unpadded).
	javaCore = "COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA"
	// TCStringV2Test.java testPublisherPurposes: javaCore + "." + base64FromBitString(its
	// publisher-purposes bits). That helper encodes with Base64.getUrlEncoder(), which
	// pads; the segment it yields is the one of javaAllParts.
	javaPubPurposes = javaCore + ".cAAAAAAAITg="
	// TCStringV2Test.java testPublisherRestrictions: base64FromBitString(its 320-bit
	// string), i.e. padded with "==".
	javaPubRestrictions = "COuQACgOuQACgM-AAAENAPCAAAAAAAAAAAAAAAAAAABgoAAQAAHAAA=="
)

// unpad removes the '=' padding of every segment.
func unpad(s string) string {
	segs := strings.Split(s, ".")
	for i := range segs {
		segs[i] = strings.TrimRight(segs[i], "=")
	}
	return strings.Join(segs, ".")
}

// padEach pads every segment of an unpadded string the way a padding base64url encoder
// would. A segment of 4k+1 characters has no padded form and is left as it is.
func padEach(s string) string {
	segs := strings.Split(s, ".")
	for i, seg := range segs {
		if n := len(seg) % 4; n >= 2 {
			segs[i] = seg + strings.Repeat("=", 4-n)
		}
	}
	return strings.Join(segs, ".")
}

func TestPaddingAccepted(t *testing.T) {
	cases := []struct {
		name, s string
		check   func(*TCString) string // "" when the asserted fields match
	}{
		{"iabtcf-java testCanParseAllParts", javaAllParts, func(tc *TCString) string {
			// testCanParseAllParts asserts one publisher purpose consent; the other
			// fields are asserted by testConstructConsentsFromBitFields and
			// testCanParseDisclosedAndAllowedVendors on the same segments, and the
			// publisher TC segment by testPublisherPurposes.
			switch {
			case !reflect.DeepEqual(tc.PurposeConsents, seq(3, 9)):
				return "purposes consent"
			case !reflect.DeepEqual(tc.VendorConsents, []int{23, 37, 47, 48, 53, 65, 98}):
				return "vendor consents"
			case !reflect.DeepEqual(tc.VendorLegitimateInterests, []int{37, 47, 48, 53, 65, 98, 129}):
				return "vendor LI"
			case !reflect.DeepEqual(tc.AllowedVendors, []int{12, 23, 37, 47, 48, 53}):
				return "allowed vendors"
			case !reflect.DeepEqual(tc.DisclosedVendors, []int{23, 37, 47, 48, 53, 65, 98, 129}):
				return "disclosed vendors"
			case tc.PublisherTC == nil || len(tc.PublisherTC.PurposeConsents) != 1:
				return "publisher TC"
			}
			return ""
		}},
		{"iabtcf-java testPublisherPurposes", javaPubPurposes, func(tc *TCString) string {
			// Core fields: testCanConstructTCModelFromBase64String on javaCore.
			want := TCString{
				Version: 2, Created: tm("2020-01-26T17:01:00Z"), LastUpdated: tm("2021-02-02T17:01:00Z"),
				CmpID: 675, CmpVersion: 2, ConsentScreen: 1, ConsentLanguage: "EN", VendorListVersion: 15,
				PolicyVersion: 2, PurposeOneTreatment: true, PublisherCC: "AA",
				SpecialFeatureOptIns: []int{1}, PurposeConsents: []int{2, 10}, PurposeLegitimateInterests: []int{2, 9},
				VendorConsents: none(), VendorLegitimateInterests: none(), PublisherRestrictions: []PublisherRestriction{},
				PublisherTC: &PublisherTC{
					PurposeConsents: []int{1}, PurposeLegitimateInterests: []int{24},
					NumCustomPurposes: 2, CustomPurposeConsents: []int{2}, CustomPurposeLegitimateInterests: []int{1, 2},
				},
			}
			if !reflect.DeepEqual(*tc, want) {
				return "fields"
			}
			return ""
		}},
		{"iabtcf-java testPublisherRestrictions", javaPubRestrictions, func(tc *TCString) string {
			want := []PublisherRestriction{
				{Purpose: 1, Type: RequireConsent, Ranges: []VendorRange{}},
				{Purpose: 2, Type: NotAllowed, Ranges: []VendorRange{}},
				{Purpose: 3, Type: RequireLI, Ranges: []VendorRange{}},
			}
			if !reflect.DeepEqual(tc.PublisherRestrictions, want) {
				return "publisher restrictions"
			}
			return ""
		}},
		{"go-gdpr TestPubRestrictions vector with its padding (ours)",
			"COwAdDhOwAdDhN4ABAENAPCgAAQAAv___wAAAFP_AAp_4AI6ACACAA==", func(tc *TCString) string {
				if want := goGDPRVectors()["COwAdDhOwAdDhN4ABAENAPCgAAQAAv___wAAAFP_AAp_4AI6ACACAA"]; !reflect.DeepEqual(*tc, want) {
					return "fields"
				}
				return ""
			}},
		{"every segment of testCanParseAllParts padded (ours)", padEach(unpad(javaAllParts)), func(tc *TCString) string {
			if tc.PublisherTC == nil || len(tc.AllowedVendors) != 6 {
				return "segments"
			}
			return ""
		}},
	}
	for _, c := range cases {
		got, err := Parse(c.s)
		if err != nil {
			t.Errorf("%s: Parse(%q): %v", c.name, c.s, err)
			continue
		}
		if what := c.check(got); what != "" {
			t.Errorf("%s: %s differ: %+v", c.name, what, *got)
		}
		// Padding changes nothing: the unpadded string decodes to the same fields.
		bare, err := Parse(unpad(c.s))
		if err != nil || !reflect.DeepEqual(got, bare) {
			t.Errorf("%s: unpadded form: %v\n got %+v\nwant %+v", c.name, err, bare, got)
		}
		if _, _, err := Check([]byte(c.s), 23, 3); err != nil {
			t.Errorf("%s: Check: %v", c.name, err)
		}
	}
}

func TestPaddingRejected(t *testing.T) {
	cases := []struct {
		s    string
		want error
		src  string
	}{
		// iabtcf-java vectors: padding is read, the string fails for another reason.
		{"CA==", ErrTruncated, "iabtcf-java TCStringDecoderTest.java testStrict: ByteParseException (version 2, then nothing)"},
		{"BOOzQoAOOzQoAAPAFSENCW-AIBA=", ErrVersion, "iabtcf-java TCStringV1Test.java testAllowedPurposes: a TCF v1 string, not decoded here"},
		{"BOOzQoAOOzQoAAPAFSENCW-AIBACBAAABCA=", ErrVersion, "iabtcf-java TCStringV1Test.java testBitFieldEncoding: TCF v1"},
		{javaCore + ".AA==", ErrSegmentType, "iabtcf-java TCStringV2Test.java testDefaultSegmentType: iabtcf-java ignores a type-0 segment, we refuse unknown segment types"},
		// Padding that no base64url encoder writes (RFC 4648 §3.2; java.util.Base64's
		// decoder refuses these too). Ours.
		{"CA=", ErrBase64, "one '=' where two complete the group"},
		{"CAA==", ErrBase64, "two '=' where one completes the group"},
		{"CA===", ErrBase64, "three '='"},
		{"CAAA=", ErrBase64, "'=' after a full group"},
		{"CAAAA===", ErrBase64, "'=' after a lone character"},
		{"=", ErrBase64, "padding only"},
		{"==", ErrBase64, "padding only"},
		{"C=AA", ErrBase64, "'=' inside a segment"},
		{"CA=A", ErrBase64, "'=' inside the last group"},
		{javaCore[:10] + "==" + javaCore[10:], ErrBase64, "'=' inside the core segment"},
		{javaCore + "=", ErrBase64, "core of 44 characters: no padding is due"},
		{javaCore + ".=", ErrBase64, "a segment of padding only"},
		{javaCore + ".==", ErrBase64, "a segment of padding only"},
		{javaCore + ".cAAAAAAAITg==", ErrBase64, "publisher TC with one '=' too many"},
		{javaCore + ".cAAAAAAAITg=.", ErrTruncated, "padded segment followed by an empty one"},
		{javaCore + "==.cAAAAAAAITg=", ErrBase64, "'=' after the 44-character core, before the next segment"},
	}
	for _, c := range cases {
		_, err := Parse(c.s)
		if !errors.Is(err, c.want) {
			t.Errorf("Parse %q (%s): err %v, want %v", c.s, c.src, err, c.want)
		}
		consent, li, err := Check([]byte(c.s), 1, 1)
		if !errors.Is(err, c.want) || consent || li {
			t.Errorf("Check %q (%s): %v %v %v, want %v", c.s, c.src, consent, li, err, c.want)
		}
	}
}
