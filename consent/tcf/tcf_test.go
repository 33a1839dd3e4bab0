package tcf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func tm(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func none() []int { return []int{} }

func seq(lo, hi int) []int {
	var l []int
	for i := lo; i <= hi; i++ {
		l = append(l, i)
	}
	return l
}

// base returns a TCString with every core field at a neutral value; tests override.
func base() TCString {
	return TCString{
		Version: 2, Created: tm("2020-03-09T19:11:31.3Z"), LastUpdated: tm("2020-03-09T19:11:31.3Z"),
		ConsentLanguage: "EN", VendorListVersion: 15, PolicyVersion: 2, PublisherCC: "AA",
		SpecialFeatureOptIns: none(), PurposeConsents: none(), PurposeLegitimateInterests: none(),
		VendorConsents: none(), VendorLegitimateInterests: none(), PublisherRestrictions: []PublisherRestriction{},
	}
}

// Vectors from github.com/prebid/go-gdpr v1.12.1, vendorconsent/tcf2/*_test.go and
// vendorconsent/consent20_test.go (several built there with http://iabtcf.com/#/encode).
// Every field below was also cross-checked against go-gdpr's own decoder (a scratch
// differential test, not in the repo): all 16 valid vectors agree field for field.
func goGDPRVectors() map[string]TCString {
	v := map[string]TCString{}

	// tcf2/pubrestrict_test.go TestPubRestrictions: bit-field vendors and one publisher
	// restriction (purpose 7, require consent, vendor 32).
	t := base()
	t.CmpID, t.CmpVersion, t.IsServiceSpecific = 888, 1, true
	t.PurposeConsents = []int{6, 23}
	t.PurposeLegitimateInterests = seq(1, 24)
	t.MaxVendorConsentID, t.VendorConsents = 10, seq(1, 10)
	t.MaxVendorLIID, t.VendorLegitimateInterests = 10, seq(1, 10)
	t.PublisherRestrictions = []PublisherRestriction{{Purpose: 7, Type: RequireConsent, Ranges: []VendorRange{{32, 32}}}}
	v["COwAdDhOwAdDhN4ABAENAPCgAAQAAv___wAAAFP_AAp_4AI6ACACAA"] = t

	// tcf2/pubrestrict_test.go TestPubRestrictions2: many publisher restrictions, single
	// and range entries.
	t = base()
	t.Created, t.LastUpdated = tm("2020-04-02T18:39:23.5Z"), tm("2020-04-02T18:39:23.5Z")
	t.CmpID, t.CmpVersion, t.IsServiceSpecific = 11, 1, true
	t.MaxVendorConsentID, t.MaxVendorLIID = 10, 10
	t.PublisherRestrictions = []PublisherRestriction{
		{1, NotAllowed, []VendorRange{{32, 32}}},
		{2, NotAllowed, []VendorRange{{1, 40}}},
		{7, NotAllowed, []VendorRange{{32, 35}}},
		{10, NotAllowed, []VendorRange{{30, 32}}},
		{2, RequireConsent, []VendorRange{{32, 32}}},
		{7, RequireConsent, []VendorRange{{32, 32}}},
		{10, RequireConsent, []VendorRange{{32, 32}}},
	}
	v["COxPe2TOxPe2TALABAENAPCgAAAAAAAAAAAAAFAAAAoAAA4IACACAIABgACAFA4ADACAAIygAGADwAQBIAIAIB0AEAEBSACACAA"] = t

	// tcf2/rangesection_test.go TestRangeSectionConsent (iabtcf.com encoder): range
	// encoding for both vendor sections.
	t = base()
	t.Created, t.LastUpdated = tm("2020-04-27T00:07:00Z"), tm("2020-04-27T00:07:00Z")
	t.CmpID, t.CmpVersion, t.ConsentScreen, t.VendorListVersion = 3, 2, 7, 48
	t.MaxVendorConsentID, t.VendorConsents = 626, []int{23, 42, 126, 127, 128, 587, 613, 626}
	t.MaxVendorLIID, t.VendorLegitimateInterests = 628, []int{24, 44, 129, 130, 131, 591, 614, 628}
	v["COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA"] = t

	// tcf2/metadata_test.go TestLargeCmpID (asserts CmpID 923): bit fields, purposes 1-8
	// consent, 2-9 LI, special feature 1.
	t = base()
	t.Created, t.LastUpdated = tm("2020-04-27T19:43:24.5Z"), tm("2020-04-27T19:43:24.5Z")
	t.CmpID, t.VendorListVersion = 923, 31
	t.SpecialFeatureOptIns = []int{1}
	t.PurposeConsents, t.PurposeLegitimateInterests = seq(1, 8), seq(2, 9)
	t.MaxVendorConsentID = 240
	t.VendorConsents = []int{6, 8, 9, 10, 12, 18, 23, 32, 53, 59, 61, 100, 109, 114, 115, 120, 126, 128, 223, 228, 235, 240}
	t.MaxVendorLIID = 177
	t.VendorLegitimateInterests = []int{2, 6, 8, 9, 10, 11, 12, 15, 18, 25, 32, 33, 65, 66, 80, 155, 163, 164, 167, 174, 177}
	v["COyiBqdOyiBqdObAAAENAfCIAP8AAH-AAAAAB4AXQQgEAAAgoAAAAABAIYQUAAAAAAAAAAAAAAAIQIQCxIvkgQMAAAABgAIAAAAAAAAAAABAZAkAAA"] = t

	// tcf2/metadata_test.go TestTCF2Fields / TestLITransparency: purpose one treatment.
	t = base()
	t.Created, t.LastUpdated = tm("2020-04-14T21:03:37.4Z"), tm("2020-04-14T21:03:37.4Z")
	t.CmpID, t.VendorListVersion = 740, 31
	t.SpecialFeatureOptIns, t.PurposeLegitimateInterests, t.PurposeOneTreatment = []int{1}, seq(2, 5), true
	v["COx3XOeOx3XOeLkAAAENAfCIAAAAAHgAAIAAAAAAAAAA"] = t

	// tcf2/metadata_test.go TestLanguageExtremes: "BG".
	t = base()
	t.Created, t.LastUpdated = tm("2020-04-27T20:23:15.7Z"), tm("2020-04-27T20:23:15.7Z")
	t.CmpID, t.CmpVersion, t.ConsentLanguage = 888, 1, "BG"
	t.MaxVendorConsentID, t.MaxVendorLIID = 10, 10
	v["COyiHgFOyiHgFN4ABABGAPCAAAAAAAAAAAAAAFAAAAoAAAA"] = t

	// tcf2/metadata_test.go TestTCFPolicyVersion base string: service specific, non-standard texts,
	// special features 1-4, publisher country US, created 2023.
	t = base()
	t.Created, t.LastUpdated = tm("2023-06-09T00:00:00Z"), tm("2023-06-09T00:00:00Z")
	t.CmpID, t.VendorListVersion = 716, 63
	t.IsServiceSpecific, t.UseNonStandardTexts = true, true
	t.SpecialFeatureOptIns, t.PublisherCC = seq(1, 4), "US"
	v["CPtGDMAPtGDMALMAAAENA_C_AAAAAAAAACiQAAAAAAAA"] = t

	// consent20_test.go TestParseValidString20MaxVendorID0: publisher country FR, CMP 779.
	t = base()
	t.Created, t.LastUpdated = tm("2020-03-12T15:20:10.7Z"), tm("2020-03-12T15:20:10.7Z")
	t.CmpID, t.CmpVersion, t.ConsentLanguage, t.PublisherCC, t.IsServiceSpecific = 779, 4, "FR", "FR", true
	v["COwJz-rOwJz-rMLAEAFRAPCgAAAAAAAAAAqIAAAAAAAA"] = t
	return v
}

func TestParseGoGDPRVectors(t *testing.T) {
	for s, want := range goGDPRVectors() {
		got, err := Parse(s)
		if err != nil {
			t.Errorf("%.20s: %v", s, err)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%.20s:\n got %+v\nwant %+v", s, *got, want)
		}
	}
}

// full is a TCF v2.2 string with every section populated, built by the encoder.
func full() TCString {
	t := base()
	t.Created, t.LastUpdated = tm("2024-05-01T10:20:30.4Z"), tm("2024-06-02T11:22:33.9Z")
	t.CmpID, t.CmpVersion, t.ConsentScreen = 300, 17, 5
	t.ConsentLanguage, t.VendorListVersion, t.PolicyVersion = "DE", 250, 4
	t.IsServiceSpecific, t.UseNonStandardTexts = true, false
	t.SpecialFeatureOptIns = []int{2}
	t.PurposeConsents = []int{1, 2, 3, 4, 7, 9, 10}
	t.PurposeLegitimateInterests = []int{2, 3, 7, 8, 9, 10, 11}
	t.PurposeOneTreatment, t.PublisherCC = false, "DE"
	t.MaxVendorConsentID, t.VendorConsents = 1200, []int{1, 2, 3, 4, 5, 755, 1200}
	t.MaxVendorLIID, t.VendorLegitimateInterests = 800, []int{3, 4, 755, 800}
	t.PublisherRestrictions = []PublisherRestriction{
		{Purpose: 2, Type: NotAllowed, Ranges: []VendorRange{{4, 4}}},
		{Purpose: 7, Type: RequireConsent, Ranges: []VendorRange{{1, 3}, {755, 755}}},
		{Purpose: 9, Type: RequireLI, Ranges: []VendorRange{{3, 3}}},
		{Purpose: 10, Type: RequireConsent, Ranges: []VendorRange{{5, 5}}},
		{Purpose: 10, Type: RequireLI, Ranges: []VendorRange{{5, 5}}},
	}
	t.DisclosedVendors = []int{1, 2, 3, 4, 5, 6, 755, 800, 1200}
	t.PublisherTC = &PublisherTC{
		PurposeConsents: []int{1, 3}, PurposeLegitimateInterests: []int{2},
		NumCustomPurposes: 3, CustomPurposeConsents: []int{1, 3}, CustomPurposeLegitimateInterests: []int{2},
	}
	return t
}

// TestEncodedRoundTrip: strings built field by field from the spec tables decode back to
// every field, in both vendor encodings, with and without each optional segment.
func TestEncodedRoundTrip(t *testing.T) {
	cases := map[string]TCString{"full": full()}
	noSeg := full()
	noSeg.DisclosedVendors, noSeg.PublisherTC = nil, nil
	cases["core only"] = noSeg
	v20 := full()
	v20.PolicyVersion, v20.DisclosedVendors, v20.AllowedVendors = 2, nil, []int{2, 3, 755}
	cases["v2.0 allowed vendors"] = v20
	empty := base()
	empty.PublisherTC = &PublisherTC{PurposeConsents: none(), PurposeLegitimateInterests: none(), CustomPurposeConsents: none(), CustomPurposeLegitimateInterests: none()}
	empty.DisclosedVendors = none()
	cases["empty sections"] = empty
	big := base()
	big.MaxVendorConsentID, big.VendorConsents = 65535, []int{1, 65535}
	big.MaxVendorLIID, big.VendorLegitimateInterests = 65535, seq(100, 300)
	cases["max vendor id"] = big
	for name, want := range cases {
		for _, ranged := range []bool{false, true} {
			s := encode(&want, ranged)
			if len(s) > MaxLength {
				// A 65535-bit field is valid TCF but beyond MaxLength: refused, not decoded.
				if _, err := Parse(s); !errors.Is(err, ErrTooLong) {
					t.Errorf("%s ranged=%v: %d characters: %v, want ErrTooLong", name, ranged, len(s), err)
				}
				continue
			}
			got, err := Parse(s)
			if err != nil {
				t.Errorf("%s ranged=%v: %v", name, ranged, err)
				continue
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("%s ranged=%v:\n got %+v\nwant %+v", name, ranged, *got, want)
			}
			// The same string with every segment '='-padded decodes the same.
			if padded, err := Parse(padEach(s)); err != nil || !reflect.DeepEqual(*padded, want) {
				t.Errorf("%s ranged=%v padded %q: %v", name, ranged, padEach(s), err)
			}
		}
	}
}

func TestCheckRule(t *testing.T) {
	tc := full()
	s := []byte(encode(&tc, true))
	type res struct{ consent, li bool }
	cases := []struct {
		vendor, purpose int
		want            res
		why             string
	}{
		{1, 1, res{true, false}, "purpose 1 consent + vendor consent; purpose 1 never LI"},
		{3, 3, res{true, false}, "v2.2: purpose 3 cannot use LI even with purpose LI + vendor LI"},
		{3, 2, res{true, true}, "purpose 2: both bases present"},
		{4, 2, res{false, false}, "restriction type 0 for vendor 4 purpose 2"},
		{755, 7, res{true, false}, "restriction type 1: LI dropped"},
		{3, 9, res{false, true}, "restriction type 2: consent dropped"},
		{5, 10, res{false, false}, "conflicting restrictions 1 and 2: both dropped"},
		{4, 10, res{true, true}, "vendor 4 purpose 10: both bases"},
		{1200, 8, res{false, false}, "purpose 8 no consent; vendor 1200 no LI"},
		{800, 8, res{false, true}, "purpose 8 LI + vendor 800 LI"},
		{6, 1, res{false, false}, "vendor 6 has no consent (disclosed only)"},
		{1201, 1, res{false, false}, "vendor beyond MaxVendorId"},
		{0, 1, res{false, false}, "vendor 0"},
		{1, 0, res{false, false}, "purpose 0"},
		{1, 25, res{false, false}, "purpose 25"},
	}
	for _, c := range cases {
		consent, li, err := Check(s, c.vendor, c.purpose)
		if err != nil {
			t.Fatal(err)
		}
		if (res{consent, li}) != c.want {
			t.Errorf("vendor %d purpose %d: got %v want %v (%s)", c.vendor, c.purpose, res{consent, li}, c.want, c.why)
		}
		pc, pl := tc.Allowed(c.vendor, c.purpose)
		if (res{pc, pl}) != c.want {
			t.Errorf("Allowed(%d,%d) = %v want %v", c.vendor, c.purpose, res{pc, pl}, c.want)
		}
	}
	// Under TCF v2.0 policy (version 2) purpose 3 may rest on LI.
	tc.PolicyVersion = 2
	s = []byte(encode(&tc, false))
	if c, l, err := Check(s, 3, 3); err != nil || !c || !l {
		t.Errorf("v2.0 purpose 3 LI: %v %v %v", c, l, err)
	}
	// go-gdpr vector: restriction type 0 on purpose 2 for vendors 1-40.
	s = []byte("COxPe2TOxPe2TALABAENAPCgAAAAAAAAAAAAAFAAAAoAAA4IACACAIABgACAFA4ADACAAIygAGADwAQBIAIAIB0AEAEBSACACAA")
	if c, l, err := Check(s, 5, 2); err != nil || c || l {
		t.Errorf("restricted vector: %v %v %v", c, l, err)
	}
}

func TestInvalid(t *testing.T) {
	tc := full()
	good := encode(&tc, true)
	core, _, _ := strings.Cut(good, ".")
	cases := []struct {
		s    string
		want error
		src  string
	}{
		{"", ErrTruncated, "empty"},
		{"C", ErrTruncated, "version only"},
		{"CONciguONcjGKADACHENAOCIAC0ta__AACiQA", ErrTruncated, "go-gdpr consent20_test.go TestParseInvalid20 first vector, cut to 37 chars (ours)"},
		{"COvcSpYOvcSpYC9AAAENAPCAAAAAAAAAAAAAAFAAAAA", ErrTruncated, "go-gdpr tcf2/consent_test: LI section missing"},
		{"COvcSpYOvcSpYC9AAAENAPCAAAAAAAAAAAAAAFQBgAAgABAACAAEAAQAAgAA", ErrTruncated, "go-gdpr tcf2/consent_test: LI range missing"},
		{"CONciguONcjGKADACHENAOCIAC0ta__AACiQABwAQQ", ErrTruncated, "go-gdpr consent20_test: 1 vendor, too few bits"},
		{"CONciguONcjGKADACHENAOCIAC0ta__AACiQABwAgAAAAA", ErrBitFieldOverrun, "go-gdpr consent20_test: vendor 0 in range"},
		{"CONciguONcjGKADACHENAOCIAC0ta__AACiQABwAgACAAA", ErrBitFieldOverrun, "go-gdpr consent20_test: vendor 4 > max 3"},
		{"CONciguONcjGKADACHENAOCIAC0ta__AACiQABwAoABAACA", ErrBitFieldOverrun, "go-gdpr consent20_test: range [2,1]"},
		{"BONciguONcjGKADACHENAOCIAC0ta__AACiQABgAAYA", ErrVersion, "go-gdpr consent20_test: TCF v1 string"},
		{"DONciguONcjGKADACHENAOCIAC0ta__AACiQABgAAYA", ErrVersion, "version 3"},
		{"COwAdDhOwAdDhN4ABAENAPCgAAQAAv+//wAAAFP/AAp_4AI6ACACAA", ErrBase64, "standard (not url) alphabet"},
		{"COwAdDh OwAdDhN4ABAENAPCgAAQAAv___wAAAFP_AAp_4AI6ACACAA", ErrBase64, "space"},
		{core + ".A", ErrSegmentType, "segment type 0"},
		{core + ".g", ErrSegmentType, "segment type 4"},
		{core + ".", ErrTruncated, "empty trailing segment"},
		{core + ".I", ErrTruncated, "disclosed vendors segment cut short"},
		{core + ".YAAA", ErrTruncated, "publisher TC cut short"},
		{core[:len(core)-10], ErrTruncated, "core cut in publisher restrictions"},
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
	// Sentinels are distinct.
	all := []error{ErrTruncated, ErrVersion, ErrBase64, ErrSegmentType, ErrBitFieldOverrun}
	for i := range all {
		for j := range all {
			if i != j && errors.Is(all[i], all[j]) {
				t.Errorf("%v is %v", all[i], all[j])
			}
		}
	}
}

func TestCheckAllocs(t *testing.T) {
	tc := full()
	for _, ranged := range []bool{false, true} {
		for _, s := range [][]byte{[]byte(encode(&tc, ranged)), []byte(padEach(encode(&tc, ranged)))} {
			n := testing.AllocsPerRun(200, func() {
				_, _, _ = Check(s, 755, 7)
			})
			if n != 0 {
				t.Errorf("ranged=%v %q: %v allocs per Check", ranged, s, n)
			}
		}
	}
	bad := []byte("COwAdDh OwAdD")
	if n := testing.AllocsPerRun(200, func() { _, _, _ = Check(bad, 1, 1) }); n != 0 {
		t.Errorf("%v allocs per failing Check", n)
	}
}

func benchStrings() map[string]string {
	tc := full()
	return map[string]string{
		"gogdpr-bitfield": "COyiBqdOyiBqdObAAAENAfCIAP8AAH-AAAAAB4AXQQgEAAAgoAAAAABAIYQUAAAAAAAAAAAAAAAIQIQCxIvkgQMAAAABgAIAAAAAAAAAAABAZAkAAA",
		"gogdpr-range":    "COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA",
		"full-bitfield":   encode(&tc, false),
		"full-range":      encode(&tc, true),
		"iabtcf-padded":   javaAllParts,
	}
}

func BenchmarkCheck(b *testing.B) {
	for name, s := range benchStrings() {
		bs := []byte(s)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = Check(bs, 755, 7)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for name, s := range benchStrings() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse(s)
			}
		})
	}
}
