package gpp

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	gogpp "github.com/prebid/go-gpp"
)

var sentinels = []error{ErrMalformedHeader, ErrMissingSection, ErrUnsupportedSection, ErrUnsupportedVersion, ErrMalformedSection, ErrBadBase64, ErrTruncated, ErrTrailingData, ErrTooLong}

// FuzzParse: Parse and OptOut never panic, agree on success/failure, OptOut's error is
// of a class Parse reports too, OptOut's answer matches the sections Parse decoded
// (also when Parse reports other sections missing, blank or malformed), a section Parse
// could not decode fails OptOut when it applies, TCFEUv2 finds the tcfeuv2 section
// Parse decoded, and every US section we accept (version 1) is decoded identically by
// go-gpp v0.2.0.
func FuzzParse(f *testing.F) {
	for _, s := range goGPPVectors {
		f.Add(s)
	}
	for _, tc := range encodedUS {
		f.Add(encodeHeader(tc.id) + "~" + encodeUS(tc.id, tc.u))
	}
	f.Add("DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN")
	f.Add("DBABjw~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YYN")
	// Short and blank bodies (short_test.go): iabgpp-es vectors and ours.
	f.Add(gppesMissing)
	f.Add(gppesBlank)
	f.Add("DBACNYA")
	f.Add("DBACNYA~" + gppesTCF2)
	f.Add("DBACNYA~~1YYN")
	f.Add(encodeHeader(7, 8, 10) + "~~xlgWE")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		opt, gpc, err2 := OptOutString(s, nil)
		optB, gpcB, err3 := OptOut([]byte(s), nil)
		if opt != optB || gpc != gpcB || (err2 == nil) != (err3 == nil) {
			t.Fatalf("string/bytes disagree")
		}
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Parse err %v, OptOut err %v", err, err2)
		}
		if err2 != nil && (opt || gpc) {
			t.Fatalf("OptOut answered %v %v with the error %v", opt, gpc, err2)
		}
		for _, e := range sentinels {
			if errors.Is(err2, e) && !errors.Is(err, e) {
				t.Fatalf("error class: Parse %v, OptOut %v", err, err2)
			}
		}
		if tc, ok := TCFEUv2([]byte(s)); ok && !slices.Contains(got.Header.SectionIDs, SectionTCFEUv2) {
			t.Fatalf("TCFEUv2 found %q in a string without tcfeuv2", tc)
		}
		decoded := map[int]bool{}
		for _, sec := range got.Sections {
			decoded[sec.ID] = true
			if sec.ID == SectionTCFEUv2 {
				if tc, ok := TCFEUv2([]byte(s)); !ok || string(tc) != sec.TCFEUv2 {
					t.Fatalf("TCFEUv2 = %q %v, Parse decoded %q", tc, ok, sec.TCFEUv2)
				}
			}
		}
		// Fail closed: a listed section Parse could not decode fails OptOut when it
		// applies.
		for _, id := range got.Header.SectionIDs {
			if !decoded[id] {
				if _, _, err := OptOutString(s, []int{id}); err == nil {
					t.Fatalf("section %d not decoded (%v), but OptOut for it succeeds", id, err)
				}
			}
		}
		if err != nil {
			return
		}
		var wantOpt, wantGPC bool
		for _, sec := range got.Sections {
			if sec.USPv1 != nil && sec.USPv1.OptOutSale == 'Y' {
				wantOpt = true
			}
			if sec.US != nil {
				wantOpt = wantOpt || sec.US.OptedOut()
				wantGPC = wantGPC || sec.US.GPC
			}
		}
		if opt != wantOpt || gpc != wantGPC {
			t.Fatalf("OptOut %v %v, Parse says %v %v", opt, gpc, wantOpt, wantGPC)
		}
		// Per-section applicability agrees too.
		for _, sec := range got.Sections {
			o, g, err := OptOutString(s, []int{sec.ID})
			var wo, wg bool
			if sec.US != nil {
				wo, wg = sec.US.OptedOut(), sec.US.GPC
			}
			if sec.USPv1 != nil {
				wo = sec.USPv1.OptOutSale == 'Y'
			}
			if err != nil || o != wo || g != wg {
				t.Fatalf("section %d: %v %v %v, want %v %v", sec.ID, o, g, err, wo, wg)
			}
		}
		// Differential against go-gpp, for the layouts it knows (v1 only).
		var ggErr bool
		var gg gogpp.GppContainer
		func() {
			defer func() {
				if recover() != nil {
					ggErr = true
				}
			}()
			var errs []error
			gg, errs = gogpp.Parse(s)
			ggErr = len(errs) != 0
		}()
		if ggErr {
			return // go-gpp rejects things we accept (e.g. lone '.' handling); not compared
		}
		if len(gg.Sections) != len(got.Sections) {
			t.Fatalf("go-gpp found %d sections, we %d", len(gg.Sections), len(got.Sections))
		}
		for i, sec := range got.Sections {
			if sec.US == nil || (sec.ID == SectionUSNat && sec.US.Version != 1) {
				continue
			}
			w, ok := fromGoGPP(gg.Sections[i])
			if !ok {
				t.Fatalf("go-gpp section %T", gg.Sections[i])
			}
			u := *sec.US
			u.GPCSegmentIncluded = false
			if !reflect.DeepEqual(u, w) {
				t.Fatalf("section %d:\n ours   %+v\n go-gpp %+v", sec.ID, u, w)
			}
		}
	})
}
