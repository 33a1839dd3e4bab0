// The forward rewrite: a consented hit goes upstream as the browser sent it, except
// for the IP pass. Whatever IP parameter or JSON field the browser sent is replaced by
// the client IP, so that a browser cannot choose the IP the vendor sees. Everything
// else is copied byte for byte.

package rules

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/consentgate/consentgate/internal/jsonscan"
)

// RewriteForward prepares a consented hit: query and body pass unchanged except for the
// IP pass. Whatever IP.Param or IP.JSONField the browser sent is removed and ip (the
// full client IP; "" = none) is put in its place, so a browser cannot choose the IP the
// vendor sees. changed is false when nothing needed rewriting: the caller then sends
// the original bytes and out is not filled. A body that cannot be rewritten safely is
// an error: drop the hit.
func (a *Anonymiser) RewriteForward(hit *Hit, ip string, out *Out) (changed bool, err error) {
	out.Removed = [NumKinds]uint32{} // a forwarded hit loses nothing
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
// Nesting is bounded only by jsonscan.MaxDepth (encoding/json's limit): a consented
// body is not ours to refuse for being deep.
func rewriteJSONField(dst, body []byte, field, ip string) ([]byte, bool, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return append(dst, body...), false, nil
	}
	if len(body) > maxJSONBody {
		return dst, false, errJSONSize
	}
	// The first walk validates the whole body before anything is written, and tells
	// whether there is anything to rewrite.
	removed := false
	it := jsonscan.Members(t, 0, jsonscan.MaxDepth)
	for it.Next() {
		removed = removed || looseFieldName(it.Key(), field)
	}
	if err := it.Err(); err != nil {
		return dst, false, fmt.Errorf("%w: %w", errBadJSON, err)
	}
	if jsonscan.SkipSpace(t, it.End()) != len(t) {
		return dst, false, fmt.Errorf("%w: data after the object", errBadJSON)
	}
	if !removed && ip == "" {
		return append(dst, body...), false, nil
	}
	dst = append(dst, '{')
	first := true
	if ip != "" {
		dst = jsonscan.AppendString(dst, field)
		dst = append(dst, ':')
		dst = jsonscan.AppendString(dst, ip)
		first = false
	}
	it = jsonscan.Members(t, 0, jsonscan.MaxDepth)
	for it.Next() {
		if looseFieldName(it.Key(), field) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		dst, first = append(dst, it.Member()...), false
	}
	return append(dst, '}'), true, nil
}

// looseFieldName reports whether the JSON member name raw (still escaped) decodes to
// field, ignoring ASCII case and underscores.
func looseFieldName(raw []byte, field string) bool {
	for {
		r := rune(-1)
		for len(raw) > 0 {
			c, n := jsonscan.NextRune(raw)
			raw = raw[n:]
			if c != '_' {
				r = c
				break
			}
		}
		f := rune(-1)
		for len(field) > 0 {
			c, n := utf8.DecodeRuneInString(field)
			field = field[n:]
			if c != '_' {
				f = c
				break
			}
		}
		if lowerASCII(r) != lowerASCII(f) {
			return false
		}
		if r < 0 {
			return true
		}
	}
}

func lowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}
