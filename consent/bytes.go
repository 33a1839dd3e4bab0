package consent

import (
	"github.com/consentgate/consentgate/consent/tcf"
)

// What the in-process maps weigh. The figures are estimates of Go's memory (a map slot,
// the struct, string headers) plus the strings themselves: enough to bound memory by what
// a client sends, which a count of entries does not.
const (
	// packedEntryBytes is a state map's entry: its map slot (a 16-byte key, a 4-byte
	// index) with the map's share of control bytes and free slots, and its slab entry (a
	// 24-byte packedState, an 8-byte expiry). The heap measured 65 bytes a cached visitor
	// at 200,000 and 79 at a million (TestBytesPerVisitor).
	packedEntryBytes = 72
	// stateOverhead is a spilled state besides its strings: the State in the spill
	// map's slot.
	stateOverhead = 128
	// receiptOverhead is a receipt in a trail besides its strings: its packed form;
	// fullReceiptOverhead the Receipt it keeps on top when it does not pack.
	receiptOverhead     = 64
	fullReceiptOverhead = 112
	// maxStateBytes is the most a state can weigh: spilled, with a TC string of
	// tcf.MaxLength and a short source.
	maxStateBytes = packedEntryBytes + stateOverhead + 64 + tcf.MaxLength
)

// Byte bound defaults.
const (
	// DefaultMemoryMaxBytes bounds the memory store's states and receipts together
	// (half each): some half a million visitors with a receipt or two each.
	DefaultMemoryMaxBytes = 256 << 20
	// DefaultReceiptsMaxBytes bounds one ID's receipts (ReceiptSize): a hundred ordinary
	// receipts, or a dozen that carry a long TC string.
	DefaultReceiptsMaxBytes = 64 << 10
	// DefaultCacheMaxBytes bounds the states a Cache holds.
	DefaultCacheMaxBytes = 64 << 20
)

func packedStateSize(packedState) int { return packedEntryBytes }

// spilledStateSize is what a spilled state weighs on top of its entry.
func spilledStateSize(st *State) int {
	return stateOverhead + len(st.Source) + len(st.TCF)
}

// ReceiptSize is what a receipt counts against a per-ID receipts bound: the lengths of
// its field names and values as the Redis store writes them (REDIS.md), so that the
// memory store and Redis trim alike.
func ReceiptSize(r *Receipt) int {
	n := len(fieldAction) + len(r.Action)
	for p, s := range r.Purposes {
		if s != Unset {
			n += len(Purpose(p).String()) + len(s.String())
		}
	}
	if r.TCF != "" {
		n += len(fieldTCF) + len(r.TCF)
	}
	return n + len(fieldSource) + len(r.Source) + len(fieldVersion) + digits(r.Version) +
		len(fieldUAHash) + len(r.UAHash) + len(fieldTime) + digits(r.Time.UnixMilli())
}

// digits is the length of n in decimal.
func digits(n int64) int {
	d := 1
	if n < 0 {
		d, n = 2, -n
	}
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// receiptsSize is what a memory store's trail weighs: its entry, and each receipt's
// packed form and what it counts against the trail's bound (its fields as Redis holds
// them: enough for the strings it keeps).
func receiptsSize(rs []packedReceipt) int {
	n := packedEntryBytes
	for i := range rs {
		n += receiptOverhead + int(rs[i].size)
		if rs[i].full != nil {
			n += fullReceiptOverhead
		}
	}
	return n
}
