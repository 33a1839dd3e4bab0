package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/rules"
)

// relayedTypes are the media types a vendor's answer to a forwarded hit may reach the
// browser as: what pixels and collectors answer (a GIF or PNG pixel, "ok", a JSON
// status). The answer is served from the site's own host, so anything a browser would
// run or render there (HTML, a script, SVG, XML) is never relayed.
var relayedTypes = []string{"image/gif", "image/png", "text/plain", "application/json"}

// relayedCodings are the Content-Encodings a relayed body may carry; the browser decodes
// them.
var relayedCodings = []string{"gzip", "br", "deflate", "zstd"}

// relay answers a forwarded hit with the vendor's answer, rebuilt: the vendor's status,
// its body when the body's type is one of relayedTypes (as the type's own name, without
// the vendor's parameters), and headers the proxy sets itself: nosniff, so a browser
// never reads the body as anything else, and no-store, so neither the browser nor a CDN
// in front keeps it (a cached answer would hide the next hit from the proxy and the
// vendor). Nothing else of the vendor's headers comes back: no Set-Cookie, no cache
// lifetime, no redirect. A redirect (3xx, 1xx), or a body of any other type or coding,
// gets the endpoint's local response instead, as a dropped hit does.
func relay(ctx *fasthttp.RequestCtx, ep *rules.CompiledEndpoint, resp *fasthttp.Response) {
	status := resp.StatusCode()
	if status < 200 || status >= 300 && status < 400 {
		localResponse(ctx, ep)
		return
	}
	body := resp.Body()
	var ct, ce string
	if len(body) > 0 {
		var ok bool
		if ct, ok = relayedType(resp.Header.ContentType()); !ok {
			localResponse(ctx, ep)
			return
		}
		if ce, ok = relayedCoding(resp.Header.ContentEncoding()); !ok {
			localResponse(ctx, ep)
			return
		}
	}
	ctx.SetStatusCode(status)
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	if ct != "" {
		h.SetContentType(ct)
	}
	if ce != "" {
		h.Set(fasthttp.HeaderContentEncoding, ce)
	}
	ctx.SetBody(body)
}

// relayedType returns the relayed name of a Content-Type's media type, false when it is
// not one of relayedTypes.
func relayedType(v []byte) (string, bool) {
	mt, _, _ := bytes.Cut(v, []byte{';'})
	mt = bytes.Trim(mt, " \t")
	for _, t := range relayedTypes {
		if hdrFold(mt, t) {
			return t, true
		}
	}
	return "", false
}

// relayedCoding returns the relayed name of a Content-Encoding: "" for none or identity,
// false for a coding the browser may not know or for a list of codings.
func relayedCoding(v []byte) (string, bool) {
	v = bytes.Trim(v, " \t")
	if len(v) == 0 || hdrFold(v, "identity") {
		return "", true
	}
	for _, c := range relayedCodings {
		if hdrFold(v, c) {
			return c, true
		}
	}
	return "", false
}
