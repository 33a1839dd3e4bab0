package rules

import (
	"strings"
)

// The one maintained list of parameter names that identify a person, or that carry a
// credential, as far as config is concerned: anonymise.url_params and anonymise.allow may
// never keep one, whatever the vendor. The catalogue's own allow-lists are held to each
// endpoint's Identifiers instead (CheckAllowList), since there some of these names are
// kept hashed.

// identifierNames are whole names: click and campaign-recipient IDs that ad and e-mail
// platforms append to landing-page URLs. Sources: each platform's documentation of its
// auto-tagging parameter (Google Ads gclid/gbraid/wbraid and Merchant Center srsltid,
// Microsoft msclkid, Meta fbclid, TikTok ttclid, Reddit rdt_cid, Snapchat ScCid, Quora
// qclid, Adobe Advertising ef_id/s_kwcid, HubSpot _hsenc/_hsmi, Mailchimp mc_eid, Yandex
// yclid, Twitter twclid, LinkedIn li_fat_id, Pinterest epik, Impact irclid).
var identifierNames = append([]string{
	"srsltid", "rdt_cid", "qclid", "ef_id", "s_kwcid", "_hsenc", "_hsmi", "mc_cid",
	"vero_id", "mkt_tok", "_branch_match_id", "ir_clickid", "cjevent", "wickedid", "sid",
	"cid", "uid", "ip", "ssn", "dob",
}, ClickIDParams...)

// identifierPrefixes start families of such names (Olytics oly_enc_id, oly_anon_id).
var identifierPrefixes = []string{"oly_", "_ga", "_gl", "__hs", "utm_id_"}

// identifierParts are words that make any name containing them identifying or secret:
// "ep.customer_email", "userId", "reset_token", "session_key".
var identifierParts = []string{
	"email", "e-mail", "mail", "token", "user", "session", "phone", "mobile", "address",
	"password", "passwd", "secret", "auth", "login", "account", "customer", "member",
	"visitor", "person", "profile", "contact", "firstname", "first_name", "lastname",
	"last_name", "fullname", "full_name", "surname", "birth", "street", "postcode", "zip",
	"iban", "card", "ssn", "uuid", "guid", "clid", "click", "fingerprint", "device_id",
	"deviceid", "idfa", "gaid", "adid",
}

// identifierPartsExact are short words that identify only as a whole part of a name
// (split at '.', '_', '-', '[', ']' and camelCase): "ep.uid", "visitor_id", not "fluid".
var identifierPartsExact = []string{"uid", "ip", "sid", "cid", "vid", "dob", "tel", "ref"}

// IdentifierName says why name must never be kept as is ("" when it may).
func IdentifierName(name string) string {
	lower := strings.ToLower(name)
	for _, n := range identifierNames {
		if lower == strings.ToLower(n) {
			return "it is a click or visitor ID"
		}
	}
	for _, p := range identifierPrefixes {
		if strings.HasPrefix(lower, p) {
			return "names starting with " + p + " are click or visitor IDs"
		}
	}
	for _, w := range identifierParts {
		if strings.Contains(lower, w) {
			return "a name containing \"" + w + "\" carries personal data or a credential"
		}
	}
	for _, part := range nameParts(name) {
		for _, w := range identifierPartsExact {
			if part == w {
				return "a name with the part \"" + w + "\" identifies a person or a visit"
			}
		}
	}
	return ""
}

// nameParts splits a parameter name into lower-case words at punctuation and at
// lower-to-upper case changes ("customerEmail" → customer, email).
func nameParts(name string) []string {
	var parts []string
	start := 0
	flush := func(end int) {
		if end > start {
			parts = append(parts, strings.ToLower(name[start:end]))
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.' || c == '_' || c == '-' || c == '[' || c == ']' || c == ' ':
			flush(i)
			start = i + 1
		case i > start && c >= 'A' && c <= 'Z' && name[i-1] >= 'a' && name[i-1] <= 'z':
			flush(i)
			start = i
		}
	}
	flush(len(name))
	return parts
}
