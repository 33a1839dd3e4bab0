package cmp

import "github.com/consentgate/consentgate/consent"

// OneTrustMap maps OneTrust cookie-category group IDs (as configured in the OneTrust
// console) to purposes.
type OneTrustMap map[string]consent.Purpose

// DefaultOneTrustMap is OneTrust's default category set: C0001 Strictly Necessary,
// C0002 Performance, C0003 Functional, C0004 Targeting (OneTrust Cookie Consent
// documentation, "Cookie Categories" / "Get the Active Groups"). Sites that add
// categories (C0005 Social Media, …) or renumber them pass their own map.
var DefaultOneTrustMap = OneTrustMap{
	"C0001": consent.Necessary,
	"C0002": consent.Statistics,
	"C0003": consent.Preferences,
	"C0004": consent.Marketing,
}

// ParseOneTrust parses the value of OneTrust's "OptanonConsent" cookie, a
// query-string-like list of key=value pairs joined by '&', e.g. (OneTrust developer
// documentation, "OptanonConsent cookie"):
//
//	isGpcEnabled=0&datestamp=Mon+Nov+20+2023+10%3A15%3A00+GMT%2B0100&version=202310.1.0&isIABGlobal=false&hosts=&consentId=…&interactionCount=1&landingPath=NotLandingPage&groups=C0001%3A1%2CC0002%3A0%2CC0003%3A1%2CC0004%3A0&AwaitingReconsent=false&geolocation=DE%3BBE
//
// Only "groups" is read: a comma-separated list of GROUPID:1 (Granted) or GROUPID:0
// (Denied), percent-encoded or not. Groups are mapped to purposes by m
// (DefaultOneTrustMap if m is nil); groups not in m are ignored (IAB stacks,
// custom categories, …). A purpose reached by several groups, or by a group repeated,
// takes the most protective status; purposes no group reaches are Unset. An empty
// groups value gives all Unset.
//
// A cookie without a groups field is ErrNoGroups; a bad percent escape in the groups
// value is ErrEncoding; a status other than 0/1 is ErrValue; any other malformation of
// the groups list is ErrSyntax. The other fields are not validated. On error the
// purposes are zero.
func ParseOneTrust(v []byte, m OneTrustMap) (consent.Purposes, error) {
	if m == nil {
		m = DefaultOneTrustMap
	}
	var p consent.Purposes
	found := false
	for len(v) > 0 {
		pair := v
		rest := []byte(nil)
		for i, c := range v {
			if c == '&' {
				pair, rest = v[:i], v[i+1:]
				break
			}
		}
		v = rest
		eq := -1
		for i, c := range pair {
			if c == '=' {
				eq = i
				break
			}
		}
		if eq < 0 || !keyIs(pair[:eq], "groups") {
			continue
		}
		found = true
		if err := parseGroups(pair[eq+1:], m, &p); err != nil {
			return consent.Purposes{}, err
		}
	}
	if !found {
		return consent.Purposes{}, ErrNoGroups
	}
	return p, nil
}

// keyIs compares a possibly percent-encoded key with s.
func keyIs(k []byte, s string) bool {
	d := dec{b: k}
	for i := 0; i < len(s); i++ {
		c, ok := d.next()
		if !ok || c != s[i] {
			return false
		}
	}
	return d.eof()
}

func parseGroups(v []byte, m OneTrustMap, p *consent.Purposes) error {
	d := dec{b: v}
	if d.eof() {
		return nil
	}
	for {
		var id word
		for {
			c, n := d.peek()
			if n == 0 || !isIdent(c) {
				break
			}
			d.i += n
			id.add(c)
		}
		if d.bad {
			return ErrEncoding
		}
		if id.n == 0 || !d.eat(':') {
			if d.bad {
				return ErrEncoding
			}
			return ErrSyntax
		}
		c, ok := d.next()
		if !ok {
			if d.bad {
				return ErrEncoding
			}
			return ErrSyntax
		}
		var s consent.Status
		switch c {
		case '1':
			s = consent.Granted
		case '0':
			s = consent.Denied
		default:
			return ErrValue
		}
		if b := id.bytes(); b != nil {
			if pur, ok := m[string(b)]; ok && pur < consent.NumPurposes {
				p[pur] = protective(p[pur], s)
			}
		}
		if d.eof() {
			return nil
		}
		if !d.eat(',') {
			if d.bad {
				return ErrEncoding
			}
			if c, n := d.peek(); n > 0 && isIdent(c) {
				return ErrValue // e.g. "C0001:10"
			}
			return ErrSyntax
		}
	}
}
