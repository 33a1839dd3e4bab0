package proxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/internal/ratelimit"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// limiters are the token buckets of limits.*, nil where a limit is off. They are kept
// across reloads that leave limits.* as they were, so a reload does not refill them.
type limiters struct {
	cfg                 config.LimitsConfig
	writesIP, writesNet *ratelimit.Limiter
	newIDsIP, newIDsNet *ratelimit.Limiter
	hitsIP, hitsNet     *ratelimit.Limiter
	hitsOn              bool // either hit limit is on: the hit path looks no further otherwise
}

func newLimiters(c config.LimitsConfig) *limiters {
	one := func(r config.RateLimit) *ratelimit.Limiter {
		if r.PerMinute <= 0 {
			return nil
		}
		return ratelimit.New(r.PerMinute, r.Burst, c.MaxClients)
	}
	l := &limiters{
		cfg:      c,
		writesIP: one(c.ConsentWrites.PerIP), writesNet: one(c.ConsentWrites.PerNet),
		newIDsIP: one(c.NewIDs.PerIP), newIDsNet: one(c.NewIDs.PerNet),
		hitsIP: one(c.Hits.PerIP), hitsNet: one(c.Hits.PerNet),
	}
	l.hitsOn = l.hitsIP != nil || l.hitsNet != nil
	return l
}

// allow takes a token from the address's bucket and its network's. It reports the limit
// that refused, if one did, and how long until a token is back. An address that is not
// valid (no client IP could be read) shares one bucket: fail closed, not open.
func allow(ip netip.Addr, now time.Time, perIP, perNet *ratelimit.Limiter, ipLimit, netLimit telemetry.Limit) (telemetry.Limit, time.Duration, bool) {
	if perIP != nil {
		if ok, retry := perIP.Allow(ratelimit.IPKey(ip), now); !ok {
			return ipLimit, retry, false
		}
	}
	if perNet != nil {
		if ok, retry := perNet.Allow(ratelimit.NetKey(ip), now); !ok {
			return netLimit, retry, false
		}
	}
	return 0, 0, true
}

// allowHit applies limits.hits to a hit, by its client IP. A server-side hit from a
// trusted sender (server_side.trusted_senders) is the site's backend speaking for many
// visitors, and is not limited by its address.
func (s *Server) allowHit(ctx *fasthttp.RequestCtx, rt *runtime, ep *rules.CompiledEndpoint) bool {
	ip := rt.Trusted.ClientIP(peerAddr(ctx.RemoteIP()), ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor))
	if serverSide(ep) && rt.TrustedSenders.Contains(ip) {
		return true
	}
	l := rt.limits
	limit, retry, ok := allow(ip, s.now(), l.hitsIP, l.hitsNet, telemetry.LimitHitsIP, telemetry.LimitHitsNet)
	if !ok {
		s.corsHit(ctx, rt)
		s.tooMany(ctx, limit, retry, false)
	}
	return ok
}

// tooMany answers 429 with Retry-After in whole seconds (at least 1), and counts it.
func (s *Server) tooMany(ctx *fasthttp.RequestCtx, limit telemetry.Limit, retry time.Duration, body bool) {
	s.metrics.RateLimited(limit)
	secs := int64((retry + time.Second - 1) / time.Second)
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.FormatInt(max(secs, 1), 10))
	if body {
		jsonError(ctx, fasthttp.StatusTooManyRequests, "too many requests from this address ("+limit.String()+"); retry later")
		return
	}
	ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
}

// integrityPart builds, for each config, the keys that sign and verify consent
// snapshots and the rate limiters. Without consent.snapshot.keys the process signs with
// a random key of its own, made once (Server.randomKeys), so a reload keeps it.
type integrityPart struct {
	s *Server
}

func (p integrityPart) prepare(prev, next *runtime) error {
	if keys := next.Config.Consent.Snapshot.Keys; len(keys) > 0 {
		k, err := consent.NewSnapshotKeys(keys)
		if err != nil {
			return fmt.Errorf("consent.snapshot.keys: %w", err)
		}
		next.snap = k
	} else {
		next.snap = p.s.randomKeys
	}
	next.restoreLost = next.Config.Consent.Snapshot.AfterDataLoss != "refusals_only"
	if prev != nil && prev.limits.cfg == next.Config.Limits {
		next.limits = prev.limits
	} else {
		next.limits = newLimiters(next.Config.Limits)
	}
	return nil
}

func (p integrityPart) commit(next *runtime) {
	if len(next.Config.Consent.Snapshot.Keys) == 0 {
		p.s.log.Warn("consent.snapshot.keys is not set: consent snapshots are signed with a random key of this process, " +
			"which a restart and other instances cannot verify; a refusal then survives store evictions and outages only on this process until it restarts. " +
			"Set consent.snapshot.keys (e.g. `openssl rand -base64 32`), the same on every instance")
	}
}

func (integrityPart) abort(*runtime) {}
