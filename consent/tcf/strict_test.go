package tcf

import (
	"errors"
	"strings"
	"testing"
)

// TestTrailingData: a segment may run on to the end of the 24-bit group holding its last
// field (the IAB's encoder pads that far), never a group further. The attack, a
// valid string followed by kilobytes of 'A', is refused, in the core segment and in every
// later one; so is anything past MaxLength.
func TestTrailingData(t *testing.T) {
	tc := full()
	valid := []string{javaCore, javaAllParts, javaPubRestrictions, encode(&tc, false), encode(&tc, true)}
	for _, s := range valid {
		if _, err := Parse(s); err != nil {
			t.Fatalf("vector %q: %v", s, err)
		}
		segs := strings.Split(s, ".")
		for i := range segs {
			for _, extra := range []string{"AAAA", strings.Repeat("A", 3000)} {
				bad := append([]string(nil), segs...)
				bad[i] = strings.TrimRight(bad[i], "=") + extra
				in := strings.Join(bad, ".")
				want := ErrTrailingData
				if len(in) > MaxLength {
					want = ErrTooLong
				}
				if _, err := Parse(in); !errors.Is(err, want) {
					t.Errorf("segment %d of %q with %d extra characters: %v, want %v", i, s, len(extra), err, want)
				}
				if _, _, err := Check([]byte(in), 1, 1); !errors.Is(err, want) {
					t.Errorf("Check: segment %d of %q with %d extra characters: %v, want %v", i, s, len(extra), err, want)
				}
			}
		}
	}
	// Padding to the end of the last group, as the IAB's encoder does, is accepted.
	core := strings.Split(javaCore, ".")[0]
	if n := len(core) % 4; n != 0 {
		if _, err := Parse(core + strings.Repeat("A", 4-n)); err != nil {
			t.Errorf("core padded to its 24-bit group: %v", err)
		}
	}
}
