package load

import (
	"slices"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/config"
)

// envPrefix starts every environment variable that overrides a config value:
// CONSENTGATE_<KEY> for a top-level key (CONSENTGATE_LISTEN, CONSENTGATE_TRUSTED_PROXIES),
// CONSENTGATE_<SECTION>_<KEY> in a section (CONSENTGATE_CONSENT_TTL). Lists are
// comma-separated. An empty variable counts as unset, as with most container tooling that
// passes every declared variable, set or not.
const envPrefix = "CONSENTGATE_"

// envSections are the sections whose values the environment can set: the operational
// ones. Jurisdictions, upstreams, policy and routes are structure, which belongs in a file.
var envSections = []string{"tls", "geo", "consent", "upstream", "anonymise", "server_side", "limits", "scripts"}

func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func envable(key string) bool {
	section, _, nested := strings.Cut(key, ".")
	return !nested || slices.Contains(envSections, section)
}

// envPos is where a value from the environment is reported: "$CONSENTGATE_X", no line.
func envPos(name string) config.Pos { return config.Pos{File: "$" + name} }

// applyEnv sets every value the environment names, after the file: the environment wins.
// Errors are reported at the variable, "$CONSENTGATE_LISTEN: listen: ...".
func (d *decoder) applyEnv(env func(string) string) {
	for i := range scalarKeys {
		sk := &scalarKeys[i]
		if !envable(sk.key) {
			continue
		}
		name := envName(sk.key)
		v := env(name)
		if v == "" {
			continue
		}
		if err := d.set(sk, v); err != nil {
			d.problems = append(d.problems, config.Problem{Pos: envPos(name), Msg: sk.key + ": " + err.Error()})
			d.fail(sk.key)
			continue
		}
		d.cfg.Pos[sk.key] = envPos(name)
	}
	for i := range listKeys {
		lk := &listKeys[i]
		if !envable(lk.key) {
			continue
		}
		name := envName(lk.key)
		v := env(name)
		if v == "" {
			continue
		}
		for k := range d.cfg.Pos {
			if strings.HasPrefix(k, lk.key+".") {
				delete(d.cfg.Pos, k)
			}
		}
		var items []string
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			sub := lk.key + "." + strconv.Itoa(len(items))
			if err := lk.check(item); err != nil {
				d.problems = append(d.problems, config.Problem{Pos: envPos(name), Msg: sub + ": " + err.Error()})
			}
			d.cfg.Pos[sub] = envPos(name)
			items = append(items, item)
		}
		*lk.dst(d.cfg) = items
		d.cfg.Pos[lk.key] = envPos(name)
	}
}

// envKeys lists the environment variables the loader reads, in table order.
func envKeys() []string {
	var names []string
	for _, sk := range scalarKeys {
		if envable(sk.key) {
			names = append(names, envName(sk.key))
		}
	}
	for _, lk := range listKeys {
		if envable(lk.key) {
			names = append(names, envName(lk.key))
		}
	}
	return names
}
