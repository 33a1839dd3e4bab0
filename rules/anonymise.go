// The anonymiser: the type compiled per endpoint and its Anonymise entry point, which
// hands each part of a hit (query, form or line body, JSON body) to the file that owns
// that concern. The anonymiser is split by concern so that each rule of "anonymise by
// allow-list, build, never copy" can be read and tested on its own: allowlist.go
// compiles, kinds.go checks each kept value against its declared kind, pairs.go filters
// query pairs, escape.go encodes, urls.go scrubs URLs, scrub.go scrubs free text,
// jsonbody.go rebuilds JSON bodies, forward.go prepares consented hits.

package rules

import (
	"bytes"
	"fmt"
)

// Hit is the part of a request that a rewrite sees. The slices belong to the caller and
// are only read.
type Hit struct {
	Query       []byte // raw query string, without '?'
	Body        []byte
	ContentType []byte
	// Site is the host the hit was sent to, without port: the site's first-party proxy
	// host. Pseudonyms are bound to it (property.go).
	Site []byte
}

// Out receives a rewritten request. Anonymise and RewriteForward truncate and refill
// both slices, so a caller that keeps one Out per worker (or in a pool) reaches a steady
// state where the query and form paths allocate nothing.
type Out struct {
	Query []byte
	Body  []byte
	// Removed counts, by kind, the allow-listed values Anonymise removed because they
	// did not fit their kind (a currency that is not three letters, a URL that is not
	// one). The proxy adds them to consentgate_anonymise_removed_total.
	Removed [NumKinds]uint32
}

// Anonymiser rewrites the hits of one endpoint by its allow-list. It is compiled once
// per endpoint at config load and is read-only afterwards, so hits share it freely.
type Anonymiser struct {
	name     string
	body     BodyKind
	h        *Hasher
	exact    map[string]*Value
	prefixes []prefixValue // longest first
	urlKeep  map[string]struct{}
	json     *jsonNode
	set      *setNode // SetJSON and the IP field, written over the filtered JSON body
	setQuery []byte   // Set, encoded: "gcs=G100&npa=1"
	ipParam  string
	ipName   []byte // ipParam, query-encoded
	ipJSON   string
	// jsonSlots is the working space anonymiseJSON needs (jsonNode.finish).
	jsonSlots int

	// hashes: some rule is Hash, so a hit needs a HashKey; scope is the fixed part of
	// its derivation (vendor, secret), property and propertyJSON where the hit names
	// its property (property.go).
	hashes       bool
	scope        []byte
	property     []string
	propertyJSON [][]string
	// propertyFirst holds the bytes a raw parameter name can start with and still decode
	// to a property name ('%', '+' and the names' first bytes), propertyNameMax the
	// longest property name.
	propertyFirst   [256]bool
	propertyNameMax int

	// siteHosts are the site's hosts, lower-cased (AnonymiseOptions.SiteHosts).
	siteHosts map[string]struct{}
	// templates are anonymise.path_templates; templateNames their placeholders.
	templates     []pathTemplate
	templateNames []string
	dropText      bool // anonymise.free_text: drop
}

// scratchSize is the stack buffer for decoded values (URLs to clean, IDs to hash); a
// longer value spills to the heap for that hit only. A stack buffer rather than a field
// of Out or a sync.Pool: the caller may rebuild Out per hit, and pools drop entries.
const scratchSize = 1024

// Anonymise rewrites hit by the allow-list into out. Parameters and JSON fields with no
// kind are removed; every other value is checked against its kind (kinds.go) and kept
// in the form the kind writes: numbers, tokens and enums as they are, IDs as the daily
// salted hash keyed by the vendor, the hit's property and its site (a hit naming two
// properties is an error), languages as the primary subtag, screen sizes rounded down,
// URLs and free text scrubbed. A value that does not fit is removed and counted in
// out.Removed. Then Set/SetJSON replace whatever the hit said, and ip (already
// truncated; "" omits it) is passed as IP.Param / IP.JSONField. The body is rewritten by
// its kind: BodyNone drops it; BodyForm and BodyLines must be form-encoded; BodyJSON
// must be a JSON object. An error means the hit cannot be rewritten safely: drop it.
func (a *Anonymiser) Anonymise(hit *Hit, ip string, out *Out) error {
	out.Query, out.Body, out.Removed = out.Query[:0], out.Body[:0], [NumKinds]uint32{}
	if (a.body == BodyForm || a.body == BodyLines) && len(hit.Body) > 0 && !formContentType(hit.ContentType) {
		return fmt.Errorf("rules: anonymise %s: %w", a.name, errContentType)
	}
	var key HashKey
	if a.hashes {
		var err error
		if key, err = a.hashKey(hit); err != nil {
			return fmt.Errorf("rules: anonymise %s: %w", a.name, err)
		}
	}
	var sbuf [scratchSize]byte
	st := hitState{hit: hit, key: &key}
	q, scratch := a.filterPairs(out.Query, hit.Query, sbuf[:0], &st)
	if len(a.setQuery) > 0 {
		if len(q) > 0 {
			q = append(q, '&')
		}
		q = append(q, a.setQuery...)
	}
	out.Query = a.appendIPParam(q, ip)

	switch a.body {
	case BodyForm:
		out.Body, _ = a.filterPairs(out.Body, bytes.TrimRight(hit.Body, "\r\n"), scratch, &st)
	case BodyLines:
		out.Body = a.filterLines(out.Body, hit.Body, scratch, &st)
	case BodyJSON:
		b, err := a.anonymiseJSON(out.Body, hit.Body, ip, scratch, &st)
		if err != nil {
			out.Query, out.Body = out.Query[:0], out.Body[:0]
			return fmt.Errorf("rules: anonymise %s: %w", a.name, err)
		}
		out.Body = b
	}
	out.Removed = st.removed
	return nil
}

func (a *Anonymiser) appendIPParam(q []byte, ip string) []byte {
	if a.ipParam == "" || ip == "" {
		return q
	}
	if len(q) > 0 {
		q = append(q, '&')
	}
	q = append(q, a.ipName...)
	q = append(q, '=')
	return appendQueryEscape(q, ip)
}

// value is the kind of a decoded parameter name; nil removes it.
func (a *Anonymiser) value(name []byte) *Value {
	if v, ok := a.exact[string(name)]; ok {
		if v == dropValue {
			return nil
		}
		return v
	}
	for _, p := range a.prefixes {
		if len(name) >= len(p.prefix) && string(name[:len(p.prefix)]) == p.prefix {
			return p.value
		}
	}
	return nil
}
