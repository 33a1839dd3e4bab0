package stats

import (
	"strings"
	"testing"
)

// FuzzParseCellField: a minute's hash is written by other processes; whatever a field
// holds, reading it never panics, and a field the publisher writes reads back as its
// names.
func FuzzParseCellField(f *testing.F) {
	for _, s := range []string{"ga4|forward|consent_granted|eea", "a|b|c", "|||", "a|b|c|d|e", "ga4|drop|x|us-ca", "\x00|a|b|c", "é|ü|ß|中"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		l, ok := parseCellField(field)
		if !ok {
			return
		}
		parts := strings.Split(field, "|")
		if l.vendor != parts[0] || l.reason != parts[2] || l.jurisdiction != parts[3] || l.kind != kindOf(parts[1]) {
			t.Fatalf("%q read as %+v", field, l)
		}
		if cellField(parts[0], parts[1], parts[2], parts[3]) != field {
			t.Fatalf("%q does not round-trip", field)
		}
	})
}
