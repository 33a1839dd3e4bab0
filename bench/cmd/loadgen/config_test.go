package main

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/rules"
)

// TestGeneratedConfigsLoad passes every config the generator writes through the
// product's own loader (the binary is a black box to loadgen; its tests are not):
// a setting the loader refuses would otherwise surface only as a proxy that does
// not start, in the middle of a benchmark.
func TestGeneratedConfigsLoad(t *testing.T) {
	base := proxyConfig{Listen: "127.0.0.1:18080", AdminListen: "127.0.0.1:18081", GeoIP: "../../../testdata/geoip/GeoIP2-City-Test.mmdb", SinkAddr: "127.0.0.1:19999"}
	for name, tweak := range map[string]func(*proxyConfig){
		"memory store": func(*proxyConfig) {},
		"redis store":  func(c *proxyConfig) { c.RedisAddr = "127.0.0.1:16379" },
		"scale, redis cache of 1M for an hour": func(c *proxyConfig) {
			c.RedisAddr, c.CacheMaxEntries, c.CacheMaxBytes, c.CacheTTL = "127.0.0.1:16379", 1_001_000, 256_256_000, time.Hour
		},
		"scale, the instance that creates the visitors": func(c *proxyConfig) {
			c.RedisAddr, c.RedisTimeout = "127.0.0.1:16379", time.Second
		},
		"scale, memory store of 1M": func(c *proxyConfig) { c.MaxEntries, c.MaxBytes = 1_001_000, 1_025_024_000 },
		"soak: listeners from the environment, snapshot keys, a route": func(c *proxyConfig) {
			c.Listen, c.AdminListen, c.RedisAddr, c.SnapshotKeys = "", "", "127.0.0.1:16379", soakSnapshotKeys
			c.Routes = [][2]string{{soakRoute(3), soakRouteEndpoint}}
		},
		"soak: refusals only after a data loss": func(c *proxyConfig) {
			c.RedisAddr, c.SnapshotKeys, c.AfterDataLoss = "127.0.0.1:16379", soakSnapshotKeys, "refusals_only"
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			tweak(&c)
			ld := &load.Loader{Vocabulary: rules.Vocabulary()}
			cfg, err := ld.LoadBytes("bench.yaml", c.yaml())
			if err != nil {
				t.Fatalf("%v\n%s", err, c.yaml())
			}
			if c.RedisAddr != "" && cfg.Consent.Store != "redis" || c.RedisAddr == "" && cfg.Consent.Store != "memory" {
				t.Errorf("store %q", cfg.Consent.Store)
			}
			if c.CacheMaxEntries > 0 && (cfg.Consent.Cache.MaxEntries != c.CacheMaxEntries || cfg.Consent.Cache.MaxBytes != c.CacheMaxBytes || cfg.Consent.Cache.TTL != c.CacheTTL) {
				t.Errorf("cache %+v, want %d entries, %d bytes for %s", cfg.Consent.Cache, c.CacheMaxEntries, c.CacheMaxBytes, c.CacheTTL)
			}
			if c.RedisTimeout > 0 && cfg.Consent.Redis.Timeout != c.RedisTimeout {
				t.Errorf("redis timeout %s, want %s", cfg.Consent.Redis.Timeout, c.RedisTimeout)
			}
			if c.MaxEntries > 0 && (cfg.Consent.MaxEntries != c.MaxEntries || cfg.Consent.MaxBytes != c.MaxBytes) {
				t.Errorf("max_entries %d, max_bytes %d; want %d, %d", cfg.Consent.MaxEntries, cfg.Consent.MaxBytes, c.MaxEntries, c.MaxBytes)
			}
			if want := cmp.Or(c.AfterDataLoss, "restore"); cfg.Consent.Snapshot.AfterDataLoss != want {
				t.Errorf("after_data_loss %q, want %q", cfg.Consent.Snapshot.AfterDataLoss, want)
			}
			if !slices.Equal(cfg.Consent.Snapshot.Keys, c.SnapshotKeys) {
				t.Errorf("snapshot keys: %d, want %d", len(cfg.Consent.Snapshot.Keys), len(c.SnapshotKeys))
			}
			if len(cfg.Routes) != len(c.Routes) || len(c.Routes) > 0 && (cfg.Routes[0].Path != c.Routes[0][0] || cfg.Routes[0].Endpoint != c.Routes[0][1]) {
				t.Errorf("routes %+v, want %v", cfg.Routes, c.Routes)
			}
			if c.Listen == "" && (cfg.Listen != ":8080" || cfg.AdminListen != "127.0.0.1:9090") {
				t.Errorf("listeners %s %s, want the defaults (the environment sets them)", cfg.Listen, cfg.AdminListen)
			}
		})
	}
}
