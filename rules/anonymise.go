package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Hit is the part of a request that a rewrite sees. The slices belong to the caller and
// are only read.
type Hit struct {
	Query       []byte // raw query string, without '?'
	Body        []byte
	ContentType []byte
}

// Out receives a rewritten request. Anonymise and RewriteForward truncate and refill
// both slices, so a caller that keeps one Out per worker (or in a pool) reaches a steady
// state where the query and form paths allocate nothing.
type Out struct {
	Query []byte
	Body  []byte
}

// Limits on JSON bodies: the proxy caps bodies too (max_body_size), but the anonymiser
// must stay safe on its own, e.g. when fuzzed.
const (
	maxJSONBody  = 1 << 20
	maxJSONDepth = 32
	// maxNameLen bounds percent-encoded parameter names decoded on the stack; a longer
	// encoded name is dropped (no allow-listed name comes near it).
	maxNameLen = 128
)

var (
	errContentType = errors.New("body content type is not form-encoded")
	errBadJSON     = errors.New("body is not a JSON object")
	errJSONDepth   = fmt.Errorf("JSON body nested deeper than %d", maxJSONDepth)
	errJSONSize    = fmt.Errorf("JSON body larger than %d bytes", maxJSONBody)
)

// DefaultURLParams are the query parameters a KeepURL value keeps: campaign tags say
// which campaign brought a visit, not who made it. anonymise.url_params adds more.
var DefaultURLParams = []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id"}

// ClickIDParams are URL query parameters that identify one ad click, and so one person.
// They can never be added to the URL allow-list: a page URL with one of them is as
// identifying as a user ID.
var ClickIDParams = []string{
	"gclid", "dclid", "gbraid", "wbraid", "gclsrc", "_gl", "fbclid", "msclkid", "ttclid",
	"li_fat_id", "twclid", "yclid", "mc_eid", "igshid", "epik", "sccid", "irclid", "_kx",
}

// ruleDrop marks, in the compiled name table, a name that the rewrite sets itself (Set
// or the IP parameter): the hit's own value is always removed, whatever a prefix says.
const ruleDrop Rule = 0xff

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
	setQuery []byte // Set, encoded: "gcs=G100&npa=1"
	setJSON  []jsonSet
	ipParam  string
	ipName   []byte // ipParam, query-encoded
	ipJSON   string
}

type prefixRule struct {
	prefix string
	rule   Rule
}

// jsonNode is one step of the JSON allow-list tree: the rule for a scalar at this
// path, the allowed fields of an object, the element node of an array.
type jsonNode struct {
	rule   Rule
	fields map[string]*jsonNode
	elem   *jsonNode
}

type jsonSet struct {
	path  []string
	value any
}

// NewAnonymiser compiles the anonymiser of ep.
//
// extraAllow (config anonymise.allow[vendor]) adds names kept as is: query or form
// parameter names, and for JSON endpoints also dotted JSON paths. Naming an identifier
// of the endpoint is an error: an operator cannot switch anonymisation off by config.
// A name that already has a rule keeps it (a URL stays cleaned).
// urlParams (config anonymise.url_params) adds query parameters kept inside KeepURL
// values, besides DefaultURLParams; a click ID is an error.
//
// ep.SetJSON values are JSON scalar literals: `"DENIED"` is a string, `true` a
// boolean, `1` a number, `null` null.
func NewAnonymiser(ep *Endpoint, extraAllow, urlParams []string, h *Hasher) (*Anonymiser, error) {
	a, err := newAnonymiser(ep, extraAllow, urlParams, h)
	if err != nil {
		return nil, fmt.Errorf("rules: anonymiser %s: %w", ep.Name, err)
	}
	return a, nil
}

