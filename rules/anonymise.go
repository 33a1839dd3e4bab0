// The anonymiser: the type compiled per endpoint and its Anonymise entry point, which
// hands each part of a hit (query, form or line body, JSON body) to the file that owns
// that concern. The anonymiser is split by concern so that each rule of "anonymise by
// allow-list, build, never copy" can be read and tested on its own: allowlist.go
// compiles, pairs.go filters query pairs, escape.go encodes, urls.go cleans URLs,
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
}

// Anonymiser rewrites the hits of one endpoint by its allow-list. It is compiled once
// per endpoint at config load and is read-only afterwards, so hits share it freely.
type Anonymiser struct {
	name     string
	body     BodyKind
	h        *Hasher
	exact    map[string]Rule
	prefixes []prefixRule // longest first
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
}

// scratchSize is the stack buffer for decoded values (URLs to clean, IDs to hash); a
// longer value spills to the heap for that hit only. A stack buffer rather than a field
// of Out or a sync.Pool: the caller may rebuild Out per hit, and pools drop entries.
const scratchSize = 1024

// Anonymise rewrites hit by the allow-list into out. Parameters and JSON fields with no
// rule are removed; Keep keeps them; KeepURL keeps scheme://host/path and the URL
// allow-list's query parameters (no fragment, user info or path parameters) and removes
// a value that is not an absolute http(s) URL; Hash replaces them by the daily salted
// hash, keyed by the vendor and the hit's property (a hit naming two properties is an
// error). Then Set/SetJSON replace whatever the hit said, and ip (already truncated; ""
// omits it) is passed as IP.Param / IP.JSONField. The body is rewritten by its kind:
// BodyNone drops it; BodyForm and BodyLines must be form-encoded; BodyJSON must be a
// JSON object. An error means the hit cannot be rewritten safely: drop it.
func (a *Anonymiser) Anonymise(hit *Hit, ip string, out *Out) error {
	out.Query, out.Body = out.Query[:0], out.Body[:0]
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
	q, scratch := a.filterPairs(out.Query, hit.Query, sbuf[:0], &key)
	if len(a.setQuery) > 0 {
		if len(q) > 0 {
			q = append(q, '&')
		}
		q = append(q, a.setQuery...)
	}
	out.Query = a.appendIPParam(q, ip)

	switch a.body {
	case BodyForm:
		out.Body, _ = a.filterPairs(out.Body, bytes.TrimRight(hit.Body, "\r\n"), scratch, &key)
	case BodyLines:
		out.Body = a.filterLines(out.Body, hit.Body, scratch, &key)
	case BodyJSON:
		b, err := a.anonymiseJSON(out.Body, hit.Body, ip, scratch, &key)
		if err != nil {
			out.Query, out.Body = out.Query[:0], out.Body[:0]
			return fmt.Errorf("rules: anonymise %s: %w", a.name, err)
		}
		out.Body = b
	}
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

// rule is the rule for a decoded parameter name; 0 removes it.
func (a *Anonymiser) rule(name []byte) Rule {
	if r, ok := a.exact[string(name)]; ok {
		if r == ruleDrop {
			return 0
		}
		return r
	}
	for _, p := range a.prefixes {
		if len(name) >= len(p.prefix) && string(name[:len(p.prefix)]) == p.prefix {
			return p.rule
		}
	}
	return 0
}
