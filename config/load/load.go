package load

import (
	"io"
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
	data, info, err := readConfig(path)
	if err != nil {
		msg := err.Error()
		if pe, ok := err.(*fs.PathError); ok {
			msg = "cannot read config: " + pe.Err.Error()
		}
		return nil, &config.Error{Problems: []config.Problem{{Pos: config.Pos{File: path}, Msg: msg}}}
	}
	return l.load(path, data, info)
}

// readConfig reads the file and, from the same open file, its mode (guards.go warns about
// a file every user can read that holds secrets).
func readConfig(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	return data, info, err
}

// LoadBytes is Load on in-memory YAML; name is the file name used in positions.
func (l *Loader) LoadBytes(name string, data []byte) (*config.Config, error) {
	return l.load(name, data, nil)
}

// Default returns the built-in defaults, what `consentgate serve` runs on without
// --config, with CONSENTGATE_* environment overrides applied.
func (l *Loader) Default() (*config.Config, error) {
	return l.load("(default)", nil, nil)
}

// defaultConfig holds the documented defaults; decoding overwrites what the file sets, so
// an explicit value (even a bad one, such as 0s) is never mistaken for "unset".
func defaultConfig() *config.Config {
	return &config.Config{
		Listen:        ":8080",
		AdminListen:   "127.0.0.1:9090",
		ReadTimeout:   5 * time.Second,
		WriteTimeout:  5 * time.Second,
		MaxBodySize:   64 << 10,
		IdleTimeout:   60 * time.Second,
		MaxHeaderSize: 32 << 10,
		MaxConnsPerIP: 256,
		LogLevel:      "info",
		TLS:           config.TLSConfig{MinVersion: "1.2"},
		Geo:           config.GeoConfig{UnknownRegime: "opt_in"},
		Consent: config.ConsentConfig{
			Store:        "memory",
			OnStoreError: "deny",
			Cookie:       "cg_id",
			TTL:          395 * day,
			MaxEntries:   1_000_000,
			Redis:        config.RedisConfig{Timeout: 5 * time.Millisecond, KeyPrefix: "consentgate:", WriteTimeout: 250 * time.Millisecond},
			Cache:        config.ConsentCacheConfig{TTL: 5 * time.Second, NegativeTTL: time.Second, MaxEntries: 100_000, MaxBytes: 64 << 20},
			Receipts:     config.ReceiptsConfig{MaxLen: 100, TTL: 790 * day, MaxBytes: 64 << 10},
			MaxBytes:     256 << 20,
			Snapshot:     config.SnapshotConfig{AfterDataLoss: "restore"},
		},
		Upstream:  config.UpstreamConfig{Timeout: 5 * time.Second, MaxConns: 512},
		Signals:   config.SignalsConfig{TCF: config.TCFConfig{GrantFrom: "api"}},
		Anonymise: config.AnonymiseConfig{IPv6Prefix: 48, FreeText: "scrub"},
		Telemetry: config.TelemetryConfig{
			OTLP:   config.OTLPConfig{Interval: 30 * time.Second},
			Traces: config.TracesConfig{SampleRatio: 0.01},
		},
		Limits:  DefaultLimits(),
		Scripts: defaultScripts(),
		Pos:     map[string]config.Pos{},
	}
}

// DefaultLimits are limits no real visitor reaches, even behind a company's or a mobile
// carrier's NAT: a visitor writes consent a few times a session and gets one ID, ever.
// The consent API's flood (thousands of new IDs a second from one address) is cut to a
// trickle; hits are not limited unless configured.
func DefaultLimits() config.LimitsConfig {
	return config.LimitsConfig{
		ConsentWrites: config.RateLimits{
			PerIP:  config.RateLimit{PerMinute: 600, Burst: 200},
			PerNet: config.RateLimit{PerMinute: 6000, Burst: 2000},
		},
		NewIDs: config.RateLimits{
			PerIP:  config.RateLimit{PerMinute: 300, Burst: 100},
			PerNet: config.RateLimit{PerMinute: 3000, Burst: 1000},
		},
		Hits: config.RateLimits{
			PerIP:  config.RateLimit{Burst: 1000},
			PerNet: config.RateLimit{Burst: 10000},
		},
		MaxClients: 65536,
	}
}

func (l *Loader) load(name string, data []byte, info fs.FileInfo) (*config.Config, error) {
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
	d.warnings(info)
	d.cfg.Warnings = sortProblems(d.cfg.Warnings)
	return d.cfg, nil
}
