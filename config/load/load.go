package load

import (
	"io/fs"
	"os"
	"time"

	"github.com/consentgate/consentgate/config"
)

// Loader reads configurations. Its Vocabulary holds the names that other packages own
// (catalogue vendors and endpoints, regimes, consent statuses and purposes, actions):
// config imports none of them, since they all import config, so the names are handed in
// (rules.Vocabulary gives the product's). Tests hand in their own.
type Loader struct {
	Vocabulary config.Vocabulary
	// Getenv reads the CONSENTGATE_* overrides; nil is os.Getenv.
	Getenv func(string) string
}

// Load reads, decodes and validates a config file, then applies CONSENTGATE_* environment
// overrides. On failure it returns an *Error listing every problem found, each at the
// file:line:col of the offending key or value. Relative paths in the file (geo.database)
// are relative to the working directory, as they would be on the command line.
func (l *Loader) Load(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		if pe, ok := err.(*fs.PathError); ok {
			msg = "cannot read config: " + pe.Err.Error()
		}
		return nil, &config.Error{Problems: []config.Problem{{Pos: config.Pos{File: path}, Msg: msg}}}
	}
	return l.LoadBytes(path, data)
}

// LoadBytes is Load on in-memory YAML; name is the file name used in positions.
func (l *Loader) LoadBytes(name string, data []byte) (*config.Config, error) {
	return l.load(name, data)
}

// Default returns the built-in defaults, what `consentgate serve` runs on without
// --config, with CONSENTGATE_* environment overrides applied.
func (l *Loader) Default() (*config.Config, error) {
	return l.load("(default)", nil)
}

// defaultConfig holds the documented defaults; decoding overwrites what the file sets, so
// an explicit value (even a bad one, such as 0s) is never mistaken for "unset".
func defaultConfig() *config.Config {
	return &config.Config{
		Listen:       ":8080",
		AdminListen:  "127.0.0.1:9090",
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxBodySize:  64 << 10,
		LogLevel:     "info",
		Geo:          config.GeoConfig{UnknownRegime: "opt_in"},
		Consent: config.ConsentConfig{
			Store:        "memory",
			OnStoreError: "deny",
			Cookie:       "cg_id",
			TTL:          395 * day,
			MaxEntries:   1_000_000,
			Redis:        config.RedisConfig{Timeout: 5 * time.Millisecond, KeyPrefix: "consentgate:"},
			Cache:        config.ConsentCacheConfig{TTL: 5 * time.Second, NegativeTTL: time.Second, MaxEntries: 100_000},
			Receipts:     config.ReceiptsConfig{MaxLen: 100, TTL: 790 * day},
		},
		Upstream:  config.UpstreamConfig{Timeout: 5 * time.Second, MaxConns: 512},
		Signals:   config.SignalsConfig{TCF: config.TCFConfig{GrantFrom: "api"}},
		Anonymise: config.AnonymiseConfig{IPv6Prefix: 48, FreeText: "scrub"},
		Telemetry: config.TelemetryConfig{
			OTLP:   config.OTLPConfig{Interval: 30 * time.Second},
			Traces: config.TracesConfig{SampleRatio: 0.01},
		},
		Scripts: defaultScripts(),
		Pos:     map[string]config.Pos{},
	}
}

func (l *Loader) load(name string, data []byte) (*config.Config, error) {
	env := l.Getenv
	if env == nil {
		env = os.Getenv
	}
	d := &decoder{file: name, cfg: defaultConfig(), voc: &l.Vocabulary, budget: 10_000 + 4*len(data)}
	if root := d.parse(data); root != nil {
		d.top(root)
	}
	d.applyEnv(env)
	d.crossChecks()
	d.redactSecrets()
	if len(d.problems) > 0 {
		return nil, &config.Error{Problems: sortProblems(d.problems)}
	}
	return d.cfg, nil
}
