package rules

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
)

// HashLen is the length in bytes of the hex text AppendHash writes: 16 bytes of
// HMAC-SHA256, enough to count visitors without collisions, short enough to fit vendor
// ID fields (Matomo reads the first 16 hex characters of _id).
const HashLen = 32

// SaltLen is the length of a day's salt: 32 bytes from crypto/rand.
const SaltLen = 32

// hashDomain starts every key derivation, so that these HMACs can never collide with
// another use of the same salt.
const hashDomain = "consentgate pseudonym v2\x00"

// Hasher replaces identifiers by pseudonyms that link one visitor's hits within one UTC
// day, for one vendor and one of its properties, and never across days, vendors or
// properties: the vendor can count visitors, not follow them.
//
//	pseudonym = hex(HMAC-SHA256(K, value)[:16])
//	K         = HMAC-SHA256(salt of the UTC day, scope ‖ len(property) ‖ property ‖ len(site) ‖ site)
//	scope     = SHA-256(hashDomain ‖ SHA-256(anonymise.secret) ‖ len(vendor) ‖ vendor)
//	            (lengths: 2 bytes and 1 byte, big-endian)
//
// The site is the host the hit was sent to (the anonymiser's Hit.Site): the property is
// the hit's word, which the vendor's own tag writes, and a tag that named one property on
// two sites would otherwise join their visitors. scope is a digest so that K's HMAC
// takes few SHA-256 blocks (two, for a GA4 property ID and a short host).
//
// The day's salt is random (crypto/rand), never derived: once it is gone (the day is
// over, the process has rolled on, the shared copy in Redis has expired) no one, not
// even the holder of the config, can recompute that day's pseudonyms. It is made per
// process, or shared by every instance through Redis (proxy): Share, SetSalt. The
// secret only binds the pseudonyms to this deployment: a reader of Redis who learns a
// day's salt still cannot compute them without it.
//
// Per hit, Key derives K once (one HMAC) and each identifier costs one more HMAC on stack
// buffers: no allocation, no lock, no shared state written. A Hasher is a view of
// salts shared with the Hashers WithSecret made from it, so a reload keeps the salts.
type Hasher struct {
	salts  *salts
	pepper [sha256.Size]byte // SHA-256 of anonymise.secret
}

// salts are the day salts of one process.
type salts struct {
	now func() time.Time
	// cur is the salt in use; next one installed ahead of its day by a sharer, so that
	// the first hit of a day finds it ready.
	cur, next atomic.Pointer[daySalt]
	mu        sync.Mutex // the day change and SetSalt; never the fast path
	// onLocal, when set (Share), is told each time a salt had to be made locally because
	// the sharer had not installed one for the day.
	onLocal func()
}

// daySalt is the salt of one UTC day, with the HMAC inner and outer keys precomputed
// so that a hash is two SHA-256 sums over stack buffers: no shared state between
// goroutines, no pool (which the race detector deliberately makes leaky), no allocation.
type daySalt struct {
	day        int // yyyymmdd
	salt       [SaltLen]byte
	shared     bool
	ipad, opad [sha256.BlockSize]byte
}

func newDaySalt(day int, salt []byte, shared bool) *daySalt {
	d := &daySalt{day: day, shared: shared}
	copy(d.salt[:], salt)
	padKey(&d.ipad, &d.opad, d.salt[:])
	return d
}

// padKey fills the HMAC inner and outer padded keys of key (RFC 2104); key is at most
// one block (a salt, a derived key), so it is used zero-padded as is.
func padKey(ipad, opad *[sha256.BlockSize]byte, key []byte) {
	for i := range ipad {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		ipad[i], opad[i] = k^0x36, k^0x5c
	}
}

// dayOf is t's UTC date as yyyymmdd.
func dayOf(t time.Time) int {
	y, m, d := t.UTC().Date()
	return y*10000 + int(m)*100 + d
}

// NewHasher returns a Hasher whose salts are random per UTC day of now (nil:
// time.Now), made on the first hash of each day, with no secret. Hashers made from it by
// WithSecret share its salts.
func NewHasher(now func() time.Time) *Hasher {
	if now == nil {
		now = time.Now
	}
	return &Hasher{salts: &salts{now: now}, pepper: sha256.Sum256(nil)}
}

// WithSecret returns a Hasher on h's salts keyed by secret (anonymise.secret; empty is
// allowed and keys nothing beyond the salt).
func (h *Hasher) WithSecret(secret []byte) *Hasher {
	return &Hasher{salts: h.salts, pepper: sha256.Sum256(secret)}
}

// Share says that a sharer installs the salts (SetSalt): a day whose first hash comes
// before the sharer installed its salt then gets a local random salt, and onLocal is
// called (once per such salt, off the fast path). Call it before hashing.
func (h *Hasher) Share(onLocal func()) {
	h.salts.mu.Lock()
	defer h.salts.mu.Unlock()
	h.salts.onLocal = onLocal
}

// today returns the salt of the current UTC day (or of a later day already rolled to,
// see roll): one clock read and one atomic load, unless the day has changed.
func (s *salts) today() *daySalt {
	day := dayOf(s.now())
	if c := s.cur.Load(); c != nil && c.day >= day {
		return c
	}
	return s.roll(day)
}

