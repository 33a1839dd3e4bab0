package proxy

import (
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/telemetry"
)

// How the signed snapshot in the consent cookie (consent/snapshot.go) takes part in a
// hit's decision. The store is the source of truth and decides whenever it has a record:
// it holds the latest write, and every write through the consent API rewrites the
// snapshot with it. The snapshot stands in only where the store cannot say:
//
//   - no record, and the snapshot predates the store's dataset (consent/epoch.go: Redis
//     restarted without persistence, or was flushed, since it was issued): its record
//     went with the old dataset, so the snapshot decides in full, grants included, as
//     when the store does not answer (consent.snapshot.after_data_loss: restore). The
//     cost: a withdrawal or erasure made before the loss went with it too.
//   - no record otherwise (evicted under the memory store's bounds, expired early,
//     deleted in this dataset): the snapshot's refusals apply, never its grants. A record
//     is gone when the consent was withdrawn or erased through the admin API or by the
//     site's backend, which the cookie cannot know of; a refusal kept is safe, a grant
//     revived is not.
//   - the store did not answer (Redis down, over its budget): the snapshot decides in
//     full, grants included, so consenting visitors keep their choice through an outage.
//     (A withdrawal made through the admin API just before the outage is then not seen
//     until Redis answers again: the one case a signed snapshot can be staler than the
//     store, bounded by the outage.)
//   - a record older than the snapshot (a higher version, issued in or after the second
//     of the record's update: a write Redis acknowledged and then lost in a failover; within
//     that second the order is unknown, and the refusal is kept): the store decides,
//     and the snapshot's refusals apply on top. The most protective wins, as with every
//     signal.
//
// A snapshot that decides in full cannot give the vendor-level answers of a TC string the
// state held (it does not carry it): those purposes count as no consent (snapTCF).
// A snapshot that does not verify (malformed, unknown key, forged, expired, issued in
// the future) is counted and ignored: the hit is decided as it would be without it.
type snapshotHow uint8

const (
	snapshotNone    snapshotHow = iota
	snapshotDecided             // the store did not answer
	snapshotLost                // no record, and the snapshot predates the dataset: it decided
	snapshotRefused             // no record, or an older one: its refusals applied
)

// verifySnapshot checks the snapshot that came with id, counting a rejection.
func (s *Server) verifySnapshot(rt *runtime, h *hit, id, snap []byte) (consent.Snapshot, bool) {
	if len(snap) == 0 {
		return consent.Snapshot{}, false
	}
	sn, err := rt.snap.Verify(id, snap, s.now(), rt.Config.Consent.TTL)
	if err != nil {
		if h == nil || !h.explain {
			s.metrics.SnapshotRejected(snapshotReject(err))
		}
		return consent.Snapshot{}, false
	}
	return sn, true
}

func snapshotReject(err error) telemetry.SnapshotReject {
	switch err {
	case consent.ErrSnapshotUnknownKey:
		return telemetry.RejectUnknownKey
	case consent.ErrSnapshotForged:
		return telemetry.RejectForged
	case consent.ErrSnapshotExpired:
		return telemetry.RejectExpired
	case consent.ErrSnapshotFuture:
		return telemetry.RejectFuture
	}
	return telemetry.RejectMalformed
}

// snapshotDecides lets a valid snapshot decide when the store did not answer.
func (s *Server) snapshotDecides(rt *runtime, h *hit, id, snap []byte) bool {
	sn, ok := s.verifySnapshot(rt, h, id, snap)
	if !ok {
		return false
	}
	s.decideBy(h, &sn, snapshotDecided, telemetry.SnapshotStoreError)
	return true
}

// decideBy lets a verified snapshot decide in full.
func (s *Server) decideBy(h *hit, sn *consent.Snapshot, how snapshotHow, u telemetry.SnapshotUse) {
	h.eff = consent.FromSnapshot(sn)
	h.snapshot, h.snapTCF = how, sn.TCF
	s.countSnapshot(h, u)
}

// snapshotNoRecord stands a valid snapshot in for a record the store does not have: in
// full if the record went with an older dataset, else by its refusals only.
func (s *Server) snapshotNoRecord(rt *runtime, h *hit, id, snap []byte) {
	sn, ok := s.verifySnapshot(rt, h, id, snap)
	switch {
	case !ok:
	case rt.restoreLost && s.store.epoch.Predates(sn.Issued):
		s.decideBy(h, &sn, snapshotLost, telemetry.SnapshotDatasetLost)
	case h.eff.DenyFrom(&sn):
		h.snapshot = snapshotRefused
		s.countSnapshot(h, telemetry.SnapshotNoRecord)
	}
}

// snapshotNewer keeps the refusals of a valid snapshot newer than the stored state. The
// common case, a snapshot of the stored state, costs a decode and no HMAC.
func (s *Server) snapshotNewer(rt *runtime, h *hit, id, snap []byte) {
	if !consent.NewerThan(snap, &h.state) {
		return
	}
	if sn, ok := s.verifySnapshot(rt, h, id, snap); ok && h.eff.DenyFrom(&sn) {
		h.snapshot = snapshotRefused
		s.countSnapshot(h, telemetry.SnapshotNewer)
	}
}

func (s *Server) countSnapshot(h *hit, u telemetry.SnapshotUse) {
	if !h.explain {
		s.metrics.SnapshotUsed(u)
	}
}
