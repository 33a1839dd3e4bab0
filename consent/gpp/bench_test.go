package gpp

import (
	"testing"

	gogpp "github.com/prebid/go-gpp"
)

// Mixed string from go-gpp's BenchmarkParse, with its usnat/usco/usct re-encoded as
// version 1 so that all six US sections decode under our version check.
func benchString() string {
	return encodeHeader(7, 8, 9, 10, 11, 12) + "~" + encodeUS(7, encodedUS[0].u) + "~" + encodeUS(8, encodedUS[2].u) +
		"~" + encodeUS(9, encodedUS[3].u) + "~" + encodeUS(10, encodedUS[4].u) + "~" + encodeUS(11, encodedUS[5].u) +
		"~" + encodeUS(12, encodedUS[6].u)
}

func BenchmarkOptOutUSNat(b *testing.B) {
	s := []byte(encodeHeader(7) + "~" + encodeUS(7, encodedUS[0].u))
	sid := []int{7}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := OptOut(s, sid); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOptOutSixSections(b *testing.B) {
	s := []byte(benchString())
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := OptOut(s, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSixSections(b *testing.B) {
	s := benchString()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoGPPUSNat(b *testing.B) {
	s := encodeHeader(7) + "~" + encodeUS(7, encodedUS[0].u)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := gogpp.Parse(s); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkGoGPPSixSections(b *testing.B) {
	s := benchString()
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := gogpp.Parse(s); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}
