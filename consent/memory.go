package consent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// MemoryStore is a bounded, in-process Store: the default for a single instance and the
// store the tests use. States and receipts live in two sharded maps, each bounded by
// MaxEntries IDs and half of MaxBytes; an operation on both takes the state shard's lock,
// then the receipt shard's, always in that order. A state is held in a fixed-size entry
// (packed.go). It keeps the IDs of NewID's shape, the only ones the proxy makes or
// accepts, and refuses any other (errNotID).
type MemoryStore struct {
	states   *ttlMap[packedState]
	receipts *ttlMap[[]packedReceipt]
	sources  *sourceTable
	closed   atomic.Bool
	now      func() time.Time // the clock; tests replace it
	epoch    Epoch            // the store's creation (epoch.go)

	receiptsMaxLen   int
	receiptsMaxBytes int
	receiptsTTL      time.Duration
}

var _ Store = (*MemoryStore)(nil)

// errNotID is the memory store's answer to an ID NewID could not have made; it says
// nothing of the ID itself.
var errNotID = errors.New("consent: memory store: the consent ID does not have the shape of one (22 base64url characters)")

// MemoryOptions configures a MemoryStore. Zero values take the defaults, except
// MaxEntries, which is required.
type MemoryOptions struct {
	MaxEntries int // IDs whose state, and IDs whose receipts, are kept
	// MaxBytes bounds what the states and the receipts weigh (about half each);
	// default DefaultMemoryMaxBytes.
	MaxBytes int
	// Receipts per ID: at most ReceiptsMaxLen (default DefaultReceiptsMaxLen) and
	// ReceiptsMaxBytes by ReceiptSize (default DefaultReceiptsMaxBytes), the oldest going
	// first, kept for ReceiptsTTL (default DefaultReceiptsTTL) after the last one.
	ReceiptsMaxLen   int
	ReceiptsMaxBytes int
	ReceiptsTTL      time.Duration
	// Now is the store's clock, of its TTLs and its dataset epoch (its creation); default
	// time.Now. The proxy passes the clock it issues snapshots by.
	Now func() time.Time
}

// NewMemoryStore returns a store that holds the states of at most maxEntries IDs, and
// the receipts of at most maxEntries IDs, with the default byte bounds.
func NewMemoryStore(maxEntries int) *MemoryStore {
	return NewMemoryStoreWith(MemoryOptions{MaxEntries: maxEntries})
}

// NewMemoryStoreWith returns a store bounded as o says. It panics if o.MaxEntries < 1: a
// store that can hold nothing is a configuration mistake that config validation must
// catch before this point.
func NewMemoryStoreWith(o MemoryOptions) *MemoryStore {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMemoryMaxBytes
	}
	if o.ReceiptsMaxLen <= 0 {
		o.ReceiptsMaxLen = DefaultReceiptsMaxLen
	}
	if o.ReceiptsMaxBytes <= 0 {
		o.ReceiptsMaxBytes = DefaultReceiptsMaxBytes
	}
	if o.ReceiptsTTL <= 0 {
		o.ReceiptsTTL = DefaultReceiptsTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	start := o.Now()
	s := &MemoryStore{
		states: newTTLMap("NewMemoryStore", o.MaxEntries, start, byteBound[packedState]{
			Max: o.MaxBytes / 2, Entry: maxStateBytes, Size: packedStateSize,
		}),
		receipts: newTTLMap("NewMemoryStore", o.MaxEntries, start, byteBound[[]packedReceipt]{
			Max: o.MaxBytes / 2, Entry: o.ReceiptsMaxBytes + o.ReceiptsMaxLen*(receiptOverhead+fullReceiptOverhead),
			Size: receiptsSize,
		}),
		sources:          newSourceTable(),
		now:              o.Now,
		receiptsMaxLen:   o.ReceiptsMaxLen,
		receiptsMaxBytes: o.ReceiptsMaxBytes,
		receiptsTTL:      o.ReceiptsTTL,
	}
	s.epoch.set(start.Unix())
	return s
}

// Get returns the state stored under id. It does not allocate: it is on the path of
// every hit that carries a consent cookie.
func (s *MemoryStore) Get(_ context.Context, id string) (State, bool, error) {
	key, ok := parseID(id)
	if !ok {
		return State{}, false, errNotID
	}
	sh := s.states.shard(&key)
	now := s.states.at(s.now())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return State{}, false, ErrClosed
	}
	p, ok := sh.getLocked(key, now)
	switch {
	case !ok:
		return State{}, false, nil
	case p.flags&packedSpilled != 0:
		return sh.spill[key], true, nil
	}
	return s.sources.unpack(p), true, nil
}

// GetFresh is Get: the memory store has no cache and no budget.
func (s *MemoryStore) GetFresh(ctx context.Context, id string) (State, bool, error) {
	return s.Get(ctx, id)
}

