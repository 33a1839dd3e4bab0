package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/signals"
	"github.com/consentgate/consentgate/internal/certfile"
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
	// Now is the clock of the anonymiser's daily salt, of the consent API (state times,
	// snapshot issue times) and of the rate limits (tests); nil = time.Now.
	Now   func() time.Time
	Build telemetry.BuildInfo
	// DrainDelay is how long /readyz fails before the listeners stop on Shutdown, so a
	// load balancer stops sending first.
	DrainDelay time.Duration
	// Hasher replaces the anonymiser's hasher (tests pin its salt with SetSalt); nil
	// makes one on Now. With the Redis store, the day's salt is shared either way.
	Hasher *rules.Hasher
	// CertCheckInterval is how often the TLS certificate's files are checked for a
	// change; 0 = every 5 s (tests shorten it).
	CertCheckInterval time.Duration
	// GeoCheckInterval is how often the GeoIP database file is checked for a change;
	// 0 = every 10 s (tests shorten it).
	GeoCheckInterval time.Duration
}

// Server is one consentgate process: the public and admin listeners around one runtime.
type Server struct {
	opts   Options
	log    *slog.Logger
	rt     atomic.Pointer[runtime]
	store  *consentStore
	hasher *rules.Hasher // the process's: its day salts outlive reloads
	now    func() time.Time
	// randomKeys sign consent snapshots when consent.snapshot.keys is not set: made once,
	// so a reload keeps them.
	randomKeys *consent.SnapshotKeys
	metrics    *telemetry.Metrics
	tracing    *tracing.Tracing
	// tracer is set only when traces are on, so the hit path tests one pointer.
	tracer trace.Tracer
	stats  *stats.Stats
	// scripts serves the tag scripts: its cache outlives reloads.
	scripts *scriptServer
	// stopStats ends the stats ticker; set by Start.
	stopStats context.CancelFunc
	// fleet publishes and reads the fleet figures (fleet.go); nil without Redis.
	fleet        *stats.Fleet
	stopFleetRun func()
	// certs is the public listener's certificate (tls.go), nil without TLS; set at start
	// only. stopCertWatch ends the watcher of its files.
	certs         *certfile.Source
	stopCertWatch func()
	// geoWatch reloads the GeoIP database when its file changes (geowatch.go).
	geoWatch geoWatch

	public, admin     *fasthttp.Server
	publicLn, adminLn net.Listener
	draining          atomic.Bool
	// applying is held while a config is applied: one at a time, and Shutdown takes it
	// for good so nothing is applied to a server being closed. A channel, not a mutex,
	// so Shutdown can give up waiting on it.
	applying chan struct{}
	// stopping is closed by Shutdown, once.
	stopping chan struct{}
	stopOnce sync.Once
	// reloading is set while a StartReload runs.
	reloading atomic.Bool
	// reloadAgain is set by a StartReload refused while one ran: that one runs again.
	reloadAgain atomic.Bool
	serveErr    chan error
}

// New builds a server from a validated config. It opens the GeoIP database and the
// consent store but listens on nothing until Start.
func New(cfg *config.Config, opts Options) (*Server, error) {
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
	mopts = append(mopts, telemetry.WithSignals(signals.KindNames()...), telemetry.WithRemovedKinds(rules.KindNames()...))
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
	s := &Server{opts: opts, log: opts.Logger, hasher: opts.Hasher, metrics: m, tracing: tr, serveErr: make(chan error, 2),
		applying: make(chan struct{}, 1), stopping: make(chan struct{}),
		scripts: newScriptServer(cfg)}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s.now = now
	if s.randomKeys, err = consent.RandomSnapshotKeys(); err != nil {
		return fail(err)
	}
	if s.hasher == nil {
		s.hasher = rules.NewHasher(now)
	}
	if tr.Enabled() {
		s.tracer = tr.Tracer()
	}
	if opts.Store != nil {
		s.store = &consentStore{Store: opts.Store, countLookups: true, stop: func() {}, epoch: storeEpoch(opts.Store)}
		m.StoreUp(true)
	} else if s.store, err = openStore(cfg, m, tr, opts.Logger, s.hasher, now); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { s.store.stop(); s.store.Close() })
	if err := s.apply(cfg); err != nil {
		return fail(err)
	}
	undo = append(undo, func() { s.rt.Load().geo.Close() })
	if s.fleet, err = s.newFleet(cfg); err != nil {
		return fail(err)
	}
	if s.stats, err = stats.New(m, stats.WithInstance(s.instance), stats.WithFleet(s.fleet)); err != nil {
		return fail(err)
	}
	m.ConfigReload(true, time.Now())
	s.logWarnings(cfg)
	return s, nil
}

