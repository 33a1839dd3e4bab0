// Kinds: the declared shape of every allow-listed value. Allowing a name is not enough
// to keep its value: a page title can hold an e-mail address, a currency field a phone
// number, a session counter can chain yesterday's pseudonym to today's. So each entry of
// an allow-list says what its value is, and a value that does not fit is removed (and
// counted by kind, consentgate_anonymise_removed_total). This file declares the kinds
// and checks the small ones; urls.go and scrub.go own URLs and free text.

package rules

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/consentgate/consentgate/internal/enum"
)

// Kind is the declared shape of an allow-listed value. Its values index Out.Removed.
type Kind uint8

const (
	KindEnum     Kind = iota // one of a fixed set of values (flags included)
	KindNumber               // an integer or a decimal of bounded length
	KindToken                // a bounded token: a charset and a maximum length (tag IDs, event names)
	KindID                   // an identifier the vendor needs to count: replaced by the daily salted hash
	KindLanguage             // a language tag, kept as its primary subtag ("en-US" → "en")
	KindScreen               // a screen size, rounded down to a coarse ladder
	KindCurrency             // an ISO 4217 code: three letters, written in capitals
	KindURL                  // a URL: scrubbed (urls.go)
	KindText                 // free text: scrubbed of identifiers, or dropped (scrub.go)
	NumKinds
)

var kindNames = enum.New("kind", NumKinds, "enum", "number", "token", "id", "language", "screen", "currency", "url", "text")

func (k Kind) String() string { return kindNames.String(k) }

// KindNames lists the kind names in index order: the kind label values of
// consentgate_anonymise_removed_total.
func KindNames() []string { return kindNames.List() }

// URLRole says which URL of a hit a KindURL value is: the referrer is judged against the
// page (a cross-site referrer keeps only its origin).
type URLRole uint8

const (
	RolePage     URLRole = iota // the page the hit is about (dl, url, page_location)
	RoleReferrer                // the page before it (dr, urlref, page_referrer)
	RoleLink                    // another URL the site shows: outlinks, downloads, content targets
)

// Value declares the kind of an allow-listed value and its bounds. Build one with the
// constructors below; CheckAllowList refuses one that cannot be satisfied.
type Value struct {
	Kind Kind
	// Enum lists the values KindEnum accepts, compared byte for byte. A JSON boolean
	// or number is compared by its literal ("true", "1").
	Enum []string
	// Max bounds a number's length (sign and point included), a token's length and a
	// text's length in bytes (text is cut, not removed); for KindID it cuts the hash to
	// Max hex characters (0: the whole hash).
	Max int
	// Decimal lets a KindNumber have a sign and a fraction ("-12.50").
	Decimal bool
	// Chars are the bytes a KindToken may hold.
	Chars Charset
	// Name marks a KindToken the site makes up, such as an event name. Like every
	// token that is not Opaque, it is refused when it looks like an identifier (a long
	// digit run, a high-entropy token, an IP address, a UUID, a phone number).
	Name bool
	// Opaque marks the vendor's own IDs (tag, pixel, property IDs, conversion labels,
	// API secrets): random-looking by nature, so only the charset, the length and "not
	// an IP address" are checked. PRIVACY.md lists them as a bounded channel.
	Opaque bool
	// Digits lets a token that is all digits (up to 14: an EAN/GTIN product number)
	// through the identifier check that would take it for a long digit run.
	Digits bool
	// Role is a KindURL's place in the hit.
	Role URLRole
	// GUID writes a KindID's hash as a GUID (8-4-4-4-12), for vendors that expect one.
	GUID bool
}

// Enum accepts one of values.
func Enum(values ...string) Value { return Value{Kind: KindEnum, Enum: values} }

// Int accepts an unsigned integer of at most max digits.
func Int(max int) Value { return Value{Kind: KindNumber, Max: max} }

// Dec accepts a decimal ("-12.50", "3") of at most max bytes.
func Dec(max int) Value { return Value{Kind: KindNumber, Max: max, Decimal: true} }

// Token accepts up to max bytes from chars, a charset spec such as "A-Za-z0-9_-",
// that do not look like an identifier.
func Token(chars string, max int) Value {
	return Value{Kind: KindToken, Chars: MustCharset(chars), Max: max}
}

// VendorID is a Token that is the vendor's own opaque ID (Value.Opaque).
func VendorID(chars string, max int) Value {
	v := Token(chars, max)
	v.Opaque = true
	return v
}

// SKU is a Token that names a product: identifier-shaped values are refused, except a
// number of up to 14 digits (EAN/GTIN).
func SKU(chars string, max int) Value {
	v := Token(chars, max)
	v.Digits = true
	return v
}

// Name is a Token the site makes up (an event name) that must not look like an
// identifier.
func Name(chars string, max int) Value {
	v := Token(chars, max)
	v.Name = true
	return v
}

