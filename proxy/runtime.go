package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/rules"
)

// runtime is one compiled config (the rules snapshot) with the live parts built for it:
// the GeoIP locator, the upstream clients and the jurisdictions' metric indices. A hit
// loads the current runtime once and uses it to the end, so a reload never mixes two
// configs in one decision.
type runtime struct {
	*rules.Snapshot
	geo *geo.Locator
	// jur maps a geo.GroupID to its telemetry index.
	jur     []int
	clients []*fasthttp.HostClient // by endpoint index
	// snap signs and verifies the consent snapshots in cookies; limits are the token
	// buckets of limits.* (integrity.go).
	snap   *consent.SnapshotKeys
	limits *limiters
	// restoreLost: consent.snapshot.after_data_loss is "restore" (snapshot.go).
	restoreLost bool
	// script is consentgate.js compiled for this config.
	script *consentScript
	// scriptMetric and scriptClients are, by index in Scripts.Scripts, the script's
	// telemetry index and the client to its vendor (scriptsPart).
	scriptMetric  []int
	scriptClients []*fasthttp.HostClient
}

// upstreamClients gives every endpoint a long-lived HostClient, one per upstream
// address, reusing the previous runtime's client for an unchanged address so a reload
// keeps warm connections.
func upstreamClients(next, prev *runtime) []*fasthttp.HostClient {
	up := next.Config.Upstream
	byKey := map[string]*fasthttp.HostClient{}
	if prev != nil {
		for _, hc := range prev.clients {
			if hc.ReadTimeout == up.Timeout && hc.MaxConns == up.MaxConns {
				byKey[clientKey(hc.Addr, hc.IsTLS)] = hc
			}
		}
	}
	out := make([]*fasthttp.HostClient, len(next.Endpoints))
	for i := range next.Endpoints {
		ep := &next.Endpoints[i]
		key := clientKey(ep.UpstreamAddr, ep.UpstreamTLS)
		hc := byKey[key]
		if hc == nil {
			hc = &fasthttp.HostClient{
				Addr:                          ep.UpstreamAddr,
				IsTLS:                         ep.UpstreamTLS,
				Name:                          upstreamClientName,
				NoDefaultUserAgentHeader:      true,
				ReadTimeout:                   up.Timeout,
				WriteTimeout:                  up.Timeout,
				MaxConns:                      up.MaxConns,
				MaxIdleConnDuration:           30 * time.Second,
				MaxConnWaitTimeout:            up.Timeout / 10, // all connections busy: wait briefly, then answer locally
				MaxIdemponentCallAttempts:     1,               // a hit must not be counted twice upstream
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
