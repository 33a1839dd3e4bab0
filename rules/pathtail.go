// Path tails: the part of a vendor's path that varies from hit to hit (Google Ads puts its
// conversion ID there), declared in the catalogue and checked segment by segment on the
// raw request path before anything is built from it. It is separate because the path is
// the one part of the request line the anonymiser never sees: a wildcard that copied the
// request's path upstream would carry identifiers past every allow-list ("%3Fgclid%3D…"
// decodes to a second query string), and a decoded "#", space or NUL would break the
// request line itself.

package rules

import (
	"errors"
	"fmt"
	"strings"
)

// SegmentKind is what one variable path segment may hold. A segment is checked on the
// request's raw, undecoded bytes, and no kind admits "%": a percent-escape is never of
// any kind, so an encoded "?", "/" or ".." is refused as it stands, never decoded first,
// and a double encoding cannot slip through one decoding.
type SegmentKind uint8

const (
	// SegDigits is 1 to 20 ASCII digits: a numeric vendor ID such as a Google Ads
	// conversion ID (nine to eleven digits in tags seen today; 20 digits hold any
	// uint64, so a longer run is not an ID).
	SegDigits SegmentKind = iota + 1
)

// segmentKinds names the kinds a PathTail pattern may use.
var segmentKinds = map[string]SegmentKind{"digits": SegDigits}

// kindSpec is a kind's alphabet and length bounds.
type kindSpec struct {
	min, max int
	allowed  [256]bool
}

var kindSpecs = func() map[SegmentKind]*kindSpec {
	digits := &kindSpec{min: 1, max: 20}
	for c := '0'; c <= '9'; c++ {
		digits.allowed[c] = true
	}
	return map[SegmentKind]*kindSpec{SegDigits: digits}
}()

// pathTail is a compiled Endpoint.PathTail.
type pathTail struct {
	items []tailItem
}

// tailItem is literal text (lit) or one named segment of a kind.
type tailItem struct {
	lit  string
	name string
	kind *kindSpec
}

// maxTailLen bounds what a tail can match, so a caller can size buffers: no pattern
// compiles to more (checked by parsePathTail).
const maxTailLen = 256

// parsePathTail compiles a PathTail pattern: literal text and {name:kind} segments, e.g.
// "{conversion_id:digits}/". Literal text is limited to unreserved characters and "/",
// so that it is valid on a request line as it stands; a segment must be followed by the
// end or by literal text its kind cannot contain, so matching needs no backtracking.
func parsePathTail(pattern string) (*pathTail, error) {
	if pattern == "" {
		return nil, errors.New("empty path tail")
	}
	t := &pathTail{}
	length := 0
	for rest := pattern; rest != ""; {
		if rest[0] != '{' {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				i = len(rest)
			}
			lit := rest[:i]
			for j := 0; j < len(lit); j++ {
				if c := lit[j]; c != '/' && shouldEscape(c) {
					return nil, fmt.Errorf("path tail %q: literal %q: only unreserved characters and \"/\"", pattern, c)
				}
			}
			if n := len(t.items); n > 0 && t.items[n-1].kind != nil && t.items[n-1].kind.allowed[lit[0]] {
				return nil, fmt.Errorf("path tail %q: segment {%s} is followed by %q, which it could contain", pattern, t.items[n-1].name, lit[0])
			}
			t.items = append(t.items, tailItem{lit: lit})
			length += len(lit)
			rest = rest[i:]
			continue
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("path tail %q: unclosed {", pattern)
		}
		name, kindName, ok := strings.Cut(rest[1:end], ":")
		kind, known := segmentKinds[kindName]
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("path tail %q: want {name:kind}, got %q", pattern, rest[:end+1])
		case !known:
			return nil, fmt.Errorf("path tail %q: unknown segment kind %q", pattern, kindName)
		case len(t.items) > 0 && t.items[len(t.items)-1].kind != nil:
			return nil, fmt.Errorf("path tail %q: two segments with nothing between them", pattern)
		}
		spec := kindSpecs[kind]
		t.items = append(t.items, tailItem{name: name, kind: spec})
		length += 3 * spec.max // the worst case once re-encoded
		rest = rest[end+1:]
	}
	if length > maxTailLen {
		return nil, fmt.Errorf("path tail %q: longer than %d bytes", pattern, maxTailLen)
	}
	return t, nil
}

// appendUpstream checks raw, the request's undecoded path after the routed prefix,
// against the tail and appends the tail rebuilt from the pattern and the checked
// segments, each re-encoded. The pattern's final "/" may be missing from raw (tags are
// seen both ways) and is always written, so the vendor gets its documented form. ok is
// false, and dst is returned unchanged, when raw is of any other shape.
func (t *pathTail) appendUpstream(dst, raw []byte) (_ []byte, ok bool) {
	start := len(dst)
	for i, it := range t.items {
		if it.kind == nil {
			switch {
			case len(raw) >= len(it.lit) && string(raw[:len(it.lit)]) == it.lit:
				raw = raw[len(it.lit):]
			case i == len(t.items)-1 && strings.HasSuffix(it.lit, "/") && string(raw) == it.lit[:len(it.lit)-1]:
				raw = raw[:0]
			default:
				return dst[:start], false
			}
			dst = append(dst, it.lit...)
			continue
		}
		n := 0
		for n < len(raw) && n <= it.kind.max && it.kind.allowed[raw[n]] {
			n++
		}
		if n < it.kind.min || n > it.kind.max {
			return dst[:start], false
		}
		dst = appendPathSegment(dst, raw[:n])
		raw = raw[n:]
	}
	if len(raw) != 0 {
		return dst[:start], false
	}
	return dst, true
}

// appendPathSegment appends seg percent-encoded as one path segment: every byte but the
// unreserved ones is escaped, "/" included. The kinds' alphabets are unreserved today,
// so this copies; it is what keeps a wider kind added later from putting a separator on
// the request line.
func appendPathSegment(dst, seg []byte) []byte {
	for _, c := range seg {
		if shouldEscape(c) {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
