package proxy

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
)

// handleConsentAPI serves /consent on the public listener: the site's banner posts the
// visitor's choice here, and the opaque consent-ID cookie is issued.
func (s *Server) handleConsentAPI(ctx *fasthttp.RequestCtx, rt *runtime) {
	s.corsConsent(ctx, rt)
	id := ctx.Request.Header.Cookie(rt.Config.Consent.Cookie)
	valid := len(id) > 0 && consent.ValidID(id)
	switch string(ctx.Method()) {
	case fasthttp.MethodOptions:
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowMethods, "GET, POST, DELETE")
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlAllowHeaders, "Content-Type")
		ctx.Response.Header.Set(fasthttp.HeaderAccessControlMaxAge, "86400")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case fasthttp.MethodGet:
		if !valid {
			jsonError(ctx, fasthttp.StatusNotFound, "no consent stored for this visitor")
			return
		}
		s.getConsent(ctx, string(id), false)
	case fasthttp.MethodPost:
		idStr := string(id)
		if !valid {
			var err error
			if idStr, err = consent.NewID(); err != nil {
				jsonError(ctx, fasthttp.StatusServiceUnavailable, "could not create a consent ID; retry")
				return
			}
		}
		if s.putConsent(ctx, rt, idStr, "api", false) {
			setIDCookie(ctx, rt, idStr, rt.Config.Consent.TTL)
		}
	case fasthttp.MethodDelete:
		withdrawn := false
		if valid {
			var err error
			if withdrawn, err = s.withdraw(ctx, string(id), "api"); err != nil {
				storeUnavailable(ctx)
				return
			}
		}
		setIDCookie(ctx, rt, "", 0)
		writeJSON(ctx, fasthttp.StatusOK, map[string]bool{"withdrawn": withdrawn})
	default:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, POST, DELETE, OPTIONS")
		jsonError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET, POST or DELETE")
	}
}

// putConsent validates the body and writes the state; it reports whether it did. Nothing
// is written unless the whole body is valid, and a write the store did not acknowledge
// is answered 503, never reported as saved.
func (s *Server) putConsent(ctx *fasthttp.RequestCtx, rt *runtime, id, source string, showID bool) bool {
	w, err := consent.ParseWrite(ctx.PostBody())
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		return false
	}
	now := time.Now().UTC()
	st := consent.State{Purposes: w.Purposes, TCF: w.TCF, Source: source, Version: 1, Created: now, Updated: now}
	prev, ok, err := s.store.Get(storeCtx, id)
	if err != nil {
		storeUnavailable(ctx)
		return false
	}
	if ok {
		st.Version, st.Created = prev.Version+1, prev.Created
	}
	receipt := consent.Receipt{
		Time: now, Action: "consent", Purposes: w.Purposes, Source: source, Version: st.Version,
		UAHash: consent.UAHash(ctx.UserAgent()),
	}
	if err := s.store.Put(storeCtx, id, st, rt.Config.Consent.TTL, receipt); err != nil {
		storeUnavailable(ctx)
		return false
	}
	s.log.Info("consent written", "source", source, "version", st.Version)
	shown := ""
	if showID {
		shown = id
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(consent.MarshalState(shown, st))
	return true
}

// withdraw deletes id's state with a withdrawal receipt, but only if a state exists: a
// made-up (well-formed) cookie must not leave a receipts trail that lives for years.
func (s *Server) withdraw(ctx *fasthttp.RequestCtx, id, source string) (bool, error) {
	if _, ok, err := s.store.Get(storeCtx, id); err != nil || !ok {
		return false, err
	}
	return s.store.Delete(storeCtx, id, withdrawal(ctx, source))
}

// withdrawal is the receipt of a withdrawal: proof that consent was taken back, and when.
func withdrawal(ctx *fasthttp.RequestCtx, source string) consent.Receipt {
	return consent.Receipt{Time: time.Now().UTC(), Action: "withdraw", Source: source, UAHash: consent.UAHash(ctx.UserAgent())}
}

func (s *Server) getConsent(ctx *fasthttp.RequestCtx, id string, showID bool) {
	st, ok, err := s.store.Get(storeCtx, id)
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

// setIDCookie writes the consent-ID cookie by hand so its attributes read as the README
// documents them (fasthttp's cookie writer lower-cases them). ttl 0 expires the cookie.
func setIDCookie(ctx *fasthttp.RequestCtx, rt *runtime, id string, ttl time.Duration) {
	maxAge := int64(ttl / time.Second)
	if ttl <= 0 {
		maxAge = 0 // the ID is withdrawn
	}
	v := rt.Config.Consent.Cookie + "=" + id + "; Path=/; Max-Age=" + strconv.FormatInt(maxAge, 10) + "; HttpOnly; SameSite=Lax"
	if rt.Config.Consent.CookieDomain != "" {
		v += "; Domain=" + rt.Config.Consent.CookieDomain
	}
	if rt.Config.Consent.Secure {
		v += "; Secure"
	}
	ctx.Response.Header.Add(fasthttp.HeaderSetCookie, v)
}

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
