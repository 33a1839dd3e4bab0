// Free-text scrubbing: titles, event labels, campaign values and URL path segments are
// written by the site, but they carry what the visitor typed or was sent: an order
// confirmation titled with an e-mail address, a reset link's token, a profile's numeric
// ID, a phone number in a search. The scrubber replaces each such shape by a fixed
// placeholder (":email", ":phone", ":card", ":iban", ":ip", ":uuid", ":id", ":token") and
// keeps the rest, so the vendor still sees which page or campaign it was.
//
// It runs on decoded text (decodeFix undoes percent-encoding, doubled or not) and folds
// the look-alikes that would otherwise walk past it: full-width letters, digits and '@',
// digits of any script, invisible format characters (which it also drops, since a run of
// zero-width characters can spell an identifier no reader sees), and runs of white space
// (collapsed to one, for the same reason). Bytes that are not UTF-8 are kept, as
// delimiters. It allocates nothing beyond what dst grows by.

package rules

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// escMode says how scrubbed text is written.
type escMode uint8

const (
	escNone  escMode = iota // as is (the caller encodes)
	escPath                 // a URL path segment: pchar bytes kept, the rest percent-encoded
	escQuery                // a URL query value: unreserved bytes and ':' kept
)

// Placeholders. Every one starts with ':' so that no scrubbed value can be mistaken for
// the original and the vendor's reports group them.
const (
	phEmail = ":email"
	phPhone = ":phone"
	phCard  = ":card"
	phIBAN  = ":iban"
	phIP    = ":ip"
	phUUID  = ":uuid"
	phID    = ":id"
	phToken = ":token"
)

// minDigitRun is the shortest run of digits replaced by ":id". Four digits and fewer
// are years, quantities, sizes and short codes that reports need; five and more are
// order numbers, customer numbers and postcodes.
const minDigitRun = 5

// textWriter is the scrubber's state while it writes. It holds no pointer (the output
// slice is passed and returned instead): a slice stored back through a pointer would
// send every caller's stack buffer to the heap.
type textWriter struct {
	esc     escMode
	changed bool
	// pending is a space (any run of white space) not yet written: it is written
	// before the next character if something came before it, so runs collapse to one
	// space and leading and trailing space goes.
	pending, wrote bool
	// fragment: a placeholder replaced part of a word, so what is left of the word
	// needs another pass (scrubText).
	fragment bool
}

func (w *textWriter) flush(dst []byte) []byte {
	if w.pending && w.wrote {
		dst = w.raw(dst, ' ')
	}
	w.pending = false
	return dst
}

func (w *textWriter) placeholder(dst []byte, p string) []byte {
	dst = w.flush(dst)
	w.changed, w.wrote = true, true
	return append(dst, p...)
}

func (w *textWriter) bytes(dst, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	if w.esc == escNone {
		dst = w.flush(dst)
		w.wrote = true
		return append(dst, b...)
	}
	for _, c := range b {
		dst = w.byte(dst, c)
	}
	return dst
}

// visible writes s without its invisible runes, white space collapsed as everywhere
// else (a numeric run can hold spaces).
func (w *textWriter) visible(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		r, n := decodeFolded(s[i:])
		switch {
		case r < 0:
		case unicode.IsSpace(r):
			w.pending = true
		default:
			dst = w.bytes(dst, s[i:i+n])
		}
		i += n
	}
	return dst
}

func (w *textWriter) byte(dst []byte, c byte) []byte {
	dst = w.flush(dst)
	w.wrote = true
	return w.raw(dst, c)
}

func (w *textWriter) raw(dst []byte, c byte) []byte {
	switch w.esc {
	case escPath:
		if pathSafe(c) {
			return append(dst, c)
		}
	case escQuery:
		if !shouldEscape(c) || c == ':' {
			return append(dst, c)
		}
	default:
		return append(dst, c)
	}
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// pathSafe is RFC 3986 pchar minus '%' (re-encoded), ';' (path parameters carry
// session IDs and are dropped) and '&' (kept out of anything that reads as a query).
func pathSafe(c byte) bool {
	if !shouldEscape(c) {
		return true
	}
	switch c {
	case ':', '@', '!', '$', '\'', '(', ')', '*', '+', ',', '=':
		return true
	}
	return false
}

// maxScrubPasses bounds the passes of scrubText (see there); in practice the second
// pass finds nothing.
const maxScrubPasses = 8

// scrubText appends s to dst with identifiers replaced by placeholders, written as esc
// says. changed reports whether a placeholder was written.
//
// Invisible characters go first, so that none can split what the scrubber looks for.
// Then it scrubs in passes until a pass replaces nothing: a placeholder splits the word
// it was cut from, and what is left of the word is judged again on its own (a token
// that was hidden behind a digit run is a token once the run is ":id"). So scrubbing
// what scrubText wrote changes nothing. The passes run after dst's end, in escNone, and
// the result is moved back and escaped.
func scrubText(dst, s []byte, esc escMode) ([]byte, bool) {
	start := len(dst)
	// Taking an invisible rune out can join the bytes around it into a new one, so
	// that repeats until none is left; every round is shorter.
	for hasInvisible(s) {
		from := len(dst)
		for i := 0; i < len(s); {
			n, drop := dropAt(s[i:])
			if !drop {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		}
		s = dst[from:]
	}
	changed := false
	for pass := 0; pass < maxScrubPasses; pass++ {
		from := len(dst)
		var c bool
		var frag bool
		dst, c, frag = scrubPass(dst, s)
		s = dst[from:]
		changed = changed || c
		if !frag {
			break
		}
	}
	if esc != escNone {
		from := len(dst)
		w := textWriter{esc: esc}
		for _, c := range s {
			dst = w.raw(dst, c)
		}
		s = dst[from:]
	}
	n := copy(dst[start:], s)
	return dst[:start+n], changed
}

// hasInvisible reports whether s holds a rune invisible drops.
func hasInvisible(s []byte) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < ' ' && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		n, drop := dropAt(s[i:])
		if drop {
			return true
		}
		i += n
	}
	return false
}