func newAnonymiser(ep *Endpoint, extraAllow, urlParams []string, h *Hasher) (*Anonymiser, error) {
	if h == nil {
		return nil, errors.New("no hasher")
	}
	if err := CheckAllowList(ep); err != nil {
		return nil, err
	}
	a := &Anonymiser{
		name: ep.Name, body: ep.Body, h: h,
		exact:   make(map[string]Rule, len(ep.Allow)+len(extraAllow)+len(ep.Set)+1),
		urlKeep: map[string]struct{}{},
		json:    &jsonNode{},
		ipParam: ep.IP.Param, ipJSON: ep.IP.JSONField,
	}
	for n, r := range ep.Allow {
		a.exact[n] = r
	}
	for p, r := range ep.AllowPrefix {
		a.prefixes = append(a.prefixes, prefixRule{p, r})
	}
	sort.Slice(a.prefixes, func(i, j int) bool {
		pi, pj := a.prefixes[i].prefix, a.prefixes[j].prefix
		if len(pi) != len(pj) {
			return len(pi) > len(pj)
		}
		return pi < pj
	})
	for p, r := range ep.AllowJSON {
		if err := a.json.add(p, r); err != nil {
			return nil, err
		}
	}
	for _, n := range extraAllow {
		if n == "" {
			return nil, errors.New("allow: empty name")
		}
		if id, ok := ep.identifies(n); ok {
			return nil, fmt.Errorf("allow: %q is identifier %q of this endpoint and is never kept", n, id)
		}
		// An extension never weakens a built-in rule: "dl" stays KeepURL, "cid" Hash.
		if _, ok := a.exact[n]; !ok {
			a.exact[n] = Keep
		}
		if ep.Body == BodyJSON {
			if err := a.json.add(n, Keep); err != nil {
				return nil, fmt.Errorf("allow: %w", err)
			}
		}
	}
	for _, p := range ep.Set {
		if p.Name == "" {
			return nil, errors.New("set: empty name")
		}
		a.exact[p.Name] = ruleDrop
		if len(a.setQuery) > 0 {
			a.setQuery = append(a.setQuery, '&')
		}
		a.setQuery = appendQueryEscape(a.setQuery, p.Name)
		a.setQuery = append(a.setQuery, '=')
		a.setQuery = appendQueryEscape(a.setQuery, p.Value)
	}
	if a.ipParam != "" {
		a.exact[a.ipParam] = ruleDrop
		a.ipName = appendQueryEscape(nil, a.ipParam)
	}
	for _, p := range ep.SetJSON {
		path := strings.Split(p.Name, ".")
		for _, s := range path {
			if s == "" || strings.Contains(s, "[]") {
				return nil, fmt.Errorf("set_json: bad path %q: want dotted object fields", p.Name)
			}
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(p.Value))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("set_json %s: value %q is not a JSON literal: %w", p.Name, p.Value, err)
		}
		switch v.(type) {
		case map[string]any, []any:
			// Set values are shared by every hit; a container could be written through
			// by a later path. Scalars are all consent flags need.
			return nil, fmt.Errorf("set_json %s: value %q is not a scalar", p.Name, p.Value)
		}
		a.setJSON = append(a.setJSON, jsonSet{path, v})
		a.json.remove(path)
	}
	if a.ipJSON != "" {
		a.json.remove([]string{a.ipJSON})
	}
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

