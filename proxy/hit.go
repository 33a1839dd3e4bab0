package proxy

import (
	"bytes"
	"context"
	"net/netip"
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

	hasID, stored, storeErr bool
	state                   consent.State // the stored state, when stored
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

	// rewritten is true when out holds the query/body to send instead of the original.
	rewritten bool
	out       rules.Out
	ipText    []byte
	path      []byte
}

var hitPool = sync.Pool{New: func() any { return new(hit) }}

func acquireHit() *hit { return hitPool.Get().(*hit) }

func releaseHit(h *hit) {
	*h = hit{out: rules.Out{Query: h.out.Query[:0], Body: h.out.Body[:0]}, ipText: h.ipText[:0], path: h.path[:0]}
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
	s.lookUpConsent(rt, req, h)
	s.readSignals(rt, req, h)
	h.action, h.reason = rules.Decide(h.ep.Policy, h.ep.Purposes, h.regime, &h.eff)
	s.prepare(req, h)
}

// locate finds the client IP (the socket peer, or X-Forwarded-For behind a trusted
// proxy), its location and the jurisdiction group and regime it falls in.
func (s *Server) locate(rt *runtime, req *fasthttp.Request, peer netip.Addr, h *hit) {
	h.ip = rt.Trusted.ClientIP(peer, req.Header.PeekAll(fasthttp.HeaderXForwardedFor))
	if h.ip.IsValid() {
		h.loc = rt.geo.Lookup(h.ip)
	}
	h.group = rt.Table.Resolve(h.loc)
	h.regime = rt.Table.Group(h.group).Regime
}

// lookUpConsent reads the consent cookie and looks the state up in the store: at most
// one Redis round trip, usually none (the local cache). A failed lookup denies every
// purpose (fail closed) unless consent.on_store_error is "unset".
func (s *Server) lookUpConsent(rt *runtime, req *fasthttp.Request, h *hit) {
	id := req.Header.Cookie(rt.Config.Consent.Cookie)
	if len(id) == 0 || !consent.ValidID(id) {
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
		if !rt.StoreErrorUnset {
			h.eff.DenyAll(consent.CauseStoreError)
		}
	case ok:
		h.stored = true
		h.eff = consent.FromState(&h.state)
	}
}

// readSignals applies the signals the hit carries (README "Consent signals"); an
// unreadable one is counted, except when the hit is only explained.
func (s *Server) readSignals(rt *runtime, req *fasthttp.Request, h *hit) {
	h.req.r = req
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
	rt.Signals.Read(&h.req, &h.sigHit, &h.sig, &h.eff)
	if h.sig.Errors != 0 && !h.explain {
		for k := range signals.NumKinds {
			if h.sig.Errors.Has(k) {
				s.metrics.SignalError(int(k))
			}
		}
	}
}

// signalRequest is the fasthttp request as the signal readers see it.
type signalRequest struct{ r *fasthttp.Request }

func (q *signalRequest) Param(name string) []byte  { return q.r.URI().QueryArgs().Peek(name) }
func (q *signalRequest) Cookie(name string) []byte { return q.r.Header.Cookie(name) }
func (q *signalRequest) Header(name string) []byte { return q.r.Header.Peek(name) }
func (q *signalRequest) Body() []byte              { return q.r.Body() }

// prepare rewrites the hit for the chosen action. A hit that cannot be anonymised
// safely is dropped: fail closed.
func (s *Server) prepare(req *fasthttp.Request, h *hit) {
	in := rules.Hit{Query: req.URI().QueryString(), Body: req.Body(), ContentType: req.Header.ContentType()}
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
			h.ipText = geo.Truncate(h.ip).AppendTo(h.ipText[:0])
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
// the config's upstream is ever addressed: nothing of the request picks the host.
func (s *Server) buildUpstream(req *fasthttp.Request, h *hit, up *fasthttp.Request) {
	ep := h.ep
	up.Header.SetMethodBytes(req.Header.Method())
	h.path = ep.UpstreamPathFor(req.URI().Path(), h.path[:0])
	uri := up.URI()
	uri.SetScheme(ep.UpstreamScheme)
	uri.SetHost(ep.UpstreamHost)
	uri.SetPathBytes(h.path)
	query, body := req.URI().QueryString(), req.Body()
	if h.rewritten {
		query, body = h.out.Query, h.out.Body
	}
	uri.SetQueryStringBytes(query)
	up.Header.SetHost(ep.UpstreamHost)
	copyHeaders(&req.Header, &up.Header, h.action == rules.Anonymise)
	if ep.IP.Header != "" && len(h.ipText) > 0 {
		up.Header.SetBytesV(ep.IP.Header, h.ipText)
	}
	if req.Header.IsPost() || len(body) > 0 {
		up.SetBody(body)
	}
}

// headerRule says what happens to a request header on its way upstream.
type headerRule uint8

const (
	hdrCopy      headerRule = iota // forwarded hits: copied
	hdrNever                       // hop-by-hop, cookies, credentials, client-IP claims: never
	hdrAnonymise                   // also copied on anonymised hits (allow-list)
)

// headerRules lists headers by canonical name; a name not listed is copied on forward
// and dropped on anonymise, so anonymised hits carry only what is known to be harmless.
var headerRules = map[string]headerRule{
	"Connection": hdrNever, "Keep-Alive": hdrNever, "Proxy-Authenticate": hdrNever,
	"Proxy-Authorization": hdrNever, "Proxy-Connection": hdrNever, "Te": hdrNever,
	"Trailer": hdrNever, "Transfer-Encoding": hdrNever, "Upgrade": hdrNever,
	"Host": hdrNever, "Content-Length": hdrNever, "Cookie": hdrNever, "Authorization": hdrNever,
	"X-Forwarded-For": hdrNever, "X-Forwarded-Host": hdrNever, "X-Forwarded-Proto": hdrNever,
	"X-Forwarded-Port": hdrNever, "Forwarded": hdrNever, "X-Real-Ip": hdrNever,
	"True-Client-Ip": hdrNever, "Cf-Connecting-Ip": hdrNever, "X-Client-Ip": hdrNever,
	"Fastly-Client-Ip": hdrNever, "X-Cluster-Client-Ip": hdrNever,
	"User-Agent": hdrAnonymise, "Accept": hdrAnonymise, "Accept-Language": hdrAnonymise,
	"Content-Type": hdrAnonymise, "Origin": hdrAnonymise,
}

func copyHeaders(src *fasthttp.RequestHeader, dst *fasthttp.RequestHeader, anonymised bool) {
	conn := src.Peek(fasthttp.HeaderConnection)
	for k, v := range src.All() {
		rule, known := headerRules[b2s(k)]
		if rule == hdrNever && known {
			continue
		}
		if anonymised && rule != hdrAnonymise {
			continue
		}
		if len(conn) > 0 && tokenListed(conn, k) {
			continue // named hop-by-hop by the Connection header
		}
		dst.SetBytesKV(k, v)
	}
}

// tokenListed reports whether name appears, case-insensitively, in a comma-separated list.
func tokenListed(list, name []byte) bool {
	for len(list) > 0 {
		tok, rest, _ := bytes.Cut(list, comma)
		if bytes.EqualFold(bytes.TrimSpace(tok), name) {
			return true
		}
		list = rest
	}
	return false
}

var comma = []byte(",")
