package rules

import (
	"bytes"
	"unicode/utf8"
)

// Percent-decoding a value until it is stable, and cutting scrubbed text to a bound.

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
