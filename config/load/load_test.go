package load

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/consentgate/consentgate/config"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// secretMarker is the Redis password (and other would-be secrets) of the bad configs: no
// message may repeat it.
const secretMarker = "pw-MUST-NOT-SHOW"

// testLoader is the loader of every test here: the vocabulary of testdata/vocabulary.json
// and no environment unless a test gives one.
var testLoader = func() *Loader {
	raw, err := os.ReadFile("testdata/vocabulary.json")
	if err != nil {
		panic(err)
	}
	l := &Loader{Getenv: func(string) string { return "" }}
	if err := json.Unmarshal(raw, &l.Vocabulary); err != nil {
		panic("testdata/vocabulary.json: " + err.Error())
	}
	return l
}()

// useEnv makes env the whole environment the loader sees.
func useEnv(t testing.TB, env map[string]string) {
	t.Helper()
	saved := testLoader.Getenv
	testLoader.Getenv = func(k string) string { return env[k] }
	t.Cleanup(func() { testLoader.Getenv = saved })
}

// Load, LoadBytes and Default are the test loader's.
func Load(path string) (*config.Config, error) { return testLoader.Load(path) }
func LoadBytes(name string, data []byte) (*config.Config, error) {
	return testLoader.LoadBytes(name, data)
}
func Default() (*config.Config, error) { return testLoader.Default() }

// readEnvFile reads KEY=VALUE lines; a missing file is an empty environment.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	env := map[string]string{}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return env
	}
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		env[k] = v
	}
	return env
}

// TestLoadBadGolden loads each testdata/config/bad/*.yaml (with the environment of the
// .env file next to it, if any) and compares the error with the .golden file. Run with
// -update to rewrite the goldens after an intended change, then read the diff.
func TestLoadBadGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/config/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, path := range files {
		base := strings.TrimSuffix(path, ".yaml")
		t.Run(filepath.Base(base), func(t *testing.T) {
			useEnv(t, readEnvFile(t, base+".env"))
			cfg, err := Load(path)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got cfg=%v err=%v", cfg != nil, err)
			}
			if cfg != nil {
				t.Error("config returned with an error")
			}
			checkSorted(t, ce)
			got := err.Error() + "\n"
			if strings.Contains(got, secretMarker) {
				t.Errorf("a message repeats a secret:\n%s", got)
			}
			if *update {
				if err := os.WriteFile(base+".golden", []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(base + ".golden")
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s.golden:\n--- got\n%s--- want\n%s", base, got, want)
			}
		})
	}
}

func checkSorted(t *testing.T, ce *config.Error) {
	t.Helper()
	for i, p := range ce.Problems {
		if p.Pos.Line <= 0 && !strings.HasPrefix(p.Pos.File, "$"+envPrefix) {
			t.Errorf("problem without a position: %+v", p)
		}
		if i == 0 {
			continue
		}
		q := ce.Problems[i-1]
		if q.Pos.Line == 0 && p.Pos.Line > 0 || p.Pos.Line > 0 && (q.Pos.Line > p.Pos.Line || q.Pos.Line == p.Pos.Line && q.Pos.Col > p.Pos.Col) {
			t.Errorf("problems out of order: %v before %v", q, p)
		}
	}
}

// TestLoadGoodMinimal: one key set, every other value is the default.
func TestLoadGoodMinimal(t *testing.T) {
	useEnv(t, nil)
	cfg := mustLoad(t, "testdata/config/good/minimal.yaml")
	want := defaultConfig()
	want.Upstreams = map[string]string{"ga4": "https://region1.google-analytics.com"}
	checkConfig(t, cfg, want)
	checkPos(t, cfg, map[string]string{
		"upstreams":     "testdata/config/good/minimal.yaml:2:1",
		"upstreams.ga4": "testdata/config/good/minimal.yaml:3:8",
	})
}

