package tcf

import (
	"errors"
	"testing"
)

// FuzzParse: Parse and Check never panic, fail on exactly the same inputs with the same
// sentinel, and Check agrees with Parse's decoded fields (via TCString.Allowed).
func FuzzParse(f *testing.F) {
	for s := range goGDPRVectors() {
		f.Add(s, 32, 7)
	}
	tc := full()
	f.Add(encode(&tc, false), 755, 7)
	f.Add(encode(&tc, true), 5, 10)
	f.Add("CONciguONcjGKADACHENAOCIAC0ta__AACiQABwAoABAACA", 1, 1)
	f.Add("BONciguONcjGKADACHENAOCIAC0ta__AACiQABgAAYA", 1, 1)
	// '=' padding (padding_test.go): iabtcf-java's vectors, every segment padded, and
	// padding that is not well formed.
	f.Add(javaAllParts, 23, 3)
	f.Add(javaPubRestrictions, 1, 1)
	f.Add(padEach(encode(&tc, true)), 755, 7)
	f.Add("CA==", 1, 1)
	f.Add(javaCore+".cAAAAAAAITg==", 1, 1)
	f.Add(javaCore+"AAAA", 1, 1) // trailing data (strict_test.go)
	sentinels := []error{ErrTruncated, ErrVersion, ErrBase64, ErrSegmentType, ErrBitFieldOverrun, ErrTrailingData, ErrTooLong}
	f.Fuzz(func(t *testing.T, s string, vendor, purpose int) {
		if len(s) > 1<<14 {
			return
		}
		vendor %= 70000
		purpose %= 30
		parsed, perr := Parse(s)
		consent, li, cerr := Check([]byte(s), vendor, purpose)
		if (perr == nil) != (cerr == nil) {
			t.Fatalf("Parse err %v, Check err %v", perr, cerr)
		}
		if perr != nil {
			if consent || li {
				t.Fatalf("Check granted on error %v", cerr)
			}
			n := 0
			for _, e := range sentinels {
				if errors.Is(perr, e) {
					n++
					if !errors.Is(cerr, e) {
						t.Fatalf("Parse %v, Check %v", perr, cerr)
					}
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d sentinels", perr, n)
			}
			return
		}
		pc, pl := parsed.Allowed(vendor, purpose)
		if pc != consent || pl != li {
			t.Fatalf("Check(%d,%d)=%v,%v but Allowed=%v,%v", vendor, purpose, consent, li, pc, pl)
		}
	})
}
