// The property of a hit: which of the vendor's properties (GA4 measurement ID, pixel,
// Matomo site) the hit is for. Pseudonyms are keyed by vendor, property and site (the
// host the hit was sent to; hasher.go), so that a vendor that serves many sites cannot
// join one visitor's pseudonyms across properties or sites. It is read before the
// rewrite, since the property may come after the IDs.

package rules

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/consentgate/consentgate/internal/jsonscan"
)

// maxPropertyLen bounds a property ID, decoded on the stack. Real ones are short (a
// 12-character GA4 measurement ID, a 16-digit pixel ID); a longer one is not one.
const maxPropertyLen = 128

var (
	// errPropertyConflict: the hit names two different properties. Which one the vendor
	// would count it under is the vendor's guess, and a pseudonym keyed by one could be
	// joined under the other: the hit is not anonymised.
	errPropertyConflict = errors.New("the hit names more than one property")
	errPropertyLong     = fmt.Errorf("property ID longer than %d bytes", maxPropertyLen)
	errPropertyKind     = errors.New("property ID is not a JSON string or number")
	errSiteLong         = fmt.Errorf("host longer than %d bytes", maxSiteLen)
)

// maxSiteLen bounds the site, a host name (RFC 1035 §2.3.4: 255 octets) or an IP literal.
const maxSiteLen = 255

// propertyFinder collects the hit's property ID: the first value found, which every
// later one must equal.
type propertyFinder struct {
	buf   [maxPropertyLen]byte
	n     int
	found bool
	err   error
}

func (f *propertyFinder) add(v []byte) {
	switch {
	case f.err != nil:
	case len(v) > maxPropertyLen:
		f.err = errPropertyLong
	case !f.found:
		f.n = copy(f.buf[:], v)
		f.found = true
	case !bytes.Equal(f.buf[:f.n], v):
		f.err = errPropertyConflict
	}
}

func (f *propertyFinder) value() []byte { return f.buf[:f.n] }

// hashKey derives the key of the hit's pseudonyms from its property, or reports why the
// hit names none that can be trusted.
func (a *Anonymiser) hashKey(hit *Hit) (HashKey, error) {
	var f propertyFinder
	if len(a.property) > 0 {
		a.findPairs(&f, hit.Query)
		if a.body == BodyForm || a.body == BodyLines {
			for body := hit.Body; len(body) > 0; {
				var line []byte
				line, body, _ = bytes.Cut(body, []byte{'\n'})
				a.findPairs(&f, bytes.TrimRight(line, "\r"))
			}
		}
	}
	if len(a.propertyJSON) > 0 && a.body == BodyJSON && len(bytes.TrimSpace(hit.Body)) > 0 {
		i := jsonscan.SkipSpace(hit.Body, 0)
		if i < len(hit.Body) && hit.Body[i] == '{' {
			for _, path := range a.propertyJSON {
				findJSON(&f, hit.Body[i:], path, 0)
			}
		}
		// A body that is not an object fails the rewrite itself.
	}
	if f.err != nil {
		return HashKey{}, f.err
	}
	// The site, as DNS compares names: ASCII case folded, no root dot.
	if len(hit.Site) > maxSiteLen {
		return HashKey{}, errSiteLong
	}
	var sb [maxSiteLen]byte
	site := sb[:len(hit.Site)]
	for i, c := range hit.Site {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		site[i] = c
	}
	site = bytes.TrimSuffix(site, []byte{'.'})
	return a.h.Key(a.scope, f.value(), site), nil
}

// findPairs adds every value of a property parameter in the '&'-separated pairs of src,
// names and values decoded as filterPairs decodes them. It runs on every hashed hit, so
// a name that cannot decode to a property name (its first byte, its length) is passed
// over without decoding.
func (a *Anonymiser) findPairs(f *propertyFinder, src []byte) {
	for len(src) > 0 && f.err == nil {
		pair := src
		if i := bytes.IndexByte(src, '&'); i >= 0 {
			pair, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		rawName, rawVal := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			rawName, rawVal = pair[:i], pair[i+1:]
		}
		if len(rawName) == 0 || len(rawName) > 3*a.propertyNameMax || !a.propertyFirst[rawName[0]] {
			continue
		}
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok || !a.isProperty(name) {
			continue
		}
		if len(rawVal) > maxPropertyLen { // decoding never lengthens
			f.err = errPropertyLong
			return
		}
		var vb [maxPropertyLen]byte
		v, ok := decodeName(vb[:0], rawVal)
		if !ok {
			// Kept values must have valid escapes (filterPairs), so the vendor would not
			// see this one either; it names no property.
			continue
		}
		f.add(v)
	}
}

func (a *Anonymiser) isProperty(name []byte) bool {
	for _, p := range a.property {
		if string(name) == p {
			return true
		}
	}
	return false
}

// findJSON adds every value at path (object fields) in the JSON object obj. Errors in
// obj are left to the rewrite, which validates the whole body.
func findJSON(f *propertyFinder, obj []byte, path []string, depth int) {
	it := jsonscan.Members(obj, 0, maxJSONDepth-depth)
	for it.Next() && f.err == nil {
		if !jsonscan.Equal(it.Key(), path[0]) {
			continue
		}
		v := it.Value()
		switch {
		case len(path) > 1:
			if it.Kind() == jsonscan.Object {
				findJSON(f, v, path[1:], depth+1)
			}
		case it.Kind() == jsonscan.String:
			raw := v[1 : len(v)-1]
			if len(raw) > maxPropertyLen { // unescaping never lengthens
				f.err = errPropertyLong
				return
			}
			var b [maxPropertyLen]byte
			f.add(jsonscan.Unescape(b[:0], raw))
		case it.Kind() == jsonscan.Number:
			f.add(v)
		case it.Kind() == jsonscan.Null:
		default:
			f.err = errPropertyKind
		}
	}
}
