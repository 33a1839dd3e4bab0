package load

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/config"
)

const day = 24 * time.Hour

// maxTTL caps consent.ttl at 25 months: the longest consent lifetime data-protection
// authorities accept (CNIL, for one, expects consent to be asked again after 13 months,
// the default). A consent record kept longer is no longer proof of consent.
const maxTTL = 760 * day

// maxReceiptsTTL caps consent.receipts.ttl at ten years: proof of consent is kept for as
// long as a claim about it can be brought, not forever.
const maxReceiptsTTL = 3650 * day

// maxListenerTimeout bounds read_timeout and write_timeout. A request or response that
// takes longer is a stalled client, and every such connection holds a read buffer
// (max_header_size) and a goroutine for as long as the timeout lets it: an unbounded
// timeout is a slowloris's best friend.
const maxListenerTimeout = 5 * time.Minute

// scalarKey is a config value written as one YAML scalar. The file and the environment
// both set it through set, so a value is validated the same way wherever it comes from.
type scalarKey struct {
	key  string // dotted YAML key
	want string // what a good value looks like, for "want X, got Y"
	set  func(c *config.Config, s string) error
}

// enumKey names a vocabulary list and what its names are called in messages.
type enumKey struct {
	what  string
	names func(v *config.Vocabulary) []string
}

// enumKeys are the scalar keys whose value must be a name of the vocabulary; it is checked
// before set.
var enumKeys = map[string]enumKey{
	"geo.unknown_regime": {"regime", func(v *config.Vocabulary) []string { return v.Regimes }},
}

// listKey is a list of scalars, each checked alone.
type listKey struct {
	key   string
	want  string
	check func(s string) error
	dst   func(c *config.Config) *[]string
}

