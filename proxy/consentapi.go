package proxy

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/telemetry"
)

// handleConsentAPI serves /consent on the public listener: the site's banner posts the
// visitor's choice here, and the consent cookie is issued: the ID, which only this
// server mints, and the signed snapshot of the choice (snapshot.go). Writes are refused
// from other sites (origin.go) and rate limited per address and network (limits.*).
func (s *Server) handleConsentAPI(ctx *fasthttp.RequestCtx, rt *runtime) {
	s.corsConsent(ctx, rt)
	id, snap, ok := consent.SplitCookie(ctx.Request.Header.Cookie(rt.Config.Consent.Cookie))
	if ok && !consent.ValidID(id) {
		id, snap, ok = nil, nil, false
	}
	method := string(ctx.Method())
	switch method {
	case fasthttp.MethodOptions:
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowMethods, "GET, POST, DELETE")
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowHeaders, "Content-Type")
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlMaxAge, "86400")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	case fasthttp.MethodGet:
		if !ok {
			jsonError(ctx, fasthttp.StatusNotFound, "no consent stored for this visitor")
			return
		}
		// The store's record only: without one, the snapshot's grants decide nothing
		// unless the record went with an older dataset (snapshot.go), and a banner that
		// finds none asks again, which restores the record.
		s.getConsent(ctx, string(id), false)
		return
	case fasthttp.MethodPost, fasthttp.MethodDelete:
	default:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, POST, DELETE, OPTIONS")
		jsonError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET, POST or DELETE")
		return
	}
	if why, refused := crossSite(&ctx.Request.Header, rt); refused {
		s.metrics.WriteRefused(why)
		jsonError(ctx, fasthttp.StatusForbidden, "consent writes are accepted from this site's own pages and allowed_origins only")
		return
	}
	ip := rt.Trusted.ClientIP(peerAddr(ctx.RemoteIP()), ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor))
	l := rt.limits
	if limit, retry, allowed := allow(ip, s.now(), l.writesIP, l.writesNet, telemetry.LimitConsentWritesIP, telemetry.LimitConsentWritesNet); !allowed {
		s.tooMany(ctx, limit, retry, true)
		return
	}
	if method == fasthttp.MethodPost {
		s.postConsent(ctx, rt, ip, id, snap)
		return
	}
	withdrawn := false
	if ok {
		var err error
		if withdrawn, err = s.withdrawOwn(ctx, rt, id, snap); err != nil {
			storeUnavailable(ctx)
			return
		}
	}
	clearIDCookie(ctx, rt)
	writeJSON(ctx, fasthttp.StatusOK, map[string]bool{"withdrawn": withdrawn})
}

// postConsent writes the visitor's choice. The ID stays the one the cookie presents
// only if the store knows it or its signed snapshot proves this proxy issued it; any
// other ID, well-formed or not, is replaced by a fresh one, so that no one can fix a
// visitor's ID (and read or set their choice) by planting a cookie.
func (s *Server) postConsent(ctx *fasthttp.RequestCtx, rt *runtime, ip netip.Addr, id, snap []byte) {
	w, err := consent.ParseWrite(ctx.PostBody())
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	var prev consent.State
	known := false
	if len(id) > 0 {
		st, found, err := s.store.GetFresh(storeCtx, string(id))
		if err != nil {
			storeUnavailable(ctx)
			return
		}
		sn, proven := s.verifySnapshot(rt, nil, id, snap)
		switch {
		case found:
			prev, known = st, true
			// A snapshot newer than the record (a write the store lost) keeps the
			// version counting up from what the visitor last saw.
			if proven && sn.Version > prev.Version {
				prev.Version = sn.Version
			}
		case proven:
			prev, known = consent.State{Version: sn.Version}, true
			s.metrics.SnapshotUsed(telemetry.SnapshotIDProven)
		}
	}
	idStr := string(id)
	if !known {
		why := telemetry.IDNewVisitor
		if len(id) > 0 {
			why = telemetry.IDUnknown
		}
		l := rt.limits
		if limit, retry, allowed := allow(ip, s.now(), l.newIDsIP, l.newIDsNet, telemetry.LimitNewIDsIP, telemetry.LimitNewIDsNet); !allowed {
			s.tooMany(ctx, limit, retry, true)
			return
		}
		if idStr, err = consent.NewID(); err != nil {
			jsonError(ctx, fasthttp.StatusServiceUnavailable, "could not create a consent ID; retry")
			return
		}
		s.metrics.IDIssued(why)
	}
	// The snapshot this write issues must not count as older than the dataset its record
	// lands in (epoch.go).
	if err := s.store.ensureEpoch(); err != nil {
		storeUnavailable(ctx)
		return
	}
	st, saved := s.saveConsent(ctx, rt, idStr, w, "api", prev, known, false)
	if saved {
		setIDCookie(ctx, rt, rt.snap.Cookie(idStr, consent.SnapshotOf(&st, s.now())), rt.Config.Consent.TTL)
	}
}

// putConsent is the admin API's write (PUT /admin/consent/{id}): the operator's backend
// names the ID, and no cookie is set.
func (s *Server) putConsent(ctx *fasthttp.RequestCtx, rt *runtime, id, source string, showID bool) {
	w, err := consent.ParseWrite(ctx.PostBody())
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	prev, found, err := s.store.GetFresh(storeCtx, id)
	if err != nil {
		storeUnavailable(ctx)
		return
	}
	s.saveConsent(ctx, rt, id, w, source, prev, found, showID)
}

