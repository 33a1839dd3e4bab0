package rules

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/consentgate/consentgate/config"
)

// Script is one tag script as the config left it: where the site loads it, where it is
// fetched from, and what may go with it. Compiled once; a request only looks up.
type Script struct {
	Name   string
	Vendor string // catalogue vendor, "" for a script the config adds
	Path   string // as served, scripts.prefix included
	// Params are the query parameters passed on to the vendor, in this order; required
	// flags those that must be present. IDs, when set, are the only values "id" may take.
	Params   []string
	required []bool
	IDs      []string
	// Variants are the file-name extensions of a variant script (ScriptSpec.Variants).
	Variants []string

	UpstreamScheme string
	UpstreamHost   string // Host header
	UpstreamAddr   string // host:port to dial
	UpstreamTLS    bool
	// The upstream path, escaped, split where a variant's extensions go: head, then
	// ".<ext>..." for a variant, then tail (".js"; "" for a script without variants).
	upHead, upTail string
	// The served path split the same way, for matching a variant's path.
	pathHead, pathTail string
}

// ScriptTable is the scripts a config serves, by path.
type ScriptTable struct {
	Scripts  []Script
	byPath   map[string]int
	variants []int // scripts with Variants, matched by pathHead and pathTail
}

// reservedScriptPaths are the public listener's own paths, which no script may take.
var reservedScriptPaths = []string{"/consent", "/consentgate.js"}

// Lookup returns the script a request path names and, for a variant, its extensions as
// a set (bit i: Variants[i]); idx is -1 for none. It allocates nothing.
func (t *ScriptTable) Lookup(path []byte) (idx int, variant uint64) {
	if t == nil {
		return -1, 0
	}
	if i, ok := t.byPath[string(path)]; ok {
		return i, 0
	}
	for _, i := range t.variants {
		s := &t.Scripts[i]
		if len(path) > len(s.pathHead)+len(s.pathTail) && string(path[:len(s.pathHead)]) == s.pathHead &&
			string(path[len(path)-len(s.pathTail):]) == s.pathTail {
			if v, ok := s.variantSet(path[len(s.pathHead) : len(path)-len(s.pathTail)]); ok {
				return i, v
			}
		}
	}
	return -1, 0
}

