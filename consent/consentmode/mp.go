package consentmode

import "github.com/consentgate/consentgate/consent"

// ParseMPConsent reads the top-level "consent" object of a GA4 Measurement Protocol JSON
// body, e.g.
//
//	{"client_id":"123.456","consent":{"ad_user_data":"DENIED","ad_personalization":"GRANTED"},"events":[…]}
//
// ("consent" attribute of the MP request body, developers.google.com/analytics/devguides/
// collection/protocol/ga4/reference#payload_consent; values "GRANTED" or "DENIED").
//
// It scans the body once without decoding it and allocates nothing. ok is false when
// the body is not a well-formed JSON object, when "consent" is neither an object nor
// null, or when a consent value is neither a string nor null, or a string other than
// GRANTED/DENIED (compared ASCII case-insensitively). When ok is false both statuses are
// Unset and the caller must treat the body as carrying no consent signal. A missing
// "consent", a null one, or a missing or null field gives Unset with ok true. Keys and
// values are compared after JSON unescaping ("\u0063onsent" is "consent"). Keys inside
// "consent" other than the two are ignored (the MP API has no others today). If a key
// appears more than once the most protective value wins (DENIED over GRANTED over
// absent), where encoding/json would keep the last.
func ParseMPConsent(body []byte) (adUserData, adPersonalization consent.Status, ok bool) {
	s := scanner{b: body}
	s.ws()
	if !s.eat('{') {
		return consent.Unset, consent.Unset, false
	}
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			k, kok := s.str()
			if !kok {
				return consent.Unset, consent.Unset, false
			}
			s.ws()
			if !s.eat(':') {
				return consent.Unset, consent.Unset, false
			}
			s.ws()
			if jsonStrEq(k, "consent") && s.peek() == '{' {
				if !s.consentObject(&adUserData, &adPersonalization) {
					return consent.Unset, consent.Unset, false
				}
			} else {
				isConsent := jsonStrEq(k, "consent")
				start := s.i
				if !s.value(0) {
					return consent.Unset, consent.Unset, false
				}
				if isConsent && string(body[start:s.i]) != "null" {
					return consent.Unset, consent.Unset, false
				}
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return consent.Unset, consent.Unset, false
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return consent.Unset, consent.Unset, false
	}
	return adUserData, adPersonalization, true
}

// consentObject parses the "consent" object at s.i, merging into ud and ap.
func (s *scanner) consentObject(ud, ap *consent.Status) bool {
	s.eat('{')
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		k, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		var dst *consent.Status
		switch {
		case jsonStrEq(k, "ad_user_data"):
			dst = ud
		case jsonStrEq(k, "ad_personalization"):
			dst = ap
		}
		if dst == nil {
			if !s.value(0) {
				return false
			}
		} else {
			st, ok := s.status()
			if !ok {
				return false
			}
			*dst = protective(*dst, st)
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// status parses a consent value: a GRANTED/DENIED string or null.
func (s *scanner) status() (consent.Status, bool) {
	if s.peek() == 'n' {
		return consent.Unset, s.lit("null")
	}
	v, ok := s.str()
	if !ok {
		return consent.Unset, false
	}
	switch {
	case jsonStrEqFold(v, "GRANTED"):
		return consent.Granted, true
	case jsonStrEqFold(v, "DENIED"):
		return consent.Denied, true
	}
	return consent.Unset, false
}

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

// maxDepth bounds nesting so that a hostile body cannot exhaust the stack.
const maxDepth = 256

// scanner is a minimal validating JSON scanner over a byte slice.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

// str consumes a JSON string and returns its raw (still escaped) contents.
func (s *scanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, true
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 {
					return nil, false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if hexVal(h) < 0 {
						return nil, false
					}
				}
				s.i += 5
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

// value consumes any JSON value.
func (s *scanner) value(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return true
		}
		for {
			s.ws()
			if _, ok := s.str(); !ok {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat('}')
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat(']')
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || isDigit(c):
		return s.number()
	}
	return false
}

// number consumes a JSON number per RFC 8259.
func (s *scanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') {
		if !s.digits() {
			return false
		}
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

func hexVal(c byte) int {
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

// jsonStrEq reports whether the raw (escaped, already validated) JSON string contents
// raw decode to the ASCII string lit.
func jsonStrEq(raw []byte, lit string) bool { return jsonStrCmp(raw, lit, false) }

// jsonStrEqFold is jsonStrEq with ASCII case folding.
func jsonStrEqFold(raw []byte, lit string) bool { return jsonStrCmp(raw, lit, true) }

func jsonStrCmp(raw []byte, lit string, fold bool) bool {
	n := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		var r rune
		if c == '\\' {
			switch raw[i+1] {
			case 'u':
				r = rune(hexVal(raw[i+2])<<12 | hexVal(raw[i+3])<<8 | hexVal(raw[i+4])<<4 | hexVal(raw[i+5]))
				i += 6
			case 'b':
				r, i = '\b', i+2
			case 'f':
				r, i = '\f', i+2
			case 'n':
				r, i = '\n', i+2
			case 'r':
				r, i = '\r', i+2
			case 't':
				r, i = '\t', i+2
			default: // '"', '\\', '/'
				r, i = rune(raw[i+1]), i+2
			}
		} else {
			r = rune(c)
			i++
		}
		if n >= len(lit) || r >= 0x80 {
			return false
		}
		l := rune(lit[n])
		if fold {
			r, l = lower(r), lower(l)
		}
		if r != l {
			return false
		}
		n++
	}
	return n == len(lit)
}

func lower(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}
