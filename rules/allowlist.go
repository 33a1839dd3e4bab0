// Allow-list compilation: everything the anonymiser decides at config load (which
// names and JSON paths survive, under which rule, what the rewrite sets itself), so
// that a hit costs only lookups. It also refuses an allow-list that would keep an
// identifier as is: an operator cannot switch anonymisation off by config.

package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// DefaultURLParams are the query parameters a URL value keeps: campaign tags say which
// campaign brought a visit, not who made it (their values are scrubbed as free text all
// the same). anonymise.url_params adds more.
var DefaultURLParams = []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id"}

// ClickIDParams are URL query parameters that identify one ad click, and so one person.
// They can never be added to the URL allow-list: a page URL with one of them is as
// identifying as a user ID.
var ClickIDParams = []string{
	"gclid", "dclid", "gbraid", "wbraid", "gclsrc", "_gl", "fbclid", "msclkid", "ttclid",
	"li_fat_id", "twclid", "yclid", "mc_eid", "igshid", "epik", "sccid", "irclid", "_kx",
}

type prefixValue struct {
	prefix string
	value  *Value
}

// jsonNode is one step of the JSON allow-list tree: the kind of a scalar at this path,
// the allowed fields of an object, the element node of an array.
type jsonNode struct {
	value  *Value
	fields map[string]*jsonNode
	elem   *jsonNode
	// order and index are fields sorted for output and each name's place in order,
	// filled by finish (jsonbody.go) once the tree is complete; pages are the places
	// in order of page URLs, which a referrer member is judged against.
	order []jsonField
	index map[string]int
	pages []int
}

// AnonymiseOptions are the anonymise.* settings an anonymiser is compiled with.
type AnonymiseOptions struct {
	// Allow (anonymise.allow.<vendor>) adds names kept as free text: query or form
	// parameter names, and for JSON endpoints also dotted JSON paths.
	Allow []string
	// URLParams (anonymise.url_params) adds query parameters kept inside URL values,
	// besides DefaultURLParams; a click ID is an error.
	URLParams []string
	// PathTemplates (anonymise.path_templates) replace URL path segments always
	// ("/users/{id}" writes "/users/:id"), before the built-in scrubbing.
	PathTemplates []string
	// SiteHosts are the site's own host names (anonymise.site_hosts and the hosts of
	// allowed_origins): a referrer from one of them keeps its path.
	SiteHosts []string
	// DropText (anonymise.free_text: drop) removes free text instead of scrubbing it.
	DropText bool
}

// NewAnonymiser compiles the anonymiser of ep with the default options, plus extraAllow
// and urlParams (see AnonymiseOptions).
func NewAnonymiser(ep *Endpoint, extraAllow, urlParams []string, h *Hasher) (*Anonymiser, error) {
	return NewAnonymiserWith(ep, AnonymiseOptions{Allow: extraAllow, URLParams: urlParams}, h)
}

// NewAnonymiserWith compiles the anonymiser of ep.
//
// A name o.Allow adds is kept as free text. Naming an identifier of the endpoint is an
// error: an operator cannot switch anonymisation off by config. A name that already has
// a kind keeps it (a URL stays a URL, a hashed ID stays hashed).
//
// ep.SetJSON values are JSON scalar literals: `"DENIED"` is a string, `true` a
// boolean, `1` a number, `null` null.
func NewAnonymiserWith(ep *Endpoint, o AnonymiseOptions, h *Hasher) (*Anonymiser, error) {
	a, err := newAnonymiser(ep, o, h)
	if err != nil {
		return nil, fmt.Errorf("rules: anonymiser %s: %w", ep.Name, err)
	}
	return a, nil
}

