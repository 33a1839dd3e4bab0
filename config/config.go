package config

import (
	"time"
)

// Pos is where a value stood: FILE:LINE:COL in the config file, or just the variable
// ("$CONSENTGATE_LISTEN") for an environment override; the zero Pos is a built-in default.
// Compile errors about a value are reported at its Pos.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.File == "" {
		return "(default)"
	}
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + itoa(p.Line) + ":" + itoa(p.Col)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Config is the YAML configuration as written, after defaults and CONSENTGATE_* env
// overrides are applied and every value is validated. Compile turns it into the tables a
// hit looks up.
type Config struct {
	Listen         string        `yaml:"listen"`       // public listener, default ":8080"
	AdminListen    string        `yaml:"admin_listen"` // admin listener, default "127.0.0.1:9090"
	AdminToken     string        `yaml:"admin_token"`  // bearer token for /admin/*; empty disables the admin API
	AdminPprof     bool          `yaml:"admin_pprof"`  // Go's profiler at /debug/pprof/ on the admin listener, behind admin_token; default off
	TrustedProxies []string      `yaml:"trusted_proxies"`
	ReadTimeout    time.Duration `yaml:"read_timeout"`  // public listener: a whole request, head and body, default 5s, 100ms..5m
	WriteTimeout   time.Duration `yaml:"write_timeout"` // public listener: a response, default 5s, 100ms..5m
	MaxBodySize    int           `yaml:"max_body_size"` // bytes, default 64 KiB
	// IdleTimeout is how long a public keep-alive connection may wait for its next
	// request, default 60s, 1s..1h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderSize bounds a public request's head (request line and headers) in bytes,
	// default 32 KiB, 4 KiB..1 MiB: real sites send cookie headers of many KB. It is the
	// listener's read buffer, held per connection while a request is read. A larger head
	// gets 431, a request line alone larger 414, each counted.
	MaxHeaderSize int `yaml:"max_header_size"`
	// MaxConnsPerIP caps the public connections one client address holds at once (an IPv6
	// client: its /64), default 256, 0 = no cap. Peers in TrustedProxies are exempt: their
	// connections carry many visitors.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// AllowedOrigins are the site origins whose pages may call the consent API from the
	// browser with credentials (CORS). Exact origins, e.g. "https://www.example.com".
	AllowedOrigins []string `yaml:"allowed_origins"`
	LogLevel       string   `yaml:"log_level"` // debug, info (default), warn, error
	// TLS serves the public listener over HTTPS, for sites without a load balancer that
	// terminates TLS. Off unless CertFile and KeyFile are set.
	TLS TLSConfig `yaml:"tls"`

	Geo           GeoConfig           `yaml:"geo"`
	Jurisdictions JurisdictionsConfig `yaml:"jurisdictions"`
	Consent       ConsentConfig       `yaml:"consent"`
	Upstream      UpstreamConfig      `yaml:"upstream"`
	Upstreams     map[string]string   `yaml:"upstreams"` // vendor → base URL
	Anonymise     AnonymiseConfig     `yaml:"anonymise"`
	Policy        PolicyConfig        `yaml:"policy"`
	Routes        []RouteConfig       `yaml:"routes"`
	Signals       SignalsConfig       `yaml:"signals"`
	ServerSide    ServerSideConfig    `yaml:"server_side"`
	Telemetry     TelemetryConfig     `yaml:"telemetry"`
	Limits        LimitsConfig        `yaml:"limits"`
	Scripts       ScriptsConfig       `yaml:"scripts"` // first-party tag scripts (scripts.go)

	// Positions of values that Compile checks against each other (set by the loader).
	Pos map[string]Pos `yaml:"-"`
	// Warnings are what the loader found valid but risky (config/load guards.go): `check`
	// prints them, `serve` logs them at start and on every reload. Not part of Version.
	Warnings []Problem `yaml:"-" json:"-"`
}

// TLSConfig is the public listener's certificate. The files are read at load (the pair
// must match), and again whenever they change on disk or the config is reloaded, so a
// renewal by certbot, lego or cert-manager takes effect without a restart.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"` // PEM: the certificate, then its intermediates
	KeyFile  string `yaml:"key_file"`  // PEM: the certificate's private key
	// MinVersion is the oldest protocol accepted, "1.2" (default) or "1.3". Older ones
	// are never offered: TLS 1.0 and 1.1 are deprecated (RFC 8996).
	MinVersion string `yaml:"min_version"`
}

// On says whether the public listener serves TLS.
func (t TLSConfig) On() bool { return t.CertFile != "" }

type GeoConfig struct {
	Database      string `yaml:"database"`       // path to a MaxMind .mmdb (Country or City); empty = no GeoIP
	UnknownRegime string `yaml:"unknown_regime"` // default "opt_in"
}

