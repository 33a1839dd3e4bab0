package geo

import "testing"

func TestLocationOf(t *testing.T) {
	for _, c := range []struct {
		country, region string
		ok              bool
		cc, sub         string
	}{
		{"FR", "", true, "FR", ""},
		{"us", "US-CA", true, "US", "CA"},
		{"US", "CA", true, "US", "CA"},
		{"GB", "GB-ENG", true, "GB", "ENG"},
		{"US", "FR-75", true, "US", ""}, // a region of another country is left out
		{"US", "US-", true, "US", ""},
		{"US", "US-TOOLONG", true, "US", ""},
		{"USA", "", false, "", ""},
		{"", "US-CA", false, "", ""},
		{"1A", "", false, "", ""},
	} {
		loc, ok := LocationOf([]byte(c.country), []byte(c.region))
		if ok != c.ok || loc.CountryCode() != c.cc || loc.SubdivisionCode() != c.sub {
			t.Errorf("LocationOf(%q, %q) = %q %q %v, want %q %q %v", c.country, c.region,
				loc.CountryCode(), loc.SubdivisionCode(), ok, c.cc, c.sub, c.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { LocationOf([]byte("US"), []byte("US-CA")) }); n != 0 {
		t.Errorf("LocationOf allocates %v times", n)
	}
}
