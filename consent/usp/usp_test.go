package usp

import (
	"errors"
	"testing"
)

// Vectors: hand-written from the field table of the IAB "US Privacy String" v1
// specification (version '1'; notice, opt-out of sale, LSPA; each Y, N or '-'), which
// uses "1YNN" and "1---" (not applicable) as its examples.
func TestParse(t *testing.T) {
	cases := []struct {
		s      string
		want   Signal
		optOut bool
	}{
		{"1YNN", Signal{1, Yes, No, No}, false},
		{"1YYN", Signal{1, Yes, Yes, No}, true},
		{"1YYY", Signal{1, Yes, Yes, Yes}, true},
		{"1NYN", Signal{1, No, Yes, No}, true},
		{"1---", Signal{1, NotApplicable, NotApplicable, NotApplicable}, false},
		{"1-Y-", Signal{1, NotApplicable, Yes, NotApplicable}, true},
		{"1yyn", Signal{1, Yes, Yes, No}, true},
		{"1NNY", Signal{1, No, No, Yes}, false},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.s))
		if err != nil || got != c.want || got.OptedOut() != c.optOut {
			t.Errorf("%s: %+v %v, want %+v optOut=%v", c.s, got, err, c.want, c.optOut)
		}
		if c.s[1] != 'y' && got.String() != c.s {
			t.Errorf("%s: String()=%q", c.s, got.String())
		}
	}
}

func TestInvalid(t *testing.T) {
	cases := []struct {
		s    string
		want error
	}{
		{"", ErrLength}, {"1YN", ErrLength}, {"1YNNN", ErrLength}, {" 1YNN", ErrLength},
		{"2YNN", ErrVersion}, {"0YNN", ErrVersion},
		{"1YXN", ErrValue}, {"1Y N", ErrValue}, {"11NN", ErrValue},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.s))
		if !errors.Is(err, c.want) || got.OptedOut() || got != (Signal{}) {
			t.Errorf("%q: %+v %v, want %v", c.s, got, err, c.want)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	b := []byte("1YYN")
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(b) }); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1YNN", "1---", "1YYY", "2YNN", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := Parse([]byte(s))
		if err != nil {
			if sig != (Signal{}) {
				t.Fatalf("non-zero signal on error")
			}
			return
		}
		again, err := Parse([]byte(sig.String()))
		if err != nil || again != sig {
			t.Fatalf("round trip %q -> %q", s, sig.String())
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s := []byte("1YYN")
	b.ReportAllocs()
	for b.Loop() {
		sig, _ := Parse(s)
		_ = sig.OptedOut()
	}
}
