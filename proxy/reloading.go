package proxy

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/config"
)

// errReloadAbandoned is a reload that gave up: it took longer than its timeout to read
// the config, or the server is stopping.
var errReloadAbandoned = errors.New("reload abandoned")

// Reload re-reads the config file and the GeoIP database on the caller's goroutine. On
// any error the running config stays in force and the error is returned (and counted).
func (s *Server) Reload() error { return s.reloadOnce(nil) }

// StartReload reloads in a goroutine of its own and returns at once, so the signal loop
// that calls it is always free to take SIGTERM. At most one runs at a time: a request
// while one does returns false and makes one more reload run once it is done (however
// many came meanwhile), since the running one may have read the config before the edit
// the new request announces. A reload that has not read its config within
// timeout (a config path on a hung network mount, a FIFO nobody writes) is abandoned:
// counted and logged as failed, the last good config stays, and whatever the stuck read
// returns later is dropped. Once the config is read, applying it (compile, GeoIP
// database) is not cut short.
func (s *Server) StartReload(timeout time.Duration) bool {
	if !s.reloading.CompareAndSwap(false, true) {
		s.reloadAgain.Store(true)
		s.log.Info("reload requested while one is still running; another runs when it is done", "config", s.opts.ConfigPath)
		return false
	}
	// claim decides, once, who reports this reload: the reload, when it gets to apply in
	// time, or the timer.
	var claim atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.reloadOnce(&claim)
	}()
	go func() {
		defer s.reloadDone(timeout)
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-done:
			return
		case <-timer.C:
		}
		if claim.CompareAndSwap(false, true) {
			s.metrics.ConfigReload(false, time.Now())
			s.log.Error("reload timed out reading the config, keeping the last good config", "config", s.opts.ConfigPath, "timeout", timeout.String())
			return
		}
		<-done // applying: it reports itself
	}()
	return true
}

// reloadDone ends a StartReload, and starts the one asked for meanwhile. The flag is
// cleared first: a request between the two starts its own reload, and at worst one
// more runs than needed.
func (s *Server) reloadDone(timeout time.Duration) {
	s.reloading.Store(false)
	if s.reloadAgain.Swap(false) {
		s.StartReload(timeout)
	}
}

// reloadOnce reads the config, then applies it unless claim was taken (the reload timed
// out while reading) or the server is stopping. A nil claim is a caller that waits.
func (s *Server) reloadOnce(claim *atomic.Bool) error {
	cfg, err := s.readConfig()
	if claim != nil && !claim.CompareAndSwap(false, true) {
		return errReloadAbandoned
	}
	select {
	case s.applying <- struct{}{}:
		defer func() { <-s.applying }()
	case <-s.stopping:
		return errReloadAbandoned
	}
	select {
	case <-s.stopping:
		return errReloadAbandoned
	default:
	}
	if err == nil {
		err = s.apply(cfg)
	}
	s.metrics.ConfigReload(err == nil, time.Now())
	if err != nil {
		s.log.Error("reload failed, keeping the last good config", "error", err.Error())
		return err
	}
	s.log.Info("reloaded", "config", s.opts.ConfigPath)
	s.logWarnings(cfg)
	return nil
}

// readConfig reads the config file, or the defaults without one, as the process
// started: with the product's vocabulary and the environment.
func (s *Server) readConfig() (*config.Config, error) {
	ld := s.loader()
	if s.opts.ConfigPath == "" {
		return ld.Default()
	}
	return ld.Load(s.opts.ConfigPath)
}

// logWarnings logs what the loader found risky in a config (config/load guards.go), at
// every start and reload, so it is not missed.
func (s *Server) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		s.log.Warn("config warning", "problem", w.String())
	}
}