// scalarKeys end with the scripts section's (scripts.go).
var scalarKeys = slices.Concat([]scalarKey{
	{"listen", "host:port", func(c *config.Config, s string) error { return setString(&c.Listen, s, checkHostPort) }},
	{"admin_listen", "host:port", func(c *config.Config, s string) error { return setString(&c.AdminListen, s, checkHostPort) }},
	{"admin_token", "a token", func(c *config.Config, s string) error { return setString(&c.AdminToken, s, checkAdminToken) }},
	{"admin_pprof", "true or false", func(c *config.Config, s string) error { return setBool(&c.AdminPprof, s) }},
	{"read_timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.ReadTimeout, s, 100*time.Millisecond, maxListenerTimeout)
	}},
	{"write_timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.WriteTimeout, s, 100*time.Millisecond, maxListenerTimeout)
	}},
	{"max_body_size", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.MaxBodySize, s, 1<<10, 10<<20, " (1 KiB..10 MiB)")
	}},
	{"idle_timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.IdleTimeout, s, time.Second, time.Hour)
	}},
	{"max_header_size", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.MaxHeaderSize, s, 4<<10, 1<<20, " (4 KiB..1 MiB)")
	}},
	{"max_conns_per_ip", "a number", func(c *config.Config, s string) error {
		return setInt(&c.MaxConnsPerIP, s, 0, 1_000_000, " (0 = no cap)")
	}},
	{"log_level", "a log level", func(c *config.Config, s string) error { return setString(&c.LogLevel, s, checkLogLevel) }},
	{"tls.cert_file", "a file path", func(c *config.Config, s string) error { return setString(&c.TLS.CertFile, s, checkFile) }},
	{"tls.key_file", "a file path", func(c *config.Config, s string) error { return setString(&c.TLS.KeyFile, s, checkFile) }},
	{"tls.min_version", "1.2 or 1.3", func(c *config.Config, s string) error {
		return setString(&c.TLS.MinVersion, s, checkTLSVersion)
	}},
	{"geo.database", "a file path", func(c *config.Config, s string) error { return setString(&c.Geo.Database, s, checkFile) }},
	{"geo.unknown_regime", "a regime", func(c *config.Config, s string) error { c.Geo.UnknownRegime = s; return nil }}, // checked by enumKeys
	{"jurisdictions.replace", "true or false", func(c *config.Config, s string) error { return setBool(&c.Jurisdictions.Replace, s) }},
	{"consent.store", "a store name", func(c *config.Config, s string) error { return setString(&c.Consent.Store, s, checkStore) }},
	{"consent.on_store_error", "deny or unset", func(c *config.Config, s string) error {
		return setString(&c.Consent.OnStoreError, s, checkOnStoreError)
	}},
	{"consent.cookie", "a cookie name", func(c *config.Config, s string) error { return setString(&c.Consent.Cookie, s, checkCookieName) }},
	{"consent.cookie_domain", "a domain", func(c *config.Config, s string) error {
		return setString(&c.Consent.CookieDomain, s, checkCookieDomain)
	}},
	{"consent.secure", "true or false", func(c *config.Config, s string) error { return setBool(&c.Consent.Secure, s) }},
	{"consent.ttl", "a duration", func(c *config.Config, s string) error { return setDuration(&c.Consent.TTL, s, maxTTL) }},
	{"consent.max_entries", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Consent.MaxEntries, s, 1000, maxInt, "")
	}},
	// The password is taken as written: no check, so no message can repeat it.
	{"consent.redis.username", "a user name", func(c *config.Config, s string) error { c.Consent.Redis.Username = s; return nil }},
	{"consent.redis.password", "a password", func(c *config.Config, s string) error { c.Consent.Redis.Password = s; return nil }},
	{"consent.redis.db", "a database number", func(c *config.Config, s string) error { return setInt(&c.Consent.Redis.DB, s, 0, 15, "") }},
	{"consent.redis.tls", "true or false", func(c *config.Config, s string) error { return setBool(&c.Consent.Redis.TLS, s) }},
	{"consent.redis.cluster", "true or false", func(c *config.Config, s string) error { return setBool(&c.Consent.Redis.Cluster, s) }},
	{"consent.redis.master_name", "a Sentinel master name", func(c *config.Config, s string) error {
		return setString(&c.Consent.Redis.MasterName, s, checkMasterName)
	}},
	{"consent.redis.timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Consent.Redis.Timeout, s, time.Millisecond, 10*time.Second)
	}},
	{"consent.redis.pool_size", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Consent.Redis.PoolSize, s, 0, 10_000, " (0 = the client's default, 10 per CPU)")
	}},
	{"consent.redis.min_idle_conns", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Consent.Redis.MinIdleConns, s, 0, 10_000, " (0 = 4, or pool_size if smaller)")
	}},
	{"consent.redis.key_prefix", "a key prefix", func(c *config.Config, s string) error {
		return setString(&c.Consent.Redis.KeyPrefix, s, checkKeyPrefix)
	}},
	{"consent.redis.write_timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Consent.Redis.WriteTimeout, s, time.Millisecond, time.Minute)
	}},
	{"consent.cache.ttl", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Consent.Cache.TTL, s, 0, time.Hour)
	}},
	{"consent.cache.negative_ttl", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Consent.Cache.NegativeTTL, s, 0, time.Hour)
	}},
	{"consent.cache.max_entries", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Consent.Cache.MaxEntries, s, 1000, maxInt, "")
	}},
	{"consent.cache.max_bytes", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.Consent.Cache.MaxBytes, s, 1<<20, 1<<40, " (1 MiB..1 TiB)")
	}},
	{"consent.receipts.max_len", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Consent.Receipts.MaxLen, s, 1, 10_000, "")
	}},
	{"consent.receipts.ttl", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Consent.Receipts.TTL, s, 0, maxReceiptsTTL)
	}},
	// At least two of the largest receipts (a TC string of 4 KiB and the rest), so that a
	// write never trims the receipt before it.
	{"consent.receipts.max_bytes", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.Consent.Receipts.MaxBytes, s, 16<<10, 16<<20, " (16 KiB..16 MiB)")
	}},
	{"consent.max_bytes", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.Consent.MaxBytes, s, 16<<20, 1<<40, " (16 MiB..1 TiB)")
	}},
	{"consent.snapshot.after_data_loss", "restore or refusals_only", func(c *config.Config, s string) error {
		return setString(&c.Consent.Snapshot.AfterDataLoss, s, checkAfterDataLoss)
	}},
	{"upstream.timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Upstream.Timeout, s, time.Millisecond, time.Minute)
	}},
	{"upstream.max_conns", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Upstream.MaxConns, s, 1, 100_000, "")
	}},
	{"anonymise.secret", "a secret", func(c *config.Config, s string) error { return setString(&c.Anonymise.Secret, s, checkAnonymiseSecret) }},
	{"signals.tcf.grant_from", "api or hits", func(c *config.Config, s string) error {
		return setString(&c.Signals.TCF.GrantFrom, s, func(s string) error { return checkEnum(s, "value", "api", "hits") })
	}},
	{"anonymise.ipv6_prefix", "a prefix length", func(c *config.Config, s string) error {
		return setInt(&c.Anonymise.IPv6Prefix, s, 32, 64, " (bits of an IPv6 address kept)")
	}},
	{"anonymise.free_text", "scrub or drop", func(c *config.Config, s string) error {
		return setString(&c.Anonymise.FreeText, s, checkFreeText)
	}},
	{"signals.cmp.use_as_state", "true or false", func(c *config.Config, s string) error { return setBool(&c.Signals.CMP.UseAsState, s) }},
	{"telemetry.otlp.endpoint", "an http(s) URL", func(c *config.Config, s string) error {
		return setString(&c.Telemetry.OTLP.Endpoint, s, checkOTLPEndpoint)
	}},
	{"telemetry.otlp.interval", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Telemetry.OTLP.Interval, s, time.Second, time.Hour)
	}},
	{"telemetry.traces.enabled", "true or false", func(c *config.Config, s string) error { return setBool(&c.Telemetry.Traces.Enabled, s) }},
	{"telemetry.traces.sample_ratio", "a ratio from 0 to 1", func(c *config.Config, s string) error {
		return setRatio(&c.Telemetry.Traces.SampleRatio, s)
	}},
	{"telemetry.decision_log.sample_ratio", "a ratio from 0 to 1", func(c *config.Config, s string) error {
		return setRatio(&c.Telemetry.DecisionLog.SampleRatio, s)
	}},
	{"limits.max_clients", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Limits.MaxClients, s, 1024, 1<<26, " (clients tracked per limiter)")
	}},
}, scriptScalarKeys)

