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
// Names are judged decoded ("cd%5Bvalue%5D" is "cd[value]"), each occurrence on its own.
// A kept value keeps its encoding, minus bytes that could split it upstream. scratch
// is working space for decoded values; it is returned for reuse. key hashes Hash values.
func (a *Anonymiser) filterPairs(dst, src, scratch []byte, key *HashKey) ([]byte, []byte) {
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
		switch a.rule(name) {
		case Keep:
			if !validEscapes(rawVal) {
				continue
			}
			dst = appendSep(dst, base)
			dst = appendSafe(dst, rawName)
			if hasVal {
				dst = append(dst, '=')
				dst = appendSafe(dst, rawVal)
			}
		case KeepURL:
			val, start := rawVal, 0
			if needsUnescape(rawVal) {
				var ok bool
				if scratch, ok = appendUnescape(scratch[:0], rawVal); !ok {
					continue
				}
				val, start = scratch, len(scratch)
			}
			clean, ok := a.appendCleanURL(scratch[:start], val)
			scratch = clean[:0]
			if !ok {
				continue
			}
			dst = appendSep(dst, base)
			dst = appendSafe(dst, rawName)
			dst = append(dst, '=')
			dst = appendQueryEscapeBytes(dst, clean[start:])
		case Hash:
			val := rawVal
			if needsUnescape(rawVal) {
				var ok bool
				if scratch, ok = appendUnescape(scratch[:0], rawVal); !ok {
					continue
				}
				val = scratch
			}
			dst = appendSep(dst, base)
			dst = appendSafe(dst, rawName)
			dst = append(dst, '=')
			dst = key.AppendHash(dst, val)
		}
	}
	return dst, scratch
}

func appendSep(dst []byte, base int) []byte {
	if len(dst) > base {
		dst = append(dst, '&')
	}
	return dst
}

// filterLines applies the allow-list to each line of a GA4 sendBeacon body. Blank lines
// and lines left with nothing are dropped; lines are joined by "\n".
func (a *Anonymiser) filterLines(dst, body, scratch []byte, key *HashKey) []byte {
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
		dst, scratch = a.filterPairs(dst, line, scratch, key)
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
