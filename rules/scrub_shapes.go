package rules

import (
	"bytes"
	"unicode/utf8"
)

// The shapes the free-text scrubber replaces that are not numbers: e-mail addresses,
// click IDs written as key=value, UUIDs and tokens.

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
		if n := ipv4At(s[i:]); n > 0 {
			dst = w.placeholder(dst, phIP)
			w.fragment = true
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
