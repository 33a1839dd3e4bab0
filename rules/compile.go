package rules

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/signals"
	"github.com/consentgate/consentgate/geo"
)

// Snapshot is one config compiled into everything a hit looks up: routes, endpoints with
// their upstream, decision table and anonymiser, the jurisdiction table, the trusted
// proxies and the signal settings. It holds no sockets and is never changed; a reload
// compiles a new one and the proxy swaps it in, so a hit never mixes two configs.
type Snapshot struct {
	Config    *config.Config
	Endpoints []CompiledEndpoint
	Router    *Router
	Vendors   []string // catalogue vendors; index = CompiledEndpoint.VendorIndex
	Hasher    *Hasher
	Signals   *signals.Reader
	Trusted   *geo.Trusted
	Table     *geo.Table
	// Origins are the site origins allowed to call the consent API from a browser.
	Origins map[string]bool
	// StoreErrorUnset: consent.on_store_error is "unset" (decide as if nothing was
	// stored) instead of the default fail-closed "deny".
	StoreErrorUnset bool
	// Version identifies the config (a hash of its values without secrets), and
	// CompiledAt when it was compiled, for the stats API and the dashboard footer.
	Version    string
	CompiledAt time.Time
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

// CompileOptions are the inputs of Compile that are not in the config.
type CompileOptions struct {
	// Prev is the snapshot in force, if any: its hasher is kept when the secret has not
	// changed, so that hashed IDs stay stable across a reload.
	Prev *Snapshot
	// Now is the clock of the hasher's daily salt (tests); nil is time.Now.
	Now func() time.Time
}

// Compile builds the snapshot of cfg, or reports every problem at the position of the value
// at fault. It does no I/O: `consentgate check` runs it as `serve` and a reload do.
func Compile(cfg *config.Config, opts CompileOptions) (*Snapshot, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", posOf(cfg, key), fmt.Sprintf(format, args...)))
	}
	hasher := NewHasher([]byte(cfg.Anonymise.Secret), opts.Now)
	if p := opts.Prev; p != nil && p.Config.Anonymise.Secret == cfg.Anonymise.Secret {
		hasher = p.Hasher
	}
	s := &Snapshot{
		Config: cfg, Vendors: VendorNames(), Hasher: hasher,
		Origins:         map[string]bool{},
		StoreErrorUnset: cfg.Consent.OnStoreError == "unset",
		Version:         cfg.Version(),
		CompiledAt:      time.Now().UTC(),
	}
	for _, o := range cfg.AllowedOrigins {
		s.Origins[o] = true
	}
	vendorIdx := map[string]int{}
	for i, v := range s.Vendors {
		vendorIdx[v] = i
	}

	// Policies: the default table, then global overrides, then per-vendor overrides.
	global := DefaultPolicy()
	applyPolicy(&global, cfg.Policy.Table)
	policies := make([]PolicyCells, len(s.Vendors))
	for i, v := range s.Vendors {
		policies[i] = global
		applyPolicy(&policies[i], cfg.Policy.Vendors[v])
	}

	anonOpts := AnonymiseOptions{
		URLParams:     cfg.Anonymise.URLParams,
		PathTemplates: cfg.Anonymise.PathTemplates,
		SiteHosts:     siteHosts(cfg),
		DropText:      cfg.Anonymise.FreeText == "drop",
	}
	cat := Builtin()
	s.Endpoints = make([]CompiledEndpoint, len(cat))
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
		opts := anonOpts
		opts.Allow = cfg.Anonymise.Allow[ep.Vendor]
		anon, err := NewAnonymiserWith(ep, opts, hasher)
		if err != nil {
			fail("anonymise.allow."+ep.Vendor, "%v", err)
		}
		ce.Anon = anon
		s.Endpoints[i] = ce
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
	s.Router = NewRouter(specs)
	s.Signals = signals.Compile(&cfg.Signals, s.Vendors, VendorGVLID)

	var err error
	if s.Trusted, err = geo.ParseTrusted(cfg.TrustedProxies); err != nil {
		fail("trusted_proxies", "%v", err)
	}
	unknown, ok := geo.ParseRegime(cfg.Geo.UnknownRegime)
	if !ok {
		unknown = geo.OptIn
	}
	if s.Table, err = geo.NewTable(jurisdictionGroups(cfg), unknown); err != nil {
		fail("jurisdictions", "%v", err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// siteHosts are anonymise.site_hosts and the hosts of allowed_origins: the origins
// that may call the consent API are the site's own, so a referrer from one of them is
// internal navigation.
func siteHosts(cfg *config.Config) []string {
	hosts := slices.Clone(cfg.Anonymise.SiteHosts)
	for _, o := range cfg.AllowedOrigins {
		if u, err := url.Parse(o); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts
}

// jurisdictionGroups merges the configured groups into the built-in ones (or replaces
// them), sorted by name so group IDs, and the metrics' order, do not change between runs.
func jurisdictionGroups(cfg *config.Config) []geo.Group {
	var configured []geo.Group
	for _, name := range slices.Sorted(maps.Keys(cfg.Jurisdictions.Groups)) {
		g := cfg.Jurisdictions.Groups[name]
		r, _ := geo.ParseRegime(g.Regime)
		gpc := r == geo.OptOut
		if g.GPC != nil {
			gpc = *g.GPC
		}
		configured = append(configured, geo.Group{Name: name, Regime: r, GPC: gpc, Codes: g.Codes})
	}
	if cfg.Jurisdictions.Replace {
		return configured
	}
	return geo.MergeGroups(geo.BuiltinGroups(), configured)
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

func applyPolicy(cells *PolicyCells, t config.PolicyTable) {
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

// posOf is where the value of key stood; the zero Pos (a default) for "".
func posOf(cfg *config.Config, key string) config.Pos {
	if key == "" {
		return config.Pos{}
	}
	return cfg.Pos[key]
}
