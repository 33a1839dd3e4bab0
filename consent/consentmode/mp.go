package consentmode

import (
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/jsonscan"
)

// ParseMPConsent reads the top-level "consent" object of a GA4 Measurement Protocol JSON
// body, e.g.
//
//	{"client_id":"123.456","consent":{"ad_user_data":"DENIED","ad_personalization":"GRANTED"},"events":[…]}
//
// ("consent" attribute of the MP request body, developers.google.com/analytics/devguides/
// collection/protocol/ga4/reference#payload_consent; values "GRANTED" or "DENIED").
//
// It walks the body once with internal/jsonscan, the JSON scanner the anonymiser uses
// too, and allocates nothing. ok is false when the body is not a well-formed JSON
// object, when "consent" is neither an object nor null, or when a consent value is
// neither a string nor null, or a string other than GRANTED/DENIED (compared ASCII
// case-insensitively). When ok is false both statuses are Unset and the caller must
// treat the body as carrying no consent signal. A missing "consent", a null one, or a
// missing or null field gives Unset with ok true. Keys and values are compared after
// JSON unescaping ("\u0063onsent" is "consent"). Keys inside "consent" other than the
// two are ignored (the MP API has no others today). If a key appears more than once
// the most protective value wins (DENIED over GRANTED over absent), where encoding/json
// would keep the last. Objects and arrays nested deeper than maxDepth make ok false.
func ParseMPConsent(body []byte) (adUserData, adPersonalization consent.Status, ok bool) {
	it := jsonscan.Members(body, jsonscan.SkipSpace(body, 0), maxDepth)
	for it.Next() {
		if !jsonscan.Equal(it.Key(), "consent") {
			continue
		}
		switch it.Kind() {
		case jsonscan.Object:
			if !consentObject(it.Value(), &adUserData, &adPersonalization) {
				return consent.Unset, consent.Unset, false
			}
		case jsonscan.Null:
		default:
			return consent.Unset, consent.Unset, false
		}
	}
	if it.Err() != nil || jsonscan.SkipSpace(body, it.End()) != len(body) {
		return consent.Unset, consent.Unset, false
	}
	return adUserData, adPersonalization, true
}

// consentObject reads the "consent" object v, merging into ud and ap. The walk over
// the whole body has validated v already.
func consentObject(v []byte, ud, ap *consent.Status) bool {
	it := jsonscan.Members(v, 0, maxDepth)
	for it.Next() {
		var dst *consent.Status
		switch {
		case jsonscan.Equal(it.Key(), "ad_user_data"):
			dst = ud
		case jsonscan.Equal(it.Key(), "ad_personalization"):
			dst = ap
		default:
			continue
		}
		st, ok := status(it.Value(), it.Kind())
		if !ok {
			return false
		}
		*dst = protective(*dst, st)
	}
	return it.Err() == nil
}

// status reads a consent value: a GRANTED/DENIED string or null.
func status(v []byte, k jsonscan.Kind) (consent.Status, bool) {
	switch k {
	case jsonscan.Null:
		return consent.Unset, true
	case jsonscan.String:
		switch raw := v[1 : len(v)-1]; {
		case jsonscan.EqualFold(raw, "GRANTED"):
			return consent.Granted, true
		case jsonscan.EqualFold(raw, "DENIED"):
			return consent.Denied, true
		}
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

// maxDepth bounds the nesting of objects and arrays (the body's own object is one
// level) so that a hostile body costs bounded work; MP bodies nest four deep.
const maxDepth = 256
