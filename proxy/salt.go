package proxy

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/consentgate/consentgate/rules"
)

// Sharing the anonymiser's day salt through Redis. Every instance behind one load
// balancer must hash a visitor alike, or counts split; and no one may be able to
// recompute a past day's pseudonyms, so the salt is random and lives in Redis only until
// shortly after its day. The first instance to ask for a day's salt stores its own with
// SET NX; every other one reads it. Each instance keeps the salt in memory for the day,
// so a hit never waits on Redis for it.
//
// When Redis cannot answer as a day starts (or as the process starts), the hasher makes
// a local random salt and counts it (consentgate_anonymise_salt_fallbacks_total): the
// hits are still anonymised, only this instance's pseudonyms differ from the others'
// until Redis answers. The sharer then retries every few seconds, offering the local salt
// as the day's: if no instance stored one, it becomes the shared salt and nothing
// changes; otherwise the instance takes the stored one. Every minute each instance checks
// its salt against Redis the same way, so instances that diverged (an outage, a Redis
// restart that lost the key) converge again within a minute of Redis answering.
// Dropping the hashed fields instead would lose every visitor count for the outage and
// protect no one better: a local salt is as random and as short-lived as the shared one.

const (
	// saltGrace is how long the stored salt outlives its day, for instances whose clock
	// is a little behind; after it the salt is gone from Redis.
	saltGrace = 5 * time.Minute
	// saltLead is how long before midnight the next day's salt is fetched, so that the
	// first hit of the day finds it installed.
	saltLead = 2 * time.Minute
	// saltCheck is how often an instance compares its salt with Redis.
	saltCheck = time.Minute
	// saltRetryMin and saltRetryMax bound the retries while Redis does not answer.
	saltRetryMin = time.Second
	saltRetryMax = 10 * time.Second
)

// saltStore is where instances share the day salt (consent.RedisStore).
type saltStore interface {
	DaySalt(ctx context.Context, day string, candidate []byte, ttl time.Duration) ([]byte, error)
}

type saltSharer struct {
	store saltStore
	h     *rules.Hasher
	now   func() time.Time
	log   *slog.Logger
}

// nextMidnight is the start of the UTC day after t's.
func nextMidnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// sync makes day's salt the shared one: it offers the salt the hasher uses for day (or
// a new random one) and installs whatever Redis holds.
func (s *saltSharer) sync(ctx context.Context, day time.Time) error {
	candidate, _, ok := s.h.Salt(day)
	if !ok {
		rand.Read(candidate[:]) // never fails (crypto/rand crashes the program rather than return short)
	}
	ttl := nextMidnight(day).Add(saltGrace).Sub(s.now())
	salt, err := s.store.DaySalt(ctx, day.UTC().Format(time.DateOnly), candidate[:], ttl)
	if err != nil {
		return err
	}
	if !s.h.SetSalt(day, salt, true) {
		return fmt.Errorf("anonymiser salt of %s not installed: the day is over", day.UTC().Format(time.DateOnly))
	}
	return nil
}

// syncNow syncs today's salt and, shortly before midnight, tomorrow's.
func (s *saltSharer) syncNow(ctx context.Context) error {
	t := s.now()
	if err := s.sync(ctx, t); err != nil {
		return err
	}
	if next := nextMidnight(t); next.Sub(t) <= saltLead {
		return s.sync(ctx, next)
	}
	return nil
}

// run keeps the hasher on the shared salts until ctx ends; err is the outcome of the
// sync made before it started.
func (s *saltSharer) run(ctx context.Context, err error) {
	retry, failing := saltRetryMin, false
	for {
		wait := saltCheck
		if err != nil {
			if !failing {
				s.log.Error("anonymiser salt: could not take the day's salt from Redis; this instance hashes with a salt of its own until it can", "error", err.Error())
				failing = true
			}
			wait, retry = retry, min(2*retry, saltRetryMax)
		} else {
			if failing {
				s.log.Info("anonymiser salt: shared through Redis again")
				failing = false
			}
			retry = saltRetryMin
			t := s.now()
			if lead := nextMidnight(t).Add(-saltLead).Sub(t); lead > 0 && lead < wait {
				wait = lead
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		err = s.syncNow(ctx)
	}
}