// Put stores st under id for ttl and appends the receipt, under both shard locks so
// that no reader sees one without the other.
func (s *MemoryStore) Put(_ context.Context, id string, st State, ttl time.Duration, r Receipt) error {
	if ttl <= 0 {
		return fmt.Errorf("consent: memory store put: ttl must be positive, got %v", ttl)
	}
	key, ok := parseID(id)
	if !ok {
		return errNotID
	}
	now := s.now()
	r, err := consentReceipt(r, &st, now)
	if err != nil {
		return err
	}
	p, packed := s.sources.pack(&st, true)
	var spill *State
	if !packed {
		// The caller's strings may alias request memory that is reused after the handler.
		st.Source, st.TCF = strings.Clone(st.Source), strings.Clone(st.TCF)
		spill = &st
	}
	sh, rsh := s.lockBoth(&key)
	defer unlockBoth(sh, rsh)
	if sh.m == nil || rsh.m == nil {
		return ErrClosed
	}
	at := s.states.at(now)
	sh.setLocked(key, p, spill, expiry(at, ttl), at)
	s.appendLocked(rsh, key, r, at)
	return nil
}

// Delete removes id's state and records the withdrawal. A state that has already
// expired counts as absent.
func (s *MemoryStore) Delete(_ context.Context, id string, r Receipt) (bool, error) {
	key, ok := parseID(id)
	if !ok {
		return false, errNotID
	}
	now := s.now()
	r, err := withdrawReceipt(r, now)
	if err != nil {
		return false, err
	}
	sh, rsh := s.lockBoth(&key)
	defer unlockBoth(sh, rsh)
	if sh.m == nil || rsh.m == nil {
		return false, ErrClosed
	}
	at := s.states.at(now)
	existed := sh.deleteLocked(key, at)
	s.appendLocked(rsh, key, r, at)
	return existed, nil
}

// Erase removes id's state and receipts.
func (s *MemoryStore) Erase(_ context.Context, id string) (bool, error) {
	key, ok := parseID(id)
	if !ok {
		return false, errNotID
	}
	at := s.states.at(s.now())
	sh, rsh := s.lockBoth(&key)
	defer unlockBoth(sh, rsh)
	if sh.m == nil || rsh.m == nil {
		return false, ErrClosed
	}
	hadState := sh.deleteLocked(key, at)
	hadReceipts := rsh.deleteLocked(key, at)
	return hadState || hadReceipts, nil
}

// History returns a copy of id's receipts, oldest first.
func (s *MemoryStore) History(_ context.Context, id string) ([]Receipt, error) {
	key, ok := parseID(id)
	if !ok {
		return nil, errNotID
	}
	rsh := s.receipts.shard(&key)
	at := s.receipts.at(s.now())
	rsh.mu.Lock()
	defer rsh.mu.Unlock()
	if rsh.m == nil {
		return nil, ErrClosed
	}
	rs, _ := rsh.getLocked(key, at)
	out := make([]Receipt, len(rs))
	for i := range rs {
		out[i] = s.sources.unpackReceipt(&rs[i])
	}
	return out, nil
}

func (s *MemoryStore) lockBoth(key *idKey) (*ttlShard[packedState], *ttlShard[[]packedReceipt]) {
	sh, rsh := s.states.shard(key), s.receipts.shard(key)
	sh.mu.Lock()
	rsh.mu.Lock()
	return sh, rsh
}

func unlockBoth(sh *ttlShard[packedState], rsh *ttlShard[[]packedReceipt]) {
	rsh.mu.Unlock()
	sh.mu.Unlock()
}

// appendLocked adds r to id's receipts, dropping the oldest beyond the caps (count and
// bytes; r itself always stays), and restarts the receipts' TTL as Redis does with PEXPIRE
// on each append. The slice is only ever touched under the shard lock (History copies);
// the entry is removed before the slice is shifted in place, so that the map weighs the
// slice as it was stored.
func (s *MemoryStore) appendLocked(rsh *ttlShard[[]packedReceipt], key idKey, r Receipt, now int64) {
	rs, _ := rsh.getLocked(key, now)
	rsh.deleteLocked(key, now)
	rs = append(rs, s.sources.packReceipt(&r))
	keep, total := 0, 0
	for i := len(rs) - 1; i >= 0 && keep < s.receiptsMaxLen; i-- {
		if total += int(rs[i].size); total > s.receiptsMaxBytes && keep > 0 {
			break
		}
		keep++
	}
	if drop := len(rs) - keep; drop > 0 {
		n := copy(rs, rs[drop:])
		clear(rs[n:]) // let the dropped receipts' strings go
		rs = rs[:n]
	}
	rsh.setLocked(key, rs, nil, expiry(now, s.receiptsTTL), now)
}

// Ping reports whether the store can serve; the readiness probe uses it.
func (s *MemoryStore) Ping(context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close releases the entries. Later calls fail with ErrClosed; Close itself is idempotent.
func (s *MemoryStore) Close() error {
	s.closed.Store(true)
	s.states.close()
	s.receipts.close()
	return nil
}

// Len returns the number of states held, including expired ones not yet removed; it is
// meant for metrics and tests.
func (s *MemoryStore) Len() int { return s.states.len() }

// receiptIDs returns the number of IDs with receipts held (tests).
func (s *MemoryStore) receiptIDs() int { return s.receipts.len() }

// Bytes returns what the states and receipts held weigh (the measure MaxBytes bounds),
// expired ones not yet removed included; for metrics and tests.
func (s *MemoryStore) Bytes() int { return s.states.size() + s.receipts.size() }
