package cmp

import "github.com/consentgate/consentgate/consent"

// ParseCookiebot parses the value of Cookiebot's "CookieConsent" cookie.
//
// Cookiebot stores a JavaScript object literal with unquoted keys and single-quoted
// strings (Cookiebot developer documentation, "Server side usage" of the CookieConsent
// cookie, www.cookiebot.com/en/developer/):
//
//	{stamp:'…',necessary:true,preferences:false,statistics:true,marketing:false,method:'explicit',ver:1,utc:1700000000000,region:'de'}
//
// Browsers carry it percent-encoded, in whole (%7Bstamp%3A%27…) or in part (braces and
// colons literal, %27 and %2C encoded, the form Cookiebot's own script writes); both are
// decoded on the fly. Recognised keys are necessary, preferences, statistics and
// marketing, each true (Granted) or false (Denied); a missing one is Unset, a repeated
// one takes the most protective value, and any other value is ErrValue. Other keys
// (stamp, method, ver, utc, region, iab2, gacm, …) are skipped whatever their value:
// a quoted string, a bare token, or a bracketed {…}/[…] group.
//
// The value "-1" means, per the same documentation, that the visitor is not in a region
// that requires consent (Cookiebot then allows all cookies): noConsentRequired is true
// and the purposes are all Unset, leaving the policy to the caller.
//
// Malformed input returns ErrEncoding or ErrSyntax and zero purposes.
func ParseCookiebot(v []byte) (p consent.Purposes, noConsentRequired bool, err error) {
	if string(v) == "-1" || string(v) == "%2D1" {
		return consent.Purposes{}, true, nil
	}
	d := dec{b: v}
	p, err = parseCookiebot(&d)
	if d.bad {
		return consent.Purposes{}, false, ErrEncoding
	}
	if err != nil {
		return consent.Purposes{}, false, err
	}
	return p, false, nil
}

// The cookie is read here rather than with internal/jsonscan, the JSON scanner that
// rules and consentmode share, because it is not JSON: keys are bare identifiers (a
// JSON-quoted key is a syntax error), strings are single-quoted, skipped groups are
// looser than JSON, and percent-encoding is interleaved with the syntax and decoded on
// the fly, where a bad escape must read as ErrEncoding only if the parse reaches it.
// Bending a JSON scanner to that grammar would weaken the one that guards JSON bodies.

// maxDepth bounds the nesting of skipped bracketed values.
const maxDepth = 64

func parseCookiebot(d *dec) (consent.Purposes, error) {
	var p consent.Purposes
	d.ws()
	if !d.eat('{') {
		return p, ErrSyntax
	}
	d.ws()
	if !d.eat('}') {
		for {
			d.ws()
			var k word
			for {
				c, n := d.peek()
				if n == 0 || !isIdent(c) {
					break
				}
				d.i += n
				k.add(c)
			}
			if k.n == 0 {
				return p, ErrSyntax
			}
			d.ws()
			if !d.eat(':') {
				return p, ErrSyntax
			}
			d.ws()
			purpose, known := cookiebotPurpose(&k)
			if known {
				var tok word
				readBare(d, &tok)
				var s consent.Status
				switch {
				case tok.is("true"):
					s = consent.Granted
				case tok.is("false"):
					s = consent.Denied
				default:
					if d.bad {
						return p, ErrEncoding
					}
					return p, ErrValue
				}
				p[purpose] = protective(p[purpose], s)
			} else if !skipValue(d, 0) {
				return p, ErrSyntax
			}
			d.ws()
			if d.eat(',') {
				continue
			}
			if d.eat('}') {
				break
			}
			return p, ErrSyntax
		}
	}
	d.ws()
	if !d.eof() {
		return p, ErrSyntax
	}
	return p, nil
}

func cookiebotPurpose(k *word) (consent.Purpose, bool) {
	switch {
	case k.is("necessary"):
		return consent.Necessary, true
	case k.is("preferences"):
		return consent.Preferences, true
	case k.is("statistics"):
		return consent.Statistics, true
	case k.is("marketing"):
		return consent.Marketing, true
	}
	return 0, false
}

// isBare reports whether c may appear in an unquoted value (true, 1, 1700000000000,
// -1.5, …).
func isBare(c byte) bool { return isIdent(c) || c == '.' || c == '+' }

func readBare(d *dec, w *word) {
	for {
		c, n := d.peek()
		if n == 0 || !isBare(c) {
			return
		}
		d.i += n
		w.add(c)
	}
}

// skipValue skips one value: a quoted string, a bracketed group or a bare token.
func skipValue(d *dec, depth int) bool {
	if depth > maxDepth {
		return false
	}
	c, n := d.peek()
	if n == 0 {
		return false
	}
	switch c {
	case '\'', '"':
		d.i += n
		return skipQuoted(d, c)
	case '{', '[':
		d.i += n
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		for {
			d.ws()
			c, n := d.peek()
			switch {
			case n == 0:
				return false
			case c == closer:
				d.i += n
				return true
			case c == ',' || c == ':':
				d.i += n
			default:
				if !skipValue(d, depth+1) {
					return false
				}
			}
		}
	}
	var w word
	readBare(d, &w)
	return w.n > 0 || w.long
}

// skipQuoted skips to the closing quote q; a backslash escapes the next byte.
func skipQuoted(d *dec, q byte) bool {
	for {
		c, ok := d.next()
		if !ok {
			return false
		}
		switch c {
		case q:
			return true
		case '\\':
			if _, ok := d.next(); !ok {
				return false
			}
		}
	}
}
