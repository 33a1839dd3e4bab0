package jsonscan

import (
	"errors"
	"unicode/utf8"
)

// Kind is the type of a JSON value, read from its first byte.
type Kind uint8

// Kinds of values.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Object
	Array
)

// MaxDepth is the deepest nesting of objects and arrays any call accepts; it is
// encoding/json's limit, so that nothing encoding/json reads is refused here.
const MaxDepth = 10000

// Errors are sentinels so that a failed scan allocates nothing; callers wrap them
// with what they were reading.
var (
	ErrSyntax = errors.New("jsonscan: invalid JSON")
	ErrDepth  = errors.New("jsonscan: JSON nested too deep")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not JSON
// whitespace (space, tab, CR, LF), or len(b).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && isSpace(b[i]) {
		i++
	}
	return i
}

// Validate reports whether b holds exactly one JSON value, with optional whitespace
// around it and containers nested at most depth deep, and returns its kind.
func Validate(b []byte, depth int) (Kind, error) {
	i := SkipSpace(b, 0)
	end, k, err := Value(b, i, depth)
	if err != nil {
		return Invalid, err
	}
	if SkipSpace(b, end) != len(b) {
		return Invalid, ErrSyntax
	}
	return k, nil
}

// Value scans the value that starts at b[i] (no whitespace skipped) and returns the
// index just after it. A container counts as one level of depth; depth < 1 refuses
// any container, and depth is capped at MaxDepth.
func Value(b []byte, i, depth int) (end int, k Kind, err error) {
	if i >= len(b) {
		return i, Invalid, ErrSyntax
	}
	switch c := b[i]; c {
	case '"':
		end, err = stringEnd(b, i)
		return end, String, err
	case '{', '[':
		k = Array
		if c == '{' {
			k = Object
		}
		end, err = skipContainer(b, i, depth)
		return end, k, err
	case 't':
		return literal(b, i, "true", Bool)
	case 'f':
		return literal(b, i, "false", Bool)
	case 'n':
		return literal(b, i, "null", Null)
	}
	end, err = numberEnd(b, i)
	return end, Number, err
}

func literal(b []byte, i int, lit string, k Kind) (int, Kind, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), k, nil
	}
	return i, Invalid, ErrSyntax
}

// numberEnd scans an RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, ErrSyntax
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, ErrSyntax
		}
		i = j
	}
	return i, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// stringEnd scans the string that starts at b[i] == '"' and returns the index after
// its closing quote. Escapes must be JSON's; raw bytes below 0x20 are refused; other
// bytes pass, UTF-8 or not, as in encoding/json.
func stringEnd(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		c := b[i]
		if !special[c] {
			continue
		}
		switch c {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 >= len(b) {
				return i, ErrSyntax
			}
			i++
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || hex4(b[i+1:i+5]) < 0 {
					return i, ErrSyntax
				}
				i += 4
			default:
				return i, ErrSyntax
			}
		default: // a control byte
			return i, ErrSyntax
		}
	}
	return i, ErrSyntax
}

// special marks the bytes that end a run of plain string contents.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// depthWords sizes the container-type stack of skipContainer: one bit per level.
const (
	smallWords = 4 // 256 levels: every depth the callers ask for on the hit path
	maxWords   = (MaxDepth + 63) / 64
)

// skipContainer scans the object or array at b[i] without recursion, so that a
// hostile body costs a bit per level rather than a stack frame. The bit stack lives on
// the goroutine stack; the large one only when a caller allows deep nesting.
func skipContainer(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		depth = MaxDepth
	}
	if depth <= smallWords*64 {
		var st [smallWords]uint64
		return skipWith(b, i, depth, st[:])
	}
	var st [maxWords]uint64
	return skipWith(b, i, depth, st[:])
}

