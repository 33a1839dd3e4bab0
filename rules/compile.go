package rules

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
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
	// TrustedSenders are the backends whose server-side hits are located by the visitor
	// their body names (server_side.trusted_senders).
	TrustedSenders *geo.Trusted
	Table          *geo.Table
	// Origins are the site origins allowed to call the consent API from a browser.
	Origins map[string]bool
	// StoreErrorUnset: consent.on_store_error is "unset" (decide as if nothing was
	// stored) instead of the default fail-closed "deny".
	StoreErrorUnset bool
	// Version identifies the config (a hash of its values without secrets), and
	// CompiledAt when it was compiled, for the stats API and the dashboard footer.
	Version    string
	CompiledAt time.Time
	// Scripts are the tag scripts the public listener serves (scripts.go).
	Scripts *ScriptTable
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
	tail               *pathTail // PathTail compiled; nil for a fixed path
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

// UpstreamPathFor appends to dst the path sent upstream for a hit, built from the
// catalogue: the upstream base URL's path, then UpstreamPath, then for an endpoint with
// a PathTail the tail rebuilt from rawPath's checked segments. path is the request path
// as routed (decoded and normalised), rawPath as the browser sent it (undecoded), and
// tailAt the length of the prefix the hit was routed by (0: an exact route). ok is false,
// and dst comes back unchanged, when the path is not of the endpoint's shape: the hit
// must be dropped (ReasonBadPath), never sent.
func (e *CompiledEndpoint) UpstreamPathFor(dst, path, rawPath []byte, tailAt int) (_ []byte, ok bool) {
	start := len(dst)
	dst = append(dst, e.UpstreamPathPrefix...)
	if e.tail == nil {
		switch {
		case tailAt != 0:
			// Compile refuses a prefix route onto a fixed path; should one get here, the
			// rest of its path was never checked.
			return dst[:start], false
		case e.UpstreamPath != "":
			return append(dst, e.UpstreamPath...), true
		}
		for _, p := range e.Paths {
			if string(path) == p {
				return append(dst, p...), true
			}
		}
		return append(dst, e.Paths[0]...), true
	}
	// The raw path must carry the routed prefix as it stands: "/pagead/%63onversion/" or
	// "//pagead/conversion/" routes like the real prefix once normalised, but is not it.
	if tailAt <= 0 || tailAt > len(path) || len(rawPath) < tailAt || string(rawPath[:tailAt]) != string(path[:tailAt]) {
		return dst[:start], false
	}
	dst = append(dst, e.UpstreamPath...)
	if dst, ok = e.tail.appendUpstream(dst, rawPath[tailAt:]); !ok {
		return dst[:start], false
	}
	return dst, true
}

// CompileOptions are the inputs of Compile that are not in the config.
type CompileOptions struct {
	// Hasher is the process's hasher: its day salts outlive any one config, so a reload
	// keeps today's pseudonyms (unless anonymise.secret changes). nil makes a new one on
	// Now (check, tests).
	Hasher *Hasher
	// Now is the clock of a new hasher's daily salt (tests); nil is time.Now.
	Now func() time.Time
}

