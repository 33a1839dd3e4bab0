package geo

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Locator serves lookups from the current database and swaps in a new one on Reload
// (SIGHUP) without making a lookup wait: lookups only load an atomic pointer.
type Locator struct {
	path string
	db   atomic.Pointer[DB]

	mu     sync.Mutex // serialises Reload and Close; lookups never take it
	closed bool
}

var errLocatorClosed = errors.New("geo: locator is closed")

// NewLocator opens the database at path. With path "" there is no database and every
// lookup is unknown.
func NewLocator(path string) (*Locator, error) {
	l := &Locator{path: path}
	if path == "" {
		return l, nil
	}
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
