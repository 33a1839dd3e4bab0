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
	"strings"
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

// fold maps the look-alikes of the characters the scrubber looks for onto them.
func fold(r rune) rune {
	switch {
	case r < 0x80:
		return r
	case 0xFF01 <= r && r <= 0xFF5E: // full-width ASCII
		return r - 0xFEE0
	case r == 0xFE6B, r == 0xE0040: // small commercial at, tag at
		return '@'
	case r == 0x3002, r == 0xFF61, r == 0xFE52, r == 0x2024: // ideographic, halfwidth, small, one-dot leader
		return '.'
	case 0x2010 <= r && r <= 0x2015, r == 0x2212, r == 0xFE63: // hyphens, dashes, minus
		return '-'
	case r == 0x00A0, r == 0x202F, r == 0x2007:
		return ' '
	}
	return r
}

// invisible reports characters that render as nothing: format characters (zero-width
// space and joiners, bidi controls, tags), variation selectors and C0/C1 controls other
// than white space. They are dropped: they can spell out an identifier unseen.
func invisible(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20 || 0x7F <= r && r < 0xA0:
		return true
	case 0xFE00 <= r && r <= 0xFE0F, 0xE0100 <= r && r <= 0xE01EF:
		return true
	case r == 0x00AD: // soft hyphen
		return true
	}
	return r >= 0x80 && unicode.Is(unicode.Cf, r)
}

// isDigitRune: a digit of any script, and the other numerals a digit can be written
// with (superscripts, circled digits): all of them spell a number to a reader.
func isDigitRune(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsNumber(r)
}

// isMark: a combining mark. Inside a run of digits it is skipped over, not a break:
// "1̸2̸3̸4̸5̸" is still five digits.
func isMark(r rune) bool {
	return r >= 0x300 && (unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r))
}

func isAlnumRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && asciiClass[r]&clsAlnum != 0
	}
	return unicode.IsNumber(r) || unicode.IsLetter(r) || unicode.IsMark(r)
}

// wordRune: what a word (an e-mail address, a token, a slug) is made of.
func wordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && asciiClass[r]&clsWord != 0
	}
	return isAlnumRune(r)
}

// asciiClass classifies the ASCII bytes for isAlnumRune and wordRune.
var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for b := range c {
		switch {
		case '0' <= b && b <= '9', 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z':
			c[b] = clsAlnum | clsWord
		case strings.IndexByte(".-_+@%~=/", byte(b)) >= 0:
			c[b] = clsWord
		}
	}
	return c
}()

const (
	clsAlnum = 1 << iota
	clsWord
)

// decodeFolded decodes the rune at s, folded; invisible runes are reported with n > 0
// and r < 0 so callers skip them.
func decodeFolded(s []byte) (r rune, n int) {
	if c := s[0]; c < utf8.RuneSelf { // the common case, without a table lookup
		if c < ' ' && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return -1, 1
		}
		return rune(c), 1
	}
	r, n = utf8.DecodeRune(s)
	if r == utf8.RuneError && n <= 1 {
		return utf8.RuneError, 1
	}
	if invisible(r) {
		return -1, n
	}
	return fold(r), n
}