// roll moves to day: to the salt a sharer installed ahead for it, or to a new random
// one. A day once left is never returned to: an earlier day (a clock read just before
// another goroutine rolled over, or a clock set back) keeps the current salt, since the
// old one is gone for good.
func (s *salts) roll(day int) *daySalt {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur.Load(); c != nil && c.day >= day {
		return c
	}
	if n := s.next.Load(); n != nil && n.day == day {
		s.cur.Store(n)
		s.next.Store(nil)
		return n
	}
	var salt [SaltLen]byte
	rand.Read(salt[:]) // never fails (crypto/rand crashes the program rather than return short)
	d := newDaySalt(day, salt[:], false)
	s.cur.Store(d)
	if s.onLocal != nil {
		s.onLocal()
	}
	return d
}

// SetSalt installs salt (SaltLen bytes) as the salt of day's UTC date, for today or a
// day ahead; shared says it is the copy every instance uses. It reports whether it was
// installed: a past day is refused (its salt must stay gone), so is a day before the
// one in use, and so is a salt of the wrong length. Replacing today's salt changes today's pseudonyms from then on; the
// sharer does it only to converge on the shared salt.
func (h *Hasher) SetSalt(day time.Time, salt []byte, shared bool) bool {
	if len(salt) != SaltLen {
		return false
	}
	s := h.salts
	d, today := dayOf(day), dayOf(s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cur.Load()
	switch {
	case d < today || c != nil && d < c.day:
		return false
	case d == today:
		if c != nil && c.day == d && c.salt == [SaltLen]byte(salt) && c.shared == shared {
			return true
		}
		s.cur.Store(newDaySalt(d, salt, shared))
	default:
		s.next.Store(newDaySalt(d, salt, shared))
	}
	return true
}

// Salt returns the salt in use for day's UTC date (today's, or one installed ahead),
// and whether it is the shared one. ok is false when there is none yet.
func (h *Hasher) Salt(day time.Time) (salt [SaltLen]byte, shared, ok bool) {
	d := dayOf(day)
	if c := h.salts.cur.Load(); c != nil && c.day == d {
		return c.salt, c.shared, true
	}
	if c := h.salts.next.Load(); c != nil && c.day == d {
		return c.salt, c.shared, true
	}
	return salt, false, false
}

// HashKey is the key of one hit's pseudonyms (K above): built by Key per hit, on the
// caller's stack. The zero HashKey hashes nothing: AppendHash leaves the value out, so
// a path that forgot Key fails closed instead of hashing with a known key.
type HashKey struct {
	ready      bool
	ipad, opad [sha256.BlockSize]byte
}

// Scope returns the fixed part of the key derivation for vendor under h's secret:
// NewAnonymiser computes it once per endpoint.
func (h *Hasher) Scope(vendor string) []byte {
	vendor = vendor[:min(len(vendor), 255)]
	d := sha256.New()
	d.Write([]byte(hashDomain))
	d.Write(h.pepper[:])
	d.Write([]byte{byte(len(vendor))})
	d.Write([]byte(vendor))
	return d.Sum(nil)
}

// MaxPropertyLen bounds a property ID and a site in the key derivation (their lengths
// take 2 bytes); the anonymiser refuses longer ones before that.
const MaxPropertyLen = 1<<16 - 1

// Key derives the key of one hit's pseudonyms from today's salt, scope (Scope), the
// hit's property ID (empty when the hit names none) and its site (the host it was sent
// to). A property or site longer than MaxPropertyLen gives the zero HashKey.
func (h *Hasher) Key(scope, property, site []byte) (k HashKey) {
	if len(property) > MaxPropertyLen || len(site) > MaxPropertyLen {
		return k
	}
	d := h.salts.today()
	n := [4]byte{byte(len(property) >> 8), byte(len(property)), byte(len(site) >> 8), byte(len(site))}
	var sum [sha256.Size]byte
	in := sha256.New()
	in.Write(d.ipad[:])
	in.Write(scope)
	in.Write(n[:2])
	in.Write(property)
	in.Write(n[2:])
	in.Write(site)
	in.Sum(sum[:0])
	out := sha256.New()
	out.Write(d.opad[:])
	out.Write(sum[:])
	out.Sum(sum[:0])
	padKey(&k.ipad, &k.opad, sum[:])
	k.ready = true
	return k
}

// AppendHash appends to dst the pseudonym of value as HashLen lowercase hex characters.
// An empty value stays empty: there is nothing to protect and "no ID" keeps its meaning.
// value may live in dst's spare capacity: it is fully read before dst is written.
func (k *HashKey) AppendHash(dst, value []byte) []byte {
	if len(value) == 0 || !k.ready {
		return dst
	}
	// HMAC(k, m) = H(k^opad || H(k^ipad || m)), RFC 2104, with the padded keys ready.
	var sum [sha256.Size]byte
	in := sha256.New()
	in.Write(k.ipad[:])
	in.Write(value)
	in.Sum(sum[:0])
	out := sha256.New()
	out.Write(k.opad[:])
	out.Write(sum[:])
	out.Sum(sum[:0])
	return hex.AppendEncode(dst, sum[:HashLen/2])
}