func newAnonymiser(ep *Endpoint, o AnonymiseOptions, h *Hasher) (*Anonymiser, error) {
	if h == nil {
		return nil, errors.New("no hasher")
	}
	if err := CheckAllowList(ep); err != nil {
		return nil, err
	}
	extraAllow, urlParams := o.Allow, o.URLParams
	a := &Anonymiser{
		name: ep.Name, body: ep.Body, h: h, scope: h.Scope(ep.Vendor), property: ep.Property,
		exact:   make(map[string]*Value, len(ep.Allow)+len(extraAllow)+len(ep.Set)+1),
		urlKeep: map[string]struct{}{},
		json:    &jsonNode{},
		ipParam: ep.IP.Param, ipJSON: ep.IP.JSONField,
		dropText: o.DropText,
	}
	var err error
	if a.templates, a.templateNames, err = compileTemplates(o.PathTemplates); err != nil {
		return nil, err
	}
	for _, host := range o.SiteHosts {
		if host == "" {
			return nil, errors.New("site_hosts: empty host")
		}
		if a.siteHosts == nil {
			a.siteHosts = map[string]struct{}{}
		}
		a.siteHosts[strings.ToLower(host)] = struct{}{}
	}
	for n, v := range ep.Allow {
		a.exact[n] = &v
		a.hashes = a.hashes || v.Kind == KindID
	}
	for p, v := range ep.AllowPrefix {
		a.prefixes = append(a.prefixes, prefixValue{p, &v})
		a.hashes = a.hashes || v.Kind == KindID
	}
	sort.Slice(a.prefixes, func(i, j int) bool {
		pi, pj := a.prefixes[i].prefix, a.prefixes[j].prefix
		if len(pi) != len(pj) {
			return len(pi) > len(pj)
		}
		return pi < pj
	})
	for p, v := range ep.AllowJSON {
		if err := a.json.add(p, &v); err != nil {
			return nil, err
		}
		a.hashes = a.hashes || v.Kind == KindID
	}
	for _, p := range ep.Property {
		if p == "" {
			return nil, errors.New("property: empty name")
		}
		a.propertyFirst[p[0]], a.propertyFirst['%'], a.propertyFirst['+'] = true, true, true
		a.propertyNameMax = max(a.propertyNameMax, len(p))
	}
	for _, p := range ep.PropertyJSON {
		path := strings.Split(p, ".")
		if slices.Contains(path, "") || strings.Contains(p, "[]") {
			return nil, fmt.Errorf("property json: bad path %q: want dotted object fields", p)
		}
		a.propertyJSON = append(a.propertyJSON, path)
	}
	for _, n := range extraAllow {
		if n == "" {
			return nil, errors.New("allow: empty name")
		}
		if id, ok := ep.identifies(n); ok {
			return nil, fmt.Errorf("allow: %q is identifier %q of this endpoint and is never kept", n, id)
		}
		if slices.Contains(ep.ReplyParams, n) {
			return nil, fmt.Errorf("allow: %q asks the vendor for its answer, which an anonymised hit never relays; it is never kept", n)
		}
		// An extension never weakens a built-in kind: "dl" stays a URL, "cid" an ID.
		if _, ok := a.exact[n]; !ok {
			a.exact[n] = &extensionValue
		}
		if ep.Body == BodyJSON {
			if err := a.json.add(n, &extensionValue); err != nil {
				return nil, fmt.Errorf("allow: %w", err)
			}
		}
	}
	for _, n := range ep.ReplyParams {
		a.exact[n] = dropValue // before Set: Set may still write its own value
	}
	for _, p := range ep.Set {
		if p.Name == "" {
			return nil, errors.New("set: empty name")
		}
		a.exact[p.Name] = dropValue
		if len(a.setQuery) > 0 {
			a.setQuery = append(a.setQuery, '&')
		}
		a.setQuery = appendQueryEscape(a.setQuery, p.Name)
		a.setQuery = append(a.setQuery, '=')
		a.setQuery = appendQueryEscape(a.setQuery, p.Value)
	}
	if a.ipParam != "" {
		a.exact[a.ipParam] = dropValue
		a.ipName = appendQueryEscape(nil, a.ipParam)
	}
	a.set = &setNode{kind: setObject, keepInput: true}
	for _, p := range ep.SetJSON {
		path, err := checkSetPath(p.Name)
		if err != nil {
			return nil, err
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(p.Value))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("set_json %s: value %q is not a JSON literal: %w", p.Name, p.Value, err)
		}
		switch v.(type) {
		case map[string]any, []any:
			// Scalars are all consent flags need, and a container would be a subtree
			// that no allow-list reviewed.
			return nil, fmt.Errorf("set_json %s: value %q is not a scalar", p.Name, p.Value)
		}
		lit, err := encodeJSONLiteral(v)
		if err != nil {
			return nil, fmt.Errorf("set_json %s: %w", p.Name, err)
		}
		a.set.add(path, lit)
		a.json.remove(path)
	}
	if a.ipJSON != "" {
		a.json.remove([]string{a.ipJSON})
		a.set.child(a.ipJSON, &setNode{kind: setIP})
	}
	if err := a.set.finish(); err != nil {
		return nil, fmt.Errorf("set_json: %w", err)
	}
	slots, err := a.json.finish()
	if err != nil {
		return nil, fmt.Errorf("allow json: %w", err)
	}
	a.jsonSlots = slots
	for _, p := range DefaultURLParams {
		a.urlKeep[p] = struct{}{}
	}
	for _, p := range urlParams {
		if p == "" {
			return nil, errors.New("url_params: empty name")
		}
		for _, c := range ClickIDParams {
			if strings.EqualFold(p, c) {
				return nil, fmt.Errorf("url_params: %q is a click ID and is never kept", p)
			}
		}
		a.urlKeep[p] = struct{}{}
	}
	return a, nil
}

