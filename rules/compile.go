package rules

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
)

// Compiled is a config turned into the tables a hit looks up. It is immutable; a reload
// builds a new one and swaps it in.
type Compiled struct {
	Endpoints []CompiledEndpoint
	Router    *Router
	Vendors   []string // catalogue vendors; index = CompiledEndpoint.VendorIndex
	Hasher    *Hasher
	Signals   Signals
}

// CompiledEndpoint is a catalogue endpoint with its upstream, policy and anonymiser resolved.
type CompiledEndpoint struct {
	*Endpoint
	Index       int
	VendorIndex int
	// Upstream: where hits go. Addr is host:port for the HostClient; Host the Host header;
	// PathPrefix comes from an upstreams.<vendor> base URL with a path.
	UpstreamTLS        bool
	UpstreamAddr       string
	UpstreamHost       string
	UpstreamScheme     string
	UpstreamPathPrefix string
	Policy             *PolicyCells
	Anon               *Anonymiser
}

// AllowsMethod reports whether the endpoint accepts method.
func (e *CompiledEndpoint) AllowsMethod(method []byte) bool {
	for _, m := range e.Methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

// UpstreamPathFor is the path sent upstream for a request path.
func (e *CompiledEndpoint) UpstreamPathFor(reqPath []byte, dst []byte) []byte {
	dst = append(dst, e.UpstreamPathPrefix...)
	if e.UpstreamPath != "" {
		return append(dst, e.UpstreamPath...)
	}
	return append(dst, reqPath...)
}

// Compile builds the tables for cfg. hasher may be shared across reloads so hashed IDs
// stay stable when the secret does not change; nil builds one from cfg.Anonymise.Secret.
func Compile(cfg *Config, hasher *Hasher) (*Compiled, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", cfg.posOf(key), fmt.Sprintf(format, args...)))
	}
	if hasher == nil {
		hasher = NewHasher([]byte(cfg.Anonymise.Secret), nil)
	}
	c := &Compiled{Vendors: VendorNames(), Hasher: hasher}
	vendorIdx := map[string]int{}
	for i, v := range c.Vendors {
		vendorIdx[v] = i
	}

	// Policies: the default table, then global overrides, then per-vendor overrides.
	global := DefaultPolicy()
	applyPolicy(&global, cfg.Policy.Table)
	policies := make([]PolicyCells, len(c.Vendors))
	for i, v := range c.Vendors {
		policies[i] = global
		applyPolicy(&policies[i], cfg.Policy.Vendors[v])
	}

	cat := Builtin()
	c.Endpoints = make([]CompiledEndpoint, len(cat))
	byName := map[string]int{}
	var specs []RouteSpec
	for i := range cat {
		ep := &cat[i]
		ce := CompiledEndpoint{Endpoint: ep, Index: i, VendorIndex: vendorIdx[ep.Vendor]}
		ce.Policy = &policies[ce.VendorIndex]
		base, key := ep.Upstream, ""
		if u, ok := cfg.Upstreams[ep.Vendor]; ok {
			base, key = u, "upstreams."+ep.Vendor
		}
		if err := ce.setUpstream(base); err != nil {
			fail(key, "%v", err)
		}
		anon, err := NewAnonymiser(ep, cfg.Anonymise.Allow[ep.Vendor], cfg.Anonymise.URLParams, hasher)
		if err != nil {
			fail("anonymise.allow."+ep.Vendor, "%v", err)
		}
		ce.Anon = anon
		c.Endpoints[i] = ce
		byName[ep.Name] = i
		for _, p := range ep.Paths {
			specs = append(specs, RouteSpec{Path: p, Endpoint: i})
		}
	}
	for _, r := range cfg.Routes {
		idx := -1
		if !r.Disabled {
			var ok bool
			if idx, ok = byName[r.Endpoint]; !ok {
				errs = append(errs, fmt.Errorf("%s: route %s: unknown endpoint %q", r.Pos, r.Path, r.Endpoint))
				continue
			}
		}
		specs = append(specs, RouteSpec{Host: r.Host, Path: r.Path, Endpoint: idx})
	}
	c.Router = NewRouter(specs)
	c.Signals = compileSignals(&cfg.Signals, c.Vendors)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (e *CompiledEndpoint) setUpstream(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", base, err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return fmt.Errorf("upstream %q: scheme must be http or https", base)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("upstream %q: want scheme://host[:port][/path] without query or fragment", base)
	}
	e.UpstreamScheme = u.Scheme
	e.UpstreamTLS = u.Scheme == "https"
	e.UpstreamHost = u.Host
	e.UpstreamAddr = u.Host
	if u.Port() == "" {
		port := "80"
		if e.UpstreamTLS {
			port = "443"
		}
		e.UpstreamAddr = net.JoinHostPort(u.Hostname(), port)
	}
	e.UpstreamPathPrefix = strings.TrimSuffix(u.Path, "/")
	return nil
}

func applyPolicy(cells *PolicyCells, t PolicyTable) {
	for rn, statuses := range t {
		r, ok := geo.ParseRegime(rn)
		if !ok {
			continue // the loader has reported it
		}
		for sn, purposes := range statuses {
			s, ok := consent.ParseStatus(sn)
			if !ok {
				continue
			}
			for pn, an := range purposes {
				p, ok1 := consent.ParsePurpose(pn)
				a, ok2 := ParseAction(an)
				if ok1 && ok2 {
					cells[r][s][p] = a
				}
			}
		}
	}
}

func (c *Config) posOf(key string) Pos {
	if key == "" {
		return Pos{}
	}
	return c.Pos[key]
}
