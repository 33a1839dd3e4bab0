package usp

import (
	"errors"
	"strings"
	"testing"
)

// Vectors: from the field table of the IAB "US Privacy String" v1 specification
// (github.com/InteractiveAdvertisingBureau/USPrivacy, CCPA/US Privacy String.md, commit
// f8d659f58665: version '1'; notice, opt-out of sale, LSPA; each Y, N or '-'), whose
// examples are 1YNN, 1NYN, 1-Y- and 1--- (not applicable); the others hand-written.
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
		{"2YNN", ErrVersion}, {"0YNN", ErrVersion}, {"xYNN", ErrVersion}, {"2YN", ErrVersion},
		{"1YXN", ErrValue}, {"1Y N", ErrValue}, {"11NN", ErrValue},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.s))
		if !errors.Is(err, c.want) || got.OptedOut() || got != (Signal{}) {
			t.Errorf("%q: %+v %v, want %v", c.s, got, err, c.want)
		}
	}
}

// TestErrorMessages: what explain shows (err.Error()) for strings that fail. A version
// other than 1 is refused (fail closed) and the message says so; a malformed version-1
// string keeps its own message.
//
// Vectors:
//   - iabgpp-es: github.com/IABTechLab/iabgpp-es (commit fd0546e7b28e),
//     modules/cmpapi/test/encoder/section/UspV1.test.ts, "should decode 2YNY" and
//     "should decode to 2NYY": iabgpp-es reads version 2 (no version 2 is defined).
//   - prebid-server: github.com/prebid/prebid-server, privacy/ccpa/parsedpolicy_test.go,
//     TestParseConsent ("Wrong Version" 2---, "Wrong Length" 1NY, "Explicit Notice
//     Char" 1X--, "Invalid Opt-Out Sale Char" 1-X-, "Invalid LSPA Char" 1--X) and
//     TestParse ("Consent Error" malformed): all errors there too.
//   - ours: the rest.
func TestErrorMessages(t *testing.T) {
	cases := []struct {
		s, msg string
		want   error
		src    string
	}{
		{"2YNY", `usp: unsupported version "2": only version 1 is defined`, ErrVersion, "iabgpp-es UspV1.test.ts"},
		{"2NYY", `usp: unsupported version "2": only version 1 is defined`, ErrVersion, "iabgpp-es UspV1.test.ts"},
		{"2---", `usp: unsupported version "2": only version 1 is defined`, ErrVersion, "prebid-server Wrong Version"},
		{"0YNN", `usp: unsupported version "0": only version 1 is defined`, ErrVersion, "ours"},
		{"9---", `usp: unsupported version "9": only version 1 is defined`, ErrVersion, "ours"},
		{"2YNNY", `usp: unsupported version "2": only version 1 is defined`, ErrVersion, "ours: a later version may be longer"},
		{"3", `usp: unsupported version "3": only version 1 is defined`, ErrVersion, "ours: a later version may be shorter"},
		{"xYNN", `usp: unsupported version "x": only version 1 is defined`, ErrVersion, "ours: 4 characters, no version digit"},
		{"\x80YNN", `usp: unsupported version "\x80": only version 1 is defined`, ErrVersion, "ours: a non-UTF-8 byte is quoted"},
		{"1NY", "usp: string is not 4 characters", ErrLength, "prebid-server Wrong Length"},
		{"malformed", "usp: string is not 4 characters", ErrLength, "prebid-server Consent Error"},
		{"1YNNN", "usp: string is not 4 characters", ErrLength, "ours"},
		{"", "usp: string is not 4 characters", ErrLength, "ours"},
		{"1X--", "usp: field is not Y, N or -", ErrValue, "prebid-server Explicit Notice Char"},
		{"1-X-", "usp: field is not Y, N or -", ErrValue, "prebid-server Invalid Opt-Out Sale Char"},
		{"1--X", "usp: field is not Y, N or -", ErrValue, "prebid-server Invalid LSPA Char"},
	}
	for _, c := range cases {
		got, err := Parse([]byte(c.s))
		if err == nil || err.Error() != c.msg || !errors.Is(err, c.want) || got != (Signal{}) {
			t.Errorf("%q (%s): %+v %v, want %q (%v)", c.s, c.src, got, err, c.msg, c.want)
		}
		for _, other := range []error{ErrLength, ErrVersion, ErrValue} {
			if other != c.want && errors.Is(err, other) {
				t.Errorf("%q: %v is also %v", c.s, err, other)
			}
		}
	}
}

func TestParseAllocs(t *testing.T) {
	for _, s := range []string{"1YYN", "2YNY", "1NY", "1X--"} {
		b := []byte(s)
		if n := testing.AllocsPerRun(100, func() { _, _ = Parse(b) }); n != 0 {
			t.Errorf("%q: %v allocs", s, n)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1YNN", "1---", "1YYY", "2YNN", "", "2YNY", "2YNNY", "xYNN", "1NY"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := Parse([]byte(s))
		if err != nil {
			if sig != (Signal{}) {
				t.Fatalf("non-zero signal on error")
			}
			if errors.Is(err, ErrVersion) != strings.Contains(err.Error(), "unsupported version") {
				t.Fatalf("%q: %v", s, err)
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