// wordLen is the byte length of the word at the start of s (invisible runes inside a
// word belong to it, so a zero-width space cannot split an e-mail address in two).
func wordLen(s []byte) int {
	i := 0
	for i < len(s) {
		r, n := decodeFolded(s[i:])
		if r >= 0 && (r == utf8.RuneError || !wordRune(r)) {
			break
		}
		i += n
	}
	return i
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

// isClickID reports a click ID parameter name (ClickIDParams), in any case.
func isClickID(name []byte) bool {
	for _, c := range ClickIDParams {
		if bytes.EqualFold(name, []byte(c)) {
			return true
		}
	}
	return false
}

// plainWord reports a word that cannot hold anything the scrubber replaces: shorter
// than any token or UUID, ASCII, without digits, '@' or '%'. Most words of a title.
func plainWord(s []byte) bool {
	if len(s) >= 12 {
		return false
	}
	for _, c := range s {
		if c >= utf8.RuneSelf || '0' <= c && c <= '9' || c == '@' || c == '%' {
			return false
		}
	}
	return true
}

// isEmail: an '@' (or a look-alike, or a literal "%40") with a letter or digit on both
// sides,
// or a word that starts with '@' and goes on with a domain ("@doe.com": what is left
// when the local part was split off, by a space or a byte the scrubber dropped); a
// handle without a dot ("@consentgate") is not an address.
func isEmail(s []byte) bool {
	if r, n := decodeFolded(s); r == '@' && n < len(s) {
		if dot := bytes.IndexByte(s[n:], '.'); dot > 0 && n+dot+1 < len(s) {
			return true
		}
	}
	before := false
	for i := 0; i < len(s); {
		r, n := decodeFolded(s[i:])
		at := r == '@'
		if r == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0' {
			at, n = true, 3
		}
		if at && before && hasAlnum(s[i+n:]) {
			return true
		}
		if r >= 0 && isAlnumRune(r) {
			before = true
		}
		i += n
	}
	return false
}

func hasAlnum(s []byte) bool {
	for i := 0; i < len(s); {
		r, n := decodeFolded(s[i:])
		if r >= 0 && isAlnumRune(r) {
			return true
		}
		i += n
	}
	return false
}

// parts walks the alphanumeric parts of a word and replaces UUIDs, digit runs, long
// hex runs and token-like parts.
func (w *textWriter) parts(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if n := uuidAt(s[i:]); n > 0 {
			dst = w.placeholder(dst, phUUID)
			w.fragment = true
			i += n
			continue
		}
		r, n := decodeFolded(s[i:])
		if r < 0 {
			i += n
			continue
		}
		if !isAlnumRune(r) {
			dst = w.bytes(dst, s[i:i+n])
			i += n
			continue
		}
		j := i
		for j < len(s) {
			r, n := decodeFolded(s[j:])
			if r >= 0 && !isAlnumRune(r) {
				break
			}
			j += n
		}
		part := s[i:j]
		if hexToken(part) || len(part) >= 16 && tokenLike(part) {
			dst = w.placeholder(dst, phToken)
			w.fragment = true
		} else {
			dst = w.digitRuns(dst, part)
		}
		i = j
	}
	return dst
}

// digitRuns writes an alphanumeric part with every run of minDigitRun or more digits
// (of any script) replaced by ":id".
func (w *textWriter) digitRuns(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		r, n := decodeFolded(s[i:])
		if r < 0 {
			i += n
			continue
		}
		if !isDigitRune(r) {
			dst = w.visible(dst, s[i:i+n])
			i += n
			continue
		}
		j, digits := i, 0
		for j < len(s) {
			r, n := decodeFolded(s[j:])
			if r >= 0 && !isDigitRune(r) && !isMark(r) {
				break
			}
			if r >= 0 && !isMark(r) {
				digits++
			}
			j += n
		}
		if digits >= minDigitRun {
			dst = w.placeholder(dst, phID)
			w.fragment = true
		} else {
			dst = w.visible(dst, s[i:j])
		}
		i = j
	}
	return dst
}

// uuidAt reports the length of an 8-4-4-4-12 hex UUID at the start of s.
func uuidAt(s []byte) int {
	if len(s) < 36 {
		return 0
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return 0
			}
		default:
			if !isHex(c) {
				return 0
			}
		}
	}
	if len(s) > 36 && isHex(s[36]) {
		return 0
	}
	return 36
}