// TestLoadGoodFull: every key of the schema, decoded into the values written.
func TestLoadGoodFull(t *testing.T) {
	useEnv(t, nil)
	cfg := mustLoad(t, "testdata/config/good/full.yaml")
	yes, no := true, false
	want := &config.Config{
		Listen:         "0.0.0.0:8443",
		AdminListen:    "[::1]:9191",
		AdminToken:     "Vq7rK2xLm9PzW4nTb8HcY3dJf6sGa",
		AdminPprof:     true,
		TrustedProxies: []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32"},
		ReadTimeout:    3 * time.Second,
		WriteTimeout:   90 * time.Second,
		MaxBodySize:    131072,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderSize:  65536,
		MaxConnsPerIP:  64,
		AllowedOrigins: []string{"https://www.example.com", "http://localhost:3000"},
		LogLevel:       "debug",
		TLS:            config.TLSConfig{MinVersion: "1.3"},
		Geo:            config.GeoConfig{Database: "../../testdata/geoip/GeoIP2-City-Test.mmdb", UnknownRegime: "opt_out"},
		Jurisdictions: config.JurisdictionsConfig{
			Replace: true,
			Groups: map[string]config.JurisdictionGroup{
				"eea":   {Regime: "opt_in", Codes: []string{"DE", "FR", "AT"}},
				"us-ca": {Regime: "opt_out", GPC: &yes, Codes: []string{"US-CA"}},
				"br":    {Regime: "opt_in", GPC: &no, Codes: []string{"BR"}},
			},
		},
		Consent: config.ConsentConfig{Store: "redis", OnStoreError: "unset",
			Cookie: "__Secure-cg", CookieDomain: ".example.com", Secure: true,
			TTL: 180 * 24 * time.Hour, MaxEntries: 50000,
			Redis: config.RedisConfig{
				Addrs:    []string{"10.0.0.5:26379", "sentinel-2.internal:26379"},
				Username: "consentgate", Password: "redis-pass-0123", DB: 2, TLS: true,
				MasterName: "consent-master", Timeout: 20 * time.Millisecond,
				PoolSize: 64, MinIdleConns: 8, KeyPrefix: "cg:prod:", WriteTimeout: 500 * time.Millisecond,
			},
			Cache:    config.ConsentCacheConfig{TTL: 30 * time.Second, NegativeTTL: 2 * time.Second, MaxEntries: 20000, MaxBytes: 2 << 20},
			Receipts: config.ReceiptsConfig{MaxLen: 25, TTL: 400 * 24 * time.Hour, MaxBytes: 32 << 10},
			MaxBytes: 32 << 20,
			Snapshot: config.SnapshotConfig{Keys: []string{"Qm7Tz2Kv9Wx4Lc8Rn3Hb6Pd", "Jy5Fs1Ng8Vk3Xq7Mz2Bw4Ct"}, AfterDataLoss: "refusals_only"},
		},
		Upstream: config.UpstreamConfig{Timeout: 2500 * time.Millisecond, MaxConns: 64},
		Upstreams: map[string]string{
			"ga4":    "https://region1.google-analytics.com",
			"matomo": "https://analytics.example.com/matomo/",
		},
		Anonymise: config.AnonymiseConfig{
			Secret:        "Xp4Lq8zRw2Nc7Vt5Kj9M",
			IPv6Prefix:    56,
			URLParams:     []string{"lang", "page"},
			Allow:         map[string][]string{"ga4": {"ep.page_type", "ep.section"}},
			FreeText:      "drop",
			PathTemplates: []string{"/users/{id}", "/orders/*/{token}"},
			SiteHosts:     []string{"blog.example.com", "Shop.Example.com"},
		},
		Policy: config.PolicyConfig{
			Table: config.PolicyTable{
				"opt_in":  {"unset": {"statistics": "anonymise", "marketing": "drop"}},
				"opt_out": {"denied": {"statistics": "anonymise"}},
			},
			Vendors: map[string]config.PolicyTable{"matomo": {"opt_in": {"unset": {"statistics": "forward"}}}},
		},
		Routes: []config.RouteConfig{
			{Path: "/ads/*", Endpoint: "google_ads_conversion", Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 102, Col: 5}},
			{Path: "/g/collect", Host: "t.example.com", Endpoint: "ga4_collect", Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 104, Col: 5}},
			{Path: "/tr", Disabled: true, Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 107, Col: 5}},
		},
		Signals: config.SignalsConfig{
			TCF: config.TCFConfig{
				Purposes:  map[string][]int{"statistics": {1, 7, 9}, "necessary": {}},
				Vendors:   map[string]int{"matomo": 1234, "ga4": 0},
				GrantFrom: "hits",
			},
			CMP: config.CMPConfig{UseAsState: true, OneTrustGroups: map[string]string{"C0002": "statistics", "C0005": "marketing"}},
		},
		ServerSide: config.ServerSideConfig{TrustedSenders: []string{"10.20.0.0/16"}},
		Telemetry: config.TelemetryConfig{
			OTLP:        config.OTLPConfig{Endpoint: "https://otel.example.com:4318", Headers: map[string]string{"x-api-key": "k-123"}, Interval: 15 * time.Second},
			Traces:      config.TracesConfig{Enabled: true, SampleRatio: 0.25},
			DecisionLog: config.DecisionLogConfig{SampleRatio: 0.001},
		},
		Limits: config.LimitsConfig{
			ConsentWrites: config.RateLimits{PerIP: config.RateLimit{PerMinute: 60, Burst: 20}, PerNet: config.RateLimit{PerMinute: 600, Burst: 300}},
			NewIDs:        config.RateLimits{PerIP: config.RateLimit{PerMinute: 30, Burst: 10}, PerNet: config.RateLimit{PerMinute: 300, Burst: 100}},
			Hits:          config.RateLimits{PerIP: config.RateLimit{PerMinute: 6000, Burst: 600}, PerNet: config.RateLimit{PerMinute: 60000, Burst: 6000}},
			MaxClients:    4096,
		},
		Scripts: config.ScriptsConfig{
			Enabled: true, Prefix: "/assets/x9", Timeout: 3 * time.Second, MaxSize: 1 << 20,
			Cache: config.ScriptCacheConfig{MaxBytes: 8 << 20, MaxEntries: 200, MinTTL: 30 * time.Second, MaxTTL: 2 * time.Hour,
				StaleIfError: 12 * time.Hour, NegativeTTL: 20 * time.Second, BrowserMaxAge: 5 * time.Minute},
			Entries: map[string]config.ScriptConfig{
				"gtag":     {Path: "/g.js", Params: []string{"id"}, IDs: []string{"G-ABC123", "G-DEF456"}, Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 167, Col: 3}},
				"fbevents": {Disabled: true, Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 171, Col: 3}},
				"matomo":   {Upstream: "https://analytics.example.com/matomo/matomo.js", Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 173, Col: 3}},
				"extra":    {Path: "/x/tag.js", Upstream: "https://cdn.vendor.example/v2/tag.js", Params: []string{}, Pos: config.Pos{File: "testdata/config/good/full.yaml", Line: 175, Col: 3}},
			},
		},
	}
	checkConfig(t, cfg, want)
	// Cluster mode excludes Sentinel (master_name) and a database other than 0, which
	// full.yaml sets; cluster.yaml sets it (TestLoadGoodCluster). The TLS files are made
	// at test time, so no key is ever committed: TestLoadTLS sets them.
	checkAllSet(t, reflect.ValueOf(*cfg), "config", "config.Consent.Redis.Cluster", "config.TLS.CertFile", "config.TLS.KeyFile")
	checkPos(t, cfg, map[string]string{
		"listen":                                        "testdata/config/good/full.yaml:2:9",
		"trusted_proxies":                               "testdata/config/good/full.yaml:5:1",
		"trusted_proxies.1":                             "testdata/config/good/full.yaml:7:5",
		"geo.database":                                  "testdata/config/good/full.yaml:16:13",
		"jurisdictions.groups.us-ca":                    "testdata/config/good/full.yaml:25:5",
		"jurisdictions.groups.us-ca.codes.0":            "testdata/config/good/full.yaml:28:15",
		"consent.redis":                                 "testdata/config/good/full.yaml:42:3",
		"consent.redis.addrs.1":                         "testdata/config/good/full.yaml:45:31",
		"consent.redis.db":                              "testdata/config/good/full.yaml:48:9",
		"consent.cache.negative_ttl":                    "testdata/config/good/full.yaml:58:19",
		"consent.receipts.ttl":                          "testdata/config/good/full.yaml:63:10",
		"upstreams.matomo":                              "testdata/config/good/full.yaml:75:11",
		"anonymise.allow.ga4.1":                         "testdata/config/good/full.yaml:82:25",
		"policy.opt_in.unset.statistics":                "testdata/config/good/full.yaml:90:19",
		"policy.vendors.matomo.opt_in.unset.statistics": "testdata/config/good/full.yaml:99:23",
		"routes.1":                                      "testdata/config/good/full.yaml:104:5",
		"routes.1.host":                                 "testdata/config/good/full.yaml:105:11",
		"scripts.prefix":                                "testdata/config/good/full.yaml:156:11",
		"scripts.cache.min_ttl":                         "testdata/config/good/full.yaml:162:14",
		"scripts.gtag.ids.1":                            "testdata/config/good/full.yaml:170:21",
		"scripts.extra.upstream":                        "testdata/config/good/full.yaml:177:15",
	})
}

// TestLoadGoodCluster: cluster: true, which full.yaml cannot set alongside master_name.
func TestLoadGoodCluster(t *testing.T) {
	useEnv(t, nil)
	cfg := mustLoad(t, "testdata/config/good/cluster.yaml")
	want := defaultConfig()
	want.Consent.Store = "redis"
	want.Consent.Redis.Addrs = []string{"redis-cluster.internal:6379"}
	want.Consent.Redis.Cluster = true
	checkConfig(t, cfg, want)
	checkPos(t, cfg, map[string]string{"consent.redis.cluster": "testdata/config/good/cluster.yaml:6:14"})
}

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("%s:\n%v", path, err)
	}
	return cfg
}

