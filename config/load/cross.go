package load

import (
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/config"
)

// redisChecks are the rules among consent.redis values. Only addrs depends on the store:
// the rest is checked with store: memory too, so that switching stores by
// CONSENTGATE_CONSENT_STORE cannot reveal a broken section.
func (d *decoder) redisChecks() {
	c := &d.cfg.Consent
	r := &c.Redis
	if c.Store == "redis" && len(r.Addrs) == 0 {
		// At the empty list if one was written, else at "store: redis".
		if _, ok := d.cfg.Pos["consent.redis.addrs"]; ok {
			d.problemAt("consent.redis.addrs", "consent.redis.addrs: want at least one host:port with consent.store: redis, e.g. [\"127.0.0.1:6379\"]")
		} else {
			d.problemAt("consent.store", "consent.store: \"redis\" needs consent.redis.addrs, e.g. addrs: [\"127.0.0.1:6379\"]")
		}
	}
	first := map[string]int{}
	for i, a := range r.Addrs {
		if j, dup := first[a]; dup {
			sub := "consent.redis.addrs." + strconv.Itoa(i)
			d.problemAtFirst([]string{sub, "consent.redis.addrs"}, "%s: listed twice (also consent.redis.addrs.%d)", sub, j)
			continue
		}
		first[a] = i
	}
	if r.Cluster && r.MasterName != "" { // both valid: a rejected value stays at its default, false or ""
		d.problemAtFirst([]string{"consent.redis.cluster", "consent.redis.master_name"},
			"consent.redis.cluster: true excludes consent.redis.master_name (Sentinel): remove one of them")
	}
	// Redis Cluster has database 0 only, and the client (go-redis) drops db there silently:
	// the proxy would not use the database the site's backend was told about.
	if cluster := r.Cluster || len(r.Addrs) > 1 && r.MasterName == ""; cluster && r.DB != 0 &&
		d.valid("consent.redis.cluster", "consent.redis.master_name") {
		why := "with cluster: true: Redis Cluster has database 0 only"
		if !r.Cluster {
			why = "here: several addrs without master_name mean Redis Cluster, which has database 0 only (for Sentinel, set master_name)"
		}
		d.problemAt("consent.redis.db", "consent.redis.db: must be 0 %s", why)
	}
	// A write's budget below a hit's would bring back the failed saves it exists to end.
	if r.WriteTimeout < r.Timeout && d.valid("consent.redis.write_timeout", "consent.redis.timeout") {
		d.problemAtFirst([]string{"consent.redis.write_timeout", "consent.redis.timeout"},
			"consent.redis.write_timeout: %s%s is less than consent.redis.timeout (%s): a consent write must not have a smaller budget than a hit's lookup",
			fmtDuration(r.WriteTimeout), d.ifDefault("consent.redis.write_timeout"), fmtDuration(r.Timeout))
	}
	if r.PoolSize > 0 && r.MinIdleConns > r.PoolSize && d.valid("consent.redis.pool_size") {
		d.problemAtFirst([]string{"consent.redis.min_idle_conns", "consent.redis.pool_size"},
			"consent.redis.min_idle_conns: %d is more than consent.redis.pool_size (%d)", r.MinIdleConns, r.PoolSize)
	}
}

// crossChecks are the rules that involve several values, run once file and environment
// have both been applied.
func (d *decoder) crossChecks() {
	c := &d.cfg.Consent
	// Browsers silently refuse prefixed cookies that break the prefix rules: the consent
	// cookie would never be stored and every visitor would look new on every hit.
	switch {
	case strings.HasPrefix(c.Cookie, "__Host-") && (!c.Secure || c.CookieDomain != ""):
		d.problemAt("consent.cookie", "consent.cookie: a __Host- cookie needs consent.secure: true and no consent.cookie_domain, or browsers drop it")
	case strings.HasPrefix(c.Cookie, "__Secure-") && !c.Secure:
		d.problemAt("consent.cookie", "consent.cookie: a __Secure- cookie needs consent.secure: true, or browsers drop it")
	}
	d.redisChecks()
	d.scriptChecks()
	d.tlsChecks()
	// The profiler is served behind the admin token only: without one it would be
	// unreachable, and an operator who turned it on would not know why.
	if d.cfg.AdminPprof && d.cfg.AdminToken == "" && d.valid("admin_token") {
		d.problemAt("admin_pprof", "admin_pprof: true needs admin_token: the profiles are served behind the admin token, and without one they would be unreachable")
	}
	// A cached "no consent stored" is what a missed invalidation keeps wrong the longest
	// after a visitor consents; it is meant to expire first.
	if k := &c.Cache; k.NegativeTTL > k.TTL && d.valid("consent.cache.negative_ttl", "consent.cache.ttl") {
		d.problemAtFirst([]string{"consent.cache.negative_ttl", "consent.cache.ttl"},
			"consent.cache.negative_ttl: %s%s is more than consent.cache.ttl (%s)",
			fmtDuration(k.NegativeTTL), d.ifDefault("consent.cache.negative_ttl"), fmtDuration(k.TTL))
	}
	// Receipts are the proof of consent (GDPR Art. 7(1)): they must be kept at least as
	// long as the consent they prove is acted on.
	if r := &c.Receipts; r.TTL < c.TTL && d.valid("consent.receipts.ttl", "consent.ttl") {
		d.problemAtFirst([]string{"consent.receipts.ttl", "consent.ttl"},
			"consent.receipts.ttl: %s%s is less than consent.ttl (%s): the proof of a consent must outlive the consent",
			fmtDuration(r.TTL), d.ifDefault("consent.receipts.ttl"), fmtDuration(c.TTL))
	}
	// A key listed twice is a copy-paste slip, and would leave two keys with one key ID.
	first := map[string]int{}
	for i, k := range c.Snapshot.Keys {
		if j, dup := first[k]; dup {
			sub := "consent.snapshot.keys." + strconv.Itoa(i)
			d.problemAtFirst([]string{sub, "consent.snapshot.keys"}, "%s: the same key as consent.snapshot.keys.%d (not repeated here); list each key once", sub, j)
			continue
		}
		first[k] = i
	}
	d.limitChecks()
	// Replacing the built-in jurisdictions with nothing puts every visitor in "other",
	// where no consent rules apply: fail closed rather than track Europe without consent.
	if j := d.cfg.Jurisdictions; j.Replace && len(j.Groups) == 0 {
		d.problemAt("jurisdictions.replace", "jurisdictions.replace: true with no groups would apply no consent rules anywhere; configure jurisdictions.groups")
	}
}

// limitChecks: a bucket's burst is what a client may do at once after a quiet spell; a
// limit on the network below the one on each of its addresses would make the address
// limit meaningless and cut off a NAT first.
func (d *decoder) limitChecks() {
	for _, l := range []struct {
		name string
		r    config.RateLimits
	}{{"consent_writes", d.cfg.Limits.ConsentWrites}, {"new_ids", d.cfg.Limits.NewIDs}, {"hits", d.cfg.Limits.Hits}} {
		ip, net := "limits."+l.name+".per_ip.per_minute", "limits."+l.name+".per_net.per_minute"
		if l.r.PerIP.PerMinute > 0 && l.r.PerNet.PerMinute > 0 && l.r.PerNet.PerMinute < l.r.PerIP.PerMinute && d.valid(ip, net) {
			d.problemAtFirst([]string{net, ip}, "%s: %d%s is less than %s (%d): a /24 or /48 holds many addresses, so its limit is at least one address's",
				net, l.r.PerNet.PerMinute, d.ifDefault(net), ip, l.r.PerIP.PerMinute)
		}
	}
}
