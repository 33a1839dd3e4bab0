package geo

import (
	"errors"
	"fmt"
	"slices"
)

// GroupID indexes the groups of a Table: the configured groups in order, then "other",
// then "unknown".
type GroupID uint16

// MaxGroups bounds the configured groups, so that with "other" and "unknown" a set of
// groups fits a 64-bit mask and metric cardinality stays small.
const MaxGroups = 60

// Table maps a Location to its jurisdiction group. It is built once per configuration and
// read concurrently without locks.
type Table struct {
	groups []Group
	names  []string
	// Countries index a flat array (26×26 letters); subdivisions, being few and sparse,
	// a map keyed by the code packed into an integer. Neither allocates on lookup.
	country        [26 * 26]GroupID
	sub            map[uint64]GroupID
	other, unknown GroupID
}

// TableError is one problem found by NewTable. NewTable returns them joined (errors.Join);
// the config compiler can walk them (Unwrap() []error) and use Index, Group and Code to
// point at the offending line.
type TableError struct {
	Index int    // position of the group in the slice given to NewTable; -1 if not about one group
	Group string // group name
	Code  string // the offending code, for problems about a code ("" otherwise, or if the code is "")
	Msg   string

	isCode bool // the problem is about Code (which may be "")
}

func (e *TableError) Error() string {
	switch {
	case e.Index < 0:
		return "geo: " + e.Msg
	case e.isCode:
		return fmt.Sprintf("geo: group %q: code %q: %s", e.Group, e.Code, e.Msg)
	default:
		return fmt.Sprintf("geo: group %q: %s", e.Group, e.Msg)
	}
}

// NewTable compiles groups; unknown is the regime of visitors with no location. It reports
// every problem at once: bad group names (want ^[a-z][a-z0-9_-]{0,31}$), the reserved names
// "other" and "unknown", duplicate names, bad regimes, bad codes (want "DE" or "US-CA":
// two upper-case letters, optionally a dash and 1-3 upper-case letters or digits), a code
// in two groups (or twice in one), more than MaxGroups groups.
func NewTable(groups []Group, unknown Regime) (*Table, error) {
	var errs []error
	fail := func(i int, g, format string, args ...any) {
		errs = append(errs, &TableError{Index: i, Group: g, Msg: fmt.Sprintf(format, args...)})
	}
	failCode := func(i int, g, code, format string, args ...any) {
		errs = append(errs, &TableError{Index: i, Group: g, Code: code, Msg: fmt.Sprintf(format, args...), isCode: true})
	}
	if len(groups) > MaxGroups {
		fail(-1, "", "%d groups, at most %d", len(groups), MaxGroups)
	}
	if unknown >= NumRegimes {
		fail(-1, "", "unknown location regime: bad regime %d", uint8(unknown))
	}
	t := &Table{sub: make(map[uint64]GroupID)}
	seenName := make(map[string]int)
	owner := make(map[string]string) // code → group name
	for i, g := range groups {
		switch {
		case g.Name == OtherGroup || g.Name == UnknownGroup:
			fail(i, g.Name, "name is reserved")
		case !validGroupName(g.Name):
			fail(i, g.Name, "bad name (group #%d): want ^[a-z][a-z0-9_-]{0,31}$", i+1)
		}
		if j, dup := seenName[g.Name]; dup {
			fail(i, g.Name, "duplicate group name (also group #%d)", j+1)
		} else {
			seenName[g.Name] = i
		}
		if g.Regime >= NumRegimes {
			fail(i, g.Name, "bad regime %d", uint8(g.Regime))
		}
		id := GroupID(i)
		for _, code := range g.Codes {
			cc, sub, ok := parseCode(code)
			if !ok {
				failCode(i, g.Name, code, `bad code: want ISO 3166 "DE" or "US-CA" (upper case)`)
				continue
			}
			if prev, dup := owner[code]; dup {
				failCode(i, g.Name, code, "already in group %q", prev)
				continue
			}
			owner[code] = g.Name
			if sub == ([3]byte{}) {
				t.country[countryIndex(cc)] = id + 1 // +1: zero marks "no group" until the fill below
			} else {
				t.sub[subKey(cc, sub)] = id
			}
		}
		t.groups = append(t.groups, cloneGroup(g))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t.other = GroupID(len(groups))
	t.unknown = t.other + 1
	for i, id := range t.country {
		if id == 0 {
			t.country[i] = t.other
		} else {
			t.country[i] = id - 1
		}
	}
	t.groups = append(t.groups,
		Group{Name: OtherGroup, Regime: None},
		Group{Name: UnknownGroup, Regime: unknown},
	)
	for _, g := range t.groups {
		t.names = append(t.names, g.Name)
	}
	return t, nil
}

// Resolve returns the group of loc: a subdivision code (US-CA) beats its country (US);
// a known location in no group is "other", an unknown one "unknown".
func (t *Table) Resolve(loc Location) GroupID {
	if !loc.Known() {
		return t.unknown
	}
	if loc.Subdivision[0] != 0 && len(t.sub) > 0 {
		if id, ok := t.sub[subKey(loc.Country, loc.Subdivision)]; ok {
			return id
		}
	}
	if !validCountry(loc.Country) {
		return t.other
	}
	return t.country[countryIndex(loc.Country)]
}

// Group returns the group with id, including "other" and "unknown"; nil if id is out of
// range. The group belongs to the table: do not modify it.
func (t *Table) Group(id GroupID) *Group {
	if int(id) >= len(t.groups) {
		return nil
	}
	return &t.groups[id]
}

// Names returns the group names indexed by GroupID, "other" and "unknown" last.
func (t *Table) Names() []string { return slices.Clone(t.names) }

// Other is the GroupID of known locations in no group.
func (t *Table) Other() GroupID { return t.other }

// Unknown is the GroupID of visitors without a location.
func (t *Table) Unknown() GroupID { return t.unknown }

func validGroupName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// parseCode splits "DE" or "US-CA" into country and (zero-padded) subdivision.
func parseCode(s string) (cc [2]byte, sub [3]byte, ok bool) {
	if len(s) < 2 || !isUpper(s[0]) || !isUpper(s[1]) {
		return cc, sub, false
	}
	cc = [2]byte{s[0], s[1]}
	if len(s) == 2 {
		return cc, sub, true
	}
	rest := s[2:]
	if len(rest) < 2 || len(rest) > 4 || rest[0] != '-' {
		return cc, sub, false
	}
	for i, c := range []byte(rest[1:]) {
		if !isUpper(c) && (c < '0' || c > '9') {
			return cc, sub, false
		}
		sub[i] = c
	}
	return cc, sub, true
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func validCountry(c [2]byte) bool { return isUpper(c[0]) && isUpper(c[1]) }

// countryIndex needs a validCountry code.
func countryIndex(c [2]byte) int { return int(c[0]-'A')*26 + int(c[1]-'A') }

func subKey(c [2]byte, s [3]byte) uint64 {
	return uint64(c[0])<<32 | uint64(c[1])<<24 | uint64(s[0])<<16 | uint64(s[1])<<8 | uint64(s[2])
}