// CheckAllowList reports an allow-list rule that is unknown or that keeps an identifier
// of ep as is (Keep or KeepURL); Hash is the only rule an identifier may have.
func CheckAllowList(ep *Endpoint) error {
	check := func(kind, name string, r Rule, prefix bool) error {
		if r < Keep || r > Hash {
			return fmt.Errorf("%s %q: unknown rule %d", kind, name, r)
		}
		if r == Hash {
			return nil
		}
		for _, id := range ep.Identifiers {
			if prefix && prefixMayMatch(name, id) || !prefix && identifierCovers(id, name) {
				return fmt.Errorf("%s %q keeps identifier %q as is", kind, name, id)
			}
		}
		return nil
	}
	for n, r := range ep.Allow {
		if err := check("allow", n, r, false); err != nil {
			return err
		}
	}
	for n, r := range ep.AllowPrefix {
		if err := check("allow prefix", n, r, true); err != nil {
			return err
		}
	}
	for n, r := range ep.AllowJSON {
		if err := check("allow json", n, r, false); err != nil {
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

// add puts rule r at the dotted path p ("events[].params.page_location"), unless the
// path already has a rule: the first (built-in) rule wins.
func (n *jsonNode) add(p string, r Rule) error {
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
	if n.rule == 0 {
		n.rule = r
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

// scratchSize is the stack buffer for decoded values (URLs to clean, IDs to hash); a
// longer value spills to the heap for that hit only. A stack buffer rather than a field
// of Out or a sync.Pool: the caller may rebuild Out per hit, and pools drop entries.
const scratchSize = 1024

// Anonymise rewrites hit by the allow-list into out. Parameters and JSON fields with no
// rule are removed; Keep keeps them; KeepURL keeps scheme://host/path and the URL
// allow-list's query parameters (no fragment, user info or path parameters) and removes
// a value that is not an absolute http(s) URL; Hash replaces them by the daily salted
// hash. Then Set/SetJSON replace whatever the hit said, and ip (already truncated; ""
// omits it) is passed as IP.Param / IP.JSONField. The body is rewritten by its kind:
// BodyNone drops it; BodyForm and BodyLines must be form-encoded; BodyJSON must be a
// JSON object. An error means the hit cannot be rewritten safely: drop it.
func (a *Anonymiser) Anonymise(hit *Hit, ip string, out *Out) error {
	out.Query, out.Body = out.Query[:0], out.Body[:0]
	if (a.body == BodyForm || a.body == BodyLines) && len(hit.Body) > 0 && !formContentType(hit.ContentType) {
		return fmt.Errorf("rules: anonymise %s: %w", a.name, errContentType)
	}
	var sbuf [scratchSize]byte
	q, scratch := a.filterPairs(out.Query, hit.Query, sbuf[:0])
	if len(a.setQuery) > 0 {
		if len(q) > 0 {
			q = append(q, '&')
		}
		q = append(q, a.setQuery...)
	}
	out.Query = a.appendIPParam(q, ip)

	switch a.body {
	case BodyForm:
		out.Body, _ = a.filterPairs(out.Body, bytes.TrimRight(hit.Body, "\r\n"), scratch)
	case BodyLines:
		out.Body = a.filterLines(out.Body, hit.Body, scratch)
	case BodyJSON:
		b, err := a.anonymiseJSON(out.Body, hit.Body, ip)
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

var amp, eq = []byte("&"), []byte("=")

// filterPairs appends to dst the '&'-separated pairs of src that the allow-list keeps.
// Names are judged decoded ("cd%5Bvalue%5D" is "cd[value]"), each occurrence on its own.
// A kept value keeps its encoding, minus bytes that could split it upstream. scratch
// is working space for decoded values; it is returned for reuse.
func (a *Anonymiser) filterPairs(dst, src, scratch []byte) ([]byte, []byte) {
	base := len(dst)
	for len(src) > 0 {
		var pair []byte
		pair, src, _ = bytes.Cut(src, amp)
		if len(pair) == 0 {
			continue
		}
		rawName, rawVal, hasVal := bytes.Cut(pair, eq)
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok {
			continue
		}
		switch a.rule(name) {
		case Keep:
			if !validEscapes(rawVal) {
				continue
			}
			dst = appendSep(dst, base)
			dst = appendSafe(dst, rawName)
			if hasVal {
				dst = append(dst, '=')
				dst = appendSafe(dst, rawVal)
			}
		case KeepURL:
			val, start := rawVal, 0
			if needsUnescape(rawVal) {
				var ok bool
				if scratch, ok = appendUnescape(scratch[:0], rawVal); !ok {
					continue
				}
				val, start = scratch, len(scratch)
			}
			clean, ok := a.appendCleanURL(scratch[:start], val)
			scratch = clean[:0]
			if !ok {
				continue
			}
			dst = appendSep(dst, base)
			dst = appendSafe(dst, rawName)
			dst = append(dst, '=')
			dst = appendQueryEscapeBytes(dst, clean[start:])
		case Hash:
			val := rawVal
			if needsUnescape(rawVal) {
				var ok bool
				if scratch, ok = appendUnescape(scratch[:0], rawVal); !ok {
					continue
				}
				val = scratch
			}
			dst = appendSep(dst, base)
			dst = appendSafe(dst, rawName)
			dst = append(dst, '=')
			dst = a.h.AppendHash(dst, val)
		}
	}
	return dst, scratch
}

func appendSep(dst []byte, base int) []byte {
	if len(dst) > base {
		dst = append(dst, '&')
	}
	return dst
}

// filterLines applies the allow-list to each line of a GA4 sendBeacon body. Blank lines
// and lines left with nothing are dropped; lines are joined by "\n".
func (a *Anonymiser) filterLines(dst, body, scratch []byte) []byte {
	base := len(dst)
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		mark := len(dst)
		if mark > base {
			dst = append(dst, '\n')
		}
		n := len(dst)
		dst, scratch = a.filterPairs(dst, line, scratch)
		if len(dst) == n {
			dst = dst[:mark]
		}
	}
	return dst
}

// formContentType accepts what a browser sends for a form-encoded body: the form type,
// text/plain (sendBeacon with a string) or nothing.
func formContentType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	return len(ct) == 0 || bytes.EqualFold(ct, []byte("application/x-www-form-urlencoded")) ||
		bytes.EqualFold(ct, []byte("text/plain"))
}

// decodeName query-decodes a parameter name into buf, or returns raw when it needs no
// decoding. ok is false for a malformed escape or a name too long for buf.
func decodeName(buf, raw []byte) ([]byte, bool) {
	if !needsUnescape(raw) {
		return raw, true
	}
	if len(raw) > cap(buf) {
		return nil, false
	}
	return appendUnescape(buf, raw)
}

func needsUnescape(s []byte) bool {
	return bytes.IndexByte(s, '%') >= 0 || bytes.IndexByte(s, '+') >= 0
}

// appendUnescape appends s decoded as net/url.QueryUnescape does ("+" is a space).
func appendUnescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return dst, false
			}
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case '+':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

func validEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

const upperHex = "0123456789ABCDEF"

// appendSafe copies raw query text, escaping the bytes that a lenient upstream parser
// could read as a separator or that are not valid in a query: a kept value must stay
// one value.
func appendSafe(dst, raw []byte) []byte {
	for _, c := range raw {
		if c <= ' ' || c >= 0x7f || c == '#' || c == ';' || c == '"' || c == '<' || c == '>' || c == '\\' {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func shouldEscape(c byte) bool {
	return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~')
}

// appendQueryEscape appends s encoded as net/url.QueryEscape does.
func appendQueryEscape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = appendQueryEscapeByte(dst, s[i])
	}
	return dst
}

func appendQueryEscapeBytes(dst, s []byte) []byte {
	for _, c := range s {
		dst = appendQueryEscapeByte(dst, c)
	}
	return dst
}

func appendQueryEscapeByte(dst []byte, c byte) []byte {
	switch {
	case c == ' ':
		return append(dst, '+')
	case shouldEscape(c):
		return append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return append(dst, c)
}

// appendCleanURL appends u reduced to scheme://host[:port]/path plus the query
// parameters on the URL allow-list. ok is false, and the value must go, when u is not
// an absolute http(s) URL with a plausible host. User info, the fragment and path
// parameters (";jsessionid=...") are dropped: they carry session and person IDs.
func (a *Anonymiser) appendCleanURL(dst, u []byte) ([]byte, bool) {
	u = bytes.TrimSpace(u)
	i := bytes.Index(u, []byte("://"))
	if i < 0 {
		return dst, false
	}
	var scheme string
	switch s := u[:i]; {
	case bytes.EqualFold(s, []byte("https")):
		scheme = "https://"
	case bytes.EqualFold(s, []byte("http")):
		scheme = "http://"
	default:
		return dst, false
	}
	rest := u[i+3:]
	end := len(rest)
	for j, c := range rest {
		if c == '/' || c == '?' || c == '#' || c == '\\' {
			end = j
			break
		}
	}
	host, rest := rest[:end], rest[end:]
	if at := bytes.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if !validHost(host) || len(rest) > 0 && rest[0] == '\\' {
		return dst, false
	}
	end = len(rest)
	for j, c := range rest {
		if c == '?' || c == '#' {
			end = j
			break
		}
	}
	path, rest := rest[:end], rest[end:]
	dst = append(dst, scheme...)
	dst = append(dst, host...)
	for len(path) > 0 { // drop ";params" of each segment
		semi := bytes.IndexByte(path, ';')
		if semi < 0 {
			dst = append(dst, path...)
			break
		}
		dst = append(dst, path[:semi]...)
		path = path[semi:]
		if slash := bytes.IndexByte(path, '/'); slash >= 0 {
			path = path[slash:]
		} else {
			path = nil
		}
	}
	if len(rest) == 0 || rest[0] != '?' {
		return dst, true
	}
	query := rest[1:]
	if h := bytes.IndexByte(query, '#'); h >= 0 {
		query = query[:h]
	}
	sep := byte('?')
	for len(query) > 0 {
		var pair []byte
		if j := bytes.IndexByte(query, '&'); j >= 0 {
			pair, query = query[:j], query[j+1:]
		} else {
			pair, query = query, nil
		}
		rawName := pair
		if j := bytes.IndexByte(pair, '='); j >= 0 {
			rawName = pair[:j]
		}
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok || len(name) == 0 {
			continue
		}
		if _, keep := a.urlKeep[string(name)]; keep && validEscapes(pair) {
			dst = append(dst, sep)
			dst = append(dst, pair...)
			sep = '&'
		}
	}
	return dst, true
}

// validHost accepts a registered name, IPv4 or bracketed IPv6 host with an optional
// port, and IDN bytes; anything else means the value is not a URL we understand.
func validHost(h []byte) bool {
	if len(h) == 0 || h[0] == ':' {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		case c == '-', c == '.', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// anonymiseJSON appends to dst the JSON body reduced to the allow-listed paths, with
// SetJSON and the IP field applied. An empty body stays empty.
func (a *Anonymiser) anonymiseJSON(dst, body []byte, ip string) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return dst, nil
	}
	doc, err := decodeJSONObject(body)
	if err != nil {
		return dst, err
	}
	var scratch []byte
	a.filterObject(a.json, doc, &scratch, true)
	for _, s := range a.setJSON {
		m := doc
		for _, k := range s.path[:len(s.path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[s.path[len(s.path)-1]] = s.value
	}
	if a.ipJSON != "" {
		delete(doc, a.ipJSON)
		if ip != "" {
			doc[a.ipJSON] = ip
		}
	}
	w := sliceWriter{dst}
	enc := json.NewEncoder(&w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return dst, err
	}
	return bytes.TrimSuffix(w.b, []byte{'\n'}), nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// decodeJSONObject parses a JSON object, with numbers kept verbatim (json.Number) so
// that timestamps in microseconds survive.
func decodeJSONObject(body []byte) (map[string]any, error) {
	if len(body) > maxJSONBody {
		return nil, errJSONSize
	}
	if jsonDepth(body) > maxJSONDepth {
		return nil, errJSONDepth
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the object", errBadJSON)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errBadJSON
	}
	return doc, nil
}

// jsonDepth is the deepest nesting of objects and arrays in b, strings skipped.
func jsonDepth(b []byte) int {
	depth, max, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if depth++; depth > max {
				max = depth
			}
		case '}', ']':
			depth--
		}
	}
	return max
}

// filterObject keeps the allowed fields of m under node n, in place. It reports whether
// anything is left; an emptied object is dropped by its parent, the root is kept.
func (a *Anonymiser) filterObject(n *jsonNode, m map[string]any, sp *[]byte, root bool) bool {
	for k, v := range m {
		c := n.fields[k]
		if c == nil {
			delete(m, k)
			continue
		}
		nv, ok := a.filterJSON(c, v, sp)
		if !ok {
			delete(m, k)
			continue
		}
		m[k] = nv
	}
	return root || len(m) > 0
}

// filterJSON applies node n to one value. Rules apply to scalars only: an object or
// array survives only through allowed children, so allowing a path never keeps an
// unreviewed subtree wholesale.
func (a *Anonymiser) filterJSON(n *jsonNode, v any, sp *[]byte) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		if n.fields == nil {
			return nil, false
		}
		return x, a.filterObject(n, x, sp, false)
	case []any:
		if n.elem == nil {
			return nil, false
		}
		out := x[:0]
		for _, e := range x {
			if ev, ok := a.filterJSON(n.elem, e, sp); ok {
				out = append(out, ev)
			}
		}
		clear(x[len(out):])
		return out, len(out) > 0
	case string:
		switch n.rule {
		case Keep:
			return x, true
		case KeepURL:
			b, ok := a.appendCleanURL((*sp)[:0], []byte(x))
			*sp = b[:0]
			if !ok {
				return nil, false
			}
			return string(b), true
		case Hash:
			return hashString(a.h, x, sp), true
		}
	case json.Number:
		switch n.rule {
		case Keep:
			return x, true
		case Hash:
			return hashString(a.h, string(x), sp), true
		}
	case bool, nil:
		if n.rule == Keep {
			return x, true
		}
	}
	return nil, false
}

func hashString(h *Hasher, s string, sp *[]byte) string {
	b := append((*sp)[:0], s...)
	b = h.AppendHash(b, b)
	*sp = b[:0]
	return string(b[len(s):])
}

// RewriteForward prepares a consented hit: query and body pass unchanged except for the
// IP pass. Whatever IP.Param or IP.JSONField the browser sent is removed and ip (the
// full client IP; "" = none) is put in its place, so a browser cannot choose the IP the
// vendor sees. changed is false when nothing needed rewriting: the caller then sends
// the original bytes and out is not filled. A body that cannot be rewritten safely is
// an error: drop the hit.
func (a *Anonymiser) RewriteForward(hit *Hit, ip string, out *Out) (changed bool, err error) {
	if a.ipParam == "" && (a.ipJSON == "" || a.body != BodyJSON) {
		return false, nil
	}
	out.Query, out.Body = out.Query[:0], out.Body[:0]
	if a.ipParam != "" {
		var removed bool
		out.Query, removed = a.removeParam(out.Query, hit.Query)
		out.Query = a.appendIPParam(out.Query, ip)
		changed = removed || ip != ""
		switch a.body {
		case BodyForm:
			out.Body, removed = a.removeParam(out.Body, hit.Body)
			changed = changed || removed
		case BodyLines:
			body := hit.Body
			for {
				line, rest, more := bytes.Cut(body, []byte{'\n'})
				out.Body, removed = a.removeParam(out.Body, line)
				changed = changed || removed
				if !more {
					break
				}
				out.Body = append(out.Body, '\n')
				body = rest
			}
		}
	} else {
		out.Query = append(out.Query, hit.Query...)
	}
	if a.ipJSON != "" && a.body == BodyJSON {
		var c bool
		out.Body, c, err = rewriteJSONField(out.Body, hit.Body, a.ipJSON, ip)
		if err != nil {
			out.Query, out.Body = out.Query[:0], out.Body[:0]
			return false, fmt.Errorf("rules: forward %s: %w", a.name, err)
		}
		changed = changed || c
	} else if a.body != BodyForm && a.body != BodyLines {
		out.Body = append(out.Body, hit.Body...)
	}
	return changed, nil
}

// removeParam appends the pairs of src except those named a.ipParam; pairs are copied
// verbatim and empty ones dropped.
func (a *Anonymiser) removeParam(dst, src []byte) ([]byte, bool) {
	base, removed := len(dst), false
	for len(src) > 0 {
		var pair []byte
		pair, src, _ = bytes.Cut(src, amp)
		if len(pair) == 0 {
			continue
		}
		rawName, _, _ := bytes.Cut(pair, eq)
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if ok && string(name) == a.ipParam {
			removed = true
			continue
		}
		dst = appendSep(dst, base)
		dst = append(dst, pair...)
	}
	return dst, removed
}

// rewriteJSONField appends body with every top-level member named field removed and,
// when ip is set, "field":"ip" as the first member. The rest is copied byte for byte:
// a consented hit reaches the vendor as the browser wrote it. Names match loosely
// (looseFieldName): protobuf-backed JSON APIs such as the Measurement Protocol also
// accept "ipOverride" for "ip_override", and the browser must not get through that way.
func rewriteJSONField(dst, body []byte, field, ip string) ([]byte, bool, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return append(dst, body...), false, nil
	}
	if len(body) > maxJSONBody {
		return dst, false, errJSONSize
	}
	if t[0] != '{' || !json.Valid(t) {
		return dst, false, errBadJSON
	}
	type span struct{ from, to int }
	var kept [16]span
	members := kept[:0]
	removed := false
	i := skipWS(t, 1)
	for i < len(t) && t[i] != '}' {
		from := i
		keyEnd := skipString(t, i)
		key := t[i+1 : keyEnd-1]
		var match bool
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(t[i:keyEnd], &k); err != nil {
				return dst, false, fmt.Errorf("%w: %w", errBadJSON, err)
			}
			match = looseFieldName(k, field)
		} else {
			match = looseFieldName(string(key), field)
		}
		i = skipWS(t, keyEnd)
		i = skipWS(t, i+1) // ':'
		i = skipValue(t, i)
		if match {
			removed = true
		} else {
			members = append(members, span{from, i})
		}
		i = skipWS(t, i)
		if i < len(t) && t[i] == ',' {
			i = skipWS(t, i+1)
		}
	}
	if !removed && ip == "" {
		return append(dst, body...), false, nil
	}
	dst = append(dst, '{')
	if ip != "" {
		dst = appendJSONString(dst, field)
		dst = append(dst, ':')
		dst = appendJSONString(dst, ip)
	}
	for _, m := range members {
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = append(dst, t[m.from:m.to]...)
	}
	return append(dst, '}'), true, nil
}

// looseFieldName reports whether a and b are equal ignoring ASCII case and underscores.
func looseFieldName(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && a[i] == '_' {
			i++
		}
		for j < len(b) && b[j] == '_' {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		ca, cb := a[i], b[j]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
		i, j = i+1, j+1
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'. b is valid JSON.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i]. b is valid JSON.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// appendJSONString appends s as a JSON string; used for field names and IP text.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
