package rules

import (
	"github.com/consentgate/consentgate/internal/enum"

	"github.com/consentgate/consentgate/consent"
)

// Action is what happens to a hit. The order is the order of protection: when several
// purposes disagree, the largest Action wins.
type Action uint8

const (
	Forward Action = iota
	Anonymise
	Drop
	NumActions
)

var actionNames = enum.New("action", NumActions, "forward", "anonymise", "drop")

func (a Action) String() string { return actionNames.String(a) }

// ParseAction maps an action name to its value.
func ParseAction(s string) (Action, bool) { return actionNames.Parse(s) }

// ActionNames lists the action names in index order.
func ActionNames() []string { return actionNames.List() }

// BodyKind says how an endpoint's request body is shaped, so the anonymiser knows how to
// rewrite it. A body it cannot parse as declared is never forwarded anonymised.
type BodyKind uint8

const (
	BodyNone  BodyKind = iota // parameters only in the query string; a body is not relayed when anonymising
	BodyForm                  // application/x-www-form-urlencoded body (or query-shaped text/plain)
	BodyLines                 // GA4 sendBeacon: one url-encoded parameter set per line
	BodyJSON                  // a JSON document
)

// LocalResponse is what the browser gets when nothing is relayed from upstream: after a
// drop, or when the upstream failed.
type LocalResponse uint8

const (
	NoContent LocalResponse = iota // 204
	GIF                            // 200 with a 1×1 transparent GIF, for image pixels
)

// IPPass says how the vendor learns the visitor's IP from a proxied hit. Every field set
// is used; a parameter or field of the same name that the hit itself carries is replaced,
// so a browser cannot choose the IP the vendor sees.
type IPPass struct {
	Header    string // request header, e.g. "X-Forwarded-For"
	Param     string // query parameter, e.g. GA4 "_uip"
	JSONField string // top-level JSON field, e.g. GA4 Measurement Protocol "ip_override"
}

// VisitorFields name the top-level JSON fields of a server-side hit that say who the
// visitor is: the visitor's IP, else a location object with ISO country and region codes.
type VisitorFields struct {
	IP       string // e.g. GA4 MP "ip_override"
	Location string // e.g. GA4 MP "user_location"
	Country  string // in Location, ISO 3166-1 alpha-2, e.g. "country_id"
	Region   string // in Location, ISO 3166-2, e.g. "region_id"
}

// Param is one name=value pair.
type Param struct{ Name, Value string }

// Endpoint is one vendor endpoint of the catalogue: everything the proxy needs to route,
// decide and rewrite a hit for it.
type Endpoint struct {
	Name    string   // unique, e.g. "ga4_collect"
	Vendor  string   // e.g. "ga4"; upstreams.<vendor> and metrics use it
	Paths   []string // paths claimed on the proxy; a trailing "*" claims a prefix (then PathTail is required)
	Methods []string // accepted methods; others get 405 and are counted
	// Upstream is the default base URL ("https://host[:port]"); upstreams.<vendor>
	// replaces it. UpstreamPath is the path sent upstream, taken from here and never from
	// the request: empty means the claimed path the hit matched (one of Paths), or the
	// first of Paths for a route the config adds. With a PathTail, UpstreamPath is what
	// comes before the rebuilt tail.
	Upstream     string
	UpstreamPath string
	Purposes     []consent.Purpose // every purpose the endpoint needs; the most protective outcome wins
	Body         BodyKind
	// ConsentMode: the hit carries Google Consent Mode signals that may tighten the stored
	// consent: gcs, gcd and npa parameters, or a Measurement Protocol body's consent{}.
	ConsentMode bool
	// Identifiers names the parameters (or JSON paths) that identify a person. The
	// allow-lists never keep one of them as is; the leak tests check every one.
	Identifiers []string
	// Allow is the anonymise allow-list of parameter names (query, form, lines), each
	// with the kind its value must have (kinds.go); a parameter not listed is removed,
	// anonymisation is by allow-list, never by deny-list. AllowPrefix is the same for
	// name prefixes (e.g. "cd[" for Meta custom data); AllowJSON for JSON bodies, by
	// dotted path with "[]" for array elements ("events[].params.page_location").
	Allow       map[string]Value
	AllowPrefix map[string]Value
	AllowJSON   map[string]Value
	// Property names the parameters (query or form; for JSON bodies, PropertyJSON names
	// dotted paths of object fields) that say which of the vendor's properties the hit is
	// for: a GA4 measurement ID, a pixel ID, a Matomo site. Pseudonyms are keyed by
	// vendor and property, so one visitor's ID under two properties gives two unrelated
	// pseudonyms. Every endpoint with a KindID value names one; a hit that names two
	// different properties is not anonymised (errPropertyConflict).
	Property     []string
	PropertyJSON []string
	// Set is added after anonymising (e.g. gcs=G100, npa=1); SetJSON the same for
	// JSON bodies, by dotted path of objects.
	Set     []Param
	SetJSON []Param
	// ReplyParams are parameters that ask the vendor for a particular answer: a
	// response stream, a redirect, a script. An anonymised hit is answered locally, so
	// what they ask for is never wanted; they are never kept when anonymising, whatever
	// a prefix or an operator's allow-list says. Set may still set one to a fixed value.
	ReplyParams []string
	IP          IPPass
	// Visitor, for a server-side endpoint, names where the body states the visitor a
	// site's backend sends the hit for; empty for hits a browser sends itself.
	Visitor VisitorFields
	Local   LocalResponse
	// Source documents where the hit format was taken from.
	Source string

	// PathTail is what the vendor's tag puts after a claimed prefix, in the vendor's own
	// form: literal text and {name:kind} segments (see SegmentKind), e.g.
	// "{conversion_id:digits}/". Required of an endpoint that claims a prefix and only of
	// such. The raw request path after the prefix must match it exactly (a final "/" may
	// be missing); anything else is dropped (bad_path). Upstream gets UpstreamPath and the
	// tail rebuilt from the pattern and the checked, re-encoded segments.
	PathTail string
}

// Builtin returns the built-in catalogue. The slice and its maps are shared: callers must
// not modify them.
func Builtin() []Endpoint { return builtin }

// VendorNames lists the vendors of the built-in catalogue, in catalogue order, each once.
func VendorNames() []string {
	var names []string
	seen := map[string]bool{}
	for i := range builtin {
		if v := builtin[i].Vendor; !seen[v] {
			seen[v] = true
			names = append(names, v)
		}
	}
	return names
}

// EndpointByName finds a built-in endpoint by name.
func EndpointByName(name string) (*Endpoint, bool) {
	for i := range builtin {
		if builtin[i].Name == name {
			return &builtin[i], true
		}
	}
	return nil, false
}

// vendorGVL holds the IAB Global Vendor List IDs of catalogue vendors that are on the
// GVL. Meta, TikTok's pixel, Matomo and Plausible are not listed: Meta and TikTok do not
// take part in TCF for these tags, and the analytics tools are the site's own. A site
// sets or clears one with signals.tcf.vendors.
var vendorGVL = map[string]int{
	"ga4":        755,  // Google Advertising Products
	"google_ads": 755,  // Google Advertising Products
	"bing":       1126, // Microsoft Advertising
	"linkedin":   804,  // LinkedIn Ireland Unlimited Company
}

// VendorGVLID is the built-in Global Vendor List ID of a catalogue vendor; 0 if none.
func VendorGVLID(vendor string) int { return vendorGVL[vendor] }