// Text is free text kept scrubbed (or dropped, anonymise.free_text), cut to max bytes.
func Text(max int) Value { return Value{Kind: KindText, Max: max} }

// ShortID is an identifier hashed and cut to n hex characters, for vendors that expect a
// short ID (Matomo's six-character page view ID).
func ShortID(n int) Value { return Value{Kind: KindID, Max: n} }

var (
	// ID is an identifier replaced by the daily salted hash.
	ID = Value{Kind: KindID}
	// GUIDID is an identifier replaced by the daily salted hash written as a GUID.
	GUIDID = Value{Kind: KindID, GUID: true}
	// Lang is a language tag kept as its primary subtag.
	Lang = Value{Kind: KindLanguage}
	// Screen is a screen size ("1920x1080" or one dimension) rounded down to a ladder.
	Screen = Value{Kind: KindScreen}
	// Currency is an ISO 4217 code.
	Currency = Value{Kind: KindCurrency}
	// PageURL is the URL of the page.
	PageURL = Value{Kind: KindURL, Role: RolePage}
	// Referrer is the URL of the previous page: a cross-site one keeps its origin only.
	Referrer = Value{Kind: KindURL, Role: RoleReferrer}
	// LinkURL is another URL the site shows (outlink, download, content target).
	LinkURL = Value{Kind: KindURL, Role: RoleLink}
)

// extensionValue is the kind of a name an operator adds with anonymise.allow: the
// config says nothing of its shape, so it is free text, scrubbed like a title (GA4's
// limit for an event parameter value is 100 characters).
var extensionValue = Text(100)

// dropValue marks, in the compiled name table, a name that the rewrite sets itself (Set
// or the IP parameter): the hit's own value is always removed, whatever a prefix says.
var dropValue = &Value{Kind: KindEnum}

// check reports a Value that cannot be satisfied or is out of bounds.
func (v *Value) check() error {
	switch v.Kind {
	case KindEnum:
		if len(v.Enum) == 0 {
			return errors.New("enum with no values")
		}
	case KindNumber:
		if v.Max < 1 || v.Max > 40 {
			return fmt.Errorf("number length %d out of 1..40", v.Max)
		}
	case KindToken:
		if v.Max < 1 || v.Max > 512 {
			return fmt.Errorf("token length %d out of 1..512", v.Max)
		}
		if v.Chars.empty() {
			return errors.New("token with no charset")
		}
	case KindText:
		if v.Max < 1 || v.Max > 4096 {
			return fmt.Errorf("text length %d out of 1..4096", v.Max)
		}
	case KindID:
		if v.Max < 0 || v.Max > HashLen || v.GUID && v.Max != 0 {
			return fmt.Errorf("id length %d out of 0..%d (and not with GUID)", v.Max, HashLen)
		}
	case KindLanguage, KindScreen, KindCurrency:
	case KindURL:
		if v.Role > RoleLink {
			return fmt.Errorf("unknown URL role %d", v.Role)
		}
	default:
		return fmt.Errorf("unknown kind %d", v.Kind)
	}
	return nil
}

// Charset is a set of bytes.
type Charset [4]uint64

// MustCharset parses a spec of bytes and ranges ("A-Za-z0-9_-": a '-' that ends the
// spec is itself); it panics on a bad spec, which only the catalogue writes.
func MustCharset(spec string) Charset {
	var c Charset
	for i := 0; i < len(spec); i++ {
		lo, hi := spec[i], spec[i]
		if i+2 < len(spec) && spec[i+1] == '-' {
			hi = spec[i+2]
			i += 2
		}
		if hi < lo {
			panic("rules: bad charset " + spec)
		}
		for b := int(lo); b <= int(hi); b++ {
			c[b>>6] |= 1 << (b & 63)
		}
	}
	return c
}

func (c *Charset) has(b byte) bool { return c[b>>6]&(1<<(b&63)) != 0 }
func (c *Charset) empty() bool     { return c[0]|c[1]|c[2]|c[3] == 0 }

// verdict is what happens to one value.
type verdict uint8

const (
	keep   verdict = iota // kept, in the form written
	misfit                // does not fit its kind: removed and counted
	omit                  // removed by policy (free text under anonymise.free_text: drop), not counted
)

// checkNumber reports whether v is an integer (or, with decimal, a decimal) of at most
// max bytes. No exponent, no '+', no spaces: the vendors document plain numbers, and
// every extra form is room to smuggle.
func checkNumber(v []byte, max int, decimal bool) bool {
	if len(v) == 0 || len(v) > max {
		return false
	}
	i := 0
	if decimal && v[0] == '-' {
		i++
	}
	digits, point := 0, false
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && decimal && !point && digits > 0:
			point, digits = true, 0
		default:
			return false
		}
	}
	return digits > 0
}