// instance describes this process for the stats API and the dashboard footer.
func (s *Server) instance() stats.Instance {
	rt := s.rt.Load()
	in := stats.Instance{Version: s.opts.Build.Version, ConfigVersion: rt.Version, ConfigLoadedAt: rt.CompiledAt}
	if info, ok := rt.geo.Info(); ok {
		in.GeoIPBuild = info.BuildTime
	}
	return in
}

// Start opens both listeners and serves in the background.
func (s *Server) Start() error {
	cfg := s.rt.Load().Config
	s.public = &fasthttp.Server{
		Handler:        s.handlePublic,
		ErrorHandler:   s.handleBadRequest,
		HeaderReceived: headerReceived,
		Name:           "consentgate",
		// ReadTimeout bounds a whole request from its first byte (from accept for a new
		// connection), so a head sent a byte at a time (slowloris) is cut off with 408.
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		IdleTimeout:  cfg.IdleTimeout,
		// The read buffer bounds the request head: real cookie headers run to many KB.
		ReadBufferSize:                cfg.MaxHeaderSize,
		MaxRequestBodySize:            cfg.MaxBodySize,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		// Idle keep-alive connections hand their read and write buffers back between
		// requests: with a read buffer of max_header_size each, thousands of idle
		// connections would otherwise hold tens of MB (bench: BenchmarkConnectionStorm).
		ReduceMemoryUsage:     true,
		CloseOnShutdown:       true,
		Logger:                listenerLog{s.log, "public"},
		SecureErrorLogMessage: true,
	}
	// Past its Concurrency (256Ki connections) fasthttp answers 503 and closes by
	// itself; those count as too_many_connections too.
	public := s.public
	s.metrics.CountOverflow(func() uint64 { return uint64(public.GetRejectedConnectionsCount()) })
	s.admin = &fasthttp.Server{
		Handler:               s.handleAdmin,
		Name:                  "consentgate-admin",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          30 * time.Second,
		MaxRequestBodySize:    1 << 20,
		CloseOnShutdown:       true,
		Logger:                listenerLog{s.log, "admin"},
		SecureErrorLogMessage: true,
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s.publicLn = newPublicListener(ln, s, cfg.MaxConnsPerIP, s.publicTLS(cfg.TLS), cfg.WriteTimeout)
	if s.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		s.publicLn.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
	}
	var statsCtx context.Context
	statsCtx, s.stopStats = context.WithCancel(context.Background())
	go s.stats.Run(statsCtx)
	s.startFleet()
	s.watchCerts()
	s.startGeoWatch()
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
func (s *Server) Config() *config.Config { return s.rt.Load().Config }

// loader reads the config on reload: the product's vocabulary and the environment.
func (s *Server) loader() *load.Loader {
	return &load.Loader{Vocabulary: rules.Vocabulary()}
}

// Shutdown drains: /readyz fails first, then after DrainDelay the listeners close and
// in-flight requests finish (bounded by ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.stopOnce.Do(func() {
		close(s.stopping)
		// No config is applied from here on. A reload applying now is let finish, within
		// ctx: one stuck (on a GeoIP file that blocks on read) does not hold up the stop.
		select {
		case s.applying <- struct{}{}:
		case <-ctx.Done():
		}
	})
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
	if s.stopCertWatch != nil {
		s.stopCertWatch()
	}
	s.stopGeoWatch()
	s.stopFleet(ctx)
	s.store.stop()
	errs = append(errs, s.store.Close(), s.rt.Load().geo.Close(), s.metrics.Shutdown(ctx), s.tracing.Shutdown(ctx))
	return errors.Join(errs...)
}

// background runs run in a goroutine of its own until stop, which waits for it to return.
func background(run func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	return func() { cancel(); <-done }
}

// listenerLog takes fasthttp's own error lines (a request it could not read, a
// connection that failed). Left to fasthttp they go to the standard logger as plain
// text that quotes the request, its cookies and X-Forwarded-For included, and names the
// peer's address: a visitor's IP, from any request line with a NUL in it. Only a fixed
// message is kept.
type listenerLog struct {
	log      *slog.Logger
	listener string
}

func (l listenerLog) Printf(string, ...any) {
	l.log.Debug("a connection could not be served", "listener", l.listener)
}
