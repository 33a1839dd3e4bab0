package consent

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

const (
	idBytes = 16 // 128 bits: unguessable, and collisions are out of reach
	idLen   = 22 // base64url of 16 bytes without padding
)

// NewID returns a fresh consent ID: 128 random bits, base64url without padding.
func NewID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("consent: new ID: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// idChar classifies bytes: 1 for the base64url alphabet, and 2 on top of that for the
// characters that may end an ID.
var idChar = func() (t [256]uint8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = 1
		// 22 characters carry 132 bits; the last character holds the final 2 bits of the ID
		// and 4 zero bits, so only values 0, 16, 32 and 48 can end an ID NewID made.
		if i%16 == 0 {
			t[alphabet[i]] |= 2
		}
	}
	return t
}()

// ValidID reports whether id has exactly the shape NewID makes, so that a garbage or
// forged cookie is rejected before it costs a store lookup. It does not allocate.
func ValidID(id []byte) bool {
	if len(id) != idLen {
		return false
	}
	for _, c := range id[:idLen-1] {
		if idChar[c] == 0 {
			return false
		}
	}
	return idChar[id[idLen-1]]&2 != 0
}
