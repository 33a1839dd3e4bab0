package gpp

import (
	"errors"
	"strings"
	"testing"
)

// TestTrailingData: the header and each decoded section may run on to the end of the
// 24-bit group holding their last field, never a group further; a string past MaxLength
// is refused unread. OptOut then fails closed (the caller denies marketing).
func TestTrailingData(t *testing.T) {
	for _, tc := range encodedUS {
		payload := encodeUS(tc.id, tc.u)
		good := encodeHeader(tc.id) + "~" + payload
		if _, _, err := OptOut([]byte(good), nil); err != nil {
			t.Fatalf("%s: %q: %v", tc.name, good, err)
		}
		core, sub, hasSub := strings.Cut(payload, ".")
		cases := map[string]string{
			"core + a group":   core + "AAAA",
			"core + 3000":      core + strings.Repeat("A", 3000),
			"header + a group": "",
			"too long":         payload + strings.Repeat("A", MaxLength),
		}
		if hasSub {
			cases["core + a group"] += "." + sub
			cases["core + 3000"] += "." + sub
			cases["sub-section + a group"] = core + "." + sub + "AAAA"
		}
		for name, p := range cases {
			s := encodeHeader(tc.id) + "~" + p
			want := []error{ErrTrailingData}
			switch name {
			case "header + a group":
				h := encodeHeader(tc.id)
				s = h + strings.Repeat("A", 4-len(h)%4) + "AAAA~" + payload
				want = []error{ErrMalformedHeader, ErrTrailingData}
			case "too long":
				want = []error{ErrTooLong}
			}
			_, _, err := OptOut([]byte(s), nil)
			_, perr := Parse(s)
			for _, w := range want {
				if !errors.Is(err, w) {
					t.Errorf("%s, %s: OptOut err %v, want %v", tc.name, name, err, w)
				}
				if !errors.Is(perr, w) {
					t.Errorf("%s, %s: Parse err %v, want %v", tc.name, name, perr, w)
				}
			}
		}
	}
}