// checkConfig compares everything but Pos, which checkPos samples.
func checkConfig(t *testing.T, got, want *config.Config) {
	t.Helper()
	g, w := *got, *want
	g.Pos, w.Pos = nil, nil
	g.Warnings, w.Warnings = nil, nil // TestLoadWarnGolden
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config differs:\n got %+v\nwant %+v", g, w)
	}
}

func checkPos(t *testing.T, cfg *config.Config, want map[string]string) {
	t.Helper()
	for k, w := range want {
		p, ok := cfg.Pos[k]
		if !ok {
			t.Errorf("Pos[%q] not set", k)
			continue
		}
		if got := p.String(); got != w {
			t.Errorf("Pos[%q] = %s, want %s", k, got, w)
		}
	}
}

// checkAllSet fails on any zero field: the full config must exercise every key, so a key
// added to config.go without a decoder (or without a line in full.yaml) shows up here.
// exempt names the fields full.yaml cannot set (each one covered by another good file);
// an exempt field that is set anyway is an error too, so the list stays short.
func checkAllSet(t *testing.T, v reflect.Value, path string, exempt ...string) {
	t.Helper()
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Tag.Get("yaml") == "-" {
				continue
			}
			checkAllSet(t, v.Field(i), path+"."+f.Name, exempt...)
		}
		return
	}
	switch {
	case slices.Contains(exempt, path) && !v.IsZero():
		t.Errorf("%s is set by full.yaml: remove it from the exempt fields", path)
	case !slices.Contains(exempt, path) && v.IsZero():
		t.Errorf("%s is not set by full.yaml", path)
	}
}

// TestConfigKeys: the loader's key lists are the yaml tags of config.go, and every key
// has a decoder.
func TestConfigKeys(t *testing.T) {
	for _, c := range []struct {
		keys []string
		typ  any
	}{
		{topKeys, config.Config{}},
		{tlsKeys, config.TLSConfig{}},
		{geoKeys, config.GeoConfig{}},
		{jurisdictionsKeys, config.JurisdictionsConfig{}},
		{groupKeys, config.JurisdictionGroup{}},
		{consentKeys, config.ConsentConfig{}},
		{redisKeys, config.RedisConfig{}},
		{consentCacheKeys, config.ConsentCacheConfig{}},
		{receiptsKeys, config.ReceiptsConfig{}},
		{upstreamKeys, config.UpstreamConfig{}},
		{anonymiseKeys, config.AnonymiseConfig{}},
		{routeKeys, config.RouteConfig{}},
		{signalsKeys, config.SignalsConfig{}},
		{serverSideKeys, config.ServerSideConfig{}},
		{tcfKeys, config.TCFConfig{}},
		{cmpKeys, config.CMPConfig{}},
		{telemetryKeys, config.TelemetryConfig{}},
		{otlpKeys, config.OTLPConfig{}},
		{tracesKeys, config.TracesConfig{}},
		{decisionLogKeys, config.DecisionLogConfig{}},
		{snapshotKeys, config.SnapshotConfig{}},
		{limitsKeys, config.LimitsConfig{}},
		{rateLimitsKeys, config.RateLimits{}},
		{rateLimitKeys, config.RateLimit{}},
		{scriptsKeys, config.ScriptsConfig{}},
		{scriptCacheKeys, config.ScriptCacheConfig{}},
		{scriptKeys, config.ScriptConfig{}},
	} {
		typ := reflect.TypeOf(c.typ)
		var tags []string
		for i := range typ.NumField() {
			// An inline field (",inline") holds the mapping's other keys: it has no key.
			if tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ","); tag != "-" && tag != "" {
				tags = append(tags, tag)
			}
		}
		if !slices.Equal(tags, c.keys) {
			t.Errorf("%s: loader keys %v, yaml tags %v", typ.Name(), c.keys, tags)
		}
	}
	sections := map[string][]string{"": topKeys, "tls": tlsKeys, "geo": geoKeys, "jurisdictions": jurisdictionsKeys,
		"consent": consentKeys, "consent.redis": redisKeys, "consent.cache": consentCacheKeys,
		"consent.receipts": receiptsKeys, "upstream": upstreamKeys, "anonymise": anonymiseKeys,
		"signals.tcf": tcfKeys, "server_side": serverSideKeys, "signals.cmp": cmpKeys, "telemetry.otlp": otlpKeys, "telemetry.traces": tracesKeys,
		"telemetry.decision_log": decisionLogKeys, "consent.snapshot": snapshotKeys, "limits": limitsKeys,
		"scripts": scriptsKeys, "scripts.cache": scriptCacheKeys}
	for _, l := range []string{"consent_writes", "new_ids", "hits"} {
		for _, w := range rateLimitsKeys {
			sections["limits."+l+"."+w] = rateLimitKeys
		}
	}
	var tableKeys []string
	for _, sk := range scalarKeys {
		tableKeys = append(tableKeys, sk.key)
	}
	for _, lk := range listKeys {
		tableKeys = append(tableKeys, lk.key)
	}
	for _, k := range tableKeys {
		section, key := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			section, key = k[:i], k[i+1:]
		}
		if !slices.Contains(sections[section], key) {
			t.Errorf("table key %q is not a key of its section", k)
		}
	}
}

func TestDefault(t *testing.T) {
	useEnv(t, nil)
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Listen: ":8080", AdminListen: "127.0.0.1:9090",
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		MaxBodySize: 65536, LogLevel: "info",
		IdleTimeout: time.Minute, MaxHeaderSize: 32768, MaxConnsPerIP: 256,
		TLS: config.TLSConfig{MinVersion: "1.2"},
		Geo: config.GeoConfig{UnknownRegime: "opt_in"},
		Consent: config.ConsentConfig{Store: "memory", OnStoreError: "deny", Cookie: "cg_id", TTL: 9480 * time.Hour,
			MaxEntries: 1000000, MaxBytes: 256 << 20,
			Redis:    config.RedisConfig{Timeout: 5 * time.Millisecond, KeyPrefix: "consentgate:", WriteTimeout: 250 * time.Millisecond},
			Cache:    config.ConsentCacheConfig{TTL: 5 * time.Second, NegativeTTL: time.Second, MaxEntries: 100000, MaxBytes: 64 << 20},
			Receipts: config.ReceiptsConfig{MaxLen: 100, TTL: 790 * 24 * time.Hour, MaxBytes: 64 << 10},
			Snapshot: config.SnapshotConfig{AfterDataLoss: "restore"},
		},
		Limits:    defaultLimitsForTest,
		Upstream:  config.UpstreamConfig{Timeout: 5 * time.Second, MaxConns: 512},
		Signals:   config.SignalsConfig{TCF: config.TCFConfig{GrantFrom: "api"}},
		Anonymise: config.AnonymiseConfig{IPv6Prefix: 48, FreeText: "scrub"},
		Telemetry: config.TelemetryConfig{OTLP: config.OTLPConfig{Interval: 30 * time.Second}, Traces: config.TracesConfig{SampleRatio: 0.01}},
		Scripts: config.ScriptsConfig{Enabled: true, Timeout: 10 * time.Second, MaxSize: 4 << 20,
			Cache: config.ScriptCacheConfig{MaxBytes: 64 << 20, MaxEntries: 1000, MinTTL: time.Minute, MaxTTL: 6 * time.Hour,
				StaleIfError: 24 * time.Hour, NegativeTTL: 30 * time.Second, BrowserMaxAge: 15 * time.Minute}},
	}
	checkConfig(t, cfg, want)
	if len(cfg.Pos) != 0 {
		t.Errorf("defaults have positions: %v", cfg.Pos)
	}
}

