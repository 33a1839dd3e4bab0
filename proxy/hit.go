package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/signals"
	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// hit is the working state of one tracking request. It is pooled: nothing in it outlives
// the handler, and its buffers are reused so a steady stream of hits allocates nothing.
type hit struct {
	ep     *rules.CompiledEndpoint
	ip     netip.Addr
	loc    geo.Location
	group  geo.GroupID
	regime geo.Regime
	eff    consent.Effective

	// sender is the client IP of a server-side hit: a backend, not the visitor.
	sender netip.Addr

	hasID, stored, storeErr bool
	state                   consent.State // the stored state, when stored
	// snapshot is what the signed snapshot in the cookie did (snapshotHow); snapTCF: it
	// decided for a state that held a TC string it does not carry.
	snapshot snapshotHow
	snapTCF  bool
	// sig is what the in-band signals said, and sigHit what they were read against.
	sig    signals.State
	sigHit signals.Hit
	// req adapts the request for the signal readers without copying.
	req signalRequest
	// explain: the hit is described through /admin/explain or the CLI, not served, so it
	// counts in no metric.
	explain bool
	// ctx carries the hit's span when it is traced; nil otherwise (store calls then
	// use storeCtx).
	ctx context.Context

	action rules.Action
	reason rules.Reason

	// tailAt is the length of the path prefix the hit was routed by (0: an exact path),
	// set by whoever routed it.
	tailAt int
	// body is the request body as the rewrite and the signal readers see it: the
	// request's own, or decoded (into decoded) when it came compressed.
	body    []byte
	decoded []byte

	// rewritten is true when out holds the query/body to send instead of the original.
	rewritten bool
	out       rules.Out
	ipText    []byte
	path      []byte // the upstream path, built by UpstreamPathFor
	query     []byte // the upstream query when it needed escaping (appendQueryTarget)
	// hdr is the scratch space an upstream header value is built in.
	hdr []byte
}

var hitPool = sync.Pool{New: func() any { return new(hit) }}

func acquireHit() *hit { return hitPool.Get().(*hit) }

func releaseHit(h *hit) {
	*h = hit{out: rules.Out{Query: h.out.Query[:0], Body: h.out.Body[:0]}, ipText: h.ipText[:0], path: h.path[:0],
		decoded: h.decoded[:0], query: h.query[:0], hdr: h.hdr[:0]}
	hitPool.Put(h)
}

// b2s views b as a string without copying. Only for lookups that do not retain the
// string (map keys, store Get).
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// peerAddr converts a socket address to a netip.Addr, unmapping IPv4-in-IPv6.
func peerAddr(ip []byte) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

func memoryResult(ok bool, err error) telemetry.LookupResult {
	switch {
	case err != nil:
		return telemetry.LookupError
	case ok:
		return telemetry.LookupHit
	}
	return telemetry.LookupMiss
}

// evaluate runs the decision half of the journey, stage by stage, and prepares what
// would go upstream. It sends nothing, so explain uses it too.
func (s *Server) evaluate(rt *runtime, req *fasthttp.Request, peer netip.Addr, h *hit) {
	s.locate(rt, req, peer, h)
	if !h.ep.AllowsMethod(req.Header.Method()) {
		h.action, h.reason = rules.Drop, rules.ReasonMethodNotAllowed
		return
	}
	uri := req.URI()
	var ok bool
	if h.path, ok = h.ep.UpstreamPathFor(h.path[:0], uri.Path(), uri.PathOriginal(), h.tailAt); !ok {
		h.action, h.reason = rules.Drop, rules.ReasonBadPath
		return
	}
	if !s.readBody(rt, req, h) {
		h.action = rules.Drop
		return
	}
	if serverSide(h.ep) {
		locateVisitor(rt, h)
	}
	s.lookUpConsent(rt, req, h)
	s.readSignals(rt, req, h)
	h.action, h.reason = rules.Decide(h.ep.Policy, h.ep.Purposes, h.regime, &h.eff)
	s.prepare(rt, req, h)
}

// readBody sets h.body to the request body as it reads, decoding a Content-Encoding.
// false drops the hit with h.reason set: a coding the proxy cannot read, a stream that
// does not decode, or one that decodes to more than max_body_size.
func (s *Server) readBody(rt *runtime, req *fasthttp.Request, h *hit) bool {
	h.body = req.Body()
	codings := req.Header.PeekAll(fasthttp.HeaderContentEncoding)
	if len(codings) == 0 {
		return true
	}
	c, err := parseCodings(codings)
	if err == nil && c != codingNone && len(h.body) > 0 {
		h.decoded, err = decodeBody(h.decoded[:0], h.body, c, rt.Config.MaxBodySize)
		h.body = h.decoded
	}
	switch {
	case errors.Is(err, errDecodedTooLarge):
		h.reason = rules.ReasonBodyTooLarge
	case err != nil:
		h.reason = rules.ReasonBadBodyEncoding
	default:
		return true
	}
	h.body = nil
	return false
}