// Compile builds the snapshot of cfg, or reports every problem at the position of the value
// at fault. It does no I/O: `consentgate check` runs it as `serve` and a reload do.
func Compile(cfg *config.Config, opts CompileOptions) (*Snapshot, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", posOf(cfg, key), fmt.Sprintf(format, args...)))
	}
	base := opts.Hasher
	if base == nil {
		base = NewHasher(opts.Now)
	}
	hasher := base.WithSecret([]byte(cfg.Anonymise.Secret))
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

	// Config may add names to the lists of what is kept, never one that identifies.
	for i, p := range cfg.Anonymise.URLParams {
		if why := IdentifierName(p); why != "" {
			fail(fmt.Sprintf("anonymise.url_params.%d", i), "anonymise.url_params: %q is never kept: %s", p, why)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(cfg.Anonymise.Allow)) {
		for i, p := range cfg.Anonymise.Allow[v] {
			if why := IdentifierName(p); why != "" {
				fail(fmt.Sprintf("anonymise.allow.%s.%d", v, i), "anonymise.allow.%s: %q is never kept: %s", v, p, why)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...) // the anonymisers would repeat the same names
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
		if ce.tail, err = compileTail(ep); err != nil {
			errs = append(errs, fmt.Errorf("catalogue: endpoint %s: %w", ep.Name, err))
		}
		s.Endpoints[i] = ce
		byName[ep.Name] = i
		for _, p := range ep.Paths {
			specs = append(specs, RouteSpec{Path: p, Endpoint: i})
		}
	}
	for i, r := range cfg.Routes {
		idx := -1
		if !r.Disabled {
			var ok bool
			if idx, ok = byName[r.Endpoint]; !ok {
				errs = append(errs, fmt.Errorf("%s: route %s: unknown endpoint %q", r.Pos, r.Path, r.Endpoint))
				continue
			}
			if err := routeFits(r.Path, &s.Endpoints[idx]); err != nil {
				errs = append(errs, fmt.Errorf("%s: route %s: %w", routePos(cfg, i, r), r.Path, err))
				continue
			}
		}
		specs = append(specs, RouteSpec{Host: r.Host, Path: r.Path, Endpoint: idx})
	}
	s.Router = NewRouter(specs)
	var serrs []error
	s.Scripts, serrs = compileScripts(cfg, s.Router, s.Endpoints)
	errs = append(errs, serrs...)
	s.Signals = signals.Compile(&cfg.Signals, s.Vendors, VendorGVLID)

	var err error
	if s.Trusted, err = geo.ParseTrusted(cfg.TrustedProxies); err != nil {
		fail("trusted_proxies", "%v", err)
	}
	if s.TrustedSenders, err = geo.ParseTrusted(cfg.ServerSide.TrustedSenders); err != nil {
		fail("server_side.trusted_senders", "%v", err)
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

// compileTail compiles an endpoint's PathTail and checks it goes with its Paths: a
// prefix claim without a declared tail would let any path through, and a tail on an
// exact path could never match.
func compileTail(ep *Endpoint) (*pathTail, error) {
	prefix := false
	for _, p := range ep.Paths {
		prefix = prefix || strings.HasSuffix(p, "*")
	}
	switch {
	case prefix && ep.PathTail == "":
		return nil, errors.New("claims a prefix but declares no PathTail")
	case !prefix && ep.PathTail != "":
		return nil, errors.New("declares a PathTail but claims no prefix")
	case !prefix:
		return nil, nil
	}
	return parsePathTail(ep.PathTail)
}

// routeFits says whether a configured route can take an endpoint. What follows a
// route's prefix is checked against the endpoint's PathTail, and upstream gets the
// endpoint's own path with the tail rebuilt ("/ads/123/" → "/pagead/conversion/123/"),
// never the configured prefix. So a prefix route needs an endpoint with a tail, and an
// endpoint with a tail needs a prefix route: after an exact path there is nothing to
// take the tail's segments from, and a fixed path has no shape to check a rest against.
func routeFits(path string, ep *CompiledEndpoint) error {
	prefix := strings.HasSuffix(path, "*")
	switch {
	case prefix && ep.tail == nil:
		return fmt.Errorf("ends in \"*\", but endpoint %s has a fixed path (%s) with no declared shape to check the rest of a path against; use an exact path", ep.Name, strings.Join(ep.Paths, ", "))
	case !prefix && ep.tail != nil:
		return fmt.Errorf("endpoint %s takes a path that goes on with %s; end the route's path in \"*\" so that the rest can be checked", ep.Name, ep.PathTail)
	case prefix && strings.ContainsFunc(strings.TrimSuffix(path, "*"), func(r rune) bool { return r != '/' && (r > 0x7f || shouldEscape(byte(r))) }):
		// The prefix is matched on the path as routed (decoded) and must stand as it is in
		// the path as sent, where a browser would have escaped these.
		return errors.New("a prefix route's path may hold only letters, digits, \"-._~\" and \"/\"")
	}
	return nil
}

// routePos is where the i-th route's path stood, or the route's own position.
func routePos(cfg *config.Config, i int, r config.RouteConfig) config.Pos {
	if pos, ok := cfg.Pos["routes."+strconv.Itoa(i)+".path"]; ok {
		return pos
	}
	return r.Pos
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
	// The escaped form: the decoded one would put "?", "#" or a space from an
	// operator's "%3F" on the request line.
	e.UpstreamPathPrefix = strings.TrimSuffix(u.EscapedPath(), "/")
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