// variantSet reads extensions of s.Variants joined by ".", each at most once, as a set.
// A set, not the order written: the vendor's file for "hash.outbound-links" is the one for
// "outbound-links.hash" (Plausible's server sorts them), so every order is one cache entry
// and one fetch, and what anyone can make the proxy fetch is bounded by 2^len(Variants).
func (s *Script) variantSet(v []byte) (uint64, bool) {
	var seen uint64
	for len(v) > 0 {
		ext := v
		if i := indexByte(v, '.'); i >= 0 {
			ext, v = v[:i], v[i+1:]
			if len(v) == 0 {
				return 0, false // a final "."
			}
		} else {
			v = nil
		}
		j := slices.IndexFunc(s.Variants, func(e string) bool { return e == string(ext) })
		if j < 0 || seen&(1<<j) != 0 {
			return 0, false
		}
		seen |= 1 << j
	}
	return seen, seen != 0
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// ParamIndex returns the index in Params of a query parameter name, or -1: a parameter
// the script does not declare is not passed on.
func (s *Script) ParamIndex(name []byte) int {
	for i, p := range s.Params {
		if p == string(name) {
			return i
		}
	}
	return -1
}

// ValueOK reports whether v may be passed on as Params[i]: a token
// (config.ScriptTokenByte, at most config.MaxScriptToken bytes) and, for "id" with IDs
// set, one of them.
func (s *Script) ValueOK(i int, v []byte) bool {
	if len(v) == 0 || len(v) > config.MaxScriptToken {
		return false
	}
	for _, c := range v {
		if !config.ScriptTokenByte(c) {
			return false
		}
	}
	if len(s.IDs) > 0 && s.Params[i] == "id" {
		return slices.ContainsFunc(s.IDs, func(id string) bool { return id == string(v) })
	}
	return true
}

// Required reports whether Params[i] must be present.
func (s *Script) Required(i int) bool { return s.required[i] }

// AppendTarget appends the upstream request target: the path (with a variant's
// extensions, in Variants order) and the query of the values given, in Params order,
// vals[i] for Params[i] (nil: absent). Values are checked tokens, which need no escaping.
func (s *Script) AppendTarget(dst []byte, variant uint64, vals *[config.MaxScriptParams][]byte) []byte {
	dst = append(dst, s.upHead...)
	for i, ext := range s.Variants {
		if variant&(1<<i) != 0 {
			dst = append(dst, '.')
			dst = append(dst, ext...)
		}
	}
	dst = append(dst, s.upTail...)
	sep := byte('?')
	for i := range s.Params {
		if vals[i] == nil {
			continue
		}
		dst = append(dst, sep)
		dst = append(dst, s.Params[i]...)
		dst = append(dst, '=')
		dst = append(dst, vals[i]...)
		sep = '&'
	}
	return dst
}

// AppendKey appends the script's cache key: the whole upstream URL. Two entries, or two
// configs, that fetch the same URL share what was fetched.
func (s *Script) AppendKey(dst []byte, variant uint64, vals *[config.MaxScriptParams][]byte) []byte {
	dst = append(dst, s.UpstreamScheme...)
	dst = append(dst, "://"...)
	dst = append(dst, s.UpstreamHost...)
	return s.AppendTarget(dst, variant, vals)
}

// compileScripts builds the script table of cfg: the built-in scripts with the config's
// overrides, then the config's own, by name. Paths must not clash with each other, with a
// route or with the listener's own paths.
func compileScripts(cfg *config.Config, router *Router, endpoints []CompiledEndpoint) (*ScriptTable, []error) {
	t := &ScriptTable{byPath: map[string]int{}}
	sc := &cfg.Scripts
	if !sc.Enabled {
		return t, nil
	}
	var errs []error
	fail := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", posOf(cfg, key), fmt.Sprintf(format, args...)))
	}
	keys := map[string]string{} // script name → where its path was written
	add := func(s Script, key string) {
		if first, dup := t.byPath[s.Path]; dup {
			other := t.Scripts[first].Name
			if key == "" { // a built-in default clashes with a path the config wrote
				key, s.Name, other = keys[other], other, s.Name
			}
			fail(key, "scripts.%s: path %s is scripts.%s's too", s.Name, s.Path, other)
			return
		}
		keys[s.Name] = key
		if slices.Contains(reservedScriptPaths, s.Path) {
			fail(key, "scripts.%s: path %s is the proxy's own", s.Name, s.Path)
			return
		}
		if ep := router.claimant(s); ep >= 0 {
			if key == "" { // a built-in default: the route the config wrote is what clashes
				key = configuredRouteKey(cfg, s)
			}
			fail(key, "scripts.%s: path %s is taken by a route of endpoint %s", s.Name, s.Path, endpoints[ep].Name)
			return
		}
		t.byPath[s.Path] = len(t.Scripts)
		if len(s.Variants) > 0 {
			t.variants = append(t.variants, len(t.Scripts))
		}
		t.Scripts = append(t.Scripts, s)
	}
	for _, spec := range builtinScripts {
		e := sc.Entries[spec.Name]
		if e.Disabled {
			continue
		}
		upstream := spec.Upstream
		if base, ok := cfg.Upstreams[spec.Vendor]; ok && upstream == "" {
			upstream = strings.TrimSuffix(base, "/") + spec.UpstreamPath
		}
		if e.Upstream != "" {
			upstream = e.Upstream
		}
		if upstream == "" {
			continue // self-hosted vendor with no host configured: nothing to fetch
		}
		s := Script{Name: spec.Name, Vendor: spec.Vendor, Path: spec.Path, Params: spec.Params, Variants: spec.Variants}
		if e.Path != "" {
			s.Path = e.Path
		}
		if e.Params != nil {
			s.Params = e.Params
		}
		s.IDs = e.IDs
		for _, p := range s.Params {
			s.required = append(s.required, slices.Contains(spec.Required, p))
		}
		if err := s.finish(sc.Prefix, upstream); err != nil {
			fail(scriptKey(cfg, spec.Name, "upstream"), "scripts.%s: %v", spec.Name, err)
			continue
		}
		if len(s.IDs) > 0 && !slices.Contains(s.Params, "id") {
			fail(scriptKey(cfg, spec.Name, "ids"), "scripts.%s: ids are values of the id parameter, which params leaves out", spec.Name)
			continue
		}
		add(s, scriptKey(cfg, spec.Name, "path"))
	}
	builtin := ScriptNames()
	for _, name := range slices.Sorted(maps.Keys(sc.Entries)) {
		e := sc.Entries[name]
		if slices.Contains(builtin, name) || e.Disabled {
			continue
		}
		s := Script{Name: name, Path: e.Path, Params: e.Params, IDs: e.IDs, required: make([]bool, len(e.Params))}
		if err := s.finish(sc.Prefix, e.Upstream); err != nil {
			fail(scriptKey(cfg, name, "upstream"), "scripts.%s: %v", name, err)
			continue
		}
		if len(s.IDs) > 0 && !slices.Contains(s.Params, "id") {
			fail(scriptKey(cfg, name, "ids"), "scripts.%s: ids are values of the id parameter, which params does not list", name)
			continue
		}
		add(s, scriptKey(cfg, name, "path"))
	}
	return t, errs
}