type JurisdictionsConfig struct {
	// Replace drops the built-in groups; otherwise Groups extend them, and a code named in a
	// configured group moves there from the built-in group that had it.
	Replace bool                         `yaml:"replace"`
	Groups  map[string]JurisdictionGroup `yaml:"groups"`
}

type JurisdictionGroup struct {
	Regime string   `yaml:"regime"` // opt_in, opt_out, none
	Codes  []string `yaml:"codes"`  // "DE", "US-CA"
	// GPC says whether Sec-GPC: 1 opts the visitor out of marketing here. Default: true for
	// opt_out groups, false otherwise.
	GPC *bool `yaml:"gpc"`
}

type ConsentConfig struct {
	Store string `yaml:"store"` // "memory" (default: one instance) or "redis" (shared by every instance)
	// OnStoreError says how a hit is decided when the consent lookup fails or exceeds its
	// budget: "deny" (default) counts every purpose as denied (fail closed); "unset" decides
	// as if no consent was stored, so the regime's default for unset consent applies.
	OnStoreError string        `yaml:"on_store_error"`
	Cookie       string        `yaml:"cookie"`        // default "cg_id"
	CookieDomain string        `yaml:"cookie_domain"` // optional Domain attribute, e.g. ".example.com"
	Secure       bool          `yaml:"secure"`        // add Secure to the cookie
	TTL          time.Duration `yaml:"ttl"`           // default 395 days (13 months), capped at 25 months
	MaxEntries   int           `yaml:"max_entries"`   // memory store bound, default 1,000,000

	// Redis is the store when Store is "redis". It is validated whenever it is written,
	// even with store: memory, so that switching by CONSENTGATE_CONSENT_STORE is safe.
	Redis RedisConfig `yaml:"redis"`
	// Cache is the local cache in front of Redis (unused by the memory store).
	Cache ConsentCacheConfig `yaml:"cache"`
	// Receipts bound the proof-of-consent records kept per consent ID.
	Receipts ReceiptsConfig `yaml:"receipts"`
	// MaxBytes bounds the memory store by the bytes its states and receipts hold (about
	// half each), besides MaxEntries: a TC string can make one entry kilobytes. Default
	// 256 MiB.
	MaxBytes int `yaml:"max_bytes"`
	// Snapshot signs the copy of the visitor's choices that the consent cookie carries.
	Snapshot SnapshotConfig `yaml:"snapshot"`
}

// SnapshotConfig keys the signed consent snapshot in the consent cookie, which decides a
// hit when the store has no record or cannot answer (README "How it decides").
type SnapshotConfig struct {
	// Keys are HMAC secrets: the first signs, every one verifies, so a key is rotated by
	// putting the new one first and dropping the old one a consent TTL later. Empty: a
	// random key per process, which other instances and a restart cannot verify.
	Keys []string `yaml:"keys"`
	// AfterDataLoss says what a valid snapshot decides when the store has no record for
	// its ID and the snapshot predates the store's dataset (a Redis restarted without
	// persistence, or flushed): "restore" (default) its grants and refusals, as while the
	// store does not answer; "refusals_only" its refusals only, as for a record deleted
	// on purpose (README "The signed consent snapshot").
	AfterDataLoss string `yaml:"after_data_loss"`
}

