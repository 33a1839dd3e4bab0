package cmp

import (
	"errors"

	"github.com/consentgate/consentgate/consent"
)

// Errors returned by the parsers.
var (
	ErrEncoding = errors.New("cmp: bad percent-encoding")
	ErrSyntax   = errors.New("cmp: malformed consent cookie")
	ErrValue    = errors.New("cmp: unexpected consent value")
	ErrNoGroups = errors.New("cmp: OneTrust cookie has no groups field")
)

// protective returns the more protective of a and b: Denied > Granted > Unset.
func protective(a, b consent.Status) consent.Status {
	if a == consent.Denied || b == consent.Denied {
		return consent.Denied
	}
	if a == consent.Granted || b == consent.Granted {
		return consent.Granted
	}
	return consent.Unset
}

// dec reads a percent-encoded byte string one decoded byte at a time. '+' is left as
// is (cookie values are not form-encoded).
type dec struct {
	b   []byte
	i   int
	bad bool // a malformed %XX was met
}

func (d *dec) eof() bool { return d.i >= len(d.b) }

// peek returns the next decoded byte and its encoded width (0 at EOF or on a malformed
// escape, which also sets bad).
func (d *dec) peek() (byte, int) {
	if d.i >= len(d.b) {
		return 0, 0
	}
	c := d.b[d.i]
	if c != '%' {
		return c, 1
	}
	if len(d.b)-d.i < 3 {
		d.bad = true
		return 0, 0
	}
	h, l := unhex(d.b[d.i+1]), unhex(d.b[d.i+2])
	if h < 0 || l < 0 {
		d.bad = true
		return 0, 0
	}
	return byte(h<<4 | l), 3
}

func (d *dec) next() (byte, bool) {
	c, n := d.peek()
	d.i += n
	return c, n > 0
}

// eat consumes c if it is next.
func (d *dec) eat(c byte) bool {
	if x, n := d.peek(); n > 0 && x == c {
		d.i += n
		return true
	}
	return false
}

// ws skips spaces and tabs.
func (d *dec) ws() {
	for {
		c, n := d.peek()
		if n == 0 || (c != ' ' && c != '\t') {
			return
		}
		d.i += n
	}
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// word is a short identifier collected into a fixed buffer; an identifier longer than
// the buffer is kept as "long" and matches nothing.
type word struct {
	buf  [64]byte
	n    int
	long bool
}

func (w *word) add(c byte) {
	if w.n < len(w.buf) {
		w.buf[w.n] = c
		w.n++
	} else {
		w.long = true
	}
}

func (w *word) bytes() []byte {
	if w.long {
		return nil
	}
	return w.buf[:w.n]
}

func (w *word) is(s string) bool { return !w.long && string(w.buf[:w.n]) == s }

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
