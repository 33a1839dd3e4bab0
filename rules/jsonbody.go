// JSON bodies: the allow-list applied to a JSON object by dotted path, then SetJSON
// and the IP field. Kept separate from the pair filtering because JSON values are
// typed and nested: rules apply to scalars only, and an object or array survives only
// through allowed children.

package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

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
