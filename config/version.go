package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Version is a short hash of the config's values: equal configs (whatever their comments
// or key order) get equal versions, so instances can be compared at a glance. Secrets are
// left out: the version is shown without a token, and a hash of a config whose other
// values are known would let a weak secret be guessed offline. Two configs that differ
// only in secrets share a version.
func (c *Config) Version() string {
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}
