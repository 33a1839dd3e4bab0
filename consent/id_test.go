package consent

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	const n = 10_000
	seen := make(map[string]bool, n)
	for range n {
		id, err := NewID()
		if err != nil {
			t.Fatalf("NewID: %v", err)
		}
		if len(id) != 22 {
			t.Fatalf("NewID = %q: %d chars, want 22", id, len(id))
		}
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("NewID = %q: not base64url of 16 bytes (%d bytes, %v)", id, len(raw), err)
		}
		if !ValidID([]byte(id)) {
			t.Fatalf("ValidID rejects NewID's %q", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	check := func(t *testing.T, id string, want bool) {
		t.Helper()
		if got := ValidID([]byte(id)); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
	for _, tc := range []struct {
		name string
		id   string
		want bool
	}{
		{"all zero bits", "AAAAAAAAAAAAAAAAAAAAAA", true},
		{"all one bits", "_____________________w", true},
		{"mixed alphabet", "aZ09-_aZ09-_aZ09-_aZ0Q", true},
		{"ends in g", "abcdefghijklmnopqrstug", true},
		{"empty", "", false},
		{"21 chars", "AAAAAAAAAAAAAAAAAAAAA", false},
		{"23 chars", "AAAAAAAAAAAAAAAAAAAAAAA", false},
		{"padded", "AAAAAAAAAAAAAAAAAAAAAA==", false},
		{"std alphabet plus", "AAAAAAAAAAA+AAAAAAAAAA", false},
		{"std alphabet slash", "AAAAAAAAAAA/AAAAAAAAAA", false},
		{"space", "AAAAAAAAAAA AAAAAAAAAA", false},
		{"dot", "AAAAAAAAAAA.AAAAAAAAAA", false},
		{"non-canonical last char", "AAAAAAAAAAAAAAAAAAAAAB", false},
		{"last char with low bits", "_____________________x", false},
		{"non-ASCII", "AAAAAAAAAAAAAAAAAAAAé", false},
		{"NUL byte", "AAAAAAAAAA\x00AAAAAAAAAAA", false},
		{"cookie with attributes", "AAAAAAAAAAAAAAAAAAAAAA; Path=/", false},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", false},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.id, tc.want) })
	}
}

func TestValidIDAllocs(t *testing.T) {
	id := []byte("aZ09-_aZ09-_aZ09-_aZ0Q")
	if a := testing.AllocsPerRun(1000, func() { ValidID(id) }); a != 0 {
		t.Errorf("ValidID allocates %v times, want 0", a)
	}
}

// FuzzValidID checks that ValidID accepts exactly the canonical base64url encodings of
// 16 bytes, which is what NewID produces.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "_____________________w", "AAAAAAAAAAAAAAAAAAAAAB", "", "AAAAAAAAAAA+AAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := base64.RawURLEncoding.Strict().DecodeString(string(b))
		canonical := err == nil && len(raw) == 16 && base64.RawURLEncoding.EncodeToString(raw) == string(b) &&
			!strings.ContainsAny(string(b), "\r\n") // the decoder skips newlines; an ID has none
		if got := ValidID(b); got != canonical {
			t.Fatalf("ValidID(%q) = %v, but canonical 16-byte base64url is %v", b, got, canonical)
		}
	})
}

func BenchmarkValidID(b *testing.B) {
	id := []byte("aZ09-_aZ09-_aZ09-_aZ0Q")
	b.ReportAllocs()
	for b.Loop() {
		if !ValidID(id) {
			b.Fatal("rejected")
		}
	}
}