// dropAt reports the length of the rune at the start of s and whether the scrubber
// drops it: an invisible rune, or a byte that is not UTF-8. Such bytes would reach the
// vendor as U+FFFD or as themselves, and between two halves of an address ("jane\xa0@")
// they would otherwise hide it; text in a legacy encoding loses its accented letters.
func dropAt(s []byte) (int, bool) {
	r, n := utf8.DecodeRune(s)
	if r == utf8.RuneError && n <= 1 {
		return 1, true
	}
	return n, invisible(r)
}

// scrubPass is one pass of scrubText over text without invisible runes. A placeholder
// a previous pass wrote is kept as it is, and is a boundary.
func scrubPass(dst, s []byte) ([]byte, bool, bool) {
	w := textWriter{}
	for i := 0; i < len(s); {
		if s[i] == ':' {
			if n := placeholderAt(s[i:]); n > 0 {
				dst = w.bytes(dst, s[i:i+n])
				i += n
				continue
			}
		}
		if isHex(s[i]) || s[i] == ':' {
			if n := ipAt(s[i:]); n > 0 {
				dst = w.placeholder(dst, phIP)
				i += n
				continue
			}
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			if r, size = utf8.DecodeRune(s[i:]); r == utf8.RuneError && size <= 1 {
				dst = w.byte(dst, s[i])
				i++
				continue
			}
		}
		switch f := fold(r); {
		case f == ' ' || f < utf8.RuneSelf && f <= '\r' && f >= '\t' || f >= utf8.RuneSelf && unicode.IsSpace(f):
			w.pending = true
		case wordRune(f):
			if isASCIILetter(byte(f)) {
				if n := matchIBAN(s[i:]); n > 0 {
					dst = w.placeholder(dst, phIBAN)
					i += n
					continue
				}
			}
			if f == '+' || isDigitRune(f) {
				if d, n := w.numericRun(dst, s[i:]); n > 0 {
					dst = d
					i += n
					continue
				}
			}
			n := wordLen(s[i:])
			if i+n < len(s) && s[i+n] == ':' {
				// An IPv6 address glued to the end of a word ("for+2001:db8::1"):
				// ':' ends the word, so the address starts inside it.
				if k, m := ipv6InWord(s[i:], n); m > 0 {
					if k > 0 {
						dst = w.word(dst, s[i:i+k])
					}
					dst = w.placeholder(dst, phIP)
					i += k + m
					continue
				}
			}
			dst = w.word(dst, s[i:i+n])
			i += n
			continue
		default:
			dst = w.bytes(dst, s[i:i+size])
		}
		i += size
	}
	return dst, w.changed, w.fragment
}

// placeholders are the placeholders of this file; none is a prefix of another.
var placeholders = [...]string{phEmail, phPhone, phCard, phIBAN, phIP, phUUID, phToken, phID}

// placeholderAt reports the length of a placeholder at the start of s.
func placeholderAt(s []byte) int {
	for _, p := range placeholders {
		if len(s) >= len(p) && string(s[:len(p)]) == p {
			return len(p)
		}
	}
	return 0
}

// word writes one word, replacing it whole when it is an e-mail address or a token,
// and otherwise the identifier-shaped parts inside it.
func (w *textWriter) word(dst, s []byte) []byte {
	end := len(s)
	for end > 0 && s[end-1] == '.' { // sentence punctuation is not part of an address
		end--
	}
	body, tail := s[:end], s[end:]
	// A leading '=' is what a key=value split (below, or a placeholder in an earlier
	// pass) leaves in front of a value: the value is judged without it.
	for len(body) > 0 && body[0] == '=' {
		dst = w.byte(dst, '=')
		body = body[1:]
	}
	if plainWord(body) {
		dst = w.bytes(dst, body)
		return w.bytes(dst, tail)
	}
	switch {
	case isEmail(body):
		return w.bytes(w.placeholder(dst, phEmail), tail)
	case len(body) == 36 && uuidAt(body) == 36:
		return w.bytes(w.placeholder(dst, phUUID), tail)
	}
	// key=value: each side on its own, so "key=" survives a token after it (a trailing
	// "=" is base64 padding, part of the token). An address was found whole above: a
	// side of the word holds one only if the word does.
	if eq := bytes.IndexByte(body, '='); eq > 0 && eq < len(body)-1 && body[eq+1] != '=' {
		dst = w.word(dst, body[:eq])
		dst = w.byte(dst, '=')
		if isClickID(body[:eq]) { // "gclid=…" in a title or a path segment: a click ID
			dst = w.placeholder(dst, phToken)
		} else {
			dst = w.word(dst, body[eq+1:])
		}
		return w.bytes(dst, tail)
	}
	if tokenLike(body) {
		dst = w.placeholder(dst, phToken)
	} else {
		dst = w.parts(dst, body)
	}
	return w.bytes(dst, tail)
}
