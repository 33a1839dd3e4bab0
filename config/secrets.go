package config

import (
	"strings"
)

// secretKeys is the one list of settings whose values are secrets. No problem message
// repeats one (even when a YAML alias makes it the value of another key too), no log line
// carries one, and the config version is computed without them (Redacted). A key ending
// in ".*" covers every value of that mapping: OTLP header values are credentials as often
// as not. TestSecretsCovered holds the list to the schema.
var secretKeys = []struct {
	key   string
	blank func(c *Config) // blanks the value(s) in a copy that owns its maps
}{
	{"admin_token", func(c *Config) { c.AdminToken = "" }},
	{"anonymise.secret", func(c *Config) { c.Anonymise.Secret = "" }},
	{"consent.redis.password", func(c *Config) { c.Consent.Redis.Password = "" }},
	{"consent.snapshot.keys.*", func(c *Config) {
		// The count stays: "two keys are set" is what a reader of a redacted config needs.
		c.Consent.Snapshot.Keys = make([]string, len(c.Consent.Snapshot.Keys))
	}},
	{"telemetry.otlp.headers.*", func(c *Config) {
		h := make(map[string]string, len(c.Telemetry.OTLP.Headers))
		for k := range c.Telemetry.OTLP.Headers {
			h[k] = ""
		}
		c.Telemetry.OTLP.Headers = h
	}},
}

// IsSecret reports whether the value at a dotted key ("consent.redis.password",
// "telemetry.otlp.headers.X-Api-Key") is a secret.
func IsSecret(key string) bool {
	for _, s := range secretKeys {
		k := s.key
		if prefix, ok := strings.CutSuffix(k, "*"); ok {
			if strings.HasPrefix(key, prefix) && len(key) > len(prefix) {
				return true
			}
		} else if key == k {
			return true
		}
	}
	return false
}

// Redacted returns a copy of c with every secret value blanked (the keys stay, so that
// "a header is set" still shows) and no positions: what may be logged, shown or hashed.
func (c *Config) Redacted() *Config {
	r := *c
	r.Pos = nil
	for _, s := range secretKeys {
		s.blank(&r)
	}
	return &r
}