// locate finds the client IP (the socket peer, or X-Forwarded-For behind a trusted
// proxy), its location and the jurisdiction group and regime it falls in.
func (s *Server) locate(rt *runtime, req *fasthttp.Request, peer netip.Addr, h *hit) {
	h.ip = rt.Trusted.ClientIP(peer, req.Header.PeekAll(fasthttp.HeaderXForwardedFor))
	if serverSide(h.ep) {
		// Located by the visitor its body names, once the body is read (locateVisitor);
		// until then of unknown location.
		h.sender, h.ip = h.ip, netip.Addr{}
	} else if h.ip.IsValid() {
		h.loc = rt.geo.Lookup(h.ip)
	}
	resolveGroup(rt, h)
}

func resolveGroup(rt *runtime, h *hit) {
	h.group = rt.Table.Resolve(h.loc)
	h.regime = rt.Table.Group(h.group).Regime
}

// serverSide reports whether ep's hits come from a site's backend on a visitor's behalf.
func serverSide(ep *rules.CompiledEndpoint) bool {
	return ep.Visitor.IP != "" || ep.Visitor.Location != ""
}

// locateVisitor locates a server-side hit (GA4 Measurement Protocol) by the visitor its
// body names, never by the sender, whose address says where a server is. Only a trusted
// sender (server_side.trusted_senders) may name the visitor: the IP it states, else the
// location it states. Any other hit, and one that names no visitor, is of unknown
// location and passes no IP upstream.
func locateVisitor(rt *runtime, h *hit) {
	if !h.sender.IsValid() || !rt.TrustedSenders.Contains(h.sender) {
		return
	}
	ip, country, region := h.ep.Visitor.Read(h.body)
	if ip.IsValid() {
		h.ip, h.loc = ip, rt.geo.Lookup(ip)
	} else {
		h.loc, _ = geo.LocationOf(country, region)
	}
	resolveGroup(rt, h)
}

// lookUpConsent reads the consent cookie and looks the state up in the store: at most
// one Redis round trip, usually none (the local cache). The store decides when it has a
// record; the signed snapshot in the cookie stands in where it cannot (snapshot.go). A
// failed lookup without a snapshot denies every purpose (fail closed) unless
// consent.on_store_error is "unset".
func (s *Server) lookUpConsent(rt *runtime, req *fasthttp.Request, h *hit) {
	id, snap, ok := consent.SplitCookie(req.Header.Cookie(rt.Config.Consent.Cookie))
	if !ok || !consent.ValidID(id) {
		return
	}
	h.hasID = true
	sctx := storeCtx
	if h.ctx != nil {
		sctx = h.ctx
	}
	st, ok, err := s.store.Get(sctx, b2s(id))
	h.state = st
	if s.store.countLookups && !h.explain {
		s.metrics.ConsentLookup(telemetry.LookupMemory, memoryResult(ok, err))
	}
	switch {
	case err != nil:
		h.storeErr = true
		if s.snapshotDecides(rt, h, id, snap) {
			return
		}
		if !rt.StoreErrorUnset {
			h.eff.DenyAll(consent.CauseStoreError)
		}
	case ok:
		h.stored = true
		h.eff = consent.FromState(&h.state)
		s.snapshotNewer(rt, h, id, snap)
	default:
		s.snapshotNoRecord(rt, h, id, snap)
	}
}

// readSignals applies the signals the hit carries (README "Consent signals"); an
// unreadable one is counted, except when the hit is only explained.
func (s *Server) readSignals(rt *runtime, req *fasthttp.Request, h *hit) {
	h.req.r, h.req.body = req, h.body
	h.sigHit = signals.Hit{
		StoreErr:    h.storeErr,
		OptIn:       h.regime == geo.OptIn,
		GPC:         rt.Table.Group(h.group).GPC,
		VendorIndex: h.ep.VendorIndex,
		ConsentMode: h.ep.ConsentMode,
		JSONBody:    h.ep.Body == rules.BodyJSON,
	}
	if h.stored {
		h.sigHit.Stored = &h.state
	}
	h.sigHit.StoredTCFUnknown = h.snapTCF
	rt.Signals.Read(&h.req, &h.sigHit, &h.sig, &h.eff)
	if h.sig.Errors != 0 && !h.explain {
		for k := range signals.NumKinds {
			if h.sig.Errors.Has(k) {
				s.metrics.SignalError(int(k))
			}
		}
	}
}

// signalRequest is the fasthttp request as the signal readers see it, with its body
// decoded.
type signalRequest struct {
	r    *fasthttp.Request
	body []byte
}

func (q *signalRequest) Param(name string) []byte  { return q.r.URI().QueryArgs().Peek(name) }
func (q *signalRequest) Cookie(name string) []byte { return q.r.Header.Cookie(name) }
func (q *signalRequest) Header(name string) []byte { return q.r.Header.Peek(name) }
func (q *signalRequest) Body() []byte              { return q.body }

