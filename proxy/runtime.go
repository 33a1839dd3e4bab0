// Package proxy owns the sockets: the fasthttp listeners, the upstream clients, the hit
// path (route → locate → decide → forward / anonymise / drop), the local responses and
// the consent and admin APIs. It decides no policy itself: that is rules'.
package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// runtime is everything built from one config. A hit loads the current runtime once and
// uses it to the end, so a reload never mixes two configs in one decision.
type runtime struct {
	cfg     *rules.Config
	rules   *rules.Compiled
	trusted *geo.Trusted
	table   *geo.Table
	geo     *geo.Locator
	// jur maps a geo.GroupID to its telemetry index; groupGPC whether the group honours GPC.
	jur     []int
	clients []*fasthttp.HostClient // by endpoint index
	origins map[string]bool
	ttl     time.Duration
	cookie  string
	// storeErrorUnset: consent.on_store_error is "unset" (decide as if nothing was
	// stored) instead of the default fail-closed "deny".
	storeErrorUnset bool
	// tcf caches TC string verdicts for this config's GVL vendors.
	tcf *tcfCache
	// version identifies the config in force (a hash of its values) and loadedAt when
	// it was loaded, for the stats API and the dashboard footer.
	version  string
	loadedAt time.Time
	// decisionLog is the share of hits whose decision is logged (0 = none).
	decisionLog float64
}

// buildRuntime compiles cfg. It does no network I/O. hasher is shared across reloads.
func buildRuntime(cfg *rules.Config, hasher *rules.Hasher, m *telemetry.Metrics, loc *geo.Locator, prev *runtime) (*runtime, error) {
	compiled, err := rules.Compile(cfg, hasher)
	if err != nil {
		return nil, err
	}
	trusted, err := geo.ParseTrusted(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	unknown, ok := geo.ParseRegime(cfg.Geo.UnknownRegime)
	if !ok {
		unknown = geo.OptIn
	}
	table, err := geo.NewTable(mergedGroups(cfg), unknown)
	if err != nil {
		return nil, fmt.Errorf("jurisdictions: %w", err)
	}
	rt := &runtime{
		cfg: cfg, rules: compiled, trusted: trusted, table: table, geo: loc,
		ttl: cfg.Consent.TTL, cookie: cfg.Consent.Cookie,
		storeErrorUnset: cfg.Consent.OnStoreError == "unset",
		origins:         map[string]bool{},
		tcf:             newTCFCache(compiled.Signals.GVLIDs),
		version:         configVersion(cfg),
		loadedAt:        time.Now().UTC(),
		decisionLog:     cfg.Telemetry.DecisionLog.SampleRatio,
	}
	for _, o := range cfg.AllowedOrigins {
		rt.origins[o] = true
	}
	for _, name := range table.Names() {
		idx, err := m.Jurisdiction(name)
		if err != nil {
			return nil, fmt.Errorf("jurisdictions: %w", err)
		}
		rt.jur = append(rt.jur, idx)
	}
	rt.clients = upstreamClients(compiled, cfg, prev)
	return rt, nil
}

// configVersion is a short hash of the config's values: equal configs (whatever their
// comments or key order) get equal versions, so instances can be compared at a glance.
// Secrets are left out: the version is shown without a token, and a hash of a config
// whose other values are known would let a weak secret be guessed offline. Two configs
// that differ only in secrets share a version.
func configVersion(cfg *rules.Config) string {
	c := *cfg
	c.Pos = nil
	c.AdminToken, c.Anonymise.Secret, c.Consent.Redis.Password = "", "", ""
	if len(c.Telemetry.OTLP.Headers) > 0 {
		h := make(map[string]string, len(c.Telemetry.OTLP.Headers))
		for k := range c.Telemetry.OTLP.Headers {
			h[k] = "" // header values are credentials as often as not
		}
		c.Telemetry.OTLP.Headers = h
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func mergedGroups(cfg *rules.Config) []geo.Group {
	// Sorted by name so group IDs (and the metrics' order) do not change between runs.
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

// upstreamClients gives every endpoint a long-lived HostClient, one per upstream
// address, reusing the previous runtime's client for an unchanged address so a reload
// keeps warm connections.
func upstreamClients(c *rules.Compiled, cfg *rules.Config, prev *runtime) []*fasthttp.HostClient {
	byKey := map[string]*fasthttp.HostClient{}
	if prev != nil {
		for _, hc := range prev.clients {
			if hc.ReadTimeout == cfg.Upstream.Timeout && hc.MaxConns == cfg.Upstream.MaxConns {
				byKey[clientKey(hc.Addr, hc.IsTLS)] = hc
			}
		}
	}
	out := make([]*fasthttp.HostClient, len(c.Endpoints))
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		key := clientKey(ep.UpstreamAddr, ep.UpstreamTLS)
		hc := byKey[key]
		if hc == nil {
			hc = &fasthttp.HostClient{
				Addr:                          ep.UpstreamAddr,
				IsTLS:                         ep.UpstreamTLS,
				Name:                          "consentgate",
				NoDefaultUserAgentHeader:      true,
				ReadTimeout:                   cfg.Upstream.Timeout,
				WriteTimeout:                  cfg.Upstream.Timeout,
				MaxConns:                      cfg.Upstream.MaxConns,
				MaxIdleConnDuration:           30 * time.Second,
				MaxConnWaitTimeout:            cfg.Upstream.Timeout / 10, // all connections busy: wait briefly, then answer locally
				MaxIdemponentCallAttempts:     1,                         // a hit must not be counted twice upstream
				DisableHeaderNamesNormalizing: false,
				DisablePathNormalizing:        true,
				MaxResponseBodySize:           1 << 20,
			}
			byKey[key] = hc
		}
		out[i] = hc
	}
	return out
}

func clientKey(addr string, tls bool) string {
	if tls {
		return "https://" + addr
	}
	return "http://" + addr
}
