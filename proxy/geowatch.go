package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/internal/filestamp"
)

// The GeoIP database file is watched while the server serves, so that a new one written
// by geoipupdate (a temporary file renamed over the old), a deploy, or a Kubernetes volume
// swapping its ..data symlink is in force within geoCheckInterval, with no signal: a
// sidecar that sent SIGHUP had to share the pod's process namespace, and could then read
// the proxy's environment, secrets included. SIGHUP and POST /admin/reload still reload it.

// geoCheckInterval is how often the database file is checked when Options does not say:
// a stat every few seconds costs nothing, and MaxMind publishes at most twice a week.
const geoCheckInterval = 10 * time.Second

// geoWatch is the watcher of the database file. It runs from Start to Shutdown once a
// config in force names a database: from Start, or from the reload that first names one.
// A reload that drops the database leaves it running with nothing to check.
type geoWatch struct {
	mu      sync.Mutex
	serving bool   // between Start and Shutdown
	stop    func() // ends the watcher; nil while none runs
}

// startGeoWatch is Start's: the watcher may run from now on.
func (s *Server) startGeoWatch() {
	s.geoWatch.mu.Lock()
	s.geoWatch.serving = true
	s.geoWatch.mu.Unlock()
	s.watchGeo()
}

// watchGeo starts the watcher if the server serves, the config in force names a
// database and none runs yet.
func (s *Server) watchGeo() {
	w := &s.geoWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.serving || w.stop != nil || s.rt.Load().Config.Geo.Database == "" {
		return
	}
	every := s.opts.GeoCheckInterval
	if every <= 0 {
		every = geoCheckInterval
	}
	w.stop = background(func(ctx context.Context) {
		filestamp.Poll(ctx, every, func() { s.refreshGeo(ctx) })
	})
}

// stopGeoWatch is Shutdown's: it ends the watcher and waits for it, and none starts again.
func (s *Server) stopGeoWatch() {
	w := &s.geoWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serving = false
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// refreshGeo reloads the database in force if its file changed since it was last read or
// tried (geo.Locator.Refresh; a config reload reads it too, or opens the one it names).
// It holds applying, as a config reload does, so the two never interleave: the metrics
// and the log follow what went into force in order, and a database a reload has just
// replaced is not read again.
func (s *Server) refreshGeo(ctx context.Context) {
	select {
	case s.applying <- struct{}{}:
		defer func() { <-s.applying }()
	case <-ctx.Done():
		return
	case <-s.stopping:
		return
	}
	loc := s.rt.Load().geo
	err := loc.Refresh()
	if errors.Is(err, geo.ErrUnchanged) {
		return
	}
	s.geoReloaded(loc, err)
	if err != nil {
		s.log.Error("the GeoIP database file changed but did not load; the database in force keeps serving", "error", err.Error())
		return
	}
	info, _ := loc.Info()
	s.log.Info("the GeoIP database file changed: new database in force", "database", info.Path, "type", info.Type,
		"build", info.BuildTime.Format(time.RFC3339))
}
