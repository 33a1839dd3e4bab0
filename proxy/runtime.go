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
				Addr:  ep.UpstreamAddr,
				IsTLS: ep.UpstreamTLS,
				// The User-Agent is the visitor's, set by the header rules, or none.
				Name:                     upstreamClientName,
				NoDefaultUserAgentHeader: true,
				// One deadline pair per round trip, no timer or goroutine per hit (Do,
				// not DoTimeout).
				ReadTimeout:  up.Timeout,
				WriteTimeout: up.Timeout,
				MaxConns:     up.MaxConns,
				// Below the idle timeouts of the vendors' front ends and of the load
				// balancers in between (60 s and up): the proxy closes an idle connection
				// before the far end does, so a hit is never written to a socket the
				// other side is closing (which, with one attempt, would lose it).
				MaxIdleConnDuration: 30 * time.Second,
				MaxConnWaitTimeout:  up.Timeout / 10, // all connections busy: wait briefly, then answer locally
				// A hit must not be counted twice upstream: no retry, even of a GET.
				MaxIdemponentCallAttempts: 1,
				// The rules write canonical header names already; the path is the
				// endpoint's, byte for byte (normalising could change what the vendor
				// routes on).
				DisableHeaderNamesNormalizing: false,
				DisablePathNormalizing:        true,
				// A hit is written in one write: a long GA4 query with its headers runs
				// past the default 4 KB, which would flush twice. A vendor's answer head
				// (cookies, CSP, reporting headers) also fits, where 4 KB would make it
				// an upstream error. At most max_conns of each per upstream host.
				WriteBufferSize: 16 << 10,
				ReadBufferSize:  16 << 10,
				// A forwarded hit's answer is relayed to the browser: bounded.
				MaxResponseBodySize: 1 << 20,
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
