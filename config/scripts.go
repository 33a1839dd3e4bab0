package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ScriptsConfig is the first-party serving of vendors' tag scripts (README "Tag
// scripts"): the public listener answers a script path from a bounded cache filled by
// fetching the vendor's script server-side, so the visitor's browser never asks the
// vendor's CDN. The built-in entries (rules/scripts_builtin.go) are served unless
// disabled; Entries override or extend them.
type ScriptsConfig struct {
	// Enabled serves the scripts at all; default true. false serves none, whatever the
	// entries say.
	Enabled bool `yaml:"enabled"`
	// Prefix is put before every script path, e.g. "/assets/x9": paths that ad
	// blockers' lists do not know. "" (default) serves the vendors' own paths.
	Prefix  string            `yaml:"prefix"`
	Timeout time.Duration     `yaml:"timeout"`  // one fetch from a vendor, whole round trip; default 10s
	MaxSize int               `yaml:"max_size"` // largest script accepted from a vendor, bytes once decoded; default 4 MiB
	Cache   ScriptCacheConfig `yaml:"cache"`
	// Entries are the scripts by name: a built-in name (gtag, gtm, matomo, plausible,
	// fbevents) overrides that entry's values or disables it; any other name adds a
	// script, which needs a path and an upstream.
	Entries map[string]ScriptConfig `yaml:",inline"`
}

// ScriptCacheConfig bounds the scripts' cache and says how long an entry is served.
type ScriptCacheConfig struct {
	MaxBytes   int `yaml:"max_bytes"`   // bodies kept, plain and gzipped together; default 64 MiB
	MaxEntries int `yaml:"max_entries"` // default 1000
	// MinTTL and MaxTTL bound how long a fetched script is fresh: the vendor's
	// Cache-Control max-age (or Expires) within [MinTTL, MaxTTL]; defaults 1m and 6h.
	MinTTL time.Duration `yaml:"min_ttl"`
	MaxTTL time.Duration `yaml:"max_ttl"`
	// StaleIfError is how long past its freshness a script is still served while the
	// vendor fails (timeout, 5xx, a body over max_size); default 24h, 0 = never.
	StaleIfError time.Duration `yaml:"stale_if_error"`
	// NegativeTTL is how long a vendor's "no such script" (a 4xx), or a failed refresh,
	// is remembered before the vendor is asked again; default 30s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// BrowserMaxAge caps the max-age of the Cache-Control the proxy answers with (the
	// rest of the entry's freshness, at most this); default 15m, 0 = no-cache.
	BrowserMaxAge time.Duration `yaml:"browser_max_age"`
}

// ScriptConfig is one script entry. A value left out keeps the built-in entry's.
type ScriptConfig struct {
	Path     string `yaml:"path"`     // first-party path, under Prefix, e.g. "/assets/g.js"
	Upstream string `yaml:"upstream"` // the vendor's script URL, https://host/path, no query
	// Params are the query parameters passed on to the vendor, each checked to be a
	// token; every other parameter of the request is ignored. nil keeps the built-in's,
	// [] passes none.
	Params []string `yaml:"params"`
	// IDs are the only values the "id" parameter may take (e.g. ["G-ABC123"]); empty
	// takes any token. Listing them stops the proxy fetching any container anyone asks for.
	IDs      []string `yaml:"ids"`
	Disabled bool     `yaml:"disabled"` // serve nothing for this entry
	Pos      Pos      `yaml:"-"`
}

// MaxScriptToken is the longest query parameter name or value a script passes on.
const MaxScriptToken = 128

// MaxScriptParams bounds the query parameters one script passes on to its vendor.
const MaxScriptParams = 8

// ScriptTokenByte reports whether c may appear in a script's query parameter name or
// value: letters, digits, "-", "_" and ".". The vendors' IDs (G-ABC123, GTM-XYZ,
// env-5) are made of these; anything else (a "/", "%", "&", a space) is refused, so what
// goes upstream needs no escaping and cannot smuggle a second parameter.
func ScriptTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// IsScriptToken reports whether s is a non-empty token of ScriptTokenByte, at most
// MaxScriptToken long.
func IsScriptToken(s string) bool {
	if s == "" || len(s) > MaxScriptToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ScriptTokenByte(s[i]) {
			return false
		}
	}
	return true
}

// CheckScriptPath checks a first-party script path or path prefix: "/" and segments of
// letters, digits, "-", "_", ".", "~" ("." and ".." excluded), at most 256 bytes. These
// stand for themselves whether the browser escapes them or not, so the path as routed
// (decoded) is the path as written.
func CheckScriptPath(s string) error {
	switch {
	case !strings.HasPrefix(s, "/"):
		return errors.New("must start with \"/\"")
	case len(s) > 256:
		return errors.New("longer than 256 bytes")
	}
	for seg := range strings.SplitSeq(s[1:], "/") {
		switch seg {
		case "":
			return errors.New("has an empty segment (\"//\" or a final \"/\")")
		case ".", "..":
			return errors.New("has a \".\" or \"..\" segment")
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !ScriptTokenByte(c) && c != '~' {
				return fmt.Errorf("has %q: a segment is letters, digits, \"-\", \"_\", \".\" and \"~\"", c)
			}
		}
	}
	return nil
}
