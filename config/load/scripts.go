package load

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/config"
	"go.yaml.in/yaml/v3"
)

// Keys of the scripts section. scriptsKeys are its settings; any other key of the
// section names a script (config.ScriptsConfig.Entries).
var (
	scriptsKeys     = []string{"enabled", "prefix", "timeout", "max_size", "cache"}
	scriptCacheKeys = []string{"max_bytes", "max_entries", "min_ttl", "max_ttl", "stale_if_error", "negative_ttl", "browser_max_age"}
	scriptKeys      = []string{"path", "upstream", "params", "ids", "disabled"}
)

// scriptScalarKeys are the section's settings: scalars, so that the environment can set
// them too (CONSENTGATE_SCRIPTS_PREFIX). The entries are structure and belong in a file.
var scriptScalarKeys = []scalarKey{
	{"scripts.enabled", "true or false", func(c *config.Config, s string) error { return setBool(&c.Scripts.Enabled, s) }},
	{"scripts.prefix", "a path prefix", func(c *config.Config, s string) error { return setString(&c.Scripts.Prefix, s, checkScriptPrefix) }},
	{"scripts.timeout", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Scripts.Timeout, s, 100*time.Millisecond, time.Minute)
	}},
	{"scripts.max_size", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.Scripts.MaxSize, s, 16<<10, 64<<20, " (16 KiB..64 MiB)")
	}},
	{"scripts.cache.max_bytes", "a number of bytes", func(c *config.Config, s string) error {
		return setInt(&c.Scripts.Cache.MaxBytes, s, 1<<20, 4<<30, " (1 MiB..4 GiB)")
	}},
	{"scripts.cache.max_entries", "a number", func(c *config.Config, s string) error {
		return setInt(&c.Scripts.Cache.MaxEntries, s, 10, 1_000_000, "")
	}},
	// A floor of at least a second: with none, a vendor's no-store would make every
	// request for its script a fetch from the vendor.
	{"scripts.cache.min_ttl", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Scripts.Cache.MinTTL, s, time.Second, time.Hour)
	}},
	{"scripts.cache.max_ttl", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Scripts.Cache.MaxTTL, s, time.Minute, 7*day)
	}},
	{"scripts.cache.stale_if_error", "a duration", func(c *config.Config, s string) error {
		return setDurationUpTo(&c.Scripts.Cache.StaleIfError, s, 30*day)
	}},
	{"scripts.cache.negative_ttl", "a duration", func(c *config.Config, s string) error {
		return setDurationIn(&c.Scripts.Cache.NegativeTTL, s, time.Second, time.Hour)
	}},
	{"scripts.cache.browser_max_age", "a duration", func(c *config.Config, s string) error {
		return setDurationUpTo(&c.Scripts.Cache.BrowserMaxAge, s, day)
	}},
}

// defaultScripts are the section's documented defaults.
func defaultScripts() config.ScriptsConfig {
	return config.ScriptsConfig{
		Enabled: true,
		Timeout: 10 * time.Second,
		MaxSize: 4 << 20,
		Cache: config.ScriptCacheConfig{
			MaxBytes: 64 << 20, MaxEntries: 1000,
			MinTTL: time.Minute, MaxTTL: 6 * time.Hour,
			StaleIfError: 24 * time.Hour, NegativeTTL: 30 * time.Second, BrowserMaxAge: 15 * time.Minute,
		},
	}
}

// setDurationUpTo is setDurationIn for values where 0 means "off": 0..hi.
func setDurationUpTo(dst *time.Duration, s string, hi time.Duration) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 || v > hi {
		return fmt.Errorf("%s is out of range 0..%s", quote(s), fmtDuration(hi))
	}
	*dst = v
	return nil
}

// scriptNameRE: a script's name labels its metrics.
var scriptNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// scripts decodes the scripts section: its settings and its entries by name.
func (d *decoder) scripts(path string, n *yaml.Node) {
	d.mapping(n, path, "key", nil, func(key, sub string, k, v *yaml.Node) {
		if d.table(sub, v) {
			return
		}
		if key == "cache" {
			d.mapping(v, sub, "key", scriptCacheKeys, d.tableOnly)
			return
		}
		d.scriptEntry(key, sub, k, v)
	})
}