// TestEnvNames: the variables read are the documented ones.
func TestEnvNames(t *testing.T) {
	want := []string{
		"CONSENTGATE_LISTEN", "CONSENTGATE_ADMIN_LISTEN", "CONSENTGATE_ADMIN_TOKEN", "CONSENTGATE_ADMIN_PPROF",
		"CONSENTGATE_READ_TIMEOUT", "CONSENTGATE_WRITE_TIMEOUT", "CONSENTGATE_MAX_BODY_SIZE",
		"CONSENTGATE_IDLE_TIMEOUT", "CONSENTGATE_MAX_HEADER_SIZE", "CONSENTGATE_MAX_CONNS_PER_IP",
		"CONSENTGATE_LOG_LEVEL", "CONSENTGATE_TLS_CERT_FILE", "CONSENTGATE_TLS_KEY_FILE", "CONSENTGATE_TLS_MIN_VERSION",
		"CONSENTGATE_GEO_DATABASE", "CONSENTGATE_GEO_UNKNOWN_REGIME",
		"CONSENTGATE_CONSENT_STORE", "CONSENTGATE_CONSENT_ON_STORE_ERROR", "CONSENTGATE_CONSENT_COOKIE",
		"CONSENTGATE_CONSENT_COOKIE_DOMAIN", "CONSENTGATE_CONSENT_SECURE", "CONSENTGATE_CONSENT_TTL",
		"CONSENTGATE_CONSENT_MAX_ENTRIES",
		"CONSENTGATE_CONSENT_REDIS_USERNAME", "CONSENTGATE_CONSENT_REDIS_PASSWORD", "CONSENTGATE_CONSENT_REDIS_DB",
		"CONSENTGATE_CONSENT_REDIS_TLS", "CONSENTGATE_CONSENT_REDIS_CLUSTER", "CONSENTGATE_CONSENT_REDIS_MASTER_NAME",
		"CONSENTGATE_CONSENT_REDIS_TIMEOUT", "CONSENTGATE_CONSENT_REDIS_POOL_SIZE",
		"CONSENTGATE_CONSENT_REDIS_MIN_IDLE_CONNS", "CONSENTGATE_CONSENT_REDIS_KEY_PREFIX", "CONSENTGATE_CONSENT_REDIS_WRITE_TIMEOUT",
		"CONSENTGATE_CONSENT_CACHE_TTL", "CONSENTGATE_CONSENT_CACHE_NEGATIVE_TTL", "CONSENTGATE_CONSENT_CACHE_MAX_ENTRIES",
		"CONSENTGATE_CONSENT_CACHE_MAX_BYTES",
		"CONSENTGATE_CONSENT_RECEIPTS_MAX_LEN", "CONSENTGATE_CONSENT_RECEIPTS_TTL", "CONSENTGATE_CONSENT_RECEIPTS_MAX_BYTES",
		"CONSENTGATE_CONSENT_MAX_BYTES", "CONSENTGATE_CONSENT_SNAPSHOT_AFTER_DATA_LOSS",
		"CONSENTGATE_UPSTREAM_TIMEOUT", "CONSENTGATE_UPSTREAM_MAX_CONNS", "CONSENTGATE_ANONYMISE_SECRET",
		"CONSENTGATE_ANONYMISE_IPV6_PREFIX", "CONSENTGATE_ANONYMISE_FREE_TEXT",
		"CONSENTGATE_LIMITS_MAX_CLIENTS",
		"CONSENTGATE_SCRIPTS_ENABLED", "CONSENTGATE_SCRIPTS_PREFIX", "CONSENTGATE_SCRIPTS_TIMEOUT", "CONSENTGATE_SCRIPTS_MAX_SIZE",
		"CONSENTGATE_SCRIPTS_CACHE_MAX_BYTES", "CONSENTGATE_SCRIPTS_CACHE_MAX_ENTRIES", "CONSENTGATE_SCRIPTS_CACHE_MIN_TTL",
		"CONSENTGATE_SCRIPTS_CACHE_MAX_TTL", "CONSENTGATE_SCRIPTS_CACHE_STALE_IF_ERROR", "CONSENTGATE_SCRIPTS_CACHE_NEGATIVE_TTL",
		"CONSENTGATE_SCRIPTS_CACHE_BROWSER_MAX_AGE",
		"CONSENTGATE_LIMITS_CONSENT_WRITES_PER_IP_PER_MINUTE", "CONSENTGATE_LIMITS_CONSENT_WRITES_PER_IP_BURST",
		"CONSENTGATE_LIMITS_CONSENT_WRITES_PER_NET_PER_MINUTE", "CONSENTGATE_LIMITS_CONSENT_WRITES_PER_NET_BURST",
		"CONSENTGATE_LIMITS_NEW_IDS_PER_IP_PER_MINUTE", "CONSENTGATE_LIMITS_NEW_IDS_PER_IP_BURST",
		"CONSENTGATE_LIMITS_NEW_IDS_PER_NET_PER_MINUTE", "CONSENTGATE_LIMITS_NEW_IDS_PER_NET_BURST",
		"CONSENTGATE_LIMITS_HITS_PER_IP_PER_MINUTE", "CONSENTGATE_LIMITS_HITS_PER_IP_BURST",
		"CONSENTGATE_LIMITS_HITS_PER_NET_PER_MINUTE", "CONSENTGATE_LIMITS_HITS_PER_NET_BURST",
		"CONSENTGATE_TRUSTED_PROXIES", "CONSENTGATE_SERVER_SIDE_TRUSTED_SENDERS", "CONSENTGATE_ALLOWED_ORIGINS", "CONSENTGATE_ANONYMISE_URL_PARAMS",
		"CONSENTGATE_ANONYMISE_PATH_TEMPLATES", "CONSENTGATE_ANONYMISE_SITE_HOSTS",
		"CONSENTGATE_CONSENT_REDIS_ADDRS", "CONSENTGATE_CONSENT_SNAPSHOT_KEYS",
	}
	if got := envKeys(); !slices.Equal(got, want) {
		t.Errorf("env vars:\n got %v\nwant %v", got, want)
	}
}

