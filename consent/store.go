package consent

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by a store used after Close, so that a late request during drain
// fails closed instead of touching released state.
var ErrClosed = errors.New("consent: store is closed")

// Store keeps consent states by consent ID. The Redis store of a later issue implements
// the same interface, so the proxy never knows which one it talks to.
//
// Errors must not contain the consent ID: they end up in logs, and logs carry no IDs.
type Store interface {
	// Get must not retain id (the caller may pass a string that aliases request memory).
	Get(ctx context.Context, id string) (State, bool, error)
	// Put stores st under id for ttl, which must be positive.
	Put(ctx context.Context, id string, st State, ttl time.Duration) error
	// Delete removes id; it reports true if something was deleted.
	Delete(ctx context.Context, id string) (bool, error)
	Ping(ctx context.Context) error
	Close() error
}
