package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
	"github.com/consentgate/consentgate/telemetry/stats"
	"github.com/consentgate/consentgate/telemetry/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Options are the parts of a Server that do not come from the config file.
type Options struct {
	// ConfigPath is re-read by Reload; empty means the embedded defaults.
	ConfigPath string
	Logger     *slog.Logger
	// Store overrides the store the config names (tests).
	Store consent.Store
	// Now is the clock of the anonymiser's daily salt (tests); nil = time.Now.
	Now   func() time.Time
	Build telemetry.BuildInfo
	// DrainDelay is how long /readyz fails before the listeners stop on Shutdown, so a
	// load balancer stops sending first.
	DrainDelay time.Duration
}

// Server is one consentgate process: the public and admin listeners around one runtime.
type Server struct {
	opts    Options
	log     *slog.Logger
	rt      atomic.Pointer[runtime]
	store   *consentStore
	hasher  *rules.Hasher // only touched under reloadMu
	metrics *telemetry.Metrics
	tracing *tracing.Tracing
	// tracer is set only when traces are on, so the hit path tests one pointer.
	tracer trace.Tracer
	stats  *stats.Stats
	// stopStats ends the stats ticker; set by Start.
	stopStats context.CancelFunc

	public, admin     *fasthttp.Server
	publicLn, adminLn net.Listener
	draining          atomic.Bool
	reloadMu          sync.Mutex
	serveErr          chan error
}

// New builds a server from a validated config. It opens the GeoIP database and the
// consent store but listens on nothing until Start.
func New(cfg *rules.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var mopts []telemetry.Option
	if o := cfg.Telemetry.OTLP; o.Endpoint != "" {
		mopts = append(mopts, telemetry.WithOTLP(telemetry.OTLP{Endpoint: o.Endpoint, Headers: o.Headers, Interval: o.Interval}))
	}
	// What is opened is closed again, last first, if a later step fails.
	var undo []func()
	fail := func(err error) (*Server, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	m, err := telemetry.New(opts.Build, rules.VendorNames(), rules.ActionNames(), rules.ReasonNames(), mopts...)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { m.Shutdown(context.Background()) })
	tr, err := tracing.New(context.Background(), tracing.Config{
		Enabled: cfg.Telemetry.Traces.Enabled, SampleRatio: cfg.Telemetry.Traces.SampleRatio,
		OTLP: tracing.OTLP{Endpoint: cfg.Telemetry.OTLP.Endpoint, Headers: cfg.Telemetry.OTLP.Headers},
	}, opts.Build)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { tr.Shutdown(context.Background()) })
	s := &Server{opts: opts, log: opts.Logger, metrics: m, tracing: tr, serveErr: make(chan error, 2)}
	if tr.Enabled() {
		s.tracer = tr.Tracer()
	}
	s.hasher = rules.NewHasher([]byte(cfg.Anonymise.Secret), opts.Now)
	loc, err := geo.NewLocator(cfg.Geo.Database)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { loc.Close() })
	if opts.Store != nil {
		s.store = &consentStore{Store: opts.Store, countLookups: true, stop: func() {}}
		m.StoreUp(true)
	} else if s.store, err = openStore(cfg, m, tr, opts.Logger); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { s.store.stop(); s.store.Close() })
	rt, err := buildRuntime(cfg, s.hasher, m, loc, nil)
	if err != nil {
		return fail(err)
	}
	if s.stats, err = stats.New(m, stats.WithInstance(s.instance)); err != nil {
		return fail(err)
	}
	s.rt.Store(rt)
	m.ConfigReload(true, time.Now())
	s.geoReloaded(loc, nil)
	return s, nil
}

// instance describes this process for the stats API and the dashboard footer.
func (s *Server) instance() stats.Instance {
	rt := s.rt.Load()
	in := stats.Instance{Version: s.opts.Build.Version, ConfigVersion: rt.version, ConfigLoadedAt: rt.loadedAt}
	if info, ok := rt.geo.Info(); ok {
		in.GeoIPBuild = info.BuildTime
	}
	return in
}

// Start opens both listeners and serves in the background.
func (s *Server) Start() error {
	cfg := s.rt.Load().cfg
	s.public = &fasthttp.Server{
		Handler:                       s.handlePublic,
		ErrorHandler:                  s.handleBadRequest,
		Name:                          "consentgate",
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   60 * time.Second,
		MaxRequestBodySize:            cfg.MaxBodySize,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		ReduceMemoryUsage:             false,
		CloseOnShutdown:               true,
	}
	s.admin = &fasthttp.Server{
		Handler:            s.handleAdmin,
		Name:               "consentgate-admin",
		ReadTimeout:        10 * time.Second,
		WriteTimeout:       30 * time.Second,
		MaxRequestBodySize: 1 << 20,
		CloseOnShutdown:    true,
	}
	var err error
	if s.publicLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if s.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		s.publicLn.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
	}
	var statsCtx context.Context
	statsCtx, s.stopStats = context.WithCancel(context.Background())
	go s.stats.Run(statsCtx)
	go func() { s.serveErr <- s.public.Serve(s.publicLn) }()
	go func() { s.serveErr <- s.admin.Serve(s.adminLn) }()
	return nil
}

