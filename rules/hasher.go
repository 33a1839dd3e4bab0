package rules

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// HashLen is the length in bytes of the hex text AppendHash writes: 16 bytes of
// HMAC-SHA256, enough to count visitors without collisions, short enough to fit vendor
// ID fields (Matomo reads the first 16 hex characters of _id).
const HashLen = 32

// Hasher replaces identifiers by HMAC-SHA256(daySalt, value), where daySalt =
// HMAC-SHA256(secret, UTC date "2006-01-02"). A hashed ID therefore links hits within
// one UTC day and never across days: the vendor can count visitors, not follow them.
// The salt is derived once per day and cached; per hit there is one HMAC, no allocation.
type Hasher struct {
	secret []byte
	now    func() time.Time
	cur    atomic.Pointer[hashDay]
}

// hashDay is the salt of one UTC day, with the HMAC inner and outer keys precomputed
// so that a hash is two SHA-256 sums over stack buffers: no shared state between
// goroutines, no pool (which the race detector deliberately makes leaky), no allocation.
type hashDay struct {
	key        int // yyyymmdd
	salt       []byte
	ipad, opad [sha256.BlockSize]byte
}

// NewHasher returns a Hasher keyed by secret. An empty secret is replaced by 32 random
// bytes: hashes then differ per process, which is safe but splits counts across
// instances behind one load balancer. now defaults to time.Now.
func NewHasher(secret []byte, now func() time.Time) *Hasher {
	h := &Hasher{now: now}
	if len(secret) == 0 {
		h.secret = make([]byte, 32)
		rand.Read(h.secret) // never fails (crypto/rand crashes the program rather than return short)
	} else {
		h.secret = append([]byte(nil), secret...)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// day returns the salt state of the current UTC day, deriving it on the first call of
// a new day. Two goroutines may race to derive it; both derive the same salt.
func (h *Hasher) day() *hashDay {
	t := h.now().UTC()
	y, m, d := t.Date()
	key := y*10000 + int(m)*100 + d
	if c := h.cur.Load(); c != nil && c.key == key {
		return c
	}
	var buf [len("2006-01-02")]byte
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(t.AppendFormat(buf[:0], "2006-01-02"))
	nd := &hashDay{key: key, salt: mac.Sum(nil)}
	for i := range nd.ipad { // the salt (32 bytes) is shorter than a block: zero-padded key
		var k byte
		if i < len(nd.salt) {
			k = nd.salt[i]
		}
		nd.ipad[i], nd.opad[i] = k^0x36, k^0x5c
	}
	h.cur.Store(nd)
	return nd
}

// AppendHash appends to dst the hash of value as HashLen lowercase hex characters. An
// empty value stays empty: there is nothing to protect and "no ID" keeps its meaning.
// value may live in dst's spare capacity: it is fully read before dst is written.
func (h *Hasher) AppendHash(dst, value []byte) []byte {
	if len(value) == 0 {
		return dst
	}
	d := h.day()
	// HMAC(k, m) = H(k^opad || H(k^ipad || m)), RFC 2104, with the padded keys ready.
	var sum [sha256.Size]byte
	in := sha256.New()
	in.Write(d.ipad[:])
	in.Write(value)
	in.Sum(sum[:0])
	out := sha256.New()
	out.Write(d.opad[:])
	out.Write(sum[:])
	out.Sum(sum[:0])
	return hex.AppendEncode(dst, sum[:HashLen/2])
}
