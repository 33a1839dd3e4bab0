package rules

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/consentgate/consentgate/config"
)

// TestVocabulary: the names config's tests are written against (config/load/testdata/
// vocabulary.json) are the product's, so that those tests speak of the real catalogue; the
// enumerations must match exactly, since their order is the order messages list them in.
func TestVocabulary(t *testing.T) {
	raw, err := os.ReadFile("../config/load/testdata/vocabulary.json")
	if err != nil {
		t.Fatal(err)
	}
	var test config.Vocabulary
	if err := json.Unmarshal(raw, &test); err != nil {
		t.Fatal(err)
	}
	real := Vocabulary()
	sub := func(what string, got, in []string) {
		t.Helper()
		for _, n := range got {
			if !slices.Contains(in, n) {
				t.Errorf("%s %q of the config tests is not in the catalogue", what, n)
			}
		}
	}
	sub("vendor", test.Vendors, real.Vendors)
	sub("endpoint", test.Endpoints, real.Endpoints)
	for _, c := range []struct {
		what       string
		test, real []string
	}{
		{"regimes", test.Regimes, real.Regimes},
		{"statuses", test.Statuses, real.Statuses},
		{"purposes", test.Purposes, real.Purposes},
		{"actions", test.Actions, real.Actions},
	} {
		if !slices.Equal(c.test, c.real) {
			t.Errorf("%s: config tests use %q, the product %q", c.what, c.test, c.real)
		}
	}
}