// hexToken: twelve or more hex digits mixing digits and letters, the shape of hashes,
// session IDs and Matomo-style visitor IDs (a run of letters alone is a word, a run of
// digits alone is handled as digits).
func hexToken(s []byte) bool {
	if len(s) < 12 {
		return false
	}
	digit, letter := false, false
	for _, c := range s {
		switch {
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}

// tokenLike reports a run that reads as random: at least 16 ASCII alphanumerics (the
// separators of base64 and base64url allowed between them) whose character class
// (digit, lower, upper) changes at least once every four characters. Words, slugs and
// CamelCase names change class rarely; random tokens about every other character.
func tokenLike(s []byte) bool {
	n, changes := 0, 0
	var prev byte
	digit, letter, upper, lower := false, false, false, false
	for _, c := range s {
		var class byte
		switch {
		case '0' <= c && c <= '9':
			class, digit = 1, true
		case 'a' <= c && c <= 'z':
			class, letter, lower = 2, true, true
		case 'A' <= c && c <= 'Z':
			class, letter, upper = 3, true, true
		case c == '-' || c == '_' || c == '+' || c == '/' || c == '=' || c == '.' || c == '~':
			continue
		default:
			return false
		}
		if n > 0 && class != prev {
			changes++
		}
		prev = class
		n++
	}
	if n >= 12 && hexOnly(s) && digit && letter {
		return true
	}
	return n >= 16 && (digit && letter || upper && lower) && changes*4 >= n
}

func hexOnly(s []byte) bool {
	for _, c := range s {
		if !isHex(c) && c != '-' {
			return false
		}
	}
	return true
}

// numericRun looks at a run of digits joined by the separators phone numbers, card
// numbers and addresses are written with (space, '-', '.', '/', parentheses), optionally
// after '+'. It writes the run, whole as a placeholder or group by group, and returns
// its length; 0 means s does not start one (the caller reads a word instead).
func (w *textWriter) numericRun(dst, s []byte) ([]byte, int) {
	var (
		luhn                                       [19]byte
		i, end, digits, groups, group, first, last int
		maxGroup                                   int
		prevEnd                                    int  // where the run ends without its last group
		sep                                        byte // the first separator between groups
		seps                                       [2]byte
		lens                                       [2]int
		plus                                       bool
		luhnOK, dots                               = true, true
	)
	if r, n := decodeFolded(s); r == '+' {
		plus, i = true, n
	}
	endGroup := func() {
		if groups < len(lens) {
			lens[groups] = group
		}
		if groups == 0 {
			first = group
		}
		last, maxGroup, group = group, max(maxGroup, group), 0
		groups++
	}
	for i < len(s) {
		r, n := decodeFolded(s[i:])
		if r < 0 {
			i += n
			continue
		}
		if group > 0 && isMark(r) {
			i += n
			end = i
			continue
		}
		if isDigitRune(r) {
			if r <= '9' && digits < len(luhn) {
				luhn[digits] = byte(r - '0')
			} else {
				luhnOK = false
			}
			digits++
			group++
			i += n
			end = i
			continue
		}
		if group == 0 {
			break
		}
		// A separator: a run of white space, one of '-', '.', '/', and parentheses,
		// up to three of these ("(555) 123", "555 - 1234"), one of "-./" at most.
		j, this, tokens, punct := i, byte(0), 0, false
		for j < len(s) && tokens < 3 {
			r, n := decodeFolded(s[j:])
			switch {
			case r >= 0 && unicode.IsSpace(r):
				for j < len(s) {
					if r, n := decodeFolded(s[j:]); r < 0 || unicode.IsSpace(r) {
						j += n
						continue
					}
					break
				}
				if this == 0 {
					this = ' '
				}
				tokens++
				continue
			case (r == '-' || r == '.' || r == '/') && !punct:
				this, punct = byte(r), true
			case r == '(' || r == ')':
			default:
				tokens = 3 // not a separator: stop
				continue
			}
			j += n
			tokens++
		}
		if j == i || j >= len(s) {
			break
		}
		if nr, _ := decodeFolded(s[j:]); !isDigitRune(nr) {
			break
		}
		// A date ends the run at the space after it: "2024-04-05 10:30" is a date and a
		// time, not a phone number.
		if groups == 2 && this == ' ' && !plus && isDate(lens[0], lens[1], group, seps[0], seps[1]) {
			break
		}
		if groups < len(seps) {
			seps[groups] = this
		}
		prevEnd = end
		endGroup()
		dots = dots && this == '.'
		if sep == 0 {
			sep = this
		}
		i = j
	}
	if digits == 0 {
		return dst, 0
	}
	endGroup()
	// The run must end where a word would: "12345abc" and "12345@x.example" are words.
	// If it does not, the run without its last group may ("+44 20 7946 0958x" holds a
	// phone number, and so does what is left of it once the word after it is replaced).
	if end < len(s) {
		r, n := decodeFolded(s[end:])
		word := r >= 0 && r != '.' && r != '-' && wordRune(r)
		if !word && (r == '.' || r == '-') && end+n < len(s) {
			r2, _ := decodeFolded(s[end+n:])
			word = r2 >= 0 && isAlnumRune(r2)
		}
		if word {
			if prevEnd > 0 && prevEnd < end {
				return w.numericRun(dst, s[:prevEnd])
			}
			return dst, 0
		}
	}
	run := s[:end]
	switch {
	case luhnOK && digits >= 13 && digits <= 19 && luhnValid(luhn[:digits]):
		dst = w.placeholder(dst, phCard)
	case groups == 4 && dots && maxGroup <= 3 && !plus:
		dst = w.placeholder(dst, phIP)
	case groups > 1 && digits >= 9, plus && digits >= 7,
		groups == 2 && digits == 7 && first == 3 && last == 4 && sep == '-':
		dst = w.placeholder(dst, phPhone)
	case maxGroup < minDigitRun:
		dst = w.visible(dst, run)
	default:
		dst = w.digitRuns(dst, run)
	}
	return dst, end
}

// isDate reports three groups of digits written as a date: 2024-04-05, 05.04.2024,
// 5/4/24 (one separator throughout).
func isDate(a, b, c int, s1, s2 byte) bool {
	if s1 != s2 || s1 != '-' && s1 != '.' && s1 != '/' || b > 2 || b == 0 {
		return false
	}
	return a == 4 && c <= 2 || a <= 2 && (c == 4 || c == 2)
}

func luhnValid(d []byte) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// matchIBAN reports the length of an IBAN at the start of s: two letters, two check
// digits and 11 to 30 letters or digits, compact or in groups of four (separated by '-'
// or white space, the last group shorter), whose ISO 13616 checksum (mod 97) holds. In
// the grouped form the IBAN may end after any group, so each is tried, longest first.
func matchIBAN(s []byte) int {
	if len(s) < 15 || !isASCIILetter(s[0]) || !isASCIILetter(s[1]) || !isDigitByte(s[2]) || !isDigitByte(s[3]) {
		return 0
	}
	var chars [34]byte
	n, i := 0, 0
	dash, spaced := s[4] == '-', spaceRun(s[4:]) > 0
	if !dash && !spaced { // compact: the whole run of letters and digits
		for i < len(s) && isAlnumByte(s[i]) {
			if n == len(chars) {
				return 0
			}
			chars[n] = s[i]
			n, i = n+1, i+1
		}
		if n >= 15 && ibanValid(chars[:n]) {
			return i
		}
		return 0
	}
	type cut struct{ n, end int }
	var cuts [9]cut
	k := 0
	for k < len(cuts) {
		g := 0
		for i < len(s) && g < 4 && isAlnumByte(s[i]) && n < len(chars) {
			chars[n] = s[i]
			n, i, g = n+1, i+1, g+1
		}
		if g == 0 {
			break
		}
		if i < len(s) && isAlnumByte(s[i]) { // a group longer than four: not this layout
			break
		}
		cuts[k] = cut{n, i}
		k++
		if g < 4 {
			break
		}
		sep := 0
		switch {
		case dash && i < len(s) && s[i] == '-':
			sep = 1
		case spaced:
			sep = spaceRun(s[i:])
		}
		if sep == 0 || i+sep >= len(s) || !isAlnumByte(s[i+sep]) {
			break
		}
		i += sep
	}
	for k--; k >= 0; k-- {
		if c := cuts[k]; c.n >= 15 && ibanValid(chars[:c.n]) {
			return c.end
		}
	}
	return 0
}

// spaceRun is the byte length of the white space at the start of s.
func spaceRun(s []byte) int {
	i := 0
	for i < len(s) {
		r, n := decodeFolded(s[i:])
		if r < 0 || !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}

func ibanValid(c []byte) bool {
	rem := 0
	add := func(b byte) {
		switch {
		case isDigitByte(b):
			rem = (rem*10 + int(b-'0')) % 97
		default:
			v := int(b|0x20-'a') + 10
			rem = (rem*100 + v) % 97
		}
	}
	for _, b := range c[4:] {
		add(b)
	}
	for _, b := range c[:4] {
		add(b)
	}
	return rem == 1
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }
func isAlnumByte(c byte) bool { return isDigitByte(c) || isASCIILetter(c) }

// maxDecodeRounds bounds decodeFix: an identifier encoded four times over is as
// readable to whoever stores it as one encoded once, and no honest value needs more.
const maxDecodeRounds = 4

// decodeFix appends s to dst decoded until nothing is left to decode: percent-escapes
// decoded and invisible runes removed, over and over, since either can uncover the
// other ("%25%E2%80%8B40" is "%40" once the zero-width space goes, and "@" then). So
// "jane%2540doe.com" is seen as "jane@doe.com". A '%' that starts no valid escape stays
// ("100% cotton"); '+' stays (it was decoded once already, where it meant a space).
// ok is false when escapes are left after maxDecodeRounds: the value is hiding
// something, and goes. The result is dst[len(dst):].
func decodeFix(dst, s []byte) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, s...)
	for round := 0; ; {
		cur := dst[start:]
		if hasInvisible(cur) { // in place: the output is never longer than the input
			o := 0
			for i := 0; i < len(cur); {
				n, drop := dropAt(cur[i:])
				if !drop {
					o += copy(cur[o:], cur[i:i+n])
				}
				i += n
			}
			dst = dst[:start+o]
			continue
		}
		if !hasEscape(cur) {
			return dst, true
		}
		if round == maxDecodeRounds {
			return dst, false
		}
		round++
		o := 0
		for i := 0; i < len(cur); i++ {
			c := cur[i]
			if c == '%' && i+2 < len(cur) && isHex(cur[i+1]) && isHex(cur[i+2]) {
				c = unhex(cur[i+1])<<4 | unhex(cur[i+2])
				i += 2
			}
			cur[o] = c
			o++
		}
		dst = dst[:start+o]
	}
}

func hasEscape(s []byte) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

// scrubCut appends s scrubbed and cut to at most max bytes. Cutting can leave a piece
// of a word that reads differently on its own (the tail of a token, shorter than the
// run it was part of), so the cut text is scrubbed again until a pass changes nothing
// and it fits: what scrubCut writes, scrubbed again, stays the same.
func scrubCut(dst, s []byte, max int) ([]byte, bool) {
	start := len(dst)
	dst, changed := scrubText(dst, s, escNone)
	for round := 0; round < maxScrubPasses && len(dst)-start > max; round++ {
		cut := cutText(dst[start:], max)
		mid := len(dst)
		var c bool
		dst, c = scrubText(dst, cut, escNone)
		changed = changed || c
		n := copy(dst[start:], dst[mid:])
		dst = dst[:start+n]
	}
	if len(dst)-start > max {
		dst = dst[:start+len(cutText(dst[start:], max))]
	}
	return dst, changed
}

// cutText cuts s to at most max bytes without splitting a UTF-8 sequence.
func cutText(s []byte, max int) []byte {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRune(s[i:]) {
				s = s[:i]
			}
			break
		}
	}
	return bytes.TrimRight(s, " ")
}