// TestEnvOverrides: every variable wins over the file and the defaults, and records
// where the value came from.
func TestEnvOverrides(t *testing.T) {
	useEnv(t, map[string]string{
		"CONSENTGATE_LISTEN":                           "127.0.0.1:8081",
		"CONSENTGATE_ADMIN_LISTEN":                     ":0",
		"CONSENTGATE_ADMIN_TOKEN":                      "Hb6Tq1zWm8Kx3Rc5Vn9Lp2Yd7F",
		"CONSENTGATE_READ_TIMEOUT":                     "7s",
		"CONSENTGATE_WRITE_TIMEOUT":                    "8s",
		"CONSENTGATE_MAX_BODY_SIZE":                    "2048",
		"CONSENTGATE_LOG_LEVEL":                        "warn",
		"CONSENTGATE_TLS_MIN_VERSION":                  "1.3",
		"CONSENTGATE_GEO_DATABASE":                     "../../testdata/geoip/GeoIP2-Country-Test.mmdb",
		"CONSENTGATE_GEO_UNKNOWN_REGIME":               "none",
		"CONSENTGATE_CONSENT_STORE":                    "redis",
		"CONSENTGATE_CONSENT_ON_STORE_ERROR":           "unset",
		"CONSENTGATE_CONSENT_COOKIE":                   "__Host-id",
		"CONSENTGATE_CONSENT_COOKIE_DOMAIN":            "",
		"CONSENTGATE_CONSENT_SECURE":                   "true",
		"CONSENTGATE_CONSENT_TTL":                      "30d",
		"CONSENTGATE_CONSENT_MAX_ENTRIES":              "2000",
		"CONSENTGATE_CONSENT_REDIS_ADDRS":              "a.redis.internal:6379, b.redis.internal:6379,",
		"CONSENTGATE_CONSENT_REDIS_USERNAME":           "env-user",
		"CONSENTGATE_CONSENT_REDIS_PASSWORD":           "env-pass",
		"CONSENTGATE_CONSENT_REDIS_DB":                 "5",
		"CONSENTGATE_CONSENT_REDIS_TLS":                "true",
		"CONSENTGATE_CONSENT_REDIS_CLUSTER":            "false",
		"CONSENTGATE_CONSENT_REDIS_MASTER_NAME":        "env-master",
		"CONSENTGATE_CONSENT_REDIS_TIMEOUT":            "15ms",
		"CONSENTGATE_CONSENT_REDIS_POOL_SIZE":          "20",
		"CONSENTGATE_CONSENT_REDIS_MIN_IDLE_CONNS":     "20",
		"CONSENTGATE_CONSENT_REDIS_KEY_PREFIX":         "env:",
		"CONSENTGATE_CONSENT_CACHE_TTL":                "10s",
		"CONSENTGATE_CONSENT_CACHE_NEGATIVE_TTL":       "10s",
		"CONSENTGATE_CONSENT_CACHE_MAX_ENTRIES":        "3000",
		"CONSENTGATE_CONSENT_RECEIPTS_MAX_LEN":         "7",
		"CONSENTGATE_CONSENT_RECEIPTS_TTL":             "30d",
		"CONSENTGATE_CONSENT_RECEIPTS_MAX_BYTES":       "20000",
		"CONSENTGATE_CONSENT_REDIS_WRITE_TIMEOUT":      "1s",
		"CONSENTGATE_CONSENT_CACHE_MAX_BYTES":          "1048576",
		"CONSENTGATE_CONSENT_MAX_BYTES":                "20000000",
		"CONSENTGATE_CONSENT_SNAPSHOT_KEYS":            "Rw8Kp3Vz6Qn1Tx5Lm9Hc2Jb, Gf4Sd7Yk2Nw9Pq5Xv3Mt8Z",
		"CONSENTGATE_CONSENT_SNAPSHOT_AFTER_DATA_LOSS": "refusals_only",
		"CONSENTGATE_LIMITS_MAX_CLIENTS":               "2048",
		"CONSENTGATE_LIMITS_NEW_IDS_PER_IP_BURST":      "7",
		"CONSENTGATE_LIMITS_HITS_PER_NET_PER_MINUTE":   "100",
		"CONSENTGATE_UPSTREAM_TIMEOUT":                 "1s",
		"CONSENTGATE_UPSTREAM_MAX_CONNS":               "8",
		"CONSENTGATE_ANONYMISE_SECRET":                 "Zr5Nw9Qc2Lx7Tb4Mk8Hv3",
		"CONSENTGATE_ANONYMISE_IPV6_PREFIX":            "40",
		"CONSENTGATE_TRUSTED_PROXIES":                  " 10.1.0.0/16, ,::1 ",
		"CONSENTGATE_ALLOWED_ORIGINS":                  "https://a.example.com,https://b.example.com:8443",
		"CONSENTGATE_ANONYMISE_URL_PARAMS":             "x",
		"CONSENTGATE_ANONYMISE_FREE_TEXT":              "drop",
		"CONSENTGATE_ANONYMISE_PATH_TEMPLATES":         "/u/{id},/p/{slug}",
		"CONSENTGATE_ANONYMISE_SITE_HOSTS":             "www.example.com",
		"CONSENTGATE_IDLE_TIMEOUT":                     "30s",
		"CONSENTGATE_MAX_HEADER_SIZE":                  "16384",
		"CONSENTGATE_MAX_CONNS_PER_IP":                 "0",
		"CONSENTGATE_SCRIPTS_ENABLED":                  "false",
		"CONSENTGATE_SCRIPTS_PREFIX":                   "/s/q",
		"CONSENTGATE_SCRIPTS_TIMEOUT":                  "2s",
		"CONSENTGATE_SCRIPTS_MAX_SIZE":                 "65536",
		"CONSENTGATE_SCRIPTS_CACHE_MAX_BYTES":          "2097152",
		"CONSENTGATE_SCRIPTS_CACHE_MAX_ENTRIES":        "50",
		"CONSENTGATE_SCRIPTS_CACHE_MIN_TTL":            "10s",
		"CONSENTGATE_SCRIPTS_CACHE_MAX_TTL":            "1h",
		"CONSENTGATE_SCRIPTS_CACHE_STALE_IF_ERROR":     "0s",
		"CONSENTGATE_SCRIPTS_CACHE_NEGATIVE_TTL":       "5s",
		"CONSENTGATE_SCRIPTS_CACHE_BROWSER_MAX_AGE":    "0s",
	})
	// The file's redis values are all replaced: cluster: true would clash with the
	// environment's master_name and db, so the test shows the environment wins before the
	// cross checks run.
	cfg, err := LoadBytes("t.yaml", []byte("listen: \":9000\"\ntrusted_proxies: [10.0.0.0/8, 10.2.0.0/16, 10.3.0.0/16]\nupstream:\n  max_conns: 100\n"+
		"consent:\n  redis:\n    addrs: [\"x:1\", \"y:2\", \"z:3\"]\n    cluster: true\n    password: file-pass\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Listen: "127.0.0.1:8081", AdminListen: ":0", AdminToken: "Hb6Tq1zWm8Kx3Rc5Vn9Lp2Yd7F",
		TrustedProxies: []string{"10.1.0.0/16", "::1"},
		ReadTimeout:    7 * time.Second, WriteTimeout: 8 * time.Second,
		MaxBodySize: 2048, AllowedOrigins: []string{"https://a.example.com", "https://b.example.com:8443"},
		IdleTimeout: 30 * time.Second, MaxHeaderSize: 16384, MaxConnsPerIP: 0,
		LogLevel: "warn",
		TLS:      config.TLSConfig{MinVersion: "1.3"},
		Geo:      config.GeoConfig{Database: "../../testdata/geoip/GeoIP2-Country-Test.mmdb", UnknownRegime: "none"},
		Consent: config.ConsentConfig{Store: "redis", OnStoreError: "unset", Cookie: "__Host-id", Secure: true,
			TTL: 30 * 24 * time.Hour, MaxEntries: 2000,
			Redis: config.RedisConfig{
				Addrs:    []string{"a.redis.internal:6379", "b.redis.internal:6379"},
				Username: "env-user", Password: "env-pass", DB: 5, TLS: true, MasterName: "env-master",
				Timeout: 15 * time.Millisecond, PoolSize: 20, MinIdleConns: 20, KeyPrefix: "env:", WriteTimeout: time.Second,
			},
			Cache:    config.ConsentCacheConfig{TTL: 10 * time.Second, NegativeTTL: 10 * time.Second, MaxEntries: 3000, MaxBytes: 1 << 20},
			Receipts: config.ReceiptsConfig{MaxLen: 7, TTL: 30 * 24 * time.Hour, MaxBytes: 20000},
			MaxBytes: 20000000,
			Snapshot: config.SnapshotConfig{Keys: []string{"Rw8Kp3Vz6Qn1Tx5Lm9Hc2Jb", "Gf4Sd7Yk2Nw9Pq5Xv3Mt8Z"}, AfterDataLoss: "refusals_only"},
		},
		Limits: func() config.LimitsConfig {
			l := defaultLimitsForTest
			l.MaxClients, l.NewIDs.PerIP.Burst, l.Hits.PerNet.PerMinute = 2048, 7, 100
			return l
		}(),
		Upstream: config.UpstreamConfig{Timeout: time.Second, MaxConns: 8},
		Signals:  config.SignalsConfig{TCF: config.TCFConfig{GrantFrom: "api"}},
		Anonymise: config.AnonymiseConfig{Secret: "Zr5Nw9Qc2Lx7Tb4Mk8Hv3", IPv6Prefix: 40, URLParams: []string{"x"}, FreeText: "drop",
			PathTemplates: []string{"/u/{id}", "/p/{slug}"}, SiteHosts: []string{"www.example.com"}},
		Telemetry: config.TelemetryConfig{OTLP: config.OTLPConfig{Interval: 30 * time.Second}, Traces: config.TracesConfig{SampleRatio: 0.01}},
		Scripts: config.ScriptsConfig{Prefix: "/s/q", Timeout: 2 * time.Second, MaxSize: 64 << 10,
			Cache: config.ScriptCacheConfig{MaxBytes: 2 << 20, MaxEntries: 50, MinTTL: 10 * time.Second, MaxTTL: time.Hour, NegativeTTL: 5 * time.Second}},
	}
	checkConfig(t, cfg, want)
	checkPos(t, cfg, map[string]string{
		"listen":                 "$CONSENTGATE_LISTEN",
		"upstream.max_conns":     "$CONSENTGATE_UPSTREAM_MAX_CONNS",
		"trusted_proxies.1":      "$CONSENTGATE_TRUSTED_PROXIES",
		"upstream":               "t.yaml:3:1",
		"consent.redis.addrs.1":  "$CONSENTGATE_CONSENT_REDIS_ADDRS",
		"consent.redis.password": "$CONSENTGATE_CONSENT_REDIS_PASSWORD",
		"consent.receipts.ttl":   "$CONSENTGATE_CONSENT_RECEIPTS_TTL",
	})
	if _, ok := cfg.Pos["trusted_proxies.2"]; ok {
		t.Error("Pos keeps a list item the environment replaced")
	}
	if _, ok := cfg.Pos["consent.redis.addrs.2"]; ok {
		t.Error("Pos keeps a redis address the environment replaced")
	}
}

// TestEnvBad: a bad variable is reported at the variable, with the same check as a file
// value, along with the file's problems.
func TestEnvBad(t *testing.T) {
	check := func(t *testing.T, env map[string]string, yaml string, want ...string) {
		t.Helper()
		useEnv(t, env)
		_, err := LoadBytes("t.yaml", []byte(yaml))
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Fatalf("want *Error, got %v", err)
		}
		checkSorted(t, ce)
		if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
			t.Errorf("errors:\n got %q\nwant %q", got, want)
		}
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		yaml string
		want []string
	}{
		{"listen", map[string]string{"CONSENTGATE_LISTEN": "8080"}, "", []string{
			`$CONSENTGATE_LISTEN: listen: bad address "8080": missing port in address; want host:port, e.g. ":8080" or "127.0.0.1:9090"`}},
		{"duration", map[string]string{"CONSENTGATE_CONSENT_TTL": "13 months"}, "", []string{
			`$CONSENTGATE_CONSENT_TTL: consent.ttl: want a duration such as "5s", "1m30s" or "30d", got "13 months"`}},
		{"bool", map[string]string{"CONSENTGATE_CONSENT_SECURE": "yes"}, "", []string{
			`$CONSENTGATE_CONSENT_SECURE: consent.secure: want true or false, got "yes"`}},
		{"list item", map[string]string{"CONSENTGATE_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/33"}, "", []string{
			`$CONSENTGATE_TRUSTED_PROXIES: trusted_proxies.1: bad CIDR or IP address "10.0.0.0/33": netip.ParsePrefix("10.0.0.0/33"): prefix length out of range`}},
		{"with file problems", map[string]string{"CONSENTGATE_MAX_BODY_SIZE": "1", "CONSENTGATE_ADMIN_TOKEN": "short"},
			"log_level: loud\n", []string{
				`t.yaml:1:12: log_level: unknown log level "loud" (known: debug, info, warn, error)`,
				`$CONSENTGATE_ADMIN_TOKEN: admin_token: too short (5 characters): use at least 16, since it guards reading and erasing visitors' consent records`,
				`$CONSENTGATE_MAX_BODY_SIZE: max_body_size: 1 is out of range 1024..10485760 (1 KiB..10 MiB)`,
			}},
		{"cross check", map[string]string{"CONSENTGATE_CONSENT_COOKIE": "__Secure-id"}, "", []string{
			`$CONSENTGATE_CONSENT_COOKIE: consent.cookie: a __Secure- cookie needs consent.secure: true, or browsers drop it`}},
		{"redis without addrs", map[string]string{"CONSENTGATE_CONSENT_STORE": "redis"}, "consent:\n  redis:\n    db: 1\n", []string{
			`$CONSENTGATE_CONSENT_STORE: consent.store: "redis" needs consent.redis.addrs, e.g. addrs: ["127.0.0.1:6379"]`}},
		{"redis addrs emptied", map[string]string{"CONSENTGATE_CONSENT_STORE": "redis", "CONSENTGATE_CONSENT_REDIS_ADDRS": " , "}, "", []string{
			`$CONSENTGATE_CONSENT_REDIS_ADDRS: consent.redis.addrs: want at least one host:port with consent.store: redis, e.g. ["127.0.0.1:6379"]`}},
		{"redis address", map[string]string{"CONSENTGATE_CONSENT_REDIS_ADDRS": "10.0.0.1:6379,10.0.0.2"}, "", []string{
			`$CONSENTGATE_CONSENT_REDIS_ADDRS: consent.redis.addrs.1: bad address "10.0.0.2": missing port in address; want host:port, e.g. "10.0.0.5:6379"`}},
		{"env value against file value", map[string]string{"CONSENTGATE_CONSENT_RECEIPTS_TTL": "100d"}, "consent:\n  ttl: 200d\n", []string{
			`$CONSENTGATE_CONSENT_RECEIPTS_TTL: consent.receipts.ttl: 100d is less than consent.ttl (200d): the proof of a consent must outlive the consent`}},
		{"file value against env value", map[string]string{"CONSENTGATE_CONSENT_REDIS_CLUSTER": "true"}, "consent:\n  redis:\n    db: 4\n", []string{
			`t.yaml:3:9: consent.redis.db: must be 0 with cluster: true: Redis Cluster has database 0 only`}},
	} {
		t.Run(c.name, func(t *testing.T) { check(t, c.env, c.yaml, c.want...) })
	}
	t.Run("default", func(t *testing.T) {
		useEnv(t, map[string]string{"CONSENTGATE_LOG_LEVEL": "trace"})
		_, err := Default()
		if err == nil || err.Error() != `$CONSENTGATE_LOG_LEVEL: log_level: unknown log level "trace" (known: debug, info, warn, error)` {
			t.Errorf("Default() error = %v", err)
		}
	})
}

