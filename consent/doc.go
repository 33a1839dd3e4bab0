// Package consent owns what a visitor agreed to: the consent model (purposes, statuses,
// effective consent and its causes), the stores that keep it (memory; Redis behind a local
// cache with pub/sub invalidation), bounded by entries and by bytes (bytes.go), receipts,
// the signed snapshot of a state that the consent cookie carries besides the ID
// (snapshot.go), the consent API's request handling, and the two one-line signals
// (Sec-GPC, Consent Mode gcs). The other signals' parsers are in
// consent/tcf, gpp, usp, consentmode and cmp; what each signal decides is consent/signals'.
// It knows nothing of vendors.
package consent
