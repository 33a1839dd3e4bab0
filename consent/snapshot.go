package consent

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The consent cookie carries, besides the ID, a snapshot of the visitor's choices signed
// by the proxy: "<id>.<snapshot>". The store stays the source of truth; the snapshot
// decides only where the store has no record for the ID (evicted, flushed, expired
// early) or cannot answer, so that a refusal is never lost and a consent survives an
// outage. README "How it decides" says which wins when both exist.
//
// Wire format, version 1: 30 bytes, base64url without padding (40 characters):
//
//	0      format version (1)
//	1..3   key ID: the first 3 bytes of HMAC-SHA256(key, "consentgate snapshot key id")
//	4      purposes, 2 bits each in Purpose order from the low bits (0 unset, 1 granted, 2 denied)
//	5      flags: bit 0 = the state held a TC string, which the snapshot does not carry
//	6..9   the state's version, big-endian, saturated at 2^32-1
//	10..13 issue time, Unix seconds, big-endian
//	14..29 HMAC-SHA256(key, id || bytes 0..13), first 16 bytes
//
// The MAC covers the ID, so a snapshot cannot be moved to another ID.
const (
	snapshotVersion = 1
	snapshotPayload = 14
	snapshotMAC     = 16
	snapshotBytes   = snapshotPayload + snapshotMAC
	// SnapshotLen is the length of an encoded snapshot, and CookieLen that of a whole
	// cookie value "<id>.<snapshot>".
	SnapshotLen = (snapshotBytes*8 + 5) / 6
	CookieLen   = idLen + 1 + SnapshotLen
	keyIDLen    = 3
	// snapshotSkew is how far in the future an issue time may lie: instances' clocks
	// differ a little, never by minutes.
	snapshotSkew = 5 * time.Minute
	flagTCF      = 1
)

// Snapshot errors; Verify wraps none of them, so a caller counts by comparing.
var (
	ErrSnapshotMalformed  = errors.New("consent: snapshot malformed")
	ErrSnapshotUnknownKey = errors.New("consent: snapshot signed with a key not configured")
	ErrSnapshotForged     = errors.New("consent: snapshot signature does not match")
	ErrSnapshotExpired    = errors.New("consent: snapshot older than the consent TTL")
	ErrSnapshotFuture     = errors.New("consent: snapshot issued in the future")
)

// Snapshot is the signed copy of a consent state that the cookie carries.
type Snapshot struct {
	Purposes Purposes
	Version  int64
	Issued   time.Time // whole seconds
	// TCF says the state held a TC string. The snapshot does not carry it (it may be
	// kilobytes), so a hit decided by the snapshot cannot read the vendor-level answers
	// it gave: the caller treats what it would decide as unknown.
	TCF bool
}

// SnapshotOf is the snapshot of st issued at now.
func SnapshotOf(st *State, now time.Time) Snapshot {
	return Snapshot{Purposes: st.Purposes, Version: st.Version, Issued: now.Truncate(time.Second), TCF: st.TCF != ""}
}

// State is the consent state the snapshot stands for: its purposes and version, with
// the issue time as its update time and source "snapshot". It carries no TC string.
func (s *Snapshot) State() State {
	return State{Purposes: s.Purposes, Version: s.Version, Source: "snapshot", Updated: s.Issued}
}

// SnapshotKeys signs with the first key and verifies with any. It is immutable and
// safe for concurrent use.
type SnapshotKeys struct {
	keys []snapshotKey
}

type snapshotKey struct {
	id         [keyIDLen]byte
	ipad, opad [sha256.BlockSize]byte
}

// NewSnapshotKeys builds the keys from secrets, the first of which signs. At least one
// secret is needed; two that share a key ID (a 1 in 16 million chance, or the same
// secret twice) are an error, since a snapshot must name exactly one key.
func NewSnapshotKeys(secrets []string) (*SnapshotKeys, error) {
	if len(secrets) == 0 {
		return nil, errors.New("consent: snapshot keys: none given")
	}
	k := &SnapshotKeys{keys: make([]snapshotKey, len(secrets))}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("consent: snapshot keys: key %d is empty", i)
		}
		k.keys[i] = newSnapshotKey([]byte(s))
		for j := range i {
			if k.keys[j].id == k.keys[i].id {
				return nil, fmt.Errorf("consent: snapshot keys: keys %d and %d have the same key ID (the same secret twice?)", j, i)
			}
		}
	}
	return k, nil
}

// RandomSnapshotKeys is one random key: a process with no configured key signs with it.
// Nothing else can verify its snapshots, and they die with the process.
func RandomSnapshotKeys() (*SnapshotKeys, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("consent: random snapshot key: %w", err)
	}
	return &SnapshotKeys{keys: []snapshotKey{newSnapshotKey(b[:])}}, nil
}

func newSnapshotKey(secret []byte) snapshotKey {
	var k snapshotKey
	key := secret
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	for i := range sha256.BlockSize {
		var b byte
		if i < len(key) {
			b = key[i]
		}
		k.ipad[i], k.opad[i] = b^0x36, b^0x5c
	}
	const label = "consentgate snapshot key id"
	var buf [sha256.BlockSize + len(label)]byte
	sum := k.hmac(buf[:], []byte(label))
	copy(k.id[:], sum[:])
	return k
}

