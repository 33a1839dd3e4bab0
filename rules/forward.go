// The forward rewrite: a consented hit goes upstream as the browser sent it, except
// for the IP pass. Whatever IP parameter or JSON field the browser sent is replaced by
// the client IP, so that a browser cannot choose the IP the vendor sees. Everything
// else is copied byte for byte.

package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
)

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
