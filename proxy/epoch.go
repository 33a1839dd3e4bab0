package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/consentgate/consentgate/consent"
)

// epochWatch keeps the Redis store's dataset epoch (consent/epoch.go) current: it is read,
// or created, at start, after every health check that succeeds (every 2 s) and before
// every consent API write. Hits read the copy in memory. The write's sync is what makes
// the epoch exact: a Redis that came back empty gets its new epoch before the first
// record lands in it, not up to a health check later, so a snapshot issued for a record
// of the new dataset never counts as older than it (which, were the record then deleted
// through the admin API, would revive its grants).
type epochWatch struct {
	store consent.EpochSyncer
	epoch *consent.Epoch
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex // the watcher and writes sync concurrently
	seen    bool       // an epoch was logged
	last    time.Time  // the epoch logged last
	failing bool       // the watcher's last sync failed
}

func newEpochWatch(c *consent.Cache, now func() time.Time, log *slog.Logger) *epochWatch {
	return &epochWatch{store: c, epoch: c.DatasetEpoch(), now: now, log: log}
}

// sync is the watcher's: a failure is logged once per streak (Redis answers pings, yet
// the epoch cannot be read: an ACL without the key, a value not of ours), and the epoch
// read last stays in force.
func (w *epochWatch) sync(ctx context.Context) {
	err := w.store.SyncEpoch(ctx, w.now())
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil && !w.failing:
		w.log.Error("consent dataset epoch: cannot read it; the one read last stays in force", "error", err.Error())
	case err == nil && w.failing:
		w.log.Info("consent dataset epoch readable again")
	}
	w.failing = err != nil
	w.noteLocked()
}

// ensure is a consent write's, and the start's: it reports, without logging, whether the
// epoch key could be made sure of; a write fails (503, nothing saved) when it could not.
// Redis being down fails the write anyway, and the watcher logs that. A key whose value is
// not believed still exists, which is what a write needs: the watcher logs it, and the
// write goes on.
func (w *epochWatch) ensure(ctx context.Context) error {
	if err := w.store.SyncEpoch(ctx, w.now()); err != nil {
		if errors.Is(err, consent.ErrEpochValue) {
			return nil
		}
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.noteLocked()
	return nil
}

// noteLocked logs the epoch when it is first known and whenever it moves: a move is the
// store's records lost, which operations must hear of.
func (w *epochWatch) noteLocked() {
	t, known := w.epoch.Time()
	switch {
	case !known || w.seen && t.Equal(w.last):
		return
	case !w.seen && t.IsZero():
		w.log.Info("consent dataset epoch: none stored, and none known to this process (a first start, an upgrade, or every instance restarted with Redis): " +
			"its beginning is unknown, so no snapshot counts as older than the dataset")
	case !w.seen:
		w.log.Info("consent dataset epoch", "epoch", t.Format(time.RFC3339))
	default:
		w.log.Warn("consent dataset epoch moved: the store lost its records (Redis restarted without persistence, or was flushed); "+
			"a cookie's snapshot issued before the new epoch stands in for its lost record as consent.snapshot.after_data_loss says",
			"epoch", t.Format(time.RFC3339), "previous", epochText(w.last))
	}
	w.seen, w.last = true, t
}

func epochText(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.Format(time.RFC3339)
}

// storeEpoch is the epoch of a store given in Options (tests): its own if it keeps one,
// else one that stays unknown, so that no snapshot counts as older than its dataset.
func storeEpoch(st consent.Store) *consent.Epoch {
	if es, ok := st.(consent.EpochStore); ok {
		return es.DatasetEpoch()
	}
	return new(consent.Epoch)
}

// ensureEpoch makes sure of the dataset epoch before a consent API write (epochWatch).
func (c *consentStore) ensureEpoch() error {
	if c.syncEpoch == nil {
		return nil
	}
	return c.syncEpoch(storeCtx)
}
