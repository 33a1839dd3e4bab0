package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/telemetry/dashboard"
)

// handleAdmin serves the admin listener: health, readiness and metrics for the
// platform, and /admin/* (bearer token) for operators and the site's backend.
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	switch {
	case path == "/healthz":
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("ok\n")
	case path == "/readyz":
		s.readyz(ctx)
	case path == "/metrics":
		s.metrics.Handler()(ctx)
	case path == "/api/stats":
		// Aggregate counts only (no visitor data), like /metrics: the admin listener is
		// for a private network, and the dashboard reads it without a token.
		s.stats.Handler()(ctx)
	case path == "/dashboard" || strings.HasPrefix(path, "/dashboard/"):
		dashboard.Handler()(ctx)
	case path+"/" == pprofPrefix || strings.HasPrefix(path, pprofPrefix):
		s.pprof(ctx)
	case strings.HasPrefix(path, "/admin/"):
		if !s.authorised(ctx) {
			return
		}
		s.handleAdminAPI(ctx, path)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	status := map[string]string{"status": "ready", "store": "ok"}
	code := fasthttp.StatusOK
	if s.draining.Load() {
		status["status"], code = "draining", fasthttp.StatusServiceUnavailable
	}
	pctx, cancel := context.WithTimeout(storeCtx, time.Second)
	defer cancel()
	if err := s.store.Ping(pctx); err != nil {
		// The proxy still serves (fail closed) with the store down; readiness says so
		// without taking the instance out of rotation.
		status["store"] = "degraded"
	}
	writeJSON(ctx, code, status)
}

// authorised checks the bearer token in constant time. The token is hashed first so the
// comparison does not leak its length either.
func (s *Server) authorised(ctx *fasthttp.RequestCtx) bool {
	token := s.rt.Load().Config.AdminToken
	if token == "" {
		jsonError(ctx, fasthttp.StatusForbidden, "the admin API is disabled: set admin_token")
		return false
	}
	got, ok := strings.CutPrefix(string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)), "Bearer ")
	want := sha256.Sum256([]byte(token))
	have := sha256.Sum256([]byte(got))
	if !ok || subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="consentgate"`)
		jsonError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
		return false
	}
	return true
}

func (s *Server) handleAdminAPI(ctx *fasthttp.RequestCtx, path string) {
	rt := s.rt.Load()
	method := string(ctx.Method())
	if path == "/admin/reload" {
		s.reloadAPI(ctx)
		return
	}
	if path == "/admin/explain" {
		if method != fasthttp.MethodPost {
			jsonError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
			return
		}
		var in ExplainRequest
		dec := json.NewDecoder(strings.NewReader(string(ctx.PostBody())))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			jsonError(ctx, fasthttp.StatusBadRequest, "explain: "+err.Error())
			return
		}
		code, body := s.Explain(ctx, in)
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(code)
		ctx.SetBody(body)
		return
	}
	id, ok := strings.CutPrefix(path, "/admin/consent/")
	id, history := strings.CutSuffix(id, "/history")
	if !ok || id == "" || strings.Contains(id, "/") {
		jsonError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	if !consent.ValidID([]byte(id)) {
		jsonError(ctx, fasthttp.StatusBadRequest, "malformed consent ID: expected the 22-character ID from the consent cookie")
		return
	}
	if history {
		s.consentHistory(ctx, method, id)
		return
	}
	switch method {
	case fasthttp.MethodPut:
		s.putConsent(ctx, rt, id, "admin", true)
	case fasthttp.MethodGet:
		s.getConsent(ctx, id, true)
	case fasthttp.MethodDelete:
		s.deleteConsent(ctx, id)
	default:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, PUT, DELETE")
		jsonError(ctx, fasthttp.StatusMethodNotAllowed, "use GET, PUT or DELETE")
	}
}

// deleteConsent withdraws (the receipts stay as proof), or with ?erase=true erases the
// state and every receipt (GDPR Art. 17).
func (s *Server) deleteConsent(ctx *fasthttp.RequestCtx, id string) {
	var erase bool
	switch v := string(ctx.QueryArgs().Peek("erase")); v {
	case "", "false":
	case "true":
		erase = true
	default:
		jsonError(ctx, fasthttp.StatusBadRequest, "erase must be true or false, got "+strconv.Quote(v))
		return
	}
	var deleted bool
	var err error
	if erase {
		deleted, err = s.store.Erase(storeCtx, id)
	} else {
		deleted, err = s.withdraw(ctx, id, "admin")
	}
	switch {
	case err != nil:
		storeUnavailable(ctx)
	case !deleted:
		jsonError(ctx, fasthttp.StatusNotFound, "no consent stored for this ID")
	default:
		s.log.Info("consent deleted", "source", "admin", "erased", erase)
		writeJSON(ctx, fasthttp.StatusOK, map[string]bool{"deleted": true, "erased": erase})
	}
}

// consentHistory answers GET /admin/consent/{id}/history: the proof-of-consent receipts.
func (s *Server) consentHistory(ctx *fasthttp.RequestCtx, method, id string) {
	if method != fasthttp.MethodGet {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET")
		jsonError(ctx, fasthttp.StatusMethodNotAllowed, "use GET")
		return
	}
	rs, err := s.store.History(storeCtx, id)
	if err != nil {
		storeUnavailable(ctx)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(consent.MarshalReceipts(rs))
}
