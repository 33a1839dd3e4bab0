package rules

// IP addresses in free text and URL segments: IPv6 (with an embedded IPv4 or not) is
// not made of word characters, so the word passes never see one whole; an IPv4 address
// glued into a word by '+' or '_' ("for+81.2.69.142+today") is not a numeric run.

// ipAt reports the length of an IP address at the start of s: an IPv6 address (at
// least two colons, hex groups of at most four digits, at most one "::", optionally
// ending in a dotted quad) or an IPv4 dotted quad. 0: none starts here.
func ipAt(s []byte) int {
	if n := ipv6At(s); n > 0 {
		return n
	}
	return ipv4At(s)
}

// ipv4At reports the length of a dotted quad at the start of s (each part 0–255,
// at most three digits), not followed by more digits or another ".digit".
func ipv4At(s []byte) int {
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
		v, d := 0, 0
		for i < len(s) && isDigitByte(s[i]) && d < 4 {
			v = v*10 + int(s[i]-'0')
			i++
			d++
		}
		if d == 0 || d > 3 || v > 255 {
			return 0
		}
	}
	if i < len(s) && (isDigitByte(s[i]) || s[i] == '.' && i+1 < len(s) && isDigitByte(s[i+1])) {
		return 0
	}
	return i
}

// ipv6At reports the length of an IPv6 address at the start of s.
func ipv6At(s []byte) int {
	i, groups, colons, double := 0, 0, 0, false
	for i < len(s) {
		// A group, or a dotted quad once at least two colons came before it.
		if colons >= 2 && isDigitByte(s[i]) {
			if n := ipv4At(s[i:]); n > 0 {
				return i + n
			}
		}
		h := 0
		for i+h < len(s) && h < 5 && isHex(s[i+h]) {
			h++
		}
		if h > 4 {
			return 0
		}
		if h > 0 {
			groups++
			i += h
		}
		if i >= len(s) || s[i] != ':' {
			break
		}
		if i+1 < len(s) && s[i+1] == ':' {
			if double {
				break
			}
			double = true
			colons += 2
			i += 2
			continue
		}
		if h == 0 && i > 0 {
			break // ":" after ":" is "::", handled above
		}
		colons++
		i++
	}
	// Strip a trailing single ':' (sentence punctuation, "at 2001:db8::1:").
	stripped := false
	if i > 0 && s[i-1] == ':' && !(i > 1 && s[i-2] == ':') {
		i--
		colons--
		stripped = true
	}
	switch {
	case groups == 0, colons < 2 || groups < 2 && !double:
		return 0
	case !double && groups != 8:
		return 0
	case groups > 8:
		return 0
	}
	if i < len(s) && (isAlnumByte(s[i]) || s[i] == ':' && !stripped) {
		return 0
	}
	return i
}

// ipv6InWord looks for an IPv6 address that starts in the last run of hex digits of
// the word s[:n] and goes on past it; k is where it starts, m its length (0: none).
func ipv6InWord(s []byte, n int) (k, m int) {
	k = n
	for k > 0 && isHex(s[k-1]) {
		k--
	}
	if k == n {
		return 0, 0
	}
	return k, ipv6At(s[k:])
}

// holdsIP reports an IP address anywhere in v that starts at a boundary (the start,
// or after a byte that is not a letter or digit).
func holdsIP(v []byte) bool {
	for i := 0; i < len(v); i++ {
		if i > 0 && isAlnumByte(v[i-1]) {
			continue
		}
		if ipAt(v[i:]) > 0 {
			return true
		}
	}
	return false
}