// rateLimitKeys are the scalar keys of the limits.* buckets, made once per bucket.
func init() {
	for _, l := range []struct {
		name string
		lim  func(c *config.Config) *config.RateLimits
	}{
		{"consent_writes", func(c *config.Config) *config.RateLimits { return &c.Limits.ConsentWrites }},
		{"new_ids", func(c *config.Config) *config.RateLimits { return &c.Limits.NewIDs }},
		{"hits", func(c *config.Config) *config.RateLimits { return &c.Limits.Hits }},
	} {
		for _, w := range []struct {
			name string
			one  func(r *config.RateLimits) *config.RateLimit
		}{
			{"per_ip", func(r *config.RateLimits) *config.RateLimit { return &r.PerIP }},
			{"per_net", func(r *config.RateLimits) *config.RateLimit { return &r.PerNet }},
		} {
			base := "limits." + l.name + "." + w.name
			scalarKeys = append(scalarKeys,
				scalarKey{base + ".per_minute", "a number per minute", func(c *config.Config, s string) error {
					return setInt(&w.one(l.lim(c)).PerMinute, s, 0, 100_000_000, " (0 = no limit)")
				}},
				scalarKey{base + ".burst", "a number", func(c *config.Config, s string) error {
					return setInt(&w.one(l.lim(c)).Burst, s, 1, 100_000_000, "")
				}})
		}
	}
}

// setRatio parses a share from 0 to 1.
func setRatio(dst *float64, s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return fmt.Errorf("want a ratio from 0 to 1, e.g. 0.01, got %s", quote(s))
	}
	*dst = f
	return nil
}