// prepare rewrites the hit for the chosen action. A hit that cannot be anonymised
// safely is dropped: fail closed.
func (s *Server) prepare(rt *runtime, req *fasthttp.Request, h *hit) {
	in := rules.Hit{Query: req.URI().QueryString(), Body: h.body, ContentType: req.Header.ContentType(), Site: hostOnly(req.Host())}
	switch h.action {
	case rules.Forward:
		if h.ip.IsValid() {
			h.ipText = h.ip.AppendTo(h.ipText[:0])
		}
		changed, err := h.ep.Anon.RewriteForward(&in, b2s(h.ipText), &h.out)
		if err != nil {
			h.action, h.reason = rules.Drop, rules.ReasonAnonymiseFailed
			return
		}
		h.rewritten = changed
	case rules.Anonymise:
		if h.ip.IsValid() {
			h.ipText = geo.Truncate(h.ip, rt.Config.Anonymise.IPv6Prefix).AppendTo(h.ipText[:0])
		}
		if err := h.ep.Anon.Anonymise(&in, b2s(h.ipText), &h.out); err != nil {
			h.action, h.reason = rules.Drop, rules.ReasonAnonymiseFailed
			return
		}
		h.rewritten = true
		if !h.explain {
			for k, n := range h.out.Removed {
				if n > 0 {
					s.metrics.AnonymiseRemoved(h.ep.VendorIndex, k, uint64(n))
				}
			}
		}
	}
}

// buildUpstream writes the request that goes upstream into up. Only the catalogue's or
// the config's upstream is ever addressed: nothing of the request picks the host. The
// request line is built from checked, encoded bytes: the path by UpstreamPathFor, the
// query escaped where a byte could not stand on the line (appendQueryTarget). up is then
// exactly what the HostClient writes, so explain can show it.
func (s *Server) buildUpstream(req *fasthttp.Request, h *hit, up *fasthttp.Request) {
	ep := h.ep
	up.Header.SetMethodBytes(req.Header.Method())
	uri := up.URI()
	// Written as built: fasthttp would otherwise decode and re-quote the path on the way
	// out. The HostClient sets the same flag when it sends; setting it here too makes
	// explain's rendering of up the wire's.
	uri.DisablePathNormalizing = true
	uri.SetScheme(ep.UpstreamScheme)
	uri.SetHost(ep.UpstreamHost)
	uri.SetPathBytes(h.path)
	query, body := req.URI().QueryString(), h.body
	if h.rewritten {
		query, body = h.out.Query, h.out.Body
	}
	if queryNeedsEscape(query) {
		h.query = appendQueryTarget(h.query[:0], query)
		query = h.query
	}
	uri.SetQueryStringBytes(query)
	up.Header.SetHost(ep.UpstreamHost)
	// fasthttp would label a body without a Content-Type as a form; what goes upstream
	// is only what the rules build (and what explain shows).
	up.Header.SetNoDefaultContentType(true)
	s.setUpstreamHeaders(&req.Header, h, &up.Header, len(body) > 0)
	if ep.IP.Header != "" && len(h.ipText) > 0 {
		up.Header.SetBytesV(ep.IP.Header, h.ipText)
	}
	if len(up.Header.UserAgent()) == 0 {
		up.Header.SetUserAgent(upstreamClientName)
	}
	if req.Header.IsPost() || len(body) > 0 {
		up.SetBody(body)
	}
}

// setUpstreamHeaders writes the headers the rules allow for the hit's action, each
// value built by its rule (rules/headers.go): nothing else of the request's headers
// goes upstream, whatever its name, so no identity, credential or client-IP header of
// the hit can reach the vendor. A header the request's Connection header names is
// hop-by-hop (RFC 9110 §7.6.1) and is not sent either.
func (s *Server) setUpstreamHeaders(src *fasthttp.RequestHeader, h *hit, dst *fasthttp.RequestHeader, hasBody bool) {
	conn := src.Peek(fasthttp.HeaderConnection)
	rs := rules.UpstreamHeaders(h.action)
	for i := range rs {
		r := &rs[i]
		if r.BodyOnly && !hasBody {
			continue
		}
		v := src.Peek(r.Name)
		if len(v) == 0 || len(conn) > 0 && tokenListed(conn, r.Name) {
			continue
		}
		var ok bool
		if h.hdr, ok = r.Build(h.hdr[:0], v); ok {
			dst.SetBytesV(r.Name, h.hdr)
		}
	}
}

// tokenListed reports whether name appears, case-insensitively, in a comma-separated list.
func tokenListed(list []byte, name string) bool {
	for len(list) > 0 {
		tok, rest, _ := bytes.Cut(list, comma)
		if strings.EqualFold(b2s(bytes.TrimSpace(tok)), name) {
			return true
		}
		list = rest
	}
	return false
}

var comma = []byte(",")
