package rules

import (
	"unicode"
)

// Numeric runs in free text: phone numbers, payment cards (Luhn), IBANs (mod 97), dates
// and long digit runs.

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