// CheckAllowList reports an allow-list value that cannot be satisfied or that keeps an
// identifier of ep: KindID (hashed) is the only kind an identifier may have, and every
// KindID must be a listed identifier, so that config can never keep it. A reply
// parameter may have no value at all.
func CheckAllowList(ep *Endpoint) error {
	check := func(kind, name string, v Value, prefix bool) error {
		if err := v.check(); err != nil {
			return fmt.Errorf("%s %q: %w", kind, name, err)
		}
		if v.Kind == KindID {
			if prefix {
				return fmt.Errorf("%s %q: an identifier is hashed by name, never by prefix", kind, name)
			}
			if _, ok := ep.identifies(name); !ok {
				return fmt.Errorf("%s %q is hashed but not listed as an identifier", kind, name)
			}
			return nil
		}
		for _, id := range ep.Identifiers {
			if prefix && prefixMayMatch(name, id) || !prefix && identifierCovers(id, name) {
				return fmt.Errorf("%s %q keeps identifier %q", kind, name, id)
			}
		}
		return nil
	}
	for n, v := range ep.Allow {
		if err := check("allow", n, v, false); err != nil {
			return err
		}
		if slices.Contains(ep.ReplyParams, n) {
			return fmt.Errorf("allow %q keeps reply parameter %q", n, n)
		}
	}
	for n, v := range ep.AllowPrefix {
		if err := check("allow prefix", n, v, true); err != nil {
			return err
		}
	}
	for n, v := range ep.AllowJSON {
		if err := check("allow json", n, v, false); err != nil {
			return err
		}
	}
	return nil
}

// identifies reports the identifier of ep that covers name, if any.
func (ep *Endpoint) identifies(name string) (string, bool) {
	for _, id := range ep.Identifiers {
		if identifierCovers(id, name) {
			return id, true
		}
	}
	return "", false
}

// identifierCovers reports whether the identifier pattern id covers name. A pattern
// may hold one "*" for any text ("ud[*]", "up.*"); a JSON path identifier covers its
// whole subtree ("user_data" covers "user_data.sha256_email_address").
func identifierCovers(id, name string) bool {
	if pre, suf, ok := strings.Cut(id, "*"); ok {
		return len(name) >= len(pre)+len(suf) && strings.HasPrefix(name, pre) && strings.HasSuffix(name, suf)
	}
	if name == id {
		return true
	}
	rest, ok := strings.CutPrefix(name, id)
	return ok && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "[]"))
}

// prefixMayMatch reports whether some name starting with prefix is covered by id.
func prefixMayMatch(prefix, id string) bool {
	if pre, _, ok := strings.Cut(id, "*"); ok {
		return strings.HasPrefix(pre, prefix) || strings.HasPrefix(prefix, pre)
	}
	return strings.HasPrefix(id, prefix)
}

// add puts the kind v at the dotted path p ("events[].params.page_location"), unless
// the path already has one: the first (built-in) kind wins.
func (n *jsonNode) add(p string, v *Value) error {
	if p == "" {
		return errors.New("empty JSON path")
	}
	for _, seg := range strings.Split(p, ".") {
		name, arrays := seg, 0
		for strings.HasSuffix(name, "[]") {
			name, arrays = name[:len(name)-2], arrays+1
		}
		if name == "" || strings.ContainsAny(name, "[]") {
			return fmt.Errorf("bad JSON path %q", p)
		}
		if n.fields == nil {
			n.fields = map[string]*jsonNode{}
		}
		c := n.fields[name]
		if c == nil {
			c = &jsonNode{}
			n.fields[name] = c
		}
		n = c
		for ; arrays > 0; arrays-- {
			if n.elem == nil {
				n.elem = &jsonNode{}
			}
			n = n.elem
		}
	}
	if n.value == nil {
		n.value = v
	}
	return nil
}

// remove deletes the allow-list entry at path, so that only the rewrite sets it.
func (n *jsonNode) remove(path []string) {
	for i, s := range path {
		c := n.fields[s]
		if c == nil {
			return
		}
		if i == len(path)-1 {
			delete(n.fields, s)
			return
		}
		n = c
	}
}
