package proxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// transparentGIF is the 1×1 GIF an image pixel gets when nothing comes from upstream.
var transparentGIF = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

func (s *Server) handlePublic(ctx *fasthttp.RequestCtx) {
	if r, ok := checkHead(&ctx.Request); !ok {
		s.refuseHead(ctx, r)
		return
	}
	rt := s.rt.Load()
	path := ctx.Path()
	switch string(path) {
	case "/consent":
		s.handleConsentAPI(ctx, rt)
		return
	case consentScriptPath:
		s.handleConsentScript(ctx, rt)
		return
	}
	if idx, variant := rt.Scripts.Lookup(path); idx >= 0 {
		s.handleScript(ctx, rt, idx, variant)
		return
	}
	idx, tailAt := rt.Router.LookupRoute(hostOnly(ctx.Host()), path)
	if idx < 0 {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	ep := &rt.Endpoints[idx]
	if ctx.IsOptions() {
		s.preflight(ctx, rt, ep)
		return
	}
	if rt.limits.hitsOn && !s.allowHit(ctx, rt, ep) {
		return
	}
	defer s.recoverHit(ctx, rt, ep)
	h := acquireHit()
	defer releaseHit(h)
	h.ep, h.tailAt = ep, tailAt
	if s.tracer != nil {
		// A new root for every hit: trace context from the browser is not trusted, or any
		// page could force its hits to be sampled.
		var span trace.Span
		h.ctx, span = s.tracer.Start(storeCtx, "hit", trace.WithSpanKind(trace.SpanKindServer))
		defer s.endHitSpan(span, rt, h)
	}
	s.evaluate(rt, &ctx.Request, peerAddr(ctx.RemoteIP()), h)
	s.metrics.Hit(ep.VendorIndex, int(h.action), int(h.reason), rt.jur[h.group])
	if rt.Config.Telemetry.DecisionLog.SampleRatio > 0 && rand.Float64() < rt.Config.Telemetry.DecisionLog.SampleRatio {
		s.logDecision(rt, h)
	}
	s.corsHit(ctx, rt)
	switch {
	case h.reason == rules.ReasonMethodNotAllowed:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, joinMethods(ep))
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	case h.reason == rules.ReasonBodyTooLarge:
		// Decoded past max_body_size: the same answer as a body that came too large.
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	case h.action == rules.Drop:
		localResponse(ctx, ep)
	default:
		s.send(ctx, rt, h)
	}
}

// endHitSpan names what happened to the hit on its span (never who sent it).
func (s *Server) endHitSpan(span trace.Span, rt *runtime, h *hit) {
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("consentgate.vendor", h.ep.Vendor),
			attribute.String("consentgate.endpoint", h.ep.Name),
			attribute.String("consentgate.action", h.action.String()),
			attribute.String("consentgate.reason", h.reason.String()),
			attribute.String("consentgate.jurisdiction", rt.Table.Group(h.group).Name),
		)
	}
	span.End()
}

// logDecision writes one sampled decision. It names the vendor, place and why, and
// nothing that identifies the visitor: no IP, no consent or client ID, no URL.
func (s *Server) logDecision(rt *runtime, h *hit) {
	country := ""
	if h.loc.Known() {
		country = h.loc.CountryCode()
	}
	s.log.Info("decision", "vendor", h.ep.Vendor, "endpoint", h.ep.Name, "action", h.action.String(),
		"reason", h.reason.String(), "jurisdiction", rt.Table.Group(h.group).Name, "country", country)
}

// recoverHit keeps a bug from becoming a crash or a 5xx: fasthttp does not recover
// handler panics, and one would take every visitor's hits down with it. The hit fails
// closed (whatever was prepared is not sent), is counted, and the log says where, without
// any of the request's data.
func (s *Server) recoverHit(ctx *fasthttp.RequestCtx, rt *runtime, ep *rules.CompiledEndpoint) {
	r := recover()
	if r == nil {
		return
	}
	s.metrics.Hit(ep.VendorIndex, int(rules.Drop), int(rules.ReasonInternalError), rt.jur[rt.Table.Unknown()])
	s.log.Error("hit handler panicked; hit dropped", "endpoint", ep.Name, "panic", fmt.Sprintf("%T", r), "stack", string(debug.Stack()))
	ctx.Response.Reset()
	localResponse(ctx, ep)
}

