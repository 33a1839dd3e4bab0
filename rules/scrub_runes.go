package rules

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Character classes of the free-text scrubber: folding look-alike and full-width forms,
// invisible and combining runes, and what counts as a word.

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
