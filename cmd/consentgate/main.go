package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/proxy"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `consentgate: a consent-aware tracking proxy

Usage:
  consentgate serve [--config FILE] [--drain-delay D] [--reload-timeout D]
  consentgate check --config FILE
  consentgate explain [--config FILE] --url URL [--method M] [--header 'K: V']... [--remote-addr IP] [--body B | --body-file FILE]
  consentgate version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "explain":
		return explain(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "consentgate %s (%s, %s)\n", version, commit(), runtime.Version())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "consentgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func commit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// loadConfig reads the config file, or the embedded defaults when path is empty, with
// the CONSENTGATE_* environment applied and the catalogue's names.
func loadConfig(path string) (*config.Config, error) {
	ld := &load.Loader{Vocabulary: rules.Vocabulary()}
	if path == "" {
		return ld.Default()
	}
	return ld.Load(path)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file (default: embedded defaults)")
	drain := fs.Duration("drain-delay", 5*time.Second, "how long /readyz fails before the listeners close on SIGTERM")
	reloadTimeout := fs.Duration("reload-timeout", 30*time.Second, "how long a SIGHUP reload may take to read the config before it is abandoned")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "consentgate: refusing to start on an invalid config")
		return 1
	}
	log := newLogger(stdout, cfg.LogLevel)
	consent.SetRedisLogger(log)
	srv, err := proxy.New(cfg, proxy.Options{
		ConfigPath: *cfgPath,
		Logger:     log,
		Build:      telemetry.BuildInfo{Version: version, Commit: commit(), GoVersion: runtime.Version()},
		DrainDelay: *drain,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "consentgate: refusing to start on an invalid config")
		return 1
	}
	// Signals are caught before the listeners announce themselves: a SIGHUP sent as soon
	// as the process says it is listening would otherwise kill it (the default action).
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	if err := srv.Start(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log.Info("listening", "listener", "public", "addr", srv.PublicAddr(), "tls", cfg.TLS.On())
	log.Info("listening", "listener", "admin", "addr", srv.AdminAddr(), "serves", "/healthz /readyz /metrics /api/stats /dashboard /admin/*")
	for _, line := range defaultsInForce(cfg, *cfgPath) {
		log.Info("default in force", "setting", line[0], "value", line[1])
	}

	for {
		select {
		case err := <-srv.Errors():
			log.Error("listener failed", "error", err.Error())
			return 1
		case s := <-sig:
			if s == syscall.SIGHUP {
				// In its own goroutine: a reload that hangs reading the config must not
				// keep this loop from taking SIGTERM. It logs and counts its own outcome.
				srv.StartReload(*reloadTimeout)
				continue
			}
			log.Info("draining", "signal", s.String(), "delay", drain.String())
			ctx, cancel := context.WithTimeout(context.Background(), *drain+30*time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("shutdown", "error", err.Error())
				return 1
			}
			log.Info("stopped")
			return 0
		}
	}
}

// defaultsInForce lists the settings a newcomer should know are defaults, one log line each.
func defaultsInForce(cfg *config.Config, path string) [][2]string {
	var out [][2]string
	if path == "" {
		out = append(out, [2]string{"config", "embedded defaults (no --config)"})
	}
	out = append(out, [2]string{"consent.store", cfg.Consent.Store})
	if cfg.Consent.Store == "redis" {
		out = append(out, [2]string{"consent.on_store_error", cfg.Consent.OnStoreError + " (a failed lookup counts as " + map[string]string{"deny": "every purpose denied)", "unset": "nothing stored)"}[cfg.Consent.OnStoreError]})
	}
	if cfg.Geo.Database == "" {
		out = append(out, [2]string{"geo.database", "none: every visitor is of unknown location, regime " + cfg.Geo.UnknownRegime})
	}
	if cfg.AdminToken == "" {
		out = append(out, [2]string{"admin_token", "unset: /admin/* is disabled (health and metrics stay on)"})
	}
	if cfg.Anonymise.Secret == "" {
		out = append(out, [2]string{"anonymise.secret", "unset: pseudonyms rest on the day's random salt alone (shared through Redis, per process with the memory store), not bound to this deployment"})
	}
	if len(cfg.Consent.Snapshot.Keys) == 0 {
		out = append(out, [2]string{"consent.snapshot.keys", "random per process: consent snapshots in cookies do not survive a restart and other instances cannot verify them"})
	}
	out = append(out, [2]string{"catalogue", "built-in: " + strings.Join(rules.VendorNames(), ", ")})
	out = append(out, [2]string{"policy", "built-in decision table"})
	return out
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "check: --config FILE is required")
		return 2
	}
	warnings, err := checkConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	// Warnings do not fail the check: each is a setting some deployments need
	// (README "Configuration guards"). serve logs the same lines at start.
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning: "+w.String())
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// checkConfig does what serve does with a config short of listening and opening the
// consent store: load it, compile it, and open the GeoIP database it names. It returns
// the config's warnings.
func checkConfig(path string) ([]config.Problem, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	if _, err := rules.Compile(cfg, rules.CompileOptions{}); err != nil {
		return nil, err
	}
	loc, err := geo.NewLocator(cfg.Geo.Database)
	if err != nil {
		return nil, err
	}
	return cfg.Warnings, loc.Close()
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func explain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config file (default: embedded defaults)")
	url := fs.String("url", "", "the hit's URL, e.g. '/g/collect?v=2&tid=G-X&cid=1.2'")
	method := fs.String("method", "GET", "HTTP method")
	remote := fs.String("remote-addr", "", "the socket peer's IP")
	body := fs.String("body", "", "request body")
	bodyFile := fs.String("body-file", "", "request body read from FILE byte for byte, e.g. gzip with --header 'Content-Encoding: gzip'")
	var headers headerFlags
	fs.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *url == "" {
		fmt.Fprintln(stderr, "explain: --url is required")
		return 2
	}
	in := proxy.ExplainRequest{Method: *method, URL: *url, RemoteAddr: *remote, Body: *body, Headers: map[string]string{}}
	if *bodyFile != "" {
		if *body != "" {
			fmt.Fprintln(stderr, "explain: --body and --body-file: give one")
			return 2
		}
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			fmt.Fprintf(stderr, "explain: --body-file: %v\n", err)
			return 1
		}
		in.BodyBase64 = b
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			fmt.Fprintf(stderr, "explain: --header %q: want 'Name: value'\n", h)
			return 2
		}
		in.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv, err := proxy.New(cfg, proxy.Options{Logger: newLogger(io.Discard, "error")})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer srv.Shutdown(context.Background())
	code, out := srv.Explain(context.Background(), in)
	stdout.Write(out)
	if code != 200 {
		return 1
	}
	return 0
}