// PublicAddr and AdminAddr are the bound addresses (useful with port 0).
func (s *Server) PublicAddr() string { return s.publicLn.Addr().String() }
func (s *Server) AdminAddr() string  { return s.adminLn.Addr().String() }

// Errors delivers a listener's fatal error.
func (s *Server) Errors() <-chan error { return s.serveErr }

// Config returns the config in force.
func (s *Server) Config() *rules.Config { return s.rt.Load().cfg }

// Reload re-reads the config file and the GeoIP database. On any error the running
// config stays in force and the error is returned (and counted).
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload()
	s.metrics.ConfigReload(err == nil, time.Now())
	if err != nil {
		s.log.Error("reload failed, keeping the last good config", "error", err.Error())
		return err
	}
	s.log.Info("reloaded", "config", s.opts.ConfigPath)
	return nil
}

func (s *Server) reload() error {
	var cfg *rules.Config
	var err error
	if s.opts.ConfigPath == "" {
		cfg, err = rules.Default()
	} else {
		cfg, err = rules.Load(s.opts.ConfigPath)
	}
	if err != nil {
		return err
	}
	old := s.rt.Load()
	if cfg.Listen != old.cfg.Listen || cfg.AdminListen != old.cfg.AdminListen {
		return errors.New("listen and admin_listen cannot change on reload: restart the process")
	}
	if !reflect.DeepEqual(cfg.Telemetry.OTLP, old.cfg.Telemetry.OTLP) || cfg.Telemetry.Traces != old.cfg.Telemetry.Traces {
		return errors.New("telemetry.otlp and telemetry.traces cannot change on reload: restart the process")
	}
	if !reflect.DeepEqual(storeSettings(cfg), storeSettings(old.cfg)) {
		return errors.New("consent.store, consent.redis, consent.cache and consent.max_entries cannot change on reload: restart the process")
	}
	loc := old.geo
	newLoc := cfg.Geo.Database != old.cfg.Geo.Database
	if newLoc {
		// The old locator may still serve in-flight hits; it is not closed under them
		// (its memory map goes when the last reference does).
		if loc, err = geo.NewLocator(cfg.Geo.Database); err != nil {
			s.geoReloaded(nil, err)
			return err
		}
	} else if err := loc.Reload(); err != nil {
		s.geoReloaded(nil, err)
		return err
	}
	if !newLoc {
		s.geoReloaded(loc, nil) // reloaded in place: in force whatever follows
	}
	// The hasher is swapped only with the runtime that uses it: a failed reload must not
	// leave the last good config hashing with the rejected config's secret.
	hasher := s.hasher
	if cfg.Anonymise.Secret != old.cfg.Anonymise.Secret {
		hasher = rules.NewHasher([]byte(cfg.Anonymise.Secret), s.opts.Now)
	}
	rt, err := buildRuntime(cfg, hasher, s.metrics, loc, old)
	if err != nil {
		if newLoc {
			loc.Close() // never served a hit
		}
		return err
	}
	s.hasher = hasher
	s.rt.Store(rt)
	if newLoc {
		s.geoReloaded(loc, nil)
	}
	return nil
}

// geoReloaded records a GeoIP (re)load outcome in the metrics.
func (s *Server) geoReloaded(loc *geo.Locator, err error) {
	if err != nil {
		s.metrics.GeoIPReload(false, time.Now(), time.Time{})
		return
	}
	var build time.Time
	if info, ok := loc.Info(); ok {
		build = info.BuildTime
	}
	s.metrics.GeoIPReload(true, time.Now(), build)
}

// storeSettings is the part of the config that is bound when the store is opened.
func storeSettings(cfg *rules.Config) []any {
	c := cfg.Consent
	return []any{c.Store, c.Redis, c.Cache, c.MaxEntries, c.Receipts}
}

// Shutdown drains: /readyz fails first, then after DrainDelay the listeners close and
// in-flight requests finish (bounded by ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	if s.opts.DrainDelay > 0 {
		select {
		case <-time.After(s.opts.DrainDelay):
		case <-ctx.Done():
		}
	}
	var errs []error
	if s.public != nil {
		errs = append(errs, s.public.ShutdownWithContext(ctx))
	}
	if s.admin != nil {
		errs = append(errs, s.admin.ShutdownWithContext(ctx))
	}
	if s.stopStats != nil {
		s.stopStats()
	}
	s.store.stop()
	errs = append(errs, s.store.Close(), s.rt.Load().geo.Close(), s.metrics.Shutdown(ctx), s.tracing.Shutdown(ctx))
	return errors.Join(errs...)
}

// Validate builds everything a config compiles into, without listening or opening the
// consent store, so `consentgate check` catches what `serve` would refuse.
func Validate(cfg *rules.Config) error {
	m, err := telemetry.New(telemetry.BuildInfo{}, rules.VendorNames(), rules.ActionNames(), rules.ReasonNames())
	if err != nil {
		return err
	}
	defer m.Shutdown(context.Background())
	loc, err := geo.NewLocator(cfg.Geo.Database)
	if err != nil {
		return err
	}
	defer loc.Close()
	_, err = buildRuntime(cfg, rules.NewHasher([]byte(cfg.Anonymise.Secret), nil), m, loc, nil)
	return err
}
