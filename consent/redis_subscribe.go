// The invalidation channel's subscriber, which keeps every instance's cache honest.

package consent

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Subscription tuning: how long a quiet subscription waits before it pings, and the
// bounds of the backoff between attempts while Redis is away.
const (
	subscribeHealthEvery = 15 * time.Second
	subscribeMinBackoff  = 50 * time.Millisecond
	subscribeMaxBackoff  = 2 * time.Second
)

// Subscribe listens on the invalidation channel until ctx is done or the store is
// closed, calling onInvalidate(id) for each written ID and onReset() whenever messages
// may have been lost: on every (re)subscription, since nothing is replayed for the time
// it was away, and once at the start of each outage. A quiet connection is pinged, and
// one that does not answer is replaced, so a half-open TCP connection cannot silently
// stop invalidations. The callbacks run on Subscribe's goroutine.
func (r *RedisStore) Subscribe(ctx context.Context, onInvalidate func(id string), onReset func()) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	l := listener{r: r, onInvalidate: onInvalidate, onReset: onReset, backoff: subscribeMinBackoff}
	for {
		l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if !l.outage {
			l.outage = true
			onReset()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.backoff):
		}
		l.backoff = min(2*l.backoff, subscribeMaxBackoff)
	}
}

type listener struct {
	r            *RedisStore
	onInvalidate func(string)
	onReset      func()
	backoff      time.Duration
	outage       bool // onReset was called for the current outage
}

// listen runs one PubSub until it fails or ctx is done.
func (l *listener) listen(ctx context.Context) {
	ps := l.r.client.Subscribe(ctx, l.r.channel)
	// Receive blocks in a socket read that ctx cannot interrupt; closing the PubSub can.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stop() {
			_ = ps.Close()
		}
	}()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, l.r.healthEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || pinged {
				return // broken, or silent even to a ping: start over
			}
			if ps.Ping(ctx) != nil {
				return
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				l.backoff, l.outage = subscribeMinBackoff, false
				l.onReset()
			}
		case *redis.Message:
			l.onInvalidate(m.Payload)
		}
	}
}