// checkOTLPEndpoint accepts an OTLP/HTTP base URL (http or https, a host, no query).
func checkOTLPEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("want an OTLP/HTTP URL such as http://collector:4318, got %s", quote(s))
	}
	return nil
}

var listKeys = []listKey{
	{"trusted_proxies", "CIDRs or IP addresses", checkTrustedProxy, func(c *config.Config) *[]string { return &c.TrustedProxies }},
	{"server_side.trusted_senders", "CIDRs or IP addresses", checkTrustedProxy, func(c *config.Config) *[]string { return &c.ServerSide.TrustedSenders }},
	{"allowed_origins", "origins", checkOrigin, func(c *config.Config) *[]string { return &c.AllowedOrigins }},
	{"anonymise.url_params", "parameter names", checkParamName, func(c *config.Config) *[]string { return &c.Anonymise.URLParams }},
	{"anonymise.path_templates", "path templates", checkPathTemplate, func(c *config.Config) *[]string { return &c.Anonymise.PathTemplates }},
	{"anonymise.site_hosts", "host names", checkSiteHost, func(c *config.Config) *[]string { return &c.Anonymise.SiteHosts }},
	{"consent.redis.addrs", "host:port addresses", checkRedisAddr, func(c *config.Config) *[]string { return &c.Consent.Redis.Addrs }},
	{"consent.snapshot.keys", "secrets", checkSnapshotKey, func(c *config.Config) *[]string { return &c.Consent.Snapshot.Keys }},
}

const maxInt = int(^uint(0) >> 1)

func setString(dst *string, s string, check func(string) error) error {
	if err := check(s); err != nil {
		return err
	}
	*dst = s
	return nil
}

func setBool(dst *bool, s string) error {
	b, err := parseBool(s)
	if err == nil {
		*dst = b
	}
	return err
}

// parseBool takes YAML 1.2 booleans only: "yes" and "on" are strings in YAML 1.2, and
// taking them here would make the same word mean different things in different places.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %s", quote(s))
}

func setInt(dst *int, s string, lo, hi int, unit string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a whole number, got %s", quote(s))
	}
	if n < lo || n > hi {
		if hi == maxInt {
			return fmt.Errorf("%d is less than %d", n, lo)
		}
		return fmt.Errorf("%d is out of range %d..%d%s", n, lo, hi, unit)
	}
	*dst = n
	return nil
}

// setDuration takes Go durations ("5s", "1m30s") or whole days ("395d"), more than zero
// and, when max > 0, at most max.
func setDuration(dst *time.Duration, s string, max time.Duration) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	switch {
	case v <= 0:
		return fmt.Errorf("%s: must be more than 0", quote(s))
	case max > 0 && v > max:
		return fmt.Errorf("%s is more than 25 months (%dd)", quote(s), max/day)
	}
	*dst = v
	return nil
}

// setDurationIn is setDuration for a range: more than 0, at least lo when lo > 0, and at
// most hi.
func setDurationIn(dst *time.Duration, s string, lo, hi time.Duration) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	switch {
	case lo > 0 && (v < lo || v > hi):
		return fmt.Errorf("%s is out of range %s..%s", quote(s), fmtDuration(lo), fmtDuration(hi))
	case v <= 0:
		return fmt.Errorf("%s: must be more than 0", quote(s))
	case v > hi:
		return fmt.Errorf("%s is more than %s", quote(s), fmtDuration(hi))
	}
	*dst = v
	return nil
}

// fmtDuration writes a duration as a config would: "790d", "1h", "1m30s", "5ms".
func fmtDuration(v time.Duration) string {
	if v >= day && v%day == 0 {
		return strconv.FormatInt(int64(v/day), 10) + "d"
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("want a duration such as \"5s\", \"1m30s\" or \"30d\", got %s", quote(s))
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil || days > 100_000 { // beyond that, days × 24h overflows
			return 0, bad
		}
		return time.Duration(days) * day, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	return v, nil
}