// TestLoadBytes covers YAML mechanics: empty documents, aliases, merge keys, several
// documents, syntax errors.
func TestLoadBytes(t *testing.T) {
	useEnv(t, nil)
	ok := func(t *testing.T, yaml string, check func(*config.Config)) {
		t.Helper()
		cfg, err := LoadBytes("t.yaml", []byte(yaml))
		if err != nil {
			t.Fatalf("%v", err)
		}
		check(cfg)
	}
	bad := func(t *testing.T, yaml string, want ...string) {
		t.Helper()
		_, err := LoadBytes("t.yaml", []byte(yaml))
		if err == nil {
			t.Fatal("no error")
		}
		if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
			t.Errorf("errors:\n got %q\nwant %q", got, want)
		}
	}
	isDefault := func(cfg *config.Config) {
		checkConfig(t, cfg, defaultConfig())
	}
	t.Run("empty", func(t *testing.T) { ok(t, "", isDefault) })
	t.Run("comments", func(t *testing.T) { ok(t, "# nothing\n\n", isDefault) })
	t.Run("null document", func(t *testing.T) { ok(t, "~\n", isDefault) })
	t.Run("null sections", func(t *testing.T) {
		ok(t, "geo:\nconsent: ~\npolicy: {}\nroutes: []\nlisten:\n", isDefault)
	})
	t.Run("redis section with the memory store", func(t *testing.T) {
		// Kept and validated, so that CONSENTGATE_CONSENT_STORE=redis can switch to it.
		ok(t, "consent:\n  redis:\n    addrs: [\"10.0.0.5:6379\"]\n    db: 3\n", func(c *config.Config) {
			if c.Consent.Store != "memory" || c.Consent.Redis.DB != 3 || len(c.Consent.Redis.Addrs) != 1 {
				t.Errorf("consent = %+v", c.Consent)
			}
		})
	})
	t.Run("empty optional strings", func(t *testing.T) {
		ok(t, "admin_token: \"\"\nanonymise:\n  secret: \"\"\ngeo:\n  database: \"\"\n", isDefault)
	})
	t.Run("aliases", func(t *testing.T) {
		ok(t, "upstreams:\n  ga4: &u \"https://sink.test\"\n  meta: *u\n", func(c *config.Config) {
			if c.Upstreams["meta"] != "https://sink.test" || c.Pos["upstreams.meta"].Line != 2 {
				t.Errorf("upstreams = %v, pos %v", c.Upstreams, c.Pos["upstreams.meta"])
			}
		})
	})
	t.Run("merge keys", func(t *testing.T) {
		ok(t, `upstream: &base {timeout: 2s, max_conns: 10}
consent:
  <<: [{ttl: 30d, cookie: a}, {ttl: 40d, secure: true}]
  cookie: b
`, func(c *config.Config) {
			if c.Consent.TTL != 30*day || c.Consent.Cookie != "b" || !c.Consent.Secure {
				t.Errorf("consent = %+v", c.Consent)
			}
		})
	})
	t.Run("unknown key through an alias", func(t *testing.T) {
		bad(t, "upstream: &u {timeout: 2s}\nconsent: *u\n",
			`t.yaml:1:15: unknown key "timeout" in consent (known: store, on_store_error, cookie, cookie_domain, secure, ttl, max_entries, redis, cache, receipts, max_bytes, snapshot)`)
	})
	t.Run("merge of a scalar", func(t *testing.T) {
		bad(t, "consent:\n  <<: 5\n", `t.yaml:2:7: consent: a merge key (<<) needs a mapping or a list of mappings, got "5"`)
	})
	t.Run("self merge", func(t *testing.T) {
		bad(t, "consent: &c\n  <<: *c\n", `t.yaml:1:10: consent: merge keys (<<) nested too deep, or a mapping merging itself`)
	})
	t.Run("alias bomb", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("jurisdictions:\n  groups:\n    g0: &g {regime: none, codes: [")
		for i := range 26 * 26 {
			fmt.Fprintf(&b, "%c%c, ", 'A'+i/26, 'A'+i%26)
		}
		b.WriteString("ZZ]}\n")
		for i := 1; i < 1000; i++ {
			fmt.Fprintf(&b, "    g%d: *g\n", i)
		}
		_, err := LoadBytes("t.yaml", []byte(b.String()))
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Fatalf("err = %v", err)
		}
		found := slices.ContainsFunc(ce.Problems, func(p config.Problem) bool {
			return strings.Contains(p.Msg, "aliases expand the document too much")
		})
		if !found || len(ce.Problems) > 4*b.Len()+10_000 {
			t.Errorf("%d problems for %d bytes, alias problem reported: %v", len(ce.Problems), b.Len(), found)
		}
	})
	t.Run("empty catalogue", func(t *testing.T) {
		saved := testLoader.Vocabulary.Vendors
		testLoader.Vocabulary.Vendors = nil
		defer func() { testLoader.Vocabulary.Vendors = saved }()
		bad(t, "upstreams:\n  ga4: https://x.test\n", `t.yaml:2:3: unknown vendor "ga4" in upstreams (known: none)`)
	})
	t.Run("two documents", func(t *testing.T) {
		bad(t, "listen: \":1\"\n---\nlisten: \":2\"\n",
			`t.yaml:2:1: only one YAML document is allowed; remove this "---" and what follows`)
	})
	t.Run("syntax", func(t *testing.T) {
		bad(t, "log_level: info\n listen: x\n", `t.yaml:2:1: bad YAML: mapping values are not allowed in this context`)
	})
	t.Run("tab", func(t *testing.T) {
		bad(t, "geo:\n\tdatabase: x\n", `t.yaml:2:1: bad YAML: found character that cannot start any token`)
	})
	t.Run("top level list", func(t *testing.T) {
		bad(t, "- listen\n", `t.yaml:1:1: config: want a mapping, got a list`)
	})
	t.Run("complex key", func(t *testing.T) {
		bad(t, "? [a]\n: b\n", `t.yaml:1:3: a key must be a plain string at top level, got a list`)
	})
}