// hmac computes HMAC-SHA256 over the concatenation of parts in scratch, a buffer of at
// least BlockSize + the parts' length, so that nothing is allocated (crypto/hmac's
// hash.Hash would be, per call or per goroutine).
func (k *snapshotKey) hmac(scratch []byte, parts ...[]byte) [sha256.Size]byte {
	n := copy(scratch, k.ipad[:])
	for _, p := range parts {
		n += copy(scratch[n:], p)
	}
	inner := sha256.Sum256(scratch[:n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

// mac is the truncated MAC of a payload for id.
func (k *snapshotKey) mac(id []byte, payload *[snapshotPayload]byte) [snapshotMAC]byte {
	var scratch [sha256.BlockSize + idLen + snapshotPayload]byte
	sum := k.hmac(scratch[:], id, payload[:])
	var m [snapshotMAC]byte
	copy(m[:], sum[:])
	return m
}

// Append appends the encoded snapshot of s for id, signed with the first key. id must
// be a ValidID.
func (k *SnapshotKeys) Append(dst []byte, id string, s Snapshot) []byte {
	key := &k.keys[0]
	var raw [snapshotBytes]byte
	p := (*[snapshotPayload]byte)(raw[:snapshotPayload])
	p[0] = snapshotVersion
	copy(p[1:4], key.id[:])
	for i, st := range s.Purposes {
		if st >= NumStatuses {
			st = Denied
		}
		p[4] |= byte(st) << (2 * i)
	}
	if s.TCF {
		p[5] |= flagTCF
	}
	binary.BigEndian.PutUint32(p[6:10], uint32(min(max(s.Version, 0), math.MaxUint32)))
	binary.BigEndian.PutUint32(p[10:14], uint32(min(max(s.Issued.Unix(), 0), math.MaxUint32)))
	m := key.mac([]byte(id), p)
	copy(raw[snapshotPayload:], m[:])
	return base64.RawURLEncoding.AppendEncode(dst, raw[:])
}

// Cookie is the whole consent cookie value for id: "<id>.<snapshot>".
func (k *SnapshotKeys) Cookie(id string, s Snapshot) string {
	b := make([]byte, 0, CookieLen)
	b = append(b, id...)
	b = append(b, '.')
	return string(k.Append(b, id, s))
}

// Verify decodes and checks the snapshot enc that came with id: the format, the key, the
// signature, and that it was issued no longer than ttl ago (a consent older than its TTL
// is gone) and not in the future. It does not allocate: it runs on the hit path when the
// store cannot decide.
func (k *SnapshotKeys) Verify(id, enc []byte, now time.Time, ttl time.Duration) (Snapshot, error) {
	var raw [snapshotBytes]byte
	if len(enc) != SnapshotLen || len(id) != idLen {
		return Snapshot{}, ErrSnapshotMalformed
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], enc); err != nil || n != snapshotBytes {
		return Snapshot{}, ErrSnapshotMalformed
	}
	p := (*[snapshotPayload]byte)(raw[:snapshotPayload])
	if p[0] != snapshotVersion {
		return Snapshot{}, ErrSnapshotMalformed
	}
	var key *snapshotKey
	for i := range k.keys {
		if k.keys[i].id == [keyIDLen]byte(p[1:4]) {
			key = &k.keys[i]
			break
		}
	}
	if key == nil {
		return Snapshot{}, ErrSnapshotUnknownKey
	}
	m := key.mac(id, p)
	if subtle.ConstantTimeCompare(m[:], raw[snapshotPayload:]) != 1 {
		return Snapshot{}, ErrSnapshotForged
	}
	// Signed, so whatever is wrong below is a bug of ours: refused all the same.
	if p[5]&^flagTCF != 0 {
		return Snapshot{}, ErrSnapshotMalformed
	}
	var s Snapshot
	for i := range s.Purposes {
		st := Status(p[4] >> (2 * i) & 3)
		if st >= NumStatuses {
			return Snapshot{}, ErrSnapshotMalformed
		}
		s.Purposes[i] = st
	}
	s.TCF = p[5]&flagTCF != 0
	s.Version = int64(binary.BigEndian.Uint32(p[6:10]))
	issued := int64(binary.BigEndian.Uint32(p[10:14]))
	s.Issued = time.Unix(issued, 0).UTC()
	switch sec := now.Unix(); {
	case issued > sec+int64(snapshotSkew/time.Second):
		return Snapshot{}, ErrSnapshotFuture
	case sec-issued > int64(ttl/time.Second):
		return Snapshot{}, ErrSnapshotExpired
	}
	return s, nil
}

// NewerThan reports, without checking the signature, whether the snapshot enc claims to
// be newer than st: a higher version, issued no earlier than the second st was updated in
// (when st says when). The issue time has whole seconds, so within st's second the order
// is unknown, and the refusal is kept: a visitor who consents and refuses within a second,
// the refusal lost in a failover, must not be taken for a consent. Only then does a
// caller verify it (Verify) to keep its refusals: the common case, a snapshot of the
// stored state itself, costs a decode and no HMAC. It does not allocate.
func NewerThan(enc []byte, st *State) bool {
	var raw [snapshotBytes]byte
	if len(enc) != SnapshotLen {
		return false
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], enc); err != nil || n != snapshotBytes || raw[0] != snapshotVersion {
		return false
	}
	version := int64(binary.BigEndian.Uint32(raw[6:10]))
	issued := int64(binary.BigEndian.Uint32(raw[10:14]))
	return version > st.Version && (st.Updated.IsZero() || issued >= st.Updated.Unix())
}

// SplitCookie splits a consent cookie value into the ID and the snapshot: "<id>" (a
// cookie from before snapshots, or from a backend that set the ID itself) or
// "<id>.<snapshot>". Neither part is checked; ok is false when the value cannot be either
// shape (the ID is then not to be used). It does not allocate.
func SplitCookie(v []byte) (id, snap []byte, ok bool) {
	switch {
	case len(v) == idLen:
		return v, nil, true
	case len(v) > idLen && v[idLen] == '.':
		return v[:idLen], v[idLen+1:], true
	}
	return nil, nil, false
}
