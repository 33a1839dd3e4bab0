package proxy

// Where the generative leak test (leak_generative_test.go) plants a canary in a hit, and
// how it builds the hit around it. A position is a place in the request (a parameter,
// a JSON path, a header, the path) and, for URL and text values, a place inside the
// value (path segment, query, utm_*, fragment, userinfo, host; inside a sentence).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/consentgate/consentgate/internal/canary"
	"github.com/consentgate/consentgate/internal/corpus"
	"github.com/consentgate/consentgate/rules"
)

// Where a position lives in the request.
const (
	inQuery  = "query"
	inBody   = "body" // a form body, or the first line of a GA4 beacon body
	inJSON   = "json"
	inHeader = "header"
	inCookie = "cookie"
	inPath   = "path"
	inTarget = "target" // the request-target after the query (a fragment)
)

// position is one place a canary is planted.
type position struct {
	// Class groups positions for the report: "param:text", "url:path", "header:Referer"...
	Class string
	Where string
	// Name is the parameter, dotted JSON path or header name.
	Name string
	// Field is the catalogue's declaration of the field, when it has one.
	Field *rules.Value
	// Identifier: the catalogue lists the field as an identifier of the vendor.
	Identifier bool
	// IPField: the vendor's IP field, which the proxy always writes itself.
	IPField bool
	// embed builds the value around the canary (nil: the canary itself).
	embed func(c canary.Canary) string
	// clickOnly: the position exists for click IDs (a parameter named after one).
	clickOnly bool
}

func (p position) value(c canary.Canary) string {
	if p.embed == nil {
		return c.Value
	}
	return p.embed(c)
}

// urlShapes are the places inside a URL value a canary goes: each builds the URL
// around the canary's value.
var urlShapes = []struct {
	class string
	embed func(c canary.Canary) string
}{
	{"url:path", func(c canary.Canary) string { return "https://shop.example.com/account/" + c.Value + "/orders" }},
	{"url:query", func(c canary.Canary) string {
		name := "q"
		if c.Click != "" {
			name = c.Click
		}
		return "https://shop.example.com/p?" + name + "=" + url.QueryEscape(c.Value)
	}},
	{"url:utm", func(c canary.Canary) string {
		return "https://shop.example.com/p?utm_source=news&utm_content=" + url.QueryEscape(c.Value)
	}},
	{"url:utm-semicolon", func(c canary.Canary) string {
		name := "gclid"
		if c.Click != "" {
			name = c.Click
		}
		return "https://shop.example.com/p?utm_source=news;" + name + "=" + url.QueryEscape(c.Value)
	}},
	{"url:fragment", func(c canary.Canary) string { return "https://shop.example.com/p#" + c.Value }},
	{"url:userinfo", func(c canary.Canary) string {
		return "https://" + url.PathEscape(c.Value) + "@shop.example.com/p"
	}},
	{"url:host", func(c canary.Canary) string {
		return "https://" + hostLabel(c.Value) + ".shop.example.com/p"
	}},
	{"url:cross-site", func(c canary.Canary) string { return "https://mail.example.net/inbox/" + c.Value }},
}