// TestRedisPassword: the password is taken as written, from the file or the environment,
// and no message repeats it, whatever shape it is written in.
func TestRedisPassword(t *testing.T) {
	for _, yaml := range []string{
		"consent:\n  redis:\n    password: [" + secretMarker + "]\n",
		"consent:\n  redis:\n    password: {" + secretMarker + ": x}\n",
		"consent:\n  redis:\n    password: " + secretMarker + "\n    password: " + secretMarker + "\n",
		"consent:\n  redis:\n    password: &p " + secretMarker + "\n    db: *p\n",
		"consent:\n  redis:\n    db: &p " + secretMarker + "\n    password: *p\n",
		"consent:\n  redis:\n    password: &p " + secretMarker + "\n    addrs: [*p, *p]\n",
		"consent:\n  redis:\n    password: &p " + secretMarker + "\n    *p : 1\n",
		"admin_token: &t " + secretMarker + "-0123456789\nlisten: *t\n",
		"consent:\n  redis:\n    password: \"" + secretMarker + "\n",
		"consent:\n  store: redis\n  redis:\n    password: " + secretMarker + "\n",
	} {
		useEnv(t, nil)
		_, err := LoadBytes("t.yaml", []byte(yaml))
		if err == nil {
			t.Errorf("%q: no error", yaml)
		} else if strings.Contains(err.Error(), secretMarker) {
			t.Errorf("%q: the error repeats the password:\n%v", yaml, err)
		}
	}
	useEnv(t, map[string]string{"CONSENTGATE_CONSENT_REDIS_PASSWORD": " " + secretMarker + "\n"})
	cfg, err := LoadBytes("t.yaml", []byte("consent:\n  redis:\n    password: file\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Consent.Redis.Password != " "+secretMarker+"\n" {
		t.Errorf("password = %q, want the variable as is", cfg.Consent.Redis.Password)
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Millisecond: "1ms", 10 * time.Second: "10s", time.Hour: "1h", 90 * time.Second: "1m30s",
		2*time.Hour + time.Minute: "2h1m", 790 * day: "790d", 25 * time.Hour: "25h", 500 * time.Microsecond: "500µs",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/config/nope.yaml")
	var ce *config.Error
	if !errors.As(err, &ce) || err.Error() != "testdata/config/nope.yaml: cannot read config: no such file or directory" {
		t.Errorf("err = %v", err)
	}
}

// FuzzLoadBytes: any input gives a config or a *Error whose every problem has a
// place, and never a panic.
func FuzzLoadBytes(f *testing.F) {
	useEnv(f, nil)
	for _, dir := range []string{"testdata/config/good", "testdata/config/bad"} {
		files, _ := filepath.Glob(dir + "/*.yaml")
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
		}
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("consent: &c {<<: *c}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadBytes("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg=%v err=%v", cfg != nil, err)
		}
		if err == nil {
			return
		}
		var ce *config.Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("not a *Error with problems: %v", err)
		}
		for _, p := range ce.Problems {
			if p.Pos.File != "f.yaml" || p.Pos.Line <= 0 || p.Pos.Col <= 0 {
				t.Fatalf("problem without a position: %+v", p)
			}
		}
	})
}

