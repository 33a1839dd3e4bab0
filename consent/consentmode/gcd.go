package consentmode

import (
	"errors"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/enum"
)

// Type is one of the four Consent Mode v2 consent types carried by gcd, in gcd order.
type Type uint8

const (
	AdStorage Type = iota
	AnalyticsStorage
	AdUserData
	AdPersonalization
	NumTypes
)

var typeNames = enum.New("type", NumTypes, "ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")

func (t Type) String() string { return typeNames.String(t) }

// Signal is the state of one consent type as gcd reports it: the value set by the
// page's `gtag('consent', 'default', …)` call and the value set by a later
// `gtag('consent', 'update', …)` call, each Unset when that call did not set the type.
type Signal struct {
	Default consent.Status
	Update  consent.Status
}

// Current is the state in force for the hit: the update if there was one, else the
// default.
func (s Signal) Current() consent.Status {
	if s.Update != consent.Unset {
		return s.Update
	}
	return s.Default
}

// GCD is a parsed gcd value, indexed by Type. The zero value (every type Unset) is "no
// signal".
type GCD [NumTypes]Signal

// Current returns the state in force for consent type t.
func (g *GCD) Current(t Type) consent.Status { return g[t].Current() }

// Errors returned by ParseGCD. The caller must treat any error as "no gcd signal" (and
// count it): a gcd we cannot read is never guessed at, and because gcd can only tighten
// the stored consent (see Tighten), ignoring it falls back to the stored consent and the
// other signals rather than to anything more permissive.
var (
	ErrGCDLength = errors.New("consentmode: gcd too short")
	ErrGCDFormat = errors.New("consentmode: gcd malformed")
	ErrGCDLetter = errors.New("consentmode: gcd has an unknown consent letter")
)

// The gcd letters. Sources:
//
//   - Google, "Troubleshoot consent mode with Tag Assistant" / consent debugging guide
//     (developers.google.com/tag-platform/security/guides/consent-debugging), table of
//     the gcd parameter values;
//   - Simo Ahava, "Consent Mode V2 For Google Tags"
//     (simoahava.com/analytics/consent-mode-v2-google-tags/), section on the gcd
//     parameter, which reproduces the same table.
//
// (Transcribed from those pages as known when this was written; the build environment
// had no web access, so re-check them if Google adds letters. The bit-layout check
// below guards against transcription slips.)
//
// Both list exactly these nine letters:
//
//	l  not set (neither default nor update)
//	p  denied by default, no update
//	q  denied by default and denied by update
//	t  granted by default, no update
//	r  denied by default, granted by update
//	m  no default, denied by update
//	n  no default, granted by update
//	u  granted by default, denied by update
//	v  granted by default and granted by update
//
// The table is consistent with a 2-bit encoding, letter = 'l' + 4*default + update with
// 0 = not set, 1 = denied, 2 = granted, which we use as a cross-check in the tests; the
// letters that encoding would give for the unused value 3 ('o', 's', 'w', …) and every
// other byte are rejected with ErrGCDLetter. NB: 'r' is "denied by default, GRANTED by
// update" (the current state is granted); "granted by default, denied by update" is 'u'.
var letters = [256]Signal{
	'l': {consent.Unset, consent.Unset},
	'p': {consent.Denied, consent.Unset},
	'q': {consent.Denied, consent.Denied},
	't': {consent.Granted, consent.Unset},
	'r': {consent.Denied, consent.Granted},
	'm': {consent.Unset, consent.Denied},
	'n': {consent.Unset, consent.Granted},
	'u': {consent.Granted, consent.Denied},
	'v': {consent.Granted, consent.Granted},
}

var validLetter = [256]bool{'l': true, 'p': true, 'q': true, 't': true, 'r': true, 'm': true, 'n': true, 'u': true, 'v': true}

// ParseGCD parses a Google Consent Mode v2 "gcd" value such as "11t1t1t1t5" or
// "13r3r3r3r5l1".
//
// Layout: a two-digit prefix, then for each of ad_storage, analytics_storage,
// ad_user_data and ad_personalization (in that order) one letter followed by one digit.
// The digits carry no consent state in any public description and are only checked to
// be digits. Anything after the fourth letter's digit (e.g. the "l1" of "13r3r3r3r5l1",
// which newer tags append for further signals) is accepted if it is ASCII letters and
// digits, and ignored.
//
// An unknown consent letter is ErrGCDLetter; any other deviation is ErrGCDLength or
// ErrGCDFormat. On error the returned GCD is the zero value. It allocates nothing.
func ParseGCD(v []byte) (GCD, error) {
	const fixed = 2 + 2*int(NumTypes) // "11" + 4 × (letter, digit)
	if len(v) < fixed {
		return GCD{}, ErrGCDLength
	}
	if !isDigit(v[0]) || !isDigit(v[1]) {
		return GCD{}, ErrGCDFormat
	}
	var g GCD
	for t := range int(NumTypes) {
		l, d := v[2+2*t], v[3+2*t]
		if !validLetter[l] {
			if isLetter(l) {
				return GCD{}, ErrGCDLetter
			}
			return GCD{}, ErrGCDFormat
		}
		if !isDigit(d) {
			return GCD{}, ErrGCDFormat
		}
		g[t] = letters[l]
	}
	for _, c := range v[fixed:] {
		if !isDigit(c) && !isLetter(c) {
			return GCD{}, ErrGCDFormat
		}
	}
	return g, nil
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