// hostLabel makes a canary fit a DNS label where it can (letters, digits, hyphens).
func hostLabel(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c|0x20 && c|0x20 <= 'z', '0' <= c && c <= '9':
			b.WriteByte(c)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func inSentence(c canary.Canary) string { return "Order for " + c.Value + " confirmed" }

// paramPositions are the positions of one parameter of an endpoint: the value itself,
// and, for URL and text fields, the places inside the value.
func paramPositions(where, name string, field *rules.Value, identifier, ipField bool) []position {
	base := position{Where: where, Name: name, Field: field, Identifier: identifier, IPField: ipField}
	cls := "param:unknown"
	switch {
	case ipField:
		cls = "param:ip"
	case identifier:
		cls = "param:identifier"
	case field != nil:
		cls = "param:" + field.Kind.String()
	}
	if where == inJSON {
		cls = "json" + strings.TrimPrefix(cls, "param")
	}
	p := base
	p.Class = cls
	out := []position{p}
	if field != nil && field.Kind == rules.KindURL {
		for _, s := range urlShapes {
			p := base
			p.Class, p.embed = s.class, s.embed
			out = append(out, p)
		}
	}
	if field != nil && field.Kind == rules.KindText {
		p := base
		p.Class, p.embed = "text:sentence", inSentence
		out = append(out, p)
	}
	return out
}

// endpointPositions lists every position of ep: each allow-listed, prefixed, identifier
// and unknown parameter where the endpoint reads parameters, JSON paths at depth, the
// path, the headers, the cookies.
func endpointPositions(ep *rules.Endpoint) []position {
	var out []position
	wheres := []string{inQuery}
	switch ep.Body {
	case rules.BodyForm, rules.BodyLines:
		wheres = append(wheres, inBody)
	}
	isID := func(name string) bool {
		for _, id := range ep.Identifiers {
			if id == name || strings.HasSuffix(id, ".*") && strings.HasPrefix(name, strings.TrimSuffix(id, "*")) {
				return true
			}
		}
		return false
	}
	for _, where := range wheres {
		names := sortedKeys(ep.Allow)
		for _, n := range names {
			v := ep.Allow[n]
			out = append(out, paramPositions(where, n, &v, isID(n), n == ep.IP.Param)...)
		}
		for _, pfx := range sortedKeys(ep.AllowPrefix) {
			v := ep.AllowPrefix[pfx]
			n := pfx + "zz"
			if strings.HasSuffix(pfx, "[") {
				n += "]"
			}
			out = append(out, paramPositions(where, n, &v, false, false)...)
		}
		if ep.Body != rules.BodyJSON {
			for _, id := range ep.Identifiers {
				if _, ok := ep.Allow[id]; ok {
					continue
				}
				n := strings.Replace(id, "*", "zz", 1)
				out = append(out, paramPositions(where, n, nil, true, n == ep.IP.Param)...)
			}
		}
		if ep.IP.Param != "" {
			if _, ok := ep.Allow[ep.IP.Param]; !ok && !isID(ep.IP.Param) {
				out = append(out, paramPositions(where, ep.IP.Param, nil, true, true)...)
			}
		}
		for _, n := range ep.ReplyParams {
			out = append(out, paramPositions(where, n, nil, false, false)...)
		}
		out = append(out, paramPositions(where, "zz_note", nil, false, false)...)
		out = append(out, position{Class: "param:click", Where: where, clickOnly: true})
	}
	if ep.Body == rules.BodyJSON {
		for _, path := range sortedKeys(ep.AllowJSON) {
			v := ep.AllowJSON[path]
			out = append(out, paramPositions(inJSON, path, &v, isID(path), path == ep.IP.JSONField)...)
		}
		for _, id := range ep.Identifiers {
			if _, ok := ep.AllowJSON[id]; ok {
				continue
			}
			out = append(out, paramPositions(inJSON, id, nil, true, id == ep.IP.JSONField)...)
		}
		if ep.IP.JSONField != "" && !isID(ep.IP.JSONField) {
			out = append(out, paramPositions(inJSON, ep.IP.JSONField, nil, true, true)...)
		}
		out = append(out, paramPositions(inJSON, "zz.deep.er.note", nil, false, false)...)
		out = append(out, paramPositions(inJSON, "events[].params.zz_note", nil, false, false)...)
	}
	for _, h := range leakHeaders {
		out = append(out, position{Class: "header:" + h.name, Where: inHeader, Name: h.name, embed: h.embed})
	}
	out = append(out,
		position{Class: "cookie", Where: inCookie, Name: "_ga"},
		position{Class: "cookie", Where: inCookie, Name: "user_email"},
		position{Class: "path:suffix", Where: inPath, Name: "suffix"},
		position{Class: "path:matrix", Where: inPath, Name: "matrix"},
		position{Class: "target:fragment", Where: inTarget},
	)
	if ep.PathTail != "" {
		out = append(out,
			position{Class: "path:segment", Where: inPath, Name: "segment"},
			position{Class: "path:smuggled-query", Where: inPath, Name: "smuggle"},
		)
	}
	return out
}

// leakHeaders are the request headers a canary is planted in: the ones vendors read,
// the identity headers auth proxies and CDNs add, the IP headers, and headers no one
// should forward.
var leakHeaders = []struct {
	name  string
	embed func(c canary.Canary) string
}{
	{"User-Agent", func(c canary.Canary) string {
		return "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 " + c.Value
	}},
	{"Accept-Language", func(c canary.Canary) string { return "en-US,en;q=0.9," + c.Value }},
	{"Referer", func(c canary.Canary) string {
		return "https://shop.example.com/reset/" + c.Value + "?t=" + url.QueryEscape(c.Value)
	}},
	{"Origin", func(c canary.Canary) string { return "https://" + hostLabel(c.Value) + ".example.com" }},
	{"Content-Type", func(c canary.Canary) string { return "text/plain; charset=utf-8; uid=" + c.Value }},
	{"X-Forwarded-Email", nil},
	{"X-Forwarded-User", nil},
	{"Remote-User", nil},
	{"X-Goog-Authenticated-User-Email", func(c canary.Canary) string { return "accounts.google.com:" + c.Value }},
	{"X-SSL-Client-S-DN", func(c canary.Canary) string { return "CN=" + c.Value + ",O=Example" }},
	{"X-Client-Cert", nil},
	{"Authorization", func(c canary.Canary) string { return "Bearer " + c.Value }},
	{"CloudFront-Viewer-Address", func(c canary.Canary) string { return c.Value + ":46532" }},
	{"Client-Ip", nil},
	{"True-Client-IP", nil},
	{"X-Real-IP", nil},
	{"CF-Connecting-IP", nil},
	{"Fastly-Client-IP", nil},
	{"Forwarded", func(c canary.Canary) string { return `for="` + c.Value + `";proto=https` }},
	{"X-Custom-Tracking", nil},
	{"Sec-CH-UA", func(c canary.Canary) string { return `"Chromium";v="122", "` + c.Value + `";v="1"` }},
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// leakRequest is a built hit: what goes on the socket.
type leakRequest struct {
	method, target string
	header         [][2]string
	body           []byte
}

// buildLeakRequest plants canary c at pos in encoding enc, on top of base (a corpus hit
// of the endpoint, so everything around the canary is a well-formed hit).
func buildLeakRequest(ep *rules.Endpoint, base corpus.Hit, pos position, c canary.Canary, enc string) (leakRequest, error) {
	r := leakRequest{method: base.Method}
	path, query, body := base.Path, base.Query, []byte(base.Body)
	ct := base.ContentType
	val := pos.value(c)
	name := pos.Name
	if pos.clickOnly {
		name = c.Click
	}
	pair := func() string {
		n := name
		if enc == canary.NamePct {
			n = canary.Encode(canary.Percent, name)
		}
		if enc == canary.Percent || enc == canary.Double {
			return n + "=" + canary.Encode(enc, val)
		}
		return n + "=" + canary.Encode(canary.Plain, val)
	}
	sep := "&"
	if enc == canary.Semicolon {
		sep = ";"
	}
	setPair := setPair
	if enc == canary.Duplicate {
		// The hit's own pair stays (or a plain one is made up) and the canary comes second.
		setPair = func(q, name, pair, sep string) string {
			if q == "" {
				return name + "=1&" + pair
			}
			return q + "&" + name + "=1&" + pair
		}
	}
	switch pos.Where {
	case inQuery:
		query = setPair(query, name, pair(), sep)
	case inBody:
		if ep.Body == rules.BodyLines {
			first, rest, more := strings.Cut(string(body), "\n")
			first = setPair(first, name, pair(), sep)
			if more {
				first += "\n" + rest
			}
			body = []byte(first)
		} else {
			body = []byte(setPair(string(body), name, pair(), sep))
		}
		if r.method == "GET" {
			r.method = "POST"
		}
		if ct == "" {
			ct = "application/x-www-form-urlencoded"
		}
	case inJSON:
		b, err := setJSONPath(body, name, canary.JSONString(enc, val))
		if err != nil {
			return r, err
		}
		if enc == canary.Duplicate {
			// A second member of the same name, which a parser that keeps the first
			// (or the last) would judge differently: "k":"harmless", then "k":canary.
			b, err = setJSONPath(body, name, `"1"`)
			if err != nil {
				return r, err
			}
			b = append(b[:len(b)-1], []byte(`,"`+name+`":`+canary.JSONString(canary.Plain, val)+`}`)...)
		}
		body = b
	case inPath:
		switch name {
		case "suffix":
			path = strings.TrimSuffix(path, "/") + "/" + url.PathEscape(val)
		case "matrix":
			path += ";jsessionid=" + url.PathEscape(val)
		case "segment":
			path = wildcardBase(ep) + url.PathEscape(val) + "/"
		case "smuggle":
			path = wildcardBase(ep) + "123456789/" + url.QueryEscape("?gclid="+val+"&em="+val+"#")
		}
	}
	if len(body) > 0 && (enc == canary.Gzip) && pos.Where != inHeader {
		body = canary.Compress(body)
		r.header = append(r.header, [2]string{"Content-Encoding", "gzip"})
	}
	r.target = path
	if query != "" {
		r.target += "?" + query
	}
	if pos.Where == inTarget {
		r.target += "#" + url.PathEscape(val)
	}
	if len(body) > 0 && r.method == "GET" {
		r.method = "POST"
	}
	r.body = body
	if ct != "" && !(pos.Where == inHeader && pos.Name == "Content-Type") {
		r.header = append(r.header, [2]string{"Content-Type", ct})
	}
	switch pos.Where {
	case inHeader:
		v := val
		if enc == canary.Percent || enc == canary.Double {
			v = canary.Encode(enc, val)
		}
		r.header = append(r.header, [2]string{pos.Name, v})
	case inCookie:
		r.header = append(r.header, [2]string{"Cookie", pos.Name + "=" + url.QueryEscape(val)})
	}
	return r, nil
}

// wildcardBase is a wildcard endpoint's claimed prefix ("/pagead/conversion/").
func wildcardBase(ep *rules.Endpoint) string {
	return strings.TrimSuffix(ep.Paths[0], "*")
}

// setPair replaces the pairs named name in a query or form string with pair (already
// encoded), joined with sep.
func setPair(q, name, pair, sep string) string {
	var kept []string
	for _, p := range strings.Split(q, "&") {
		if p == "" {
			continue
		}
		n, _, _ := strings.Cut(p, "=")
		if dn, err := url.QueryUnescape(n); err == nil && dn == name {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return pair
	}
	return strings.Join(kept, "&") + sep + pair
}

// setJSONPath sets the dotted path (with "[]" for the first array element, created
// where missing) of a JSON body to lit, a JSON literal.
func setJSONPath(body []byte, path, lit string) ([]byte, error) {
	var doc any = map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("base body: %w", err)
		}
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("base body is not an object")
	}
	obj := root
	parts := strings.Split(path, ".")
	for i, part := range parts {
		arr := strings.HasSuffix(part, "[]")
		key := strings.TrimSuffix(part, "[]")
		last := i == len(parts)-1
		if last && !arr {
			obj[key] = json.RawMessage(lit)
			break
		}
		if arr {
			list, _ := obj[key].([]any)
			if last {
				obj[key] = append([]any{json.RawMessage(lit)}, list...)
				break
			}
			var first map[string]any
			if len(list) > 0 {
				first, _ = list[0].(map[string]any)
			}
			if first == nil {
				first = map[string]any{}
				list = append([]any{first}, list...)
			}
			obj[key] = list
			obj = first
			continue
		}
		next, _ := obj[key].(map[string]any)
		if next == nil {
			next = map[string]any{}
			obj[key] = next
		}
		obj = next
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(out.Bytes()), nil
}