// scriptKey is the config key whose position a problem with scripts.<name>.<field> is
// reported at: the field if written, else the entry, else "" (a built-in default).
func scriptKey(cfg *config.Config, name, field string) string {
	for _, k := range []string{"scripts." + name + "." + field, "scripts." + name} {
		if _, ok := cfg.Pos[k]; ok {
			return k
		}
	}
	return ""
}

// configuredRouteKey is the config key of the first route that takes a path of s, or "".
func configuredRouteKey(cfg *config.Config, s Script) string {
	for i, r := range cfg.Routes {
		p, prefix := strings.CutSuffix(r.Path, "*")
		switch {
		case !prefix && (p == s.Path || len(s.Variants) > 0 && strings.HasPrefix(p, s.pathHead) && strings.HasSuffix(p, s.pathTail)),
			prefix && (strings.HasPrefix(s.Path, p) || len(s.Variants) > 0 && strings.HasPrefix(p, s.pathHead)):
			return fmt.Sprintf("routes.%d.path", i)
		}
	}
	return ""
}

// finish sets the served path under prefix and the upstream from its URL.
func (s *Script) finish(prefix, upstream string) error {
	if len(s.Params) > config.MaxScriptParams {
		return fmt.Errorf("more than %d params", config.MaxScriptParams)
	}
	s.Path = prefix + s.Path
	u, err := url.Parse(upstream)
	switch {
	case err != nil:
		return fmt.Errorf("upstream %q: %w", upstream, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.User != nil, u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("upstream %q: want http(s)://host/path without user, query or fragment", upstream)
	}
	s.UpstreamScheme, s.UpstreamTLS, s.UpstreamHost = u.Scheme, u.Scheme == "https", u.Host
	s.UpstreamAddr = u.Host
	if u.Port() == "" {
		port := "80"
		if s.UpstreamTLS {
			port = "443"
		}
		s.UpstreamAddr = net.JoinHostPort(u.Hostname(), port)
	}
	s.upHead = u.EscapedPath()
	if s.upHead == "" || strings.HasSuffix(s.upHead, "/") {
		return fmt.Errorf("upstream %q: want the script's own URL, with its file path", upstream)
	}
	s.pathHead = s.Path
	// A variant script's extensions go before ".js", on both sides; a path that does not
	// end so has no variants.
	if len(s.Variants) > 0 {
		if !strings.HasSuffix(s.Path, ".js") || !strings.HasSuffix(s.upHead, ".js") {
			s.Variants = nil
		} else {
			s.upHead, s.upTail = strings.TrimSuffix(s.upHead, ".js"), ".js"
			s.pathHead, s.pathTail = strings.TrimSuffix(s.Path, "js"), ".js"
		}
	}
	if len(s.Variants) > 64 {
		return errors.New("more than 64 variants")
	}
	return nil
}

// claimant returns the endpoint whose route, on any host, takes a path the script
// serves, or -1.
func (r *Router) claimant(s Script) int {
	for _, t := range r.byHost {
		if ep, ok := t.exact[s.Path]; ok {
			return ep
		}
		for _, p := range t.prefixes {
			if strings.HasPrefix(s.Path, p.prefix) || len(s.Variants) > 0 && strings.HasPrefix(p.prefix, s.pathHead) {
				return p.ep
			}
		}
		if len(s.Variants) > 0 {
			for path, ep := range t.exact {
				if strings.HasPrefix(path, s.pathHead) && strings.HasSuffix(path, s.pathTail) {
					return ep
				}
			}
		}
	}
	return -1
}