func skipWith(b []byte, i, depth int, objs []uint64) (int, error) {
	const (
		first  = iota // after '{' or '[': a member or the closer
		next          // after a member: ',' or the closer
		member        // after ',': a member
	)
	if depth < 1 {
		return i, ErrDepth
	}
	// objs holds one bit per open container (set: object); obj mirrors the innermost.
	level, obj := 1, b[i] == '{'
	if obj {
		objs[0] |= 1
	} else {
		objs[0] &^= 1
	}
	i++
	st := first
	for {
		i = SkipSpace(b, i)
		if i >= len(b) {
			return i, ErrSyntax
		}
		c := b[i]
		if st != member {
			if obj && c == '}' || !obj && c == ']' {
				level--
				i++
				if level == 0 {
					return i, nil
				}
				top := level - 1
				obj = objs[top/64]&(1<<(top%64)) != 0
				st = next
				continue
			}
			if st == next {
				if c != ',' {
					return i, ErrSyntax
				}
				i++
				st = member
				continue
			}
		}
		if obj {
			if c != '"' {
				return i, ErrSyntax
			}
			end, err := stringEnd(b, i)
			if err != nil {
				return end, err
			}
			i = SkipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, ErrSyntax
			}
			i = SkipSpace(b, i+1)
			if i >= len(b) {
				return i, ErrSyntax
			}
			c = b[i]
		}
		var err error
		switch c {
		case '{', '[':
			if level >= depth {
				return i, ErrDepth
			}
			obj = c == '{'
			if w, bit := level/64, uint64(1)<<(level%64); obj {
				objs[w] |= bit
			} else {
				objs[w] &^= bit
			}
			level++
			i++
			st = first
			continue
		case '"':
			i, err = stringEnd(b, i)
		default:
			i, _, err = Value(b, i, 0)
		}
		if err != nil {
			return i, err
		}
		st = next
	}
}

// Iter walks the members of one object or the elements of one array, validating each
// value as it passes (a member value that is a container is skipped whole; walk it
// with its own Iter to look inside). After Next returns false, Err tells whether the
// container was well formed and End where it ended.
//
//	it := jsonscan.Members(b, i, depth)
//	for it.Next() {
//		use(it.Key(), it.Value(), it.Kind())
//	}
//	if it.Err() != nil { … }
type Iter struct {
	b          []byte
	i          int
	depth      int // levels allowed, this container included
	obj        bool
	started    bool
	done       bool
	err        error
	from       int
	keyFrom    int
	keyTo      int
	valFrom    int
	kind       Kind
	open, shut byte
}

// Members starts a walk of the object at b[i]; depth counts the object as one level.
func Members(b []byte, i, depth int) Iter {
	return Iter{b: b, i: i, depth: min(depth, MaxDepth), obj: true, open: '{', shut: '}'}
}

// Elements starts a walk of the array at b[i]; depth counts the array as one level.
func Elements(b []byte, i, depth int) Iter {
	return Iter{b: b, i: i, depth: min(depth, MaxDepth), open: '[', shut: ']'}
}

func (it *Iter) fail(err error) bool {
	it.err, it.done = err, true
	return false
}

// Next moves to the next member or element and reports whether there is one.
func (it *Iter) Next() bool {
	if it.done {
		return false
	}
	b := it.b
	if !it.started {
		it.started = true
		if it.i >= len(b) || b[it.i] != it.open {
			return it.fail(ErrSyntax)
		}
		if it.depth < 1 {
			return it.fail(ErrDepth)
		}
		it.i = SkipSpace(b, it.i+1)
		if it.i < len(b) && b[it.i] == it.shut {
			it.i++
			it.done = true
			return false
		}
	} else {
		it.i = SkipSpace(b, it.i)
		if it.i >= len(b) {
			return it.fail(ErrSyntax)
		}
		switch b[it.i] {
		case it.shut:
			it.i++
			it.done = true
			return false
		case ',':
			it.i = SkipSpace(b, it.i+1)
		default:
			return it.fail(ErrSyntax)
		}
	}
	i := it.i
	it.from = i
	if it.obj {
		if i >= len(b) || b[i] != '"' {
			return it.fail(ErrSyntax)
		}
		end, err := stringEnd(b, i)
		if err != nil {
			return it.fail(err)
		}
		it.keyFrom, it.keyTo = i+1, end-1
		i = SkipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return it.fail(ErrSyntax)
		}
		i = SkipSpace(b, i+1)
	}
	end, k, err := Value(b, i, it.depth-1)
	if err != nil {
		return it.fail(err)
	}
	it.valFrom, it.i, it.kind = i, end, k
	return true
}

// Key is the raw contents of the current member's name, between its quotes and still
// escaped; nil for an array element.
func (it *Iter) Key() []byte {
	if !it.obj {
		return nil
	}
	return it.b[it.keyFrom:it.keyTo]
}

// Value is the raw text of the current value.
func (it *Iter) Value() []byte { return it.b[it.valFrom:it.i] }

// Kind is the kind of the current value.
func (it *Iter) Kind() Kind { return it.kind }

