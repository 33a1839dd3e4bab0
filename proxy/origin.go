package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/telemetry"
)

// crossSite says whether a consent API write (POST or DELETE /consent) comes from a
// page of another site, and why; such a write is refused (403) before anything is read
// or written. SameSite=Lax keeps the cookie off cross-site POSTs in today's browsers,
// but not in older ones, not for a top-level form POST within two minutes of the cookie
// being set (Chrome's "Lax+POST"), and not from a sibling subdomain, which is same-site:
// the origin check is what makes a cross-site write impossible.
//
//   - Origin, which browsers send with every POST and DELETE (fetch, forms, beacons), must
//     be the listener's own (scheme http or https, host and port as the request's Host) or
//     in allowed_origins. "null" (a sandboxed frame, a privacy-preserving redirect, a
//     file: page) is refused: it names no origin that could be allowed.
//   - Without Origin, a Referer stands in, compared by its origin the same way.
//   - Without either, the caller is not a browser, or one that hides both, which no
//     browser does for a POST or DELETE: a site's backend writing server to server, curl.
//     It is allowed (a backend needs no cookie from a browser to attack, and writes only
//     to the ID it presents), unless Sec-Fetch-Site says a browser sent it from another
//     site.
//
// Content types are not checked: a text/plain or form POST from another origin is
// refused by its Origin, and a same-origin one is the site's own.
func crossSite(h *fasthttp.RequestHeader, rt *runtime) (telemetry.WriteRefusal, bool) {
	host := h.Host()
	if origin := h.Peek(fasthttp.HeaderOrigin); len(origin) > 0 {
		switch {
		case string(origin) == "null":
			return telemetry.RefusedNullOrigin, true
		case rt.Origins[b2s(origin)] || sameOrigin(origin, host):
			return 0, false
		}
		return telemetry.RefusedOrigin, true
	}
	if ref := h.Peek(fasthttp.HeaderReferer); len(ref) > 0 {
		origin, ok := refererOrigin(ref)
		if ok && (rt.Origins[b2s(origin)] || sameOrigin(origin, host)) {
			return 0, false
		}
		return telemetry.RefusedReferer, true
	}
	switch string(h.Peek("Sec-Fetch-Site")) {
	case "", "same-origin", "none":
		return 0, false
	}
	return telemetry.RefusedFetchSite, true
}

// sameOrigin reports whether origin ("https://t.example.com[:port]") names the host the
// request was sent to. The scheme is not compared: the proxy usually sits behind a TLS
// terminator and sees plain HTTP, and a page served over http on the tracking host itself
// is the site's own. A default port (80, 443) written out on either side is ignored.
func sameOrigin(origin, host []byte) bool {
	var rest []byte
	switch {
	case bytes.HasPrefix(origin, []byte("https://")):
		rest = origin[len("https://"):]
	case bytes.HasPrefix(origin, []byte("http://")):
		rest = origin[len("http://"):]
	default:
		return false
	}
	rest, host = withoutDefaultPort(rest), withoutDefaultPort(host)
	return len(host) > 0 && bytes.EqualFold(rest, host)
}

func withoutDefaultPort(hostport []byte) []byte {
	for _, p := range [...]string{":443", ":80"} {
		if h, ok := bytes.CutSuffix(hostport, []byte(p)); ok {
			return h
		}
	}
	return hostport
}

// refererOrigin cuts a Referer URL to its origin: scheme, "://", host and port. A
// Referer that is not an absolute http(s) URL, or carries user information, has none.
func refererOrigin(ref []byte) ([]byte, bool) {
	i := bytes.Index(ref, []byte("://"))
	if i < 0 {
		return nil, false
	}
	if scheme := ref[:i]; !bytes.Equal(scheme, []byte("https")) && !bytes.Equal(scheme, []byte("http")) {
		return nil, false
	}
	end := len(ref)
	if j := bytes.IndexAny(ref[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	if end == i+3 || bytes.IndexByte(ref[i+3:end], '@') >= 0 {
		return nil, false
	}
	return ref[:end], true
}
