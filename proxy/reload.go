package proxy

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/rules"
)

// A component is a part of the server that holds live state built from the config:
// sockets, files, registered metrics. Each applies its own part of a new config (as
// Prometheus's components do with ApplyConfig), so the server keeps no list of what may
// change: prepare builds the part into the next runtime, or refuses, without touching
// what serves hits now; after every component has prepared, the runtime is swapped in and
// each commits, or, when one refused, each aborts what it prepared.
type component interface {
	prepare(prev, next *runtime) error // prev is nil at start
	commit(next *runtime)
	abort(next *runtime)
}

// components are the server's, in the order they prepare.
func (s *Server) components() []component {
	return []component{listeners{}, &tlsPart{s: s}, telemetryPart{s}, storePart{}, &geoPart{s: s}, upstreams{}, integrityPart{s}, scriptPart{}, scriptsPart{s}}
}

// apply compiles cfg and has every component prepare its part, then swaps the new runtime
// in. On any error nothing changes.
func (s *Server) apply(cfg *config.Config) error {
	prev := s.rt.Load()
	snap, err := rules.Compile(cfg, rules.CompileOptions{Hasher: s.hasher})
	if err != nil {
		return err
	}
	next := &runtime{Snapshot: snap}
	comps := s.components()
	for i, c := range comps {
		if err := c.prepare(prev, next); err != nil {
			for j := i - 1; j >= 0; j-- {
				comps[j].abort(next)
			}
			return err
		}
	}
	s.rt.Store(next)
	for _, c := range comps {
		c.commit(next)
	}
	return nil
}

// nop is the commit or abort of a component with nothing to finish.
type nop struct{}

func (nop) commit(*runtime) {}
func (nop) abort(*runtime)  {}

// listeners are bound once: their addresses cannot change on reload, nor the settings
// fasthttp reads while it serves (timeouts, buffer and body sizes), which it reads
// without a lock.
type listeners struct{ nop }

func (listeners) prepare(prev, next *runtime) error {
	if prev != nil && (next.Config.Listen != prev.Config.Listen || next.Config.AdminListen != prev.Config.AdminListen) {
		return errors.New("listen and admin_listen cannot change on reload: restart the process")
	}
	if prev != nil && listenerSettings(next.Config) != listenerSettings(prev.Config) {
		return errors.New("read_timeout, write_timeout, idle_timeout, max_header_size, max_body_size and max_conns_per_ip cannot change on reload: restart the process")
	}
	return nil
}

type listenerConfig struct {
	read, write, idle        time.Duration
	header, body, connsPerIP int
}

func listenerSettings(c *config.Config) listenerConfig {
	return listenerConfig{c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.MaxHeaderSize, c.MaxBodySize, c.MaxConnsPerIP}
}

// telemetryPart: the exporters are set up once; the jurisdictions of the config get
// their metric indices.
type telemetryPart struct{ s *Server }

func (t telemetryPart) prepare(prev, next *runtime) error {
	if prev != nil {
		n, p := &next.Config.Telemetry, &prev.Config.Telemetry
		if !reflect.DeepEqual(n.OTLP, p.OTLP) || n.Traces != p.Traces {
			return errors.New("telemetry.otlp and telemetry.traces cannot change on reload: restart the process")
		}
	}
	for _, name := range next.Table.Names() {
		idx, err := t.s.metrics.Jurisdiction(name)
		if err != nil {
			return fmt.Errorf("jurisdictions: %w", err)
		}
		next.jur = append(next.jur, idx)
	}
	return nil
}

func (telemetryPart) commit(*runtime) {}
func (telemetryPart) abort(*runtime)  {}

// storePart: the consent store is opened once (it holds connections and a cache).
type storePart struct{ nop }

func (storePart) prepare(prev, next *runtime) error {
	if prev != nil && !reflect.DeepEqual(storeSettings(next.Config), storeSettings(prev.Config)) {
		return errors.New("consent.store, consent.redis, consent.cache, consent.receipts, consent.max_entries and consent.max_bytes cannot change on reload: restart the process")
	}
	return nil
}

// storeSettings is the part of the config that is bound when the store is opened.
func storeSettings(cfg *config.Config) []any {
	c := cfg.Consent
	return []any{c.Store, c.Redis, c.Cache, c.MaxEntries, c.Receipts, c.MaxBytes}
}

// geoPart opens the GeoIP database, or on reload re-reads it in place (the file may have
// been replaced) or opens the new path.
type geoPart struct {
	s      *Server
	opened bool // prepare opened a new locator, which abort closes
}

func (g *geoPart) prepare(prev, next *runtime) error {
	path := next.Config.Geo.Database
	if prev != nil && prev.Config.Geo.Database == path {
		next.geo = prev.geo
		if err := next.geo.Reload(); err != nil {
			g.s.geoReloaded(nil, err)
			return err
		}
		g.s.geoReloaded(next.geo, nil) // reloaded in place: in force whatever follows
		return nil
	}
	loc, err := geo.NewLocator(path)
	if err != nil {
		g.s.geoReloaded(nil, err)
		return err
	}
	next.geo, g.opened = loc, true
	return nil
}

func (g *geoPart) commit(next *runtime) {
	// The old locator may still serve in-flight hits; it is not closed under them (its
	// memory map goes when the last reference does).
	if g.opened {
		g.s.geoReloaded(next.geo, nil)
		g.s.watchGeo() // when this config is the first to name a database
	}
}

func (g *geoPart) abort(next *runtime) {
	if g.opened {
		next.geo.Close() // never served a hit
	}
}

// upstreams: one long-lived client per upstream address, kept across reloads.
type upstreams struct{ nop }

func (upstreams) prepare(prev, next *runtime) error {
	next.clients = upstreamClients(next, prev)
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
