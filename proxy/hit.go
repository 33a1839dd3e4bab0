package proxy

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
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
	gpc, gpcHonoured        bool
	gcs                     []byte
	gcsOK                   bool
	gcsAd, gcsAnalytics     consent.Status
	sig                     signalState
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

// s2b views s as bytes without copying; the bytes must not be written.
func s2b(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
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

// evaluate runs the decision half of the journey: locate, read consent and signals,
// decide, and prepare what would go upstream. It sends nothing, so explain uses it too.
func (s *Server) evaluate(rt *runtime, req *fasthttp.Request, peer netip.Addr, h *hit) {
	ep := h.ep
	// Locate.
	h.ip = rt.trusted.ClientIP(peer, req.Header.PeekAll(fasthttp.HeaderXForwardedFor))
	if h.ip.IsValid() {
		h.loc = rt.geo.Lookup(h.ip)
	}
	h.group = rt.table.Resolve(h.loc)
	g := rt.table.Group(h.group)
	h.regime = g.Regime

	if !ep.AllowsMethod(req.Header.Method()) {
		h.action, h.reason = rules.Drop, rules.ReasonMethodNotAllowed
		return
	}

	// Consent: the stored state, then the signals of the hit (README "Consent signals").
	var st consent.State
	if id := req.Header.Cookie(rt.cookie); len(id) > 0 && consent.ValidID(id) {
		h.hasID = true
		var ok bool
		var err error
		sctx := storeCtx
		if h.ctx != nil {
			sctx = h.ctx
		}
		st, ok, err = s.store.Get(sctx, b2s(id))
		if s.store.countLookups && !h.explain {
			s.metrics.ConsentLookup(telemetry.LookupMemory, memoryResult(ok, err))
		}
		switch {
		case err != nil:
			// The visitor may have refused and we cannot know: fail closed, unless the
			// operator chose on_store_error: unset (decide as if nothing was stored).
			h.storeErr = true
			if !rt.storeErrorUnset {
				h.eff.DenyAll(consent.CauseStoreError)
			}
		case ok:
			h.stored = true
			h.eff = consent.FromState(&st)
		}
	}
	if h.gpc = consent.ParseGPC(req.Header.Peek("Sec-GPC")); h.gpc && g.GPC {
		h.gpcHonoured = true
		h.eff.ApplyGPC()
	}
	var stored *consent.State
	if h.stored {
		stored = &st
	}
	s.readSignals(rt, req, h, stored, g.GPC)
	if ep.ConsentMode {
		s.readConsentMode(req, h, ep.Body == rules.BodyJSON)
	}

	h.action, h.reason = rules.Decide(ep.Policy, ep.Purposes, h.regime, &h.eff)
	s.prepare(req, h)
}

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
