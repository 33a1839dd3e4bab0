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

// Param is one name=value pair.
type Param struct{ Name, Value string }

// Endpoint is one vendor endpoint of the catalogue: everything the proxy needs to route,
// decide and rewrite a hit for it.
type Endpoint struct {
	Name    string   // unique, e.g. "ga4_collect"
	Vendor  string   // e.g. "ga4"; upstreams.<vendor> and metrics use it
	Paths   []string // paths claimed on the proxy; a trailing "*" claims a prefix
	Methods []string // accepted methods; others get 405 and are counted
	// Upstream is the default base URL ("https://host[:port]"); upstreams.<vendor>
	// replaces it. UpstreamPath is the path sent upstream; empty means the request path.
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
	// Set is added after anonymising (e.g. gcs=G100, npa=1); SetJSON the same for
	// JSON bodies, by dotted path of objects.
	Set     []Param
	SetJSON []Param
	IP      IPPass
	Local   LocalResponse
	// Source documents where the hit format was taken from.
	Source string
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