// TestOTLPHeaderAliasNotQuoted: an OTLP header value reused through a YAML alias as the
// value of another key is not quoted by that key's error.
func TestOTLPHeaderAliasNotQuoted(t *testing.T) {
	const key = "sk-live-MUST-NOT-SHOW"
	yaml := "telemetry:\n  otlp:\n    endpoint: http://127.0.0.1:4318\n    headers:\n      X-Api-Key: &k " + key + "\nlog_level: *k\n"
	_, err := LoadBytes("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("want an error for log_level")
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error quotes the header value: %v", err)
	}
	if !strings.Contains(err.Error(), "t.yaml:5:18: bad value, not repeated because it is also telemetry.otlp.headers.X-Api-Key") {
		t.Errorf("error = %v", err)
	}
}

// defaultLimitsForTest are the documented limits (README), written out so a change of
// DefaultLimits shows here.
var defaultLimitsForTest = config.LimitsConfig{
	ConsentWrites: config.RateLimits{PerIP: config.RateLimit{PerMinute: 600, Burst: 200}, PerNet: config.RateLimit{PerMinute: 6000, Burst: 2000}},
	NewIDs:        config.RateLimits{PerIP: config.RateLimit{PerMinute: 300, Burst: 100}, PerNet: config.RateLimit{PerMinute: 3000, Burst: 1000}},
	Hits:          config.RateLimits{PerIP: config.RateLimit{Burst: 1000}, PerNet: config.RateLimit{Burst: 10000}},
	MaxClients:    65536,
}
