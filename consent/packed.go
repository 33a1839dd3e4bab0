// How the in-process maps (the cache, the memory store) hold a consent ID and its state:
// in a few fixed bytes without a pointer, so that a million entries are a few large
// allocations the garbage collector never scans, not millions of small ones it must.

package consent

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// idKey is a consent ID as the in-process maps key it: the 16 bytes it encodes.
type idKey [idBytes]byte

// parseID decodes id if it has exactly NewID's shape (ValidID). That shape makes the
// decoding one-to-one, so two IDs never share a key. It does not allocate.
func parseID(id string) (idKey, bool) {
	var k idKey
	// A read-only view: ValidID and Decode only read it.
	b := unsafe.Slice(unsafe.StringData(id), len(id))
	if !ValidID(b) {
		return k, false
	}
	if n, err := base64.RawURLEncoding.Decode(k[:], b); err != nil || n != idBytes {
		return k, false
	}
	return k, true
}

// packedState is a State in 24 bytes. A state it cannot hold exactly (a TC string, a
// source past the table's 255, a version past 32 bits, a time with a location or a
// monotonic reading) is spilled: the map keeps the whole State beside it (packedSpilled).
type packedState struct {
	created, updated int64 // Unix nanoseconds; noTime for the zero time
	version          uint32
	purposes         uint8 // two bits a purpose, Necessary in the lowest
	source           uint8 // index in the owner's sourceTable
	flags            uint8
}

const (
	packedFound   uint8 = 1 << iota // the cache's answer was "found" (a state, not "no record")
	packedSpilled                   // the state is in the shard's spill map, not in these bytes
)

// noTime stands for the zero time, which has no Unix nanoseconds. A real time that
// falls on it (in 1677) does not survive the round trip and is spilled.
const noTime = math.MinInt64

// Two bits a purpose, in one byte: a compile error if the purposes outgrow it.
const _ uint8 = 1<<(2*NumPurposes) - 1

// sourceTable interns the states' sources, a handful in practice ("api", "admin", a
// backend's name), so that a packed state holds a byte rather than a string. It only
// grows, up to 256 names; a state with a source past that is spilled.
type sourceTable struct {
	mu    sync.Mutex
	index map[string]uint8
	// names is index → name, replaced (never changed) on each addition, so the hit path
	// reads it without a lock.
	names atomic.Pointer[[]string]
}

func newSourceTable() *sourceTable {
	t := &sourceTable{index: map[string]uint8{"": 0}}
	names := []string{""}
	t.names.Store(&names)
	return t
}

// intern returns s's index, adding it if there is room.
func (t *sourceTable) intern(s string) (uint8, bool) {
	if s == "" {
		return 0, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[s]; ok {
		return i, true
	}
	old := *t.names.Load()
	if len(old) > math.MaxUint8 {
		return 0, false
	}
	// The caller's string may alias request memory; the table keeps it for good.
	s = string(append([]byte(nil), s...))
	names := append(old[:len(old):len(old)], s)
	t.index[s] = uint8(len(old))
	t.names.Store(&names)
	return uint8(len(old)), true
}

func (t *sourceTable) name(i uint8) string { return (*t.names.Load())[i] }

// pack returns st packed, and whether it packed exactly; if not, the caller spills st
// and stores the returned flags-only value.
func (t *sourceTable) pack(st *State, found bool) (packedState, bool) {
	p := packedState{created: unixNano(st.Created), updated: unixNano(st.Updated)}
	if found {
		p.flags = packedFound
	}
	for i, s := range st.Purposes {
		p.purposes |= uint8(s&3) << (2 * i)
	}
	src, ok := t.intern(st.Source)
	if ok && st.TCF == "" && st.Version >= 0 && st.Version <= math.MaxUint32 {
		p.source, p.version = src, uint32(st.Version)
		// The round trip decides, so that nothing packs that does not come back the same.
		if t.unpack(p) == *st {
			return p, true
		}
	}
	return packedState{flags: p.flags | packedSpilled}, false
}

// unpack is pack's inverse, for a value that is not spilled.
func (t *sourceTable) unpack(p packedState) State {
	st := State{Source: t.name(p.source), Version: int64(p.version),
		Created: fromUnixNano(p.created), Updated: fromUnixNano(p.updated)}
	for i := range st.Purposes {
		st.Purposes[i] = Status(p.purposes>>(2*i)) & 3
	}
	return st
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == noTime {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// packedReceipt is a receipt of the memory store's trails: its strings replaced by a
// source index and the UA hash's 16 bytes, so that the usual receipt costs its 64 bytes
// in the trail and no allocation of its own. One that does not come back exactly (a
// time with a location or a monotonic reading, a source past the table) is kept whole
// in full.
type packedReceipt struct {
	time     int64 // Unix nanoseconds; noTime for the zero time
	version  int64
	uaHash   [uaHashLen / 2]byte
	tcf      string
	full     *Receipt
	size     uint32 // ReceiptSize, for the trail's bounds
	purposes uint8
	source   uint8
	flags    uint8
}

const (
	receiptWithdraw uint8 = 1 << iota // Action is ActionWithdraw, not ActionConsent
	receiptUAHash                     // uaHash holds UAHash, which is not ""
)

// packReceipt packs r, whose strings the caller has already cloned (finishReceipt).
func (t *sourceTable) packReceipt(r *Receipt) packedReceipt {
	p := packedReceipt{time: unixNano(r.Time), version: r.Version, tcf: r.TCF, size: uint32(ReceiptSize(r))}
	for i, s := range r.Purposes {
		p.purposes |= uint8(s&3) << (2 * i)
	}
	if r.Action == ActionWithdraw {
		p.flags |= receiptWithdraw
	}
	if r.UAHash != "" {
		p.flags |= receiptUAHash
		if _, err := hex.Decode(p.uaHash[:], []byte(r.UAHash)); err != nil {
			return packedReceipt{full: r, size: p.size}
		}
	}
	src, ok := t.intern(r.Source)
	p.source = src
	if !ok || (r.Action != ActionConsent && r.Action != ActionWithdraw) || t.unpackReceipt(&p) != *r {
		return packedReceipt{full: r, size: p.size}
	}
	return p
}

func (t *sourceTable) unpackReceipt(p *packedReceipt) Receipt {
	if p.full != nil {
		return *p.full
	}
	r := Receipt{Time: fromUnixNano(p.time), Action: ActionConsent, Source: t.name(p.source), Version: p.version, TCF: p.tcf}
	if p.flags&receiptWithdraw != 0 {
		r.Action = ActionWithdraw
	}
	if p.flags&receiptUAHash != 0 {
		r.UAHash = hex.EncodeToString(p.uaHash[:])
	}
	for i := range r.Purposes {
		r.Purposes[i] = Status(p.purposes>>(2*i)) & 3
	}
	return r
}
