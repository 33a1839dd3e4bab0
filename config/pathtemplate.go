package config

import (
	"fmt"
	"strings"
)

// MaxTemplateSegs bounds the segments of an anonymise.path_templates entry.
const MaxTemplateSegs = 32

// ParsePathTemplate checks one anonymise.path_templates entry and returns its segments:
// it starts with '/', has at most MaxTemplateSegs non-empty segments, each a literal, a
// "{name}" placeholder (name: lower-case letters, digits, '_') replaced by ":name", or
// "*" for any one segment; and at least one placeholder.
func ParsePathTemplate(s string) ([]string, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("path template %q: must start with \"/\"", s)
	}
	segs := strings.Split(s[1:], "/")
	if len(segs) > MaxTemplateSegs {
		return nil, fmt.Errorf("path template %q: more than %d segments", s, MaxTemplateSegs)
	}
	placeholders := 0
	for _, seg := range segs {
		switch {
		case seg == "":
			return nil, fmt.Errorf("path template %q: empty segment", s)
		case seg == "*":
		case strings.HasPrefix(seg, "{") || strings.HasSuffix(seg, "}"):
			name, ok := strings.CutPrefix(seg, "{")
			name, ok2 := strings.CutSuffix(name, "}")
			if !ok || !ok2 || name == "" || len(name) > 32 || strings.IndexFunc(name, func(r rune) bool {
				return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_')
			}) >= 0 {
				return nil, fmt.Errorf("path template %q: bad placeholder %q: want {name} of a-z, 0-9, _", s, seg)
			}
			placeholders++
		case strings.ContainsAny(seg, "{}*?#%;") || strings.IndexFunc(seg, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			return nil, fmt.Errorf("path template %q: segment %q: a literal has no {, }, *, ?, #, %%, ; or spaces", s, seg)
		}
	}
	if placeholders == 0 {
		return nil, fmt.Errorf("path template %q: no {name} placeholder, so it would replace nothing", s)
	}
	return segs, nil
}
