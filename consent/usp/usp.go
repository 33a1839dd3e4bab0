package usp

import (
	"errors"
	"strconv"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrLength: a version-1 string (or one that names no version) is not 4 characters.
	ErrLength = errors.New("usp: string is not 4 characters")
	// ErrVersion: the first character is not '1', the only version the specification
	// defines. The error Parse returns wraps it and names the version it found, e.g.
	// `usp: unsupported version "2": only version 1 is defined`.
	ErrVersion = errors.New("usp: unsupported version")
	// ErrValue: a field is not Y, N or - (or lowercase y, n).
	ErrValue = errors.New("usp: field is not Y, N or -")
)

// versionError is ErrVersion with the version character found. Parse returns a pointer
// into versionErrs, so that failing allocates nothing either.
type versionError struct{ v byte }

func (e *versionError) Error() string {
	return "usp: unsupported version " + strconv.Quote(string([]byte{e.v})) + ": only version 1 is defined"
}

func (e *versionError) Unwrap() error { return ErrVersion }

var versionErrs = func() (t [256]versionError) {
	for i := range t {
		t[i].v = byte(i)
	}
	return t
}()

// Flag is one field's value.
type Flag uint8

const (
	NotApplicable Flag = iota // '-'
	Yes                       // 'Y'
	No                        // 'N'
)

func (f Flag) String() string {
	switch f {
	case Yes:
		return "Y"
	case No:
		return "N"
	}
	return "-"
}

// Signal is a decoded US Privacy string.
type Signal struct {
	Version    int
	Notice     Flag // explicit notice / opportunity to opt out given
	OptOutSale Flag // the user opted out of the sale of personal information
	LSPA       Flag // the transaction is covered by the LSPA
}

func flag(c byte) (Flag, bool) {
	switch c {
	case 'Y', 'y':
		return Yes, true
	case 'N', 'n':
		return No, true
	case '-':
		return NotApplicable, true
	}
	return NotApplicable, false
}

// Parse decodes s. On error the Signal is zero (OptedOut false): the caller decides how
// to treat a string it cannot read (consentgate fails closed). A string whose first
// character is a digit other than '1' is refused as an unsupported version whatever its
// length, as a later version may change the length; any other string must be 4
// characters, and then its first must be '1'.
func Parse(s []byte) (Signal, error) {
	if len(s) > 0 && s[0] != '1' && s[0] >= '0' && s[0] <= '9' {
		return Signal{}, &versionErrs[s[0]]
	}
	if len(s) != 4 {
		return Signal{}, ErrLength
	}
	if s[0] != '1' {
		return Signal{}, &versionErrs[s[0]]
	}
	n, ok1 := flag(s[1])
	o, ok2 := flag(s[2])
	l, ok3 := flag(s[3])
	if !ok1 || !ok2 || !ok3 {
		return Signal{}, ErrValue
	}
	return Signal{Version: 1, Notice: n, OptOutSale: o, LSPA: l}, nil
}

// OptedOut reports an opt-out of sale ('Y' in the third position); it denies marketing.
func (s Signal) OptedOut() bool { return s.OptOutSale == Yes }

// String re-encodes the signal ("1YNN"); "" for a zero Signal.
func (s Signal) String() string {
	if s.Version != 1 {
		return ""
	}
	return "1" + s.Notice.String() + s.OptOutSale.String() + s.LSPA.String()
}
