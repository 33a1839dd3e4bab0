package geo

// Location is where the GeoIP database places an address. It is a small value (no strings)
// so that a lookup and its resolution to a group allocate nothing.
type Location struct {
	Country     [2]byte // ISO 3166-1 alpha-2, upper case; zero if unknown
	Subdivision [3]byte // first ISO 3166-2 subdivision without the country ("CA", "ENG", "E"), zero-padded; zero if none
}

// Known reports whether the country is known.
func (l Location) Known() bool { return l.Country != [2]byte{} }

// CountryCode returns the country code, "" if unknown. It allocates: for logs and tools only.
func (l Location) CountryCode() string {
	if !l.Known() {
		return ""
	}
	return string(l.Country[:])
}

// SubdivisionCode returns the subdivision code without the country, "" if none.
func (l Location) SubdivisionCode() string {
	n := 0
	for n < len(l.Subdivision) && l.Subdivision[n] != 0 {
		n++
	}
	return string(l.Subdivision[:n])
}

// setCountry stores an ISO 3166-1 alpha-2 code, upper-casing it. Anything else leaves the
// country unknown: a code Resolve cannot match would otherwise land in "other" (no consent
// rules) instead of "unknown" (strict by default).
func (l *Location) setCountry(b []byte) bool {
	if len(b) != 2 {
		return false
	}
	var c [2]byte
	for i, x := range b {
		x = upper(x)
		if x < 'A' || x > 'Z' {
			return false
		}
		c[i] = x
	}
	l.Country = c
	return true
}

// setSubdivision stores the subdivision part of an ISO 3166-2 code (1-3 alphanumerics),
// upper-casing it. Anything else leaves it empty: the country still resolves.
func (l *Location) setSubdivision(b []byte) bool {
	if len(b) == 0 || len(b) > 3 {
		return false
	}
	var s [3]byte
	for i, x := range b {
		x = upper(x)
		if (x < 'A' || x > 'Z') && (x < '0' || x > '9') {
			return false
		}
		s[i] = x
	}
	l.Subdivision = s
	return true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// LocationOf is the location a trusted sender states for a visitor in ISO codes, e.g. a GA4
// Measurement Protocol user_location: country "FR" (ISO 3166-1 alpha-2) and, optionally,
// region "US-CA" (ISO 3166-2, whose country part must match) or "CA". ok is false, and the
// location unknown, when the country is malformed; a malformed region is left out.
func LocationOf(country, region []byte) (loc Location, ok bool) {
	if !loc.setCountry(country) {
		return Location{}, false
	}
	if cc, sub, found := cutByte(region, '-'); found {
		var c Location
		if !c.setCountry(cc) || c.Country != loc.Country {
			return loc, true
		}
		region = sub
	}
	if len(region) > 0 {
		loc.setSubdivision(region)
	}
	return loc, true
}

func cutByte(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}
