package rules

import (
	"sort"
	"strings"
)

// Router maps host+path to an endpoint index. Built once at load; a lookup is a map
// access and, failing that, a short scan of prefixes (longest first). Host-specific routes
// beat routes for any host.
type Router struct {
	byHost map[string]*pathTable // "" = any host
}

type pathTable struct {
	exact    map[string]int
	prefixes []prefixRoute // longest first
}

type prefixRoute struct {
	prefix string
	ep     int
}

// RouteSpec is one path claim resolved to an endpoint index.
type RouteSpec struct {
	Host, Path string // Path: exact, or prefix ending in "*"
	Endpoint   int
}

// NewRouter builds a router; later specs for the same host+path replace earlier ones, and
// an Endpoint < 0 removes the claim (a disabled route).
func NewRouter(specs []RouteSpec) *Router {
	r := &Router{byHost: map[string]*pathTable{}}
	for _, s := range specs {
		host := strings.ToLower(s.Host)
		t := r.byHost[host]
		if t == nil {
			t = &pathTable{exact: map[string]int{}}
			r.byHost[host] = t
		}
		if p, ok := strings.CutSuffix(s.Path, "*"); ok {
			t.prefixes = removePrefix(t.prefixes, p)
			if s.Endpoint >= 0 {
				t.prefixes = append(t.prefixes, prefixRoute{p, s.Endpoint})
			}
			continue
		}
		delete(t.exact, s.Path)
		if s.Endpoint >= 0 {
			t.exact[s.Path] = s.Endpoint
		}
	}
	for _, t := range r.byHost {
		sort.SliceStable(t.prefixes, func(i, j int) bool { return len(t.prefixes[i].prefix) > len(t.prefixes[j].prefix) })
	}
	return r
}

func removePrefix(ps []prefixRoute, p string) []prefixRoute {
	out := ps[:0]
	for _, x := range ps {
		if x.prefix != p {
			out = append(out, x)
		}
	}
	return out
}

// Lookup returns the endpoint index for host (without port, any case) and path, or -1.
// It allocates nothing: map lookups with string(b) conversions are optimised by the compiler.
func (r *Router) Lookup(host, path []byte) int {
	ep, _ := r.LookupRoute(host, path)
	return ep
}

// LookupRoute is Lookup that also says how the hit was routed: tailAt is the length of
// the prefix it matched, where what follows must be checked against the endpoint's
// PathTail (CompiledEndpoint.UpstreamPathFor), or 0 for an exact path.
func (r *Router) LookupRoute(host, path []byte) (ep, tailAt int) {
	if len(host) > 0 && len(r.byHost) > 1 {
		var buf [256]byte
		if len(host) <= len(buf) {
			h := buf[:len(host)]
			for i, c := range host {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				h[i] = c
			}
			if t := r.byHost[string(h)]; t != nil {
				if ep, tailAt := t.lookup(path); ep >= 0 {
					return ep, tailAt
				}
			}
		}
	}
	if t := r.byHost[""]; t != nil {
		return t.lookup(path)
	}
	return -1, 0
}

func (t *pathTable) lookup(path []byte) (ep, tailAt int) {
	if ep, ok := t.exact[string(path)]; ok {
		return ep, 0
	}
	for _, p := range t.prefixes {
		if len(path) >= len(p.prefix) && string(path[:len(p.prefix)]) == p.prefix {
			return p.ep, len(p.prefix)
		}
	}
	return -1, 0
}