// Member is the raw text of the current member from its name to the end of its value
// (for an array, the element): what a caller copies to pass a member on unchanged.
func (it *Iter) Member() []byte { return it.b[it.from:it.i] }

// Err is the reason the walk stopped early; nil once the container closed properly.
func (it *Iter) Err() error { return it.err }

// End is the index just after the container's closer, once Next has returned false
// with a nil Err.
func (it *Iter) End() int { return it.i }

// hex4 decodes four hex digits, or returns -1.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// NextRune decodes the first character of raw, the contents of a string that Value
// accepted, and returns it with the number of raw bytes it took. It decodes as
// encoding/json does: a bad UTF-8 byte, a lone surrogate escape or an escape pair
// that is not a surrogate pair gives U+FFFD (for a bad pair, the first escape only).
// raw must not be empty; a malformed escape, which Value never accepts, decodes as
// U+FFFD for the rest of raw rather than panicking.
func NextRune(raw []byte) (rune, int) {
	c := raw[0]
	if c < utf8.RuneSelf {
		if c != '\\' {
			return rune(c), 1
		}
		if len(raw) < 2 || raw[1] == 'u' && (len(raw) < 6 || hex4(raw[2:6]) < 0) {
			return utf8.RuneError, len(raw)
		}
		switch raw[1] {
		case 'b':
			return '\b', 2
		case 'f':
			return '\f', 2
		case 'n':
			return '\n', 2
		case 'r':
			return '\r', 2
		case 't':
			return '\t', 2
		case 'u':
			r := hex4(raw[2:6])
			if 0xd800 <= r && r < 0xe000 {
				if 0xd800 <= r && r < 0xdc00 && len(raw) >= 12 && raw[6] == '\\' && raw[7] == 'u' {
					if r2 := hex4(raw[8:12]); 0xdc00 <= r2 && r2 < 0xe000 {
						return (r-0xd800)<<10 | (r2 - 0xdc00) + 0x10000, 12
					}
				}
				return utf8.RuneError, 6
			}
			return r, 6
		}
		return rune(raw[1]), 2 // '"', '\\', '/'
	}
	return utf8.DecodeRune(raw)
}

// Unescape appends the decoded contents of a string that Value accepted (raw, without
// its quotes) to dst. It grows dst only when dst lacks room.
func Unescape(dst, raw []byte) []byte {
	for len(raw) > 0 {
		// Copy runs that need no decoding in one go.
		j := 0
		for j < len(raw) && raw[j] != '\\' && raw[j] < utf8.RuneSelf {
			j++
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		if len(raw) == 0 {
			break
		}
		r, n := NextRune(raw)
		dst = utf8.AppendRune(dst, r)
		raw = raw[n:]
	}
	return dst
}

// Equal reports whether raw (string contents as Value accepted them) decodes to s.
func Equal(raw []byte, s string) bool { return equal(raw, s, false) }

// EqualFold is Equal with ASCII letters matched in either case; other characters
// must be equal.
func EqualFold(raw []byte, s string) bool { return equal(raw, s, true) }

func equal(raw []byte, s string, fold bool) bool {
	// Names are nearly always plain ASCII: compare bytes, and decode only on meeting an
	// escape or a non-ASCII byte.
	for i, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return equalDecoded(raw, s, fold)
		}
		if i >= len(s) {
			return false
		}
		if d := s[i]; c != d && (!fold || lowerASCII(rune(c)) != lowerASCII(rune(d))) {
			return false
		}
	}
	return len(raw) == len(s)
}

func equalDecoded(raw []byte, s string, fold bool) bool {
	for len(raw) > 0 {
		if len(s) == 0 {
			return false
		}
		r, n := NextRune(raw)
		raw = raw[n:]
		want, m := rune(s[0]), 1
		if want >= utf8.RuneSelf {
			want, m = utf8.DecodeRuneInString(s)
		}
		s = s[m:]
		if fold {
			r, want = lowerASCII(r), lowerASCII(want)
		}
		if r != want {
			return false
		}
	}
	return len(s) == 0
}

func lowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

const lowerHex = "0123456789abcdef"

// AppendString appends s as a JSON string, quoted and escaped exactly as
// encoding/json's Encoder does with SetEscapeHTML(false): '"' and '\\' escaped,
// \b \f \n \r \t by name, other control bytes as \u00xx, U+2028 and U+2029 as escapes,
// each byte that is not UTF-8 as \ufffd.
func AppendString[S ~[]byte | ~string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		// A rune's worth converted to a string stays on the stack (as in encoding/json).
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
