package geo

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/consentgate/consentgate/internal/filestamp"
)

// Locator serves lookups from the current database and swaps in a new one on Reload
// (SIGHUP) or Refresh (the file changed) without making a lookup wait: lookups only load
// an atomic pointer.
type Locator struct {
	path string
	db   atomic.Pointer[DB]

	mu     sync.Mutex // serialises Reload, Refresh and Close; lookups never take it
	closed bool
	seen   filestamp.Stamp // the file when last read, or last tried
}

var errLocatorClosed = errors.New("geo: locator is closed")

// NewLocator opens the database at path. With path "" there is no database and every
// lookup is unknown.
func NewLocator(path string) (*Locator, error) {
	l := &Locator{path: path}
	if path == "" {
		return l, nil
	}
	l.seen = filestamp.Of(path)
	db, err := OpenDB(path)
	if err != nil {
		return nil, err
	}
	l.db.Store(db)
	return l, nil
}

// Lookup returns the location of ip in the current database, unknown if there is none.
func (l *Locator) Lookup(ip netip.Addr) Location {
	return l.db.Load().Lookup(ip) // DB.Lookup accepts a nil receiver
}

// Reload re-opens the database from the same path (updated in place by geoipupdate or a
// deploy). On error the current database stays in service and the error is returned.
//
// The retired database is not closed: a lookup that loaded the old pointer just before the
// swap may still be reading it, and nothing cheap tells when it is done (a reference count
// would put a contended atomic add on every hit). Because DB keeps the file in the heap,
// dropping the last reference is enough; the garbage collector frees it after the last such
// lookup returns. So memory briefly holds two databases during a reload.
func (l *Locator) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLocatorClosed
	}
	if l.path == "" {
		return nil
	}
	return l.load(filestamp.Of(l.path))
}

// ErrUnchanged is Refresh's answer when the file is as it was last read or tried.
var ErrUnchanged = errors.New("geo: database file unchanged")

// Refresh is Reload when the file changed since it was last read or tried (by NewLocator,
// Reload or Refresh): geoipupdate renamed a new one over it, a volume swapped its symlink,
// someone rewrote it. Otherwise it returns ErrUnchanged. A change that does not load is
// tried once: the file is read again only when it changes again, or on Reload.
func (l *Locator) Refresh() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLocatorClosed
	}
	if l.path == "" {
		return ErrUnchanged
	}
	now := filestamp.Of(l.path)
	if now.Same(l.seen) {
		return ErrUnchanged
	}
	return l.load(now)
}

// load reads the file, which looked like now when stat'ed, and puts the database in force
// if it opens. The stat comes before the read: a change made while the file is read is
// seen by the next Refresh, never lost.
func (l *Locator) load(now filestamp.Stamp) error {
	l.seen = now
	db, err := OpenDB(l.path)
	if err != nil {
		return err
	}
	l.db.Store(db)
	return nil
}

// Info describes the current database; false if there is none.
func (l *Locator) Info() (DBInfo, bool) {
	db := l.db.Load()
	if db == nil {
		return DBInfo{}, false
	}
	return db.Info(), true
}

// Close takes the database out of service: later lookups are unknown and Reload fails.
// As in Reload, in-flight lookups finish on the retired database, freed by the collector.
func (l *Locator) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.db.Store(nil)
	return nil
}
