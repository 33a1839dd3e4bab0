package consent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// MemoryStore is a bounded, in-process Store: the default for a single instance and the
// store the tests use. States and receipts live in two sharded maps, each bounded by
// MaxEntries IDs and half of MaxBytes; an operation on both takes the state shard's lock,
// then the receipt shard's, always in that order.
type MemoryStore struct {
	states   *ttlMap[State]
	receipts *ttlMap[[]Receipt]
	closed   atomic.Bool
	now      func() time.Time // the clock; tests replace it
	epoch    Epoch            // the store's creation (epoch.go)

	receiptsMaxLen   int
	receiptsMaxBytes int
	receiptsTTL      time.Duration
}

var _ Store = (*MemoryStore)(nil)

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
	s := &MemoryStore{
		states: newTTLMap("NewMemoryStore", o.MaxEntries, byteBound[State]{
			Max: o.MaxBytes / 2, Entry: maxStateBytes,
			Size: func(k string, st State) int { return stateSize(k, &st) },
		}),
		receipts: newTTLMap("NewMemoryStore", o.MaxEntries, byteBound[[]Receipt]{
			Max: o.MaxBytes / 2, Entry: o.ReceiptsMaxBytes + o.ReceiptsMaxLen*receiptOverhead,
			Size: receiptsSize,
		}),
		now:              o.Now,
		receiptsMaxLen:   o.ReceiptsMaxLen,
		receiptsMaxBytes: o.ReceiptsMaxBytes,
		receiptsTTL:      o.ReceiptsTTL,
	}
	s.epoch.set(o.Now().Unix())
	return s
}

// Get returns the state stored under id. It does not allocate: it is on the path of
// every hit that carries a consent cookie.
func (s *MemoryStore) Get(_ context.Context, id string) (State, bool, error) {
	sh := s.states.shard(id)
	now := s.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		return State{}, false, ErrClosed
	}
	st, ok := sh.getLocked(id, now)
	return st, ok, nil
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
	now := s.now()
	r, err := consentReceipt(r, &st, now)
	if err != nil {
		return err
	}
	// The caller's strings may alias request memory that is reused after the handler.
	id = strings.Clone(id)
	st.Source, st.TCF = strings.Clone(st.Source), strings.Clone(st.TCF)

	sh, rsh := s.lockBoth(id)
	defer unlockBoth(sh, rsh)
	if sh.m == nil || rsh.m == nil {
		return ErrClosed
	}
	sh.setLocked(id, st, now.Add(ttl), now)
	s.appendLocked(rsh, id, r, now)
	return nil
}

// Delete removes id's state and records the withdrawal. A state that has already
// expired counts as absent.
func (s *MemoryStore) Delete(_ context.Context, id string, r Receipt) (bool, error) {
	now := s.now()
	r, err := withdrawReceipt(r, now)
	if err != nil {
		return false, err
	}
	sh, rsh := s.lockBoth(id)
	defer unlockBoth(sh, rsh)
	if sh.m == nil || rsh.m == nil {
		return false, ErrClosed
	}
	existed := sh.deleteLocked(id, now)
	// Only the receipt map keeps the key, so only it needs a copy the caller cannot reuse.
	s.appendLocked(rsh, strings.Clone(id), r, now)
	return existed, nil
}

// Erase removes id's state and receipts.
func (s *MemoryStore) Erase(_ context.Context, id string) (bool, error) {
	now := s.now()
	sh, rsh := s.lockBoth(id)
	defer unlockBoth(sh, rsh)
	if sh.m == nil || rsh.m == nil {
		return false, ErrClosed
	}
	hadState := sh.deleteLocked(id, now)
	hadReceipts := rsh.deleteLocked(id, now)
	return hadState || hadReceipts, nil
}

// History returns a copy of id's receipts, oldest first.
func (s *MemoryStore) History(_ context.Context, id string) ([]Receipt, error) {
	rsh := s.receipts.shard(id)
	now := s.now()
	rsh.mu.Lock()
	defer rsh.mu.Unlock()
	if rsh.m == nil {
		return nil, ErrClosed
	}
	rs, _ := rsh.getLocked(id, now)
	return append([]Receipt{}, rs...), nil
}

func (s *MemoryStore) lockBoth(id string) (*ttlShard[State], *ttlShard[[]Receipt]) {
	sh, rsh := s.states.shard(id), s.receipts.shard(id)
	sh.mu.Lock()
	rsh.mu.Lock()
	return sh, rsh
}

func unlockBoth(sh *ttlShard[State], rsh *ttlShard[[]Receipt]) {
	rsh.mu.Unlock()
	sh.mu.Unlock()
}

// appendLocked adds r to id's receipts, dropping the oldest beyond the caps (count and
// bytes; r itself always stays), and restarts the receipts' TTL as Redis does with PEXPIRE
// on each append. The slice is only ever touched under the shard lock (History copies), so
// it is safe to shift it in place.
func (s *MemoryStore) appendLocked(rsh *ttlShard[[]Receipt], id string, r Receipt, now time.Time) {
	rs, _ := rsh.getLocked(id, now)
	rs = append(rs, r)
	keep, total := 0, 0
	for i := len(rs) - 1; i >= 0 && keep < s.receiptsMaxLen; i-- {
		if total += ReceiptSize(&rs[i]); total > s.receiptsMaxBytes && keep > 0 {
			break
		}
		keep++
	}
	if drop := len(rs) - keep; drop > 0 {
		n := copy(rs, rs[drop:])
		clear(rs[n:]) // let the dropped receipts' strings go
		rs = rs[:n]
	}
	rsh.setLocked(id, rs, now.Add(s.receiptsTTL), now)
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