// RedisConfig is the consent store in Redis: one node, Redis Cluster or Sentinel.
type RedisConfig struct {
	// Addrs are "host:port": one address is a single node (or a cluster seed with Cluster);
	// several are Redis Cluster nodes, or the Sentinels with MasterName. Required with
	// store: redis.
	Addrs    []string `yaml:"addrs"`
	Username string   `yaml:"username"` // ACL user; empty = the default user
	// Password is the ACL or requirepass password, best set by
	// CONSENTGATE_CONSENT_REDIS_PASSWORD. The loader never repeats it in a message.
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`  // database number 0..15; must be 0 in cluster mode
	TLS      bool   `yaml:"tls"` // connect with TLS
	// Cluster forces Redis Cluster with a single (seed) address; several addresses without
	// MasterName imply it. Excludes MasterName.
	Cluster bool `yaml:"cluster"`
	// MasterName selects Sentinel: Addrs are the Sentinels, MasterName the monitored master.
	MasterName string `yaml:"master_name"`
	// Timeout is the budget of one lookup, default 5ms, 1ms..10s; past it the hit is decided
	// as OnStoreError says.
	Timeout      time.Duration `yaml:"timeout"`
	PoolSize     int           `yaml:"pool_size"`      // connections; 0 (default) = the client's default, 10 per CPU; at most 10,000
	MinIdleConns int           `yaml:"min_idle_conns"` // connections kept open from the start; 0 (default) = 4, or PoolSize if smaller; at most PoolSize when that is set
	// KeyPrefix starts every key and the invalidation channel, default "consentgate:".
	// Non-empty, without whitespace or braces: keys put the consent ID in a {hash tag}.
	KeyPrefix string `yaml:"key_prefix"`
	// WriteTimeout is the budget of each call a consent write makes (the read of the
	// previous state, the transaction) and of the admin API's calls, default 250ms,
	// 1ms..60s, at least Timeout: a write must not fail on a hit-sized budget.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// ConsentCacheConfig bounds the per-instance cache of consent states in front of Redis.
// Writes invalidate cached IDs at once (pub/sub); the TTLs are only a backstop.
type ConsentCacheConfig struct {
	TTL         time.Duration `yaml:"ttl"`          // cached states, default 5s, at most 1h
	NegativeTTL time.Duration `yaml:"negative_ttl"` // cached "no consent stored", default 1s, at most TTL
	MaxEntries  int           `yaml:"max_entries"`  // default 100,000, at least 1000
	MaxBytes    int           `yaml:"max_bytes"`    // bytes the cached states hold, default 64 MiB
}

// ReceiptsConfig bounds the proof-of-consent receipts (GDPR Art. 7(1)) kept per consent ID.
type ReceiptsConfig struct {
	MaxLen int `yaml:"max_len"` // receipts kept per consent ID; default 100, 1..10,000
	// TTL is how long receipts are kept, default 790d, at most 3650d. It must be at least
	// consent.ttl: the proof of a consent must outlive the consent.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes bounds the receipts of one consent ID by their size (field names and
	// values), default 64 KiB; the oldest go first, the newest always stays.
	MaxBytes int `yaml:"max_bytes"`
}

type UpstreamConfig struct {
	Timeout  time.Duration `yaml:"timeout"`   // per request read+write, default 5s, 1ms..1m
	MaxConns int           `yaml:"max_conns"` // per upstream host, default 512
}

type AnonymiseConfig struct {
	// Secret is an optional extra key of the pseudonyms that replace identifiers: the
	// day's salt is random and shared through Redis (rules.Hasher), and the secret keeps a
	// reader of Redis from computing pseudonyms with it. Instances behind one load
	// balancer need the same secret; empty keys nothing beyond the salt. Placeholders and
	// guessable values are refused (config/load strength.go).
	Secret string `yaml:"secret"`
	// IPv6Prefix is how many leading bits of a native IPv6 address an anonymised hit
	// keeps, 32..64, default 48. IPv4 addresses, and IPv6 addresses that embed one
	// (6to4, Teredo, NAT64, IPv4-mapped), keep their /24 (geo.Truncate).
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// URLParams extends the query parameters kept in URLs (page location, referrer) when
	// anonymising; utm_* are kept by default.
	URLParams []string `yaml:"url_params"`
	// Allow extends a vendor's parameter allow-list: vendor → parameter names kept as
	// free text (scrubbed, or dropped under FreeText "drop").
	Allow map[string][]string `yaml:"allow"`
	// FreeText says what happens to free text (page titles, event labels, campaign
	// values, extension parameters) when anonymising: "scrub" replaces e-mail
	// addresses, phone numbers, card numbers, IBANs, long digit runs and tokens by
	// placeholders; "drop" removes free text (a campaign value stays only if there was
	// nothing to scrub). Default "scrub".
	FreeText string `yaml:"free_text"`
	// PathTemplates are URL path templates such as "/users/{id}": a path that starts
	// with a template's segments has each "{name}" segment replaced by ":name", on top
	// of the built-in scrubbing (which only sees shapes: an ID of four digits or a user
	// name needs a template).
	PathTemplates []string `yaml:"path_templates"`
	// SiteHosts are the site's own host names: a referrer from one of them (or from the
	// page's own host) keeps its scrubbed path; any other referrer keeps its origin only.
	// The hosts of AllowedOrigins count too.
	SiteHosts []string `yaml:"site_hosts"`
}

// PolicyConfig overrides cells of the decision table: regime → status → purpose → action,
// for all vendors, and per vendor under Vendors.
type PolicyConfig struct {
	Table   PolicyTable            `yaml:",inline"`
	Vendors map[string]PolicyTable `yaml:"vendors"`
}

// PolicyTable is regime → status → purpose → action, e.g. opt_in.unset.statistics: drop.
type PolicyTable map[string]map[string]map[string]string

// SignalsConfig says how the consent signals a hit carries are read (README "Consent
// signals"). Everything has a default; the section is only for sites that differ.
type SignalsConfig struct {
	TCF TCFConfig `yaml:"tcf"`
	CMP CMPConfig `yaml:"cmp"`
}

// TCFConfig maps IAB TCF onto the catalogue.
type TCFConfig struct {
	// Purposes maps one of our purposes to the TCF purposes (1..11) a vendor must be
	// allowed, all of them, for the TC string to grant it; a purpose named here replaces
	// its default (DefaultTCFPurposes). An empty list means TCF says nothing about it.
	Purposes map[string][]int `yaml:"purposes"`
	// Vendors sets a vendor's Global Vendor List ID over the built-in ones (VendorGVLID);
	// 0 takes the vendor off TCF, so TC strings do not decide for it.
	Vendors map[string]int `yaml:"vendors"`
	// GrantFrom says which TC strings may grant consent: "api" (default) only one written
	// through the consent API by the site's banner or backend; "hits" also the strings a
	// hit carries (gdpr_consent, euconsent-v2, GPP tcfeuv2), which any script on the page
	// can set. A TC string from anywhere may always refuse.
	GrantFrom string `yaml:"grant_from"`
}

// CMPConfig is about the consent banners' own cookies.
type CMPConfig struct {
	// UseAsState: when the store holds nothing for the visitor, a Cookiebot or OneTrust
	// cookie stands in for the stored state (grants included). Off by default: the
	// cookies then only ever deny.
	UseAsState bool `yaml:"use_as_state"`
	// OneTrustGroups maps OneTrust group IDs to purposes, replacing the default
	// C0001 necessary, C0002 statistics, C0003 preferences, C0004 marketing.
	OneTrustGroups map[string]string `yaml:"onetrust_groups"`
}

// ServerSideConfig is about hits a site's backend sends on a visitor's behalf (GA4
// Measurement Protocol). Such a hit is decided on the visitor, never on the sender: the
// sender's address says where the server is, not where the visitor is.
type ServerSideConfig struct {
	// TrustedSenders are the backends (CIDRs or IPs, after trusted_proxies) whose hits
	// are located by the visitor the body names (ip_override, else user_location). A hit
	// from any other sender is of unknown location, the strictest regime by default.
	TrustedSenders []string `yaml:"trusted_senders"`
}

// TelemetryConfig is what the proxy exports beyond /metrics.
type TelemetryConfig struct {
	OTLP        OTLPConfig        `yaml:"otlp"`
	Traces      TracesConfig      `yaml:"traces"`
	DecisionLog DecisionLogConfig `yaml:"decision_log"`
}

// OTLPConfig is the OpenTelemetry collector metrics (and traces, when on) are pushed to.
type OTLPConfig struct {
	Endpoint string            `yaml:"endpoint"` // OTLP/HTTP base URL, e.g. http://collector:4318; empty = no push
	Headers  map[string]string `yaml:"headers"`  // sent with every export, e.g. an API key
	Interval time.Duration     `yaml:"interval"` // metric push interval, default 30s
}

// TracesConfig turns on spans for hits (and their Redis calls), exported by OTLP.
type TracesConfig struct {
	Enabled     bool    `yaml:"enabled"`      // default false
	SampleRatio float64 `yaml:"sample_ratio"` // share of hits traced, 0..1, default 0.01
}

// DecisionLogConfig is the optional sampled log of decisions (vendor, action, reason,
// jurisdiction; never an IP or an ID).
type DecisionLogConfig struct {
	SampleRatio float64 `yaml:"sample_ratio"` // share of hits logged, 0..1, default 0 (off)
}

// LimitsConfig are the token buckets in front of the consent API (and, optionally, hits),
// per client IP and per network (/24 IPv4, /48 IPv6). A zero PerMinute turns one off.
type LimitsConfig struct {
	ConsentWrites RateLimits `yaml:"consent_writes"` // POST and DELETE /consent
	NewIDs        RateLimits `yaml:"new_ids"`        // consent IDs minted
	Hits          RateLimits `yaml:"hits"`           // tracking hits; off by default
	// MaxClients bounds the clients each limiter tracks (a fixed table, about 24 bytes a
	// client); default 65,536.
	MaxClients int `yaml:"max_clients"`
}

// RateLimits are one limit per client IP and one per network.
type RateLimits struct {
	PerIP  RateLimit `yaml:"per_ip"`
	PerNet RateLimit `yaml:"per_net"`
}

// RateLimit is a token bucket: PerMinute tokens a minute, at most Burst at once.
type RateLimit struct {
	PerMinute int `yaml:"per_minute"` // 0 = no limit
	Burst     int `yaml:"burst"`
}

type RouteConfig struct {
	Path     string `yaml:"path"`     // exact path, or a prefix ending in "*"
	Host     string `yaml:"host"`     // optional: only for this Host
	Endpoint string `yaml:"endpoint"` // catalogue endpoint name whose behaviour the route takes
	Disabled bool   `yaml:"disabled"` // remove a built-in route for Path
	Pos      Pos    `yaml:"-"`
}
