package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// Requests the public listener refuses before a route sees them. Each gets a clear status
// and is counted in consentgate_requests_refused_total by reason, never a silent 400:
// fasthttp's own refusals come through handleBadRequest, the proxy's stricter reading of
// the head through checkHead.

// handleBadRequest answers requests fasthttp could not read; fasthttp closes the
// connection after it. A hit whose body is over max_body_size is counted against its
// route (reason body_too_large) and gets 413; nothing of it leaves.
func (s *Server) handleBadRequest(ctx *fasthttp.RequestCtx, err error) {
	pc, _ := ctx.Conn().(*publicConn)
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.As(err, &small):
		if pc != nil {
			pc.linger = true // the rest of the request is still on its way
		}
	}
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		rt := s.rt.Load()
		if idx := rt.Router.Lookup(hostOnly(ctx.Host()), ctx.Path()); idx >= 0 {
			ep := &rt.Endpoints[idx]
			s.metrics.Hit(ep.VendorIndex, int(rules.Drop), int(rules.ReasonBodyTooLarge), rt.jur[rt.Table.Unknown()])
		} else {
			s.metrics.Refused(telemetry.RefusedBodyTooLarge)
		}
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		if pc != nil && !pc.lineFed(s.public.ReadBufferSize) {
			s.metrics.Refused(telemetry.RefusedURITooLong)
			ctx.Error("request URI too long", fasthttp.StatusRequestURITooLong)
			return
		}
		s.metrics.Refused(telemetry.RefusedHeaderTooLarge)
		ctx.Error("request header fields too large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.Is(err, fasthttp.ErrTimeout) || errors.As(err, &ne) && ne.Timeout():
		if pc != nil && pc.read == 0 {
			// Opened and never used: a browser's preconnect, or a client that went away.
			// No request was refused, so nothing is counted or answered.
			pc.Close()
			return
		}
		s.metrics.Refused(telemetry.RefusedReadTimeout)
		ctx.Error("request timeout", fasthttp.StatusRequestTimeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		s.metrics.Refused(telemetry.RefusedIncomplete)
		ctx.Error("incomplete request", fasthttp.StatusBadRequest)
	case errors.Is(err, fasthttp.ErrDuplicateContentLength) || errors.Is(err, fasthttp.ErrUnsupportedTransferEncoding) ||
		errors.As(err, new(fasthttp.ErrBrokenChunk)):
		s.metrics.Refused(telemetry.RefusedBadFraming)
		ctx.Error("bad request framing", fasthttp.StatusBadRequest)
	default:
		s.metrics.Refused(telemetry.RefusedBadRequest)
		ctx.Error("bad request", fasthttp.StatusBadRequest)
	}
}

// headEnd is set, by headerReceived, as the last header of a chunked request before its
// body is read. fasthttp appends the fields of a chunked body's trailer section to the
// request's headers, where they would read like the browser's own (a trailer
// "User-Agent" fills in for a missing one); anything after headEnd came from a trailer.
// The name is never sent upstream: upstream headers are built by allow-list.
const headEnd = "X-Consentgate-Head-End"

func headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == -1 { // chunked
		h.Set(headEnd, "1")
	}
	return fasthttp.RequestConfig{}
}

// checkHead refuses what fasthttp reads but a proxy must not pass on (RFC 9112): a
// request with Transfer-Encoding and Content-Length both, or with a coding other than
// chunked, whose body a proxy in front may have framed differently (request smuggling);
// a header name that is not a token (a space in it: fasthttp keeps such a name) or a
// folded line; and a chunked body with a trailer section. It reads the head as it came
// over the wire, which fasthttp keeps, so it costs one pass over the header lines and
// allocates nothing.
func checkHead(req *fasthttp.Request) (telemetry.Refusal, bool) {
	raw := req.Header.RawHeaders()
	var te, cl, chunked bool
	for len(raw) > 0 {
		// The name: token bytes up to the colon. A line that starts with a space or a tab
		// is a folded continuation (obs-fold); an empty line ends the head.
		i := 0
		for i < len(raw) && tchar[raw[i]] {
			i++
		}
		if i == 0 && (raw[0] == '\r' || raw[0] == '\n') {
			break
		}
		if i == 0 || i == len(raw) || raw[i] != ':' {
			return telemetry.RefusedBadHeader, false
		}
		name := raw[:i]
		end := len(raw)
		if j := bytes.IndexByte(raw[i:], '\n'); j >= 0 {
			end = i + j
		}
		value := raw[i+1 : end]
		raw = raw[min(end+1, len(raw)):]
		switch {
		case len(name) == len("Transfer-Encoding") && hdrFold(name, "transfer-encoding"):
			te = true
			v := bytes.Trim(value, " \t\r")
			chunked = hdrFold(v, "chunked")
		case len(name) == len("Content-Length") && hdrFold(name, "content-length"):
			cl = true
		}
	}
	if te && (cl || !chunked) {
		return telemetry.RefusedBadFraming, false
	}
	if te && hasTrailers(&req.Header) {
		return telemetry.RefusedBadHeader, false
	}
	return 0, true
}

// hasTrailers reports whether a chunked request's headers go on past headEnd. A
// synthesised "Connection: close" (fasthttp lists it last) is not a trailer: Connection
// is a field fasthttp never takes from a trailer.
func hasTrailers(h *fasthttp.RequestHeader) bool {
	past := false
	for k := range h.All() {
		switch {
		case past && !hdrFold(k, fasthttp.HeaderConnection):
			return true
		case !past && string(k) == headEnd:
			past = true
		}
	}
	return false
}

// hdrFold compares ASCII b with lower-case s, ignoring case; the lengths must match.
func hdrFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// tchar is RFC 9110's token alphabet, the bytes a field name may hold.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// refuseHead answers a request checkHead refused: 400, counted, and the connection
// closed, since what follows on it may have been framed differently by whoever sent it.
func (s *Server) refuseHead(ctx *fasthttp.RequestCtx, r telemetry.Refusal) {
	s.metrics.Refused(r)
	ctx.Error("bad request", fasthttp.StatusBadRequest) // resets the response: first
	ctx.SetConnectionClose()
}