// saveConsent stores w under id, after prev (when there is one: its version is bumped
// and its creation time kept), and answers with the state; it reports the state and
// whether it was saved. Nothing is written unless the whole body was valid, and a write
// the store did not acknowledge is answered 503, never reported as saved.
func (s *Server) saveConsent(ctx *fasthttp.RequestCtx, rt *runtime, id string, w consent.Write, source string, prev consent.State, hasPrev, showID bool) (consent.State, bool) {
	now := s.now().UTC()
	st := consent.State{Purposes: w.Purposes, TCF: w.TCF, Source: source, Version: 1, Created: now, Updated: now}
	if hasPrev {
		st.Version = prev.Version + 1
		if !prev.Created.IsZero() {
			st.Created = prev.Created
		}
	}
	receipt := consent.Receipt{
		Time: now, Action: "consent", Purposes: w.Purposes, Source: source, Version: st.Version,
		UAHash: consent.UAHash(ctx.UserAgent()),
	}
	if err := s.store.Put(storeCtx, id, st, rt.Config.Consent.TTL, receipt); err != nil {
		storeUnavailable(ctx)
		return st, false
	}
	s.log.Info("consent written", "source", source, "version", st.Version)
	shown := ""
	if showID {
		shown = id
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(consent.MarshalState(shown, st))
	return st, true
}

// withdrawOwn withdraws the cookie's ID: when the store holds a state for it, or when its
// signed snapshot proves the proxy issued it (the state may have been evicted, and the
// withdrawal is worth proving). A made-up (well-formed) cookie leaves no receipts trail
// that lives for years.
func (s *Server) withdrawOwn(ctx *fasthttp.RequestCtx, rt *runtime, id, snap []byte) (bool, error) {
	_, found, err := s.store.GetFresh(storeCtx, string(id))
	if err != nil {
		return false, err
	}
	if !found {
		if _, proven := s.verifySnapshot(rt, nil, id, snap); !proven {
			return false, nil
		}
	}
	if _, err := s.store.Delete(storeCtx, string(id), withdrawal(ctx, "api")); err != nil {
		return false, err
	}
	return true, nil
}

// withdraw deletes id's state with a withdrawal receipt, but only if a state exists (the
// admin API).
func (s *Server) withdraw(ctx *fasthttp.RequestCtx, id, source string) (bool, error) {
	if _, ok, err := s.store.GetFresh(storeCtx, id); err != nil || !ok {
		return false, err
	}
	return s.store.Delete(storeCtx, id, withdrawal(ctx, source))
}

// withdrawal is the receipt of a withdrawal: proof that consent was taken back, and when.
func withdrawal(ctx *fasthttp.RequestCtx, source string) consent.Receipt {
	return consent.Receipt{Time: time.Now().UTC(), Action: "withdraw", Source: source, UAHash: consent.UAHash(ctx.UserAgent())}
}

func (s *Server) getConsent(ctx *fasthttp.RequestCtx, id string, showID bool) {
	st, ok, err := s.store.GetFresh(storeCtx, id)
	switch {
	case err != nil:
		storeUnavailable(ctx)
	case !ok:
		jsonError(ctx, fasthttp.StatusNotFound, "no consent stored for this visitor")
	default:
		shown := ""
		if showID {
			shown = id
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(consent.MarshalState(shown, st))
	}
}

// setIDCookie writes the consent cookie ("<id>.<snapshot>") by hand so its attributes
// read as the README documents them (fasthttp's cookie writer lower-cases them). ttl 0
// expires the cookie.
func setIDCookie(ctx *fasthttp.RequestCtx, rt *runtime, value string, ttl time.Duration) {
	maxAge := int64(ttl / time.Second)
	if ttl <= 0 {
		maxAge = 0 // the ID is withdrawn
	}
	v := rt.Config.Consent.Cookie + "=" + value + "; Path=/; Max-Age=" + strconv.FormatInt(maxAge, 10) + "; HttpOnly; SameSite=Lax"
	if rt.Config.Consent.CookieDomain != "" {
		v += "; Domain=" + rt.Config.Consent.CookieDomain
	}
	if rt.Config.Consent.Secure {
		v += "; Secure"
	}
	ctx.Response.Header.Add(fasthttp.HeaderSetCookie, v)
}

// clearIDCookie expires the consent cookie.
func clearIDCookie(ctx *fasthttp.RequestCtx, rt *runtime) { setIDCookie(ctx, rt, "", 0) }

// corsConsent lets the site's pages, on the allowed origins only, call the consent API
// with credentials so the consent cookie is set on the tracking host.
func (s *Server) corsConsent(ctx *fasthttp.RequestCtx, rt *runtime) {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 || !rt.Origins[string(origin)] {
		return
	}
	ctx.Response.Header.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowCredentials, "true")
	ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
}

func storeUnavailable(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	jsonError(ctx, fasthttp.StatusServiceUnavailable, "consent store unavailable: nothing was saved, retry")
}

func jsonError(ctx *fasthttp.RequestCtx, code int, msg string) {
	writeJSON(ctx, code, map[string]string{"error": msg})
}

func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = fasthttp.StatusInternalServerError, []byte(`{"error":"encoding failed"}`)
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(code)
	ctx.SetBody(append(b, '\n'))
}
