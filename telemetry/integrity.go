package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/consentgate/consentgate/internal/enum"
)

// The counters of consent integrity (issue 11): the signed consent snapshot, the consent
// API's origin checks and rate limits, the IDs it issues, and what the consent store
// weighs. Every series is exported from zero, so each can be alerted on before it moves.

// SnapshotUse is when the signed snapshot in the consent cookie decided, or helped decide.
type SnapshotUse uint8

const (
	SnapshotNoRecord    SnapshotUse = iota // the store had no record: its refusals applied
	SnapshotStoreError                     // the store could not answer: it decided in full
	SnapshotNewer                          // newer than the stored state: its refusals applied on top
	SnapshotIDProven                       // a write kept the presented ID the store did not know
	SnapshotDatasetLost                    // no record, and the snapshot predates the store's dataset: it decided in full
	numSnapshotUses
)

// SnapshotReject is why a snapshot was not believed.
type SnapshotReject uint8

const (
	RejectMalformed  SnapshotReject = iota // not a snapshot of a format we write
	RejectUnknownKey                       // signed with a key not (or no longer) configured
	RejectForged                           // the signature does not match
	RejectExpired                          // older than the consent TTL
	RejectFuture                           // issued in the future
	numSnapshotRejects
)

// Limit names a rate limit.
type Limit uint8

const (
	LimitConsentWritesIP Limit = iota
	LimitConsentWritesNet
	LimitNewIDsIP
	LimitNewIDsNet
	LimitHitsIP
	LimitHitsNet
	NumLimits
)

// WriteRefusal is why a consent API write was refused as cross-site (403).
type WriteRefusal uint8

const (
	RefusedOrigin     WriteRefusal = iota // an Origin that is neither the listener's nor allowed
	RefusedNullOrigin                     // Origin: null (sandboxed frame, privacy redirect, file:)
	RefusedReferer                        // no Origin, and a Referer from another origin
	RefusedFetchSite                      // no Origin or Referer, and Sec-Fetch-Site cross-site
	numWriteRefusals
)

// IDIssue is why the consent API issued a new consent ID.
type IDIssue uint8

const (
	IDNewVisitor IDIssue = iota // no (well-formed) ID was presented
	IDUnknown                   // the ID presented is not the store's, nor proven by a snapshot
	numIDIssues
)

var (
	snapshotUseNames    = enum.New("when", numSnapshotUses, "no_record", "store_error", "newer_than_store", "id_proven", "dataset_lost")
	snapshotRejectNames = enum.New("reason", numSnapshotRejects, "malformed", "unknown_key", "forged", "expired", "future")
	limitNames          = enum.New("limit", NumLimits, "consent_writes_ip", "consent_writes_net", "new_ids_ip", "new_ids_net", "hits_ip", "hits_net")
	writeRefusalNames   = enum.New("reason", numWriteRefusals, "origin", "null_origin", "referer", "fetch_site")
	idIssueNames        = enum.New("why", numIDIssues, "new_visitor", "unknown_id")
)

func (l Limit) String() string { return limitNames.String(l) }

type integrity struct {
	snapshotUses    [numSnapshotUses]atomic.Uint64
	snapshotRejects [numSnapshotRejects]atomic.Uint64
	limited         [NumLimits]atomic.Uint64
	refused         [numWriteRefusals]atomic.Uint64
	ids             [numIDIssues]atomic.Uint64
	storeBytes      atomic.Pointer[func() int64]
}

// SnapshotUsed counts one decision the signed snapshot made or took part in.
func (m *Metrics) SnapshotUsed(u SnapshotUse) {
	m.count(m.integrity.snapshotUses[:], uint(u))
}

// SnapshotRejected counts one snapshot that was not believed.
func (m *Metrics) SnapshotRejected(r SnapshotReject) {
	m.count(m.integrity.snapshotRejects[:], uint(r))
}

// RateLimited counts one request refused by limit (429).
func (m *Metrics) RateLimited(l Limit) {
	m.count(m.integrity.limited[:], uint(l))
}