// tokenOK checks a KindToken value against its spec: charset and length, then its
// shape (see Value.Opaque and Value.Digits).
func tokenOK(spec *Value, v []byte) bool {
	switch {
	case !checkToken(v, &spec.Chars, spec.Max):
		return false
	case spec.Opaque:
		return !holdsIP(v)
	case spec.Digits && len(v) <= 14 && allDigits(v):
		return true
	}
	return !looksIdentifying(v)
}

func allDigits(v []byte) bool {
	for _, c := range v {
		if !isDigitByte(c) {
			return false
		}
	}
	return len(v) > 0
}

func checkToken(v []byte, cs *Charset, max int) bool {
	if len(v) == 0 || len(v) > max {
		return false
	}
	for _, c := range v {
		if !cs.has(c) {
			return false
		}
	}
	return true
}

func checkEnum(v []byte, values []string) bool {
	for _, e := range values {
		if string(v) == e {
			return true
		}
	}
	return false
}

// appendLanguage appends the primary subtag of a BCP 47 tag or of the first tag of an
// Accept-Language list ("en-US,en;q=0.9" → "en"), lower-cased. The region, script and
// the rest of the list narrow the visitor down and are dropped.
func appendLanguage(dst, v []byte) ([]byte, bool) {
	n := 0
	for n < len(v) && isASCIILetter(v[n]) {
		n++
	}
	if n < 2 || n > 3 {
		return dst, false
	}
	if n < len(v) {
		switch v[n] {
		case '-', '_', ',', ';':
		default:
			return dst, false
		}
	}
	for _, c := range v[:n] {
		dst = append(dst, c|0x20)
	}
	return dst, true
}

// appendCurrency appends an ISO 4217 code in capitals.
func appendCurrency(dst, v []byte) ([]byte, bool) {
	if len(v) != 3 || !isASCIILetter(v[0]) || !isASCIILetter(v[1]) || !isASCIILetter(v[2]) {
		return dst, false
	}
	return append(dst, v[0]&^0x20, v[1]&^0x20, v[2]&^0x20), true
}

func isASCIILetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// screenLadder is what a screen dimension is rounded down to. A raw width × height pair
// (with the device pixel ratio behind it) narrows a visitor among a few hundred device
// models; the ladder keeps what a report needs (phone, tablet, laptop, desktop, 4K) and
// the common desktop sizes exactly, so most desktops are unchanged while the long tail
// of phone and tablet sizes collapses onto a few steps.
var screenLadder = [...]int{320, 360, 480, 600, 720, 768, 900, 1024, 1080, 1280, 1440, 1600, 1920, 2160, 2560, 3840}

func bucketScreen(n int) int {
	b := screenLadder[0]
	for _, s := range screenLadder {
		if s > n {
			break
		}
		b = s
	}
	return b
}

// parseDim reads 1 to 5 digits; 0 is not a screen.
func parseDim(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// appendScreen appends "WxH" or a single dimension, each rounded down to the ladder.
func appendScreen(dst, v []byte) ([]byte, bool) {
	if i := bytes.IndexAny(v, "xX"); i >= 0 {
		w, ok1 := parseDim(v[:i])
		h, ok2 := parseDim(v[i+1:])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = strconv.AppendInt(dst, int64(bucketScreen(w)), 10)
		dst = append(dst, 'x')
		return strconv.AppendInt(dst, int64(bucketScreen(h)), 10), true
	}
	n, ok := parseDim(v)
	if !ok {
		return dst, false
	}
	return strconv.AppendInt(dst, int64(bucketScreen(n)), 10), true
}

// maxIDLen bounds a value hashed as an identifier: every documented client ID is far
// shorter, and hashing an unbounded value would let a hit buy CPU.
const maxIDLen = 512

// appendID appends the daily salted hash of v as spec says (whole, cut, or as a GUID).
// v may live in dst's spare capacity (AppendHash allows it). key is the hit's HashKey.
func (a *Anonymiser) appendID(dst []byte, spec *Value, v []byte, key *HashKey) ([]byte, bool) {
	if len(v) == 0 {
		return dst, true // no ID: nothing to protect, and "no ID" keeps its meaning
	}
	if len(v) > maxIDLen || key == nil {
		return dst, false
	}
	start := len(dst)
	dst = key.AppendHash(dst, v)
	if len(dst)-start != HashLen {
		// The zero key (no property, no Key call) writes nothing: remove the ID rather
		// than send it unhashed or cut a hash that is not there.
		return dst[:start], false
	}
	switch {
	case spec.GUID:
		var h [HashLen]byte
		copy(h[:], dst[start:])
		dst = dst[:start]
		for i, c := range h {
			if i == 8 || i == 12 || i == 16 || i == 20 {
				dst = append(dst, '-')
			}
			dst = append(dst, c)
		}
	case spec.Max > 0:
		dst = dst[:start+spec.Max]
	}
	return dst, true
}
