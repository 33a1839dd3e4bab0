// Escaping: percent-decoding of names and values, and the encoders that write kept
// and set values back. It is separate because every other concern uses it, and because
// a kept value that an upstream parser could split in two would smuggle a parameter
// past the allow-list.

package rules

// maxNameLen bounds percent-encoded parameter names decoded on the stack; a longer
// encoded name is dropped (no allow-listed name comes near it).
const maxNameLen = 128

// decodeName query-decodes a parameter name into buf, or returns raw when it needs no
// decoding. ok is false for a malformed escape or a name too long for buf.
func decodeName(buf, raw []byte) ([]byte, bool) {
	if !needsUnescape(raw) {
		return raw, true
	}
	if len(raw) > cap(buf) {
		return nil, false
	}
	return appendUnescape(buf, raw)
}

func needsUnescape(s []byte) bool {
	for _, c := range s { // one pass: values are short, two IndexByte calls cost more
		if c == '%' || c == '+' {
			return true
		}
	}
	return false
}

// appendUnescape appends s decoded as net/url.QueryUnescape does ("+" is a space).
func appendUnescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return dst, false
			}
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case '+':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

func validEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

const upperHex = "0123456789ABCDEF"

// appendSafe copies raw query text, escaping the bytes that a lenient upstream parser
// could read as a separator or that are not valid in a query: a kept value must stay
// one value.
func appendSafe(dst, raw []byte) []byte {
	for _, c := range raw {
		if c <= ' ' || c >= 0x7f || c == '#' || c == ';' || c == '"' || c == '<' || c == '>' || c == '\\' {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func shouldEscape(c byte) bool {
	return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~')
}

// appendQueryEscape appends s encoded as net/url.QueryEscape does.
func appendQueryEscape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = appendQueryEscapeByte(dst, s[i])
	}
	return dst
}

func appendQueryEscapeBytes(dst, s []byte) []byte {
	for _, c := range s {
		dst = appendQueryEscapeByte(dst, c)
	}
	return dst
}

func appendQueryEscapeByte(dst []byte, c byte) []byte {
	switch {
	case c == ' ':
		return append(dst, '+')
	case shouldEscape(c):
		return append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return append(dst, c)
}

// appendComponent appends s encoded as encodeURIComponent does for the bytes that
// matter: everything but unreserved bytes is percent-encoded, a space as "%20" (what
// gtag.js and the other tags send, where '+' would be ambiguous to some parsers).
func appendComponent(dst, s []byte) []byte {
	for len(s) > 0 {
		i := 0
		for i < len(s) && unreserved[s[i]] {
			i++
		}
		dst = append(dst, s[:i]...) // runs of plain bytes in one copy
		if i == len(s) {
			break
		}
		c := s[i]
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		s = s[i+1:]
	}
	return dst
}

// unreserved is !shouldEscape as a table, for appendComponent's inner loop.
var unreserved = func() (t [256]bool) {
	for c := range t {
		t[c] = !shouldEscape(byte(c))
	}
	return t
}()