// WriteRefused counts one consent API write refused as cross-site (403).
func (m *Metrics) WriteRefused(r WriteRefusal) {
	m.count(m.integrity.refused[:], uint(r))
}

// IDIssued counts one consent ID the consent API issued.
func (m *Metrics) IDIssued(why IDIssue) {
	m.count(m.integrity.ids[:], uint(why))
}

// IntegrityCount reads a counter of this file for tests: "snapshot_used", "snapshot_rejected",
// "rate_limited", "write_refused" or "id_issued", and the index of its label.
func (m *Metrics) IntegrityCount(family string, i int) uint64 {
	var c []atomic.Uint64
	switch family {
	case "snapshot_used":
		c = m.integrity.snapshotUses[:]
	case "snapshot_rejected":
		c = m.integrity.snapshotRejects[:]
	case "rate_limited":
		c = m.integrity.limited[:]
	case "write_refused":
		c = m.integrity.refused[:]
	case "id_issued":
		c = m.integrity.ids[:]
	}
	if i < 0 || i >= len(c) {
		return 0
	}
	return c[i].Load()
}

// SetStoreBytes sets what consentgate_consent_store_bytes reports: the bytes the memory
// store, or the cache in front of Redis, holds by its own measure. nil reports 0.
func (m *Metrics) SetStoreBytes(f func() int64) {
	if f == nil {
		m.integrity.storeBytes.Store(nil)
		return
	}
	m.integrity.storeBytes.Store(&f)
}

func (m *Metrics) registerIntegrity(meter metric.Meter) error {
	family := func(name, desc, unit, label string, names []string, counts []atomic.Uint64) error {
		attrs := make([]metric.ObserveOption, len(names))
		for i, n := range names {
			attrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String(label, n)))
		}
		_, err := meter.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for i := range counts {
					o.Observe(clampInt64(counts[i].Load()), attrs[i])
				}
				return nil
			}))
		if err != nil {
			return fmt.Errorf("telemetry: instrument %s: %w", name, err)
		}
		return nil
	}
	in := &m.integrity
	_, err := meter.Int64ObservableGauge("consentgate_consent_store_bytes",
		metric.WithDescription("Bytes the consent memory store (states and receipts), or the cache in front of Redis, holds by its own measure; bounded by consent.max_bytes or consent.cache.max_bytes."),
		metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			var v int64
			if f := in.storeBytes.Load(); f != nil {
				v = (*f)()
			}
			o.Observe(v)
			return nil
		}))
	if err != nil {
		err = fmt.Errorf("telemetry: instrument consentgate_consent_store_bytes: %w", err)
	}
	return errors.Join(err,
		family("consentgate_consent_snapshot_used_total",
			"Decisions the signed consent snapshot in the cookie made or took part in, by when: no_record (the store had none: its refusals applied), store_error (the store could not answer: it decided), newer_than_store (its refusals applied over an older stored state), id_proven (a write kept an ID the store did not know), dataset_lost (the store had no record and the snapshot predates its dataset, lost since: it decided).",
			"{decision}", "when", snapshotUseNames.List(), in.snapshotUses[:]),
		family("consentgate_consent_snapshot_rejected_total",
			"Consent snapshots not believed when they would have decided, by reason (malformed, unknown_key, forged, expired, future).",
			"{snapshot}", "reason", snapshotRejectNames.List(), in.snapshotRejects[:]),
		family("consentgate_rate_limited_total",
			"Requests refused with 429 by a rate limit (limits.*), by limit.",
			"{request}", "limit", limitNames.List(), in.limited[:]),
		family("consentgate_consent_writes_refused_total",
			"Consent API writes refused with 403 as cross-site, by reason (origin, null_origin, referer, fetch_site); nothing was written.",
			"{request}", "reason", writeRefusalNames.List(), in.refused[:]),
		family("consentgate_consent_ids_issued_total",
			"Consent IDs the consent API issued, by why (new_visitor: none presented; unknown_id: the one presented was not the store's nor proven by a snapshot).",
			"{id}", "why", idIssueNames.List(), in.ids[:]),
	)
}
