package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrClosed is returned by a store used after Close, so that a late request during drain
// fails closed instead of touching released state.
var ErrClosed = errors.New("consent: store is closed")

// Receipt actions.
const (
	ActionConsent  = "consent"  // a write of the visitor's choice
	ActionWithdraw = "withdraw" // the visitor withdrew: the state was deleted
)

const (
	// DefaultReceiptsMaxLen is how many receipts a store keeps per consent ID: enough for
	// years of real changes of mind, small enough that a client rewriting its consent in a
	// loop cannot grow the trail without bound.
	DefaultReceiptsMaxLen = 100
	// DefaultReceiptsTTL outlives the longest consent TTL (395 days, the CNIL's 13 months)
	// twice over, so that the proof of a consent survives the consent itself.
	DefaultReceiptsTTL = 2 * 395 * 24 * time.Hour
)

// Receipt is one entry of the proof-of-consent trail (GDPR Art. 7(1)).
type Receipt struct {
	Time     time.Time
	Action   string   // ActionConsent (a write) or ActionWithdraw
	Purposes Purposes // the purposes written; zero for a withdrawal
	Source   string   // "api", "admin", ...
	Version  int64
	UAHash   string // UAHash of the User-Agent; never the raw UA or IP
	// TCF is the IAB TC string written with the consent, if any: the CMP's own record of
	// what the visitor saw and chose, kept as part of the proof.
	TCF string
}

// Store keeps consent states by consent ID, and the receipts that prove them. The memory
// store and the Redis store implement it, so the proxy never knows which one it talks to.
//
// Errors must not contain the consent ID: they end up in logs, and logs carry no IDs.
type Store interface {
	// Get must not retain id (the caller may pass a string that aliases request memory).
	// It is the hit path's lookup: cached where the store has a cache, and bounded by
	// the hit's budget.
	Get(ctx context.Context, id string) (State, bool, error)
	// GetFresh reads id's state past any cache, within the budget of a write: the read
	// before a write (whose version follows it) and the APIs' reads, which must be
	// current and must not fail on a hit-sized budget.
	GetFresh(ctx context.Context, id string) (State, bool, error)
	// Put stores st under id for ttl (positive) AND appends r to id's receipts,
	// atomically: both or neither. The store fills r's Action, Purposes and Version from
	// what it writes, so the trail cannot contradict the state; a zero r.Time means now
	// and an empty r.Source means st.Source.
	Put(ctx context.Context, id string, st State, ttl time.Duration, r Receipt) error
	// Delete withdraws: it removes id's state and appends r (atomically), as an
	// ActionWithdraw with no purposes. It reports true if a state existed. The receipt is
	// appended either way: a withdrawal is worth proving even after the state expired.
	Delete(ctx context.Context, id string, r Receipt) (bool, error)
	// Erase removes id's state and all its receipts (GDPR Art. 17). It reports true if
	// anything existed.
	Erase(ctx context.Context, id string) (bool, error)
	// History returns id's receipts, oldest first (empty, nil error, if none).
	History(ctx context.Context, id string) ([]Receipt, error)
	Ping(ctx context.Context) error
	Close() error
}

// uaHashLen is the length of a UAHash: 16 bytes in hex. Half a SHA-256 is plenty to tell
// browsers apart in an audit, and the short form is easy to read in a receipt.
const uaHashLen = 32

// UAHash returns the hex SHA-256 of a User-Agent, truncated to 16 bytes, for a receipt.
// An empty User-Agent gives "", so that "no UA" reads as such rather than as a hash.
func UAHash(userAgent []byte) string {
	if len(userAgent) == 0 {
		return ""
	}
	sum := sha256.Sum256(userAgent)
	return hex.EncodeToString(sum[:uaHashLen/2])
}

// validUAHash reports whether h has UAHash's shape. Stores reject anything else, so that
// a caller mistake cannot put a raw User-Agent (personal data) in a receipt kept for years.
func validUAHash(h string) bool {
	if h == "" {
		return true
	}
	if len(h) != uaHashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// consentReceipt completes the receipt of a Put (see Store.Put), or says why it cannot
// be stored. The strings are cloned: a store keeps them, and the caller's may alias
// request memory.
func consentReceipt(r Receipt, st *State, now time.Time) (Receipt, error) {
	r.Action, r.Purposes, r.Version, r.TCF = ActionConsent, st.Purposes, st.Version, st.TCF
	if r.Source == "" {
		r.Source = st.Source
	}
	return finishReceipt(r, now)
}

// withdrawReceipt completes the receipt of a Delete (see Store.Delete).
func withdrawReceipt(r Receipt, now time.Time) (Receipt, error) {
	r.Action, r.Purposes, r.TCF = ActionWithdraw, Purposes{}, ""
	return finishReceipt(r, now)
}

func finishReceipt(r Receipt, now time.Time) (Receipt, error) {
	if !validUAHash(r.UAHash) {
		return Receipt{}, errors.New("consent: receipt UAHash is not a UAHash (32 lower-case hex digits): pass UAHash(userAgent), never the raw User-Agent")
	}
	if r.Time.IsZero() {
		// In UTC without the monotonic reading, as the consent API writes it and Redis
		// gives it back: the same instant, and one the memory store packs (packed.go).
		r.Time = now.UTC()
	}
	r.Source, r.UAHash, r.TCF = strings.Clone(r.Source), strings.Clone(r.UAHash), strings.Clone(r.TCF)
	return r, nil
}

// receiptJSON is the JSON view of a Receipt.
type receiptJSON struct {
	Time     string       `json:"time"`
	Action   string       `json:"action"`
	Purposes purposesJSON `json:"purposes"`
	Source   string       `json:"source"`
	Version  int64        `json:"version"`
	UAHash   string       `json:"ua_hash"`
	TCF      string       `json:"tcf,omitempty"`
}

// MarshalReceipts returns the JSON view of a receipt trail, for the admin API:
//
//	[{"time":"…","action":"consent","purposes":{"necessary":"unset",…},"source":"api","version":1,"ua_hash":"…"}]
//
// with every purpose listed and times in RFC 3339, UTC. No receipts is [], not null.
func MarshalReceipts(rs []Receipt) []byte {
	out := make([]receiptJSON, len(rs))
	for i, r := range rs {
		out[i] = receiptJSON{
			Time:     r.Time.UTC().Format(time.RFC3339),
			Action:   r.Action,
			Purposes: purposesJSON(r.Purposes),
			Source:   r.Source,
			Version:  r.Version,
			UAHash:   r.UAHash,
			TCF:      r.TCF,
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		// Only strings, an int and a marshaller that cannot fail: this is a bug.
		panic(fmt.Sprintf("consent: MarshalReceipts: %v", err))
	}
	return b
}
