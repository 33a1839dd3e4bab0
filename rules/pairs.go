// Query pairs: the allow-list applied to "&"-separated name=value pairs, in a query
// string, a form body or each line of a GA4 sendBeacon body. Names are judged decoded
// and kept values keep their encoding, so that a hit passes through without being
// re-encoded in ways the vendor did not expect.

package rules

import (
	"bytes"
	"errors"
)

var errContentType = errors.New("body content type is not form-encoded")

var amp, eq = []byte("&"), []byte("=")

// filterPairs appends to dst the '&'-separated pairs of src that the allow-list keeps.
// Names are judged decoded ("cd%5Bvalue%5D" is "cd[value]"), each occurrence on its own,
// and keep their encoding (minus bytes that could split them upstream). Each value is
// decoded, checked against its kind and written in that kind's canonical encoding; one
// that does not fit is removed and counted in st. An empty value carries nothing and
// is kept as it came ("_fv", "cid="). scratch is working space for decoded values; it
// is returned for reuse.
func (a *Anonymiser) filterPairs(dst, src, scratch []byte, st *hitState) ([]byte, []byte) {
	base := len(dst)
	for len(src) > 0 {
		var pair []byte
		pair, src, _ = bytes.Cut(src, amp)
		if len(pair) == 0 {
			continue
		}
		rawName, rawVal, hasVal := bytes.Cut(pair, eq)
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok {
			continue
		}
		v := a.value(name)
		if v == nil {
			continue
		}
		mark := len(dst)
		dst = appendSep(dst, base)
		dst = appendSafe(dst, rawName)
		if !hasVal {
			continue
		}
		dst = append(dst, '=')
		if len(rawVal) == 0 {
			if v.Kind == KindURL { // no URL: as good as none
				dst = dst[:mark]
			}
			continue
		}
		var verd verdict
		dst, scratch, verd = a.appendPairValue(dst, rawVal, v, scratch, st)
		if verd != keep {
			dst = dst[:mark]
			if verd == misfit {
				st.removed[v.Kind]++
			}
		}
	}
	return dst, scratch
}

// appendPairValue decodes the raw query value, applies its kind and appends the result
// query-encoded. Everything it decodes or builds goes through scratch, which it returns
// (grown, if a value needed more room) for the next value.
func (a *Anonymiser) appendPairValue(dst, raw []byte, v *Value, scratch []byte, st *hitState) ([]byte, []byte, verdict) {
	buf, val := scratch[:0], raw
	if needsUnescape(raw) {
		var ok bool
		if buf, ok = appendUnescape(buf, raw); !ok {
			return dst, buf[:0], misfit
		}
		val = buf
	}
	mid := len(buf)
	var verd verdict
	switch v.Kind {
	case KindID:
		var ok bool
		if dst, ok = a.appendID(dst, v, val, st.key); !ok {
			verd = misfit
		}
	case KindURL:
		if v.Role == RolePage && !st.pageKnown {
			st.setPageHost(val) // the first page URL of the hit, as findPage would find it
		}
		buf, verd = a.appendCleanURL(buf, val, v.Role, st)
		if verd == keep {
			dst = appendComponent(dst, buf[mid:])
		}
	case KindText:
		if a.dropText {
			return dst, buf[:0], omit
		}
		var text []byte
		var ok bool
		if buf, text, ok = a.appendText(buf, val, v.Max); !ok {
			return dst, buf[:0], misfit
		}
		dst = appendComponent(dst, text)
	default:
		buf, verd = a.appendSmall(buf, val, v)
		if verd == keep {
			dst = appendComponent(dst, buf[mid:])
		}
	}
	return dst, buf[:0], verd
}

// appendSmall applies the kinds whose values are short and checked whole (enum,
// number, token, language, screen, currency), appending the value to keep to buf.
func (a *Anonymiser) appendSmall(buf, val []byte, v *Value) ([]byte, verdict) {
	ok := false
	switch v.Kind {
	case KindEnum:
		ok = checkEnum(val, v.Enum)
	case KindNumber:
		ok = checkNumber(val, v.Max, v.Decimal)
	case KindToken:
		ok = tokenOK(v, val)
	case KindLanguage:
		return verdictOf(appendLanguage(buf, val))
	case KindScreen:
		return verdictOf(appendScreen(buf, val))
	case KindCurrency:
		return verdictOf(appendCurrency(buf, val))
	}
	if !ok {
		return buf, misfit
	}
	return append(buf, val...), keep
}

func verdictOf(b []byte, ok bool) ([]byte, verdict) {
	if !ok {
		return b, misfit
	}
	return b, keep
}

// appendText appends to buf the free text val decoded to the end (decodeFix), scrubbed
// and cut to max bytes, and returns buf and the text; ok is false for text that stays
// encoded past decodeFix's rounds.
func (a *Anonymiser) appendText(buf, val []byte, max int) ([]byte, []byte, bool) {
	start := len(buf)
	buf, ok := decodeFix(buf, val)
	if !ok {
		return buf, nil, false
	}
	mid := len(buf)
	buf, _ = scrubCut(buf, buf[start:mid], max)
	return buf, buf[mid:], true
}

// looksIdentifying reports a name-like token the scrubber would change: one holding a
// long digit run or a token ("signup_8812734", "view_3f9a1c2e7b6d5a40").
func looksIdentifying(v []byte) bool {
	// Every shape the scrubber replaces needs four digits (an IPv4 address) or twelve
	// characters (a hex token) at least; most names have neither.
	digits := 0
	for _, c := range v {
		if '0' <= c && c <= '9' {
			digits++
		}
	}
	if digits < 4 && len(v) < 12 {
		return false
	}
	var b [512]byte
	_, changed := scrubText(b[:0], v, escNone)
	return changed
}

func appendSep(dst []byte, base int) []byte {
	if len(dst) > base {
		dst = append(dst, '&')
	}
	return dst
}

// filterLines applies the allow-list to each line of a GA4 sendBeacon body. Blank lines
// and lines left with nothing are dropped; lines are joined by "\n".
func (a *Anonymiser) filterLines(dst, body, scratch []byte, st *hitState) []byte {
	base := len(dst)
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		mark := len(dst)
		if mark > base {
			dst = append(dst, '\n')
		}
		n := len(dst)
		dst, scratch = a.filterPairs(dst, line, scratch, st)
		if len(dst) == n {
			dst = dst[:mark]
		}
	}
	return dst
}

// formContentType accepts what a browser sends for a form-encoded body: the form type,
// text/plain (sendBeacon with a string) or nothing.
func formContentType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	return len(ct) == 0 || bytes.EqualFold(ct, []byte("application/x-www-form-urlencoded")) ||
		bytes.EqualFold(ct, []byte("text/plain"))
}