// send relays the hit upstream and, for a forwarded hit, the answer back; an anonymised
// hit gets the endpoint's local response. The browser never sees a 5xx from here: an
// upstream failure gets the local response and is counted.
func (s *Server) send(ctx *fasthttp.RequestCtx, rt *runtime, h *hit) {
	ep := h.ep
	up := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(up)
	defer fasthttp.ReleaseResponse(resp)
	s.buildUpstream(&ctx.Request, h, up)
	s.metrics.UpstreamRequest(ep.VendorIndex)
	// Do, not DoTimeout: the HostClient's read and write timeouts bound the round trip, and
	// DoTimeout would add a timer and a goroutine hand-off to every hit.
	start := time.Now()
	err := rt.clients[ep.Index].Do(up, resp)
	took := time.Since(start)
	if err != nil {
		kind := upstreamErrorKind(err)
		s.metrics.UpstreamError(ep.VendorIndex, kind)
		s.metrics.UpstreamDone(ep.VendorIndex, kind.Outcome(), took)
		localResponse(ctx, ep)
		return
	}
	if resp.StatusCode() >= 500 {
		s.metrics.UpstreamError(ep.VendorIndex, telemetry.UpstreamStatus)
		s.metrics.UpstreamDone(ep.VendorIndex, telemetry.UpstreamStatus.Outcome(), took)
		localResponse(ctx, ep)
		return
	}
	s.metrics.UpstreamDone(ep.VendorIndex, telemetry.UpstreamOK, took)
	if h.action != rules.Forward {
		// An anonymised hit is answered here, whatever the vendor said: its body could
		// tell the browser to fire further requests straight at the vendor (a GA4
		// response stream, a redirect, a script), with the vendor's cookies and the full
		// IP, and its status and headers would say what the vendor made of the hit.
		localResponse(ctx, ep)
		return
	}
	relay(ctx, ep, resp)
}

func upstreamErrorKind(err error) telemetry.UpstreamErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return telemetry.UpstreamTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return telemetry.UpstreamTimeout
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrConnectionClosed):
		return telemetry.UpstreamConnect
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return telemetry.UpstreamConnect
	}
	return telemetry.UpstreamOther
}

func localResponse(ctx *fasthttp.RequestCtx, ep *rules.CompiledEndpoint) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.Header.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	if ep.Local == rules.GIF {
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("image/gif")
		ctx.SetBody(transparentGIF)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// corsHit lets a site's own pages read the answer of a hit (fetch with credentials):
// an allowed origin is echoed with credentials; any other origin gets "*", which browsers
// honour only for credential-less requests such as sendBeacon.
func (s *Server) corsHit(ctx *fasthttp.RequestCtx, rt *runtime) {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 {
		return
	}
	if rt.Origins[b2s(origin)] {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowCredentials, "true")
		ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
		return
	}
	ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
}

func (s *Server) preflight(ctx *fasthttp.RequestCtx, rt *runtime, ep *rules.CompiledEndpoint) {
	s.corsHit(ctx, rt)
	ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowMethods, joinMethods(ep))
	ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowHeaders, "Content-Type")
	ctx.Response.Header.Set(fasthttp.HeaderAccessControlMaxAge, "86400")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func joinMethods(ep *rules.CompiledEndpoint) string { return strings.Join(ep.Methods, ", ") }

// hostOnly strips a port from a Host value.
func hostOnly(h []byte) []byte {
	if len(h) == 0 || h[0] == '[' {
		for i := len(h) - 1; i > 0; i-- {
			if h[i] == ']' {
				return h[1:i]
			}
		}
		return h
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == ':' {
			return h[:i]
		}
	}
	return h
}