// scriptEntry decodes scripts.<name>: a built-in entry's overrides, or a new script.
func (d *decoder) scriptEntry(name, path string, k, v *yaml.Node) {
	if !scriptNameRE.MatchString(name) {
		d.errorf(k, "%s: bad script name %s: want ^[a-z][a-z0-9_]{0,31}$ (it labels metrics)", path, quote(name))
		return
	}
	builtin := slices.Contains(d.voc.Scripts, name)
	if rv := d.resolve(v); !builtin && rv.Kind == yaml.ScalarNode && !isNull(rv) {
		// A scalar is a setting's value, so the key is more likely a misspelt setting
		// than a script.
		d.unknown(k, path[:strings.LastIndexByte(path, '.')], "key", name, scriptsKeys)
		return
	}
	sc := config.ScriptConfig{Pos: d.at(k)}
	has := map[string]*yaml.Node{}
	d.mapping(v, path, "key", scriptKeys, func(key, sub string, _, v *yaml.Node) {
		switch key {
		case "params", "ids":
			has[key] = d.resolve(v)
			d.scriptTokens(key, sub, v, &sc)
			return
		}
		var s string
		var ok bool
		if key == "disabled" {
			s, ok = d.scalar(v, sub, "true or false")
		} else {
			s, ok = d.required(v, sub, "a string")
		}
		if !ok {
			return
		}
		v = d.resolve(v)
		has[key] = v
		d.cfg.Pos[sub] = d.at(v)
		var err error
		switch key {
		case "path":
			if err = config.CheckScriptPath(s); err != nil {
				err = fmt.Errorf("bad path %s: %v", quote(s), err)
			}
			sc.Path = s
		case "upstream":
			err = checkScriptUpstream(s)
			sc.Upstream = s
		case "disabled":
			sc.Disabled, err = parseBool(s)
		}
		if err != nil {
			d.errorf(v, "%s: %v", sub, err)
		}
	})
	switch rv := d.resolve(v); {
	case isNull(rv):
		d.errorf(k, "%s: want a mapping (path, upstream, params, ids) or disabled: true, got nothing", path)
	case rv.Kind != yaml.MappingNode:
		// reported by mapping
	case sc.Disabled:
		for _, key := range []string{"path", "upstream", "params", "ids"} {
			if n := has[key]; n != nil {
				d.errorf(n, "%s.%s: a disabled script is not served; remove %s or disabled: true", path, key, key)
			}
		}
	case !builtin && (has["path"] == nil || has["upstream"] == nil):
		hint := ""
		if s := suggest(name, append(slices.Clone(d.voc.Scripts), scriptsKeys...)); s != "" {
			hint = fmt.Sprintf("; did you mean %q?", s)
		}
		d.errorf(k, "%s: a script that is not built in (%s) needs path and upstream%s", path, knownList(d.voc.Scripts), hint)
	}
	if d.cfg.Scripts.Entries == nil {
		d.cfg.Scripts.Entries = map[string]config.ScriptConfig{}
	}
	d.cfg.Scripts.Entries[name] = sc
}

// scriptTokens decodes scripts.<name>.params or .ids: tokens, each once.
func (d *decoder) scriptTokens(key, path string, v *yaml.Node, sc *config.ScriptConfig) {
	want := "parameter names"
	if key == "ids" {
		want = "IDs"
	}
	list := []string{} // written, even empty: "params: []" passes no parameter
	d.list(v, path, want, func(_ int, sub, s string, it *yaml.Node) {
		switch {
		case !config.IsScriptToken(s):
			d.errorf(it, "%s: bad value %s: want letters, digits, \"-\", \"_\" and \".\", at most %d", sub, quote(s), config.MaxScriptToken)
		case slices.Contains(list, s):
			d.errorf(it, "%s: %s is listed twice", sub, quote(s))
		case key == "params" && len(list) == config.MaxScriptParams:
			d.errorf(it, "%s: more than %d parameters", sub, config.MaxScriptParams)
		default:
			list = append(list, s)
		}
	})
	if key == "params" {
		sc.Params = list
	} else {
		sc.IDs = list
	}
}

// checkScriptPrefix accepts "" or a path of script path segments without a final "/".
func checkScriptPrefix(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 64 {
		return fmt.Errorf("bad prefix %s: longer than 64 bytes", quote(s))
	}
	if err := config.CheckScriptPath(s); err != nil {
		return fmt.Errorf("bad prefix %s: %v, e.g. \"/assets/x9\"", quote(s), err)
	}
	return nil
}

// checkScriptUpstream wants the script's own URL: http(s), a host, a path, no query
// (the parameters come from the request, checked), no credentials.
func checkScriptUpstream(s string) error {
	bad := func(why string) error { return fmt.Errorf("bad URL %s: %s", quote(s), why) }
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return bad(urlErr(err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return bad("want the script's https URL, e.g. \"https://plausible.io/js/script.js\"")
	case u.User != nil:
		return bad("no user or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("no query or fragment: the parameters passed on are the request's, listed in params")
	case u.Path == "" || strings.HasSuffix(u.Path, "/"):
		return bad("want the script's own URL, with its file path, e.g. \"https://plausible.io/js/script.js\"")
	}
	return nil
}

// scriptChecks are the rules among the scripts section's values.
func (d *decoder) scriptChecks() {
	c := &d.cfg.Scripts
	if c.Cache.MinTTL > c.Cache.MaxTTL && d.valid("scripts.cache.min_ttl", "scripts.cache.max_ttl") {
		d.problemAtFirst([]string{"scripts.cache.min_ttl", "scripts.cache.max_ttl"},
			"scripts.cache.min_ttl: %s%s is more than scripts.cache.max_ttl (%s)",
			fmtDuration(c.Cache.MinTTL), d.ifDefault("scripts.cache.min_ttl"), fmtDuration(c.Cache.MaxTTL))
	}
	// The cache keeps each script plain and gzipped: one of max_size must fit.
	if c.MaxSize > c.Cache.MaxBytes && d.valid("scripts.max_size", "scripts.cache.max_bytes") {
		d.problemAtFirst([]string{"scripts.max_size", "scripts.cache.max_bytes"},
			"scripts.max_size: %d%s is more than scripts.cache.max_bytes (%d): such a script could never be kept",
			c.MaxSize, d.ifDefault("scripts.max_size"), c.Cache.MaxBytes)
	}
}
