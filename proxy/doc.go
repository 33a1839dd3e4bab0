// Package proxy owns the sockets: the fasthttp listeners, the upstream clients, the hit
// path in named stages (route → locate → look up consent → read signals → decide →
// prepare → forward / anonymise / drop, see evaluate), the local responses, and the consent,
// admin and explain APIs, with what guards the consent API: server-minted IDs, origin
// checks (origin.go), rate limits (integrity.go) and the signed consent snapshot that
// stands in for the store where it cannot answer (snapshot.go); and /consentgate.js
// (consentjs.go), the script that tells the consent API what the visitor chose in the
// site's banner; and the first-party tag scripts (scripts.go: a cache filled by fetches
// from the vendors that carry nothing of the visitor). It decides no policy itself: that is the rules snapshot's and
// consent/signals'. It adds to each compiled snapshot the live parts (GeoIP locator,
// upstream clients, metric indices, the compiled script), each of which applies its own
// part of a reload.
package proxy
