package proxy

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/rules"
	"github.com/consentgate/consentgate/telemetry"
)

// Tag scripts (README "Tag scripts") are served on the public listener from the scripts'
// cache, which fetches each from its vendor server-side. A script request is not a hit
// and needs no consent: the fetch carries nothing of the visitor (no cookie, IP, User-
// Agent, Referer or language; only the parameters the script declares, each a checked
// token), so the vendor learns nothing of who loads the script. What the script then
// sends is a hit, and that is what consent decides.

// scriptServer is the process's script serving: the cache and the clients to the
// vendors outlive reloads, so a reload neither empties the cache nor drops connections.
type scriptServer struct {
	cache *scriptCache
	group singleflight.Group
	now   func() time.Time // the cache's clock (tests move it)
	// waiting, when set (tests), is called by every request about to wait on a fetch.
	waiting func()
	// lastLog is when a failed fetch of each script (by metric index) was last logged.
	lastLog [telemetry.MaxScripts]atomic.Int64
}

func newScriptServer(cfg *config.Config) *scriptServer {
	return &scriptServer{
		cache: newScriptCache(cfg.Scripts.Cache.MaxBytes, cfg.Scripts.Cache.MaxEntries),
		now:   time.Now,
	}
}

var (
	scriptContentType = []byte("application/javascript; charset=utf-8")
	strNosniff        = []byte("nosniff")
	strGzip           = []byte("gzip")
	strVaryEncoding   = []byte("Accept-Encoding")
	strNoCache        = []byte("no-cache")
	strPublicMaxAge   = []byte("public, max-age=")
	strCrossOrigin    = []byte("cross-origin")
)

// handleScript answers a request for the script rt.Scripts.Scripts[idx] (variant: a
// variant's extensions, see rules.ScriptTable.Lookup). A fresh entry is served without
// allocating; a miss fetches from the vendor once however many requests wait for it.
func (s *Server) handleScript(ctx *fasthttp.RequestCtx, rt *runtime, idx int, variant uint64) {
	defer s.recoverScript(ctx)
	sc := &rt.Scripts.Scripts[idx]
	metric := rt.scriptMetric[idx]
	if !ctx.IsGet() && !ctx.IsHead() {
		s.metrics.ScriptRequest(metric, telemetry.ScriptBadRequest)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		scriptRefusal(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: a script is fetched with GET\n")
		return
	}
	var vals [config.MaxScriptParams][]byte
	if msg := scriptParams(ctx.QueryArgs(), sc, &vals); msg != "" {
		s.metrics.ScriptRequest(metric, telemetry.ScriptBadRequest)
		scriptRefusal(ctx, fasthttp.StatusBadRequest, msg)
		return
	}
	var kb [512]byte
	key := sc.AppendKey(kb[:0], variant, &vals)
	ss := s.scripts
	now := ss.now().UnixNano()
	e := ss.cache.get(key)
	switch {
	case e == nil || now >= e.stale:
	case now < e.fresh:
		s.serveScript(ctx, rt, e, now, metric, telemetry.ScriptHit)
		return
	case e.status == fasthttp.StatusOK && now < e.retryAt.Load():
		// The last refresh failed moments ago: the vendor is not asked again yet.
		s.serveScript(ctx, rt, e, now, metric, telemetry.ScriptStale)
		return
	}
	fetched, err := ss.fetch(s, rt, idx, key, variant, &vals)
	now = ss.now().UnixNano()
	if err == nil {
		s.serveScript(ctx, rt, fetched, now, metric, telemetry.ScriptMiss)
		return
	}
	// The vendor failed: what is cached stands in while it may. (fetch leaves a good
	// entry in place on failure and marks when to try again.)
	if e = ss.cache.get(key); e != nil && e.status == fasthttp.StatusOK && now < e.stale {
		s.serveScript(ctx, rt, e, now, metric, telemetry.ScriptStale)
		return
	}
	s.metrics.ScriptRequest(metric, telemetry.ScriptError)
	if fe, ok := err.(*fetchError); ok && fe.notFound {
		scriptRefusal(ctx, fasthttp.StatusNotFound, "no such script at the vendor\n")
		return
	}
	// 502: the script tag fails, which the page sees and survives; the vendor's own
	// answer (its body and headers) is never relayed.
	scriptRefusal(ctx, fasthttp.StatusBadGateway, "script unavailable\n")
}

// recoverScript keeps a bug in script serving from taking the process down (fasthttp
// does not recover a handler's panic): the request gets a 502 and the log says where.
func (s *Server) recoverScript(ctx *fasthttp.RequestCtx) {
	if r := recover(); r != nil {
		s.log.Error("script handler panicked", "panic", fmt.Sprintf("%T", r), "stack", string(debug.Stack()))
		ctx.Response.Reset()
		scriptRefusal(ctx, fasthttp.StatusBadGateway, "script unavailable\n")
	}
}

// serveScript answers with entry e: the script (gzipped when the browser takes it), or
// 304 when the browser has it, or the remembered 404/502. The proxy's own headers only.
func (s *Server) serveScript(ctx *fasthttp.RequestCtx, rt *runtime, e *scriptEntry, now int64, metric int, outcome telemetry.ScriptOutcome) {
	if e.status != fasthttp.StatusOK {
		s.metrics.ScriptRequest(metric, telemetry.ScriptError)
		if e.status == fasthttp.StatusNotFound {
			scriptRefusal(ctx, e.status, "no such script at the vendor\n")
		} else {
			scriptRefusal(ctx, e.status, "script unavailable\n")
		}
		return
	}
	s.metrics.ScriptRequest(metric, outcome)
	e.used.Store(now)
	h := &ctx.Response.Header
	h.SetContentTypeBytes(scriptContentType)
	h.SetBytesV(fasthttp.HeaderXContentTypeOptions, strNosniff)
	h.SetBytesV(fasthttp.HeaderVary, strVaryEncoding)
	h.SetBytesV(fasthttp.HeaderETag, e.etag)
	// A vendor's public script holds nothing of anyone: a page under
	// Cross-Origin-Embedder-Policy may load it from the proxy's host.
	h.SetBytesV(fasthttp.HeaderCrossOriginResourcePolicy, strCrossOrigin)
	// The browser keeps it for the rest of the entry's freshness, at most
	// browser_max_age; a stale entry, or a browser_max_age of 0, is revalidated each
	// time (cheaply: the ETag answers 304).
	maxAge := min(time.Duration(e.fresh-now), rt.Config.Scripts.Cache.BrowserMaxAge)
	if outcome == telemetry.ScriptStale || maxAge < time.Second {
		h.SetBytesV(fasthttp.HeaderCacheControl, strNoCache)
	} else {
		var cb [48]byte
		h.SetBytesV(fasthttp.HeaderCacheControl, strconv.AppendUint(append(cb[:0], strPublicMaxAge...), uint64(maxAge/time.Second), 10))
	}
	if etagMatches(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), e.etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	if e.gz != nil && acceptsGzip(ctx.Request.Header.Peek(fasthttp.HeaderAcceptEncoding)) {
		h.SetBytesV(fasthttp.HeaderContentEncoding, strGzip)
		ctx.Response.SetBodyRaw(e.gz)
		return
	}
	// Immutable once cached, so the body is handed over without a copy.
	ctx.Response.SetBodyRaw(e.body)
}

// scriptRefusal answers without a script. Never cached by the browser: the next page
// view asks again.
func scriptRefusal(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.Header.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(msg)
}

// scriptParams takes the declared parameters out of the request's query into vals (by
// Params index), each checked; it returns why the request is refused, or "". Other
// parameters (a cache buster, a tracking parameter pasted into the URL) are ignored, not
// refused, and never passed on. The messages name the parameter, never repeat a value.
func scriptParams(args *fasthttp.Args, sc *rules.Script, vals *[config.MaxScriptParams][]byte) string {
	msg := ""
	for k, v := range args.All() {
		i := sc.ParamIndex(k)
		switch {
		case i < 0 || msg != "":
		case vals[i] != nil:
			msg = "parameter " + sc.Params[i] + " is given twice\n"
		case !sc.ValueOK(i, v):
			if len(sc.IDs) > 0 && sc.Params[i] == "id" {
				msg = "parameter id is not one of the IDs this proxy serves\n"
			} else {
				msg = "parameter " + sc.Params[i] + " must be letters, digits, \"-\", \"_\" and \".\"\n"
			}
		default:
			vals[i] = v
		}
	}
	if msg != "" {
		return msg
	}
	for i := range sc.Params {
		if sc.Required(i) && vals[i] == nil {
			return "parameter " + sc.Params[i] + " is required\n"
		}
	}
	return ""
}

// etagMatches reports whether an If-None-Match value names etag, by weak comparison
// (RFC 9110 §13.1.2): "*", or a listed tag equal to it with or without "W/".
func etagMatches(inm, etag []byte) bool {
	if len(inm) == 0 {
		return false
	}
	opaque := trimWeak(etag)
	for len(inm) > 0 {
		var item []byte
		if i := indexByte(inm, ','); i >= 0 {
			item, inm = inm[:i], inm[i+1:]
		} else {
			item, inm = inm, nil
		}
		item = trimSpace(item)
		if len(item) == 1 && item[0] == '*' || string(trimWeak(item)) == string(opaque) {
			return true
		}
	}
	return false
}

func trimWeak(t []byte) []byte {
	if len(t) > 2 && t[0] == 'W' && t[1] == '/' {
		return t[2:]
	}
	return t
}

// acceptsGzip reports whether an Accept-Encoding value takes gzip: listed (or "*")
// without q=0.
func acceptsGzip(ae []byte) bool {
	for len(ae) > 0 {
		var item []byte
		if i := indexByte(ae, ','); i >= 0 {
			item, ae = ae[:i], ae[i+1:]
		} else {
			item, ae = ae, nil
		}
		name, params := item, []byte(nil)
		if i := indexByte(item, ';'); i >= 0 {
			name, params = item[:i], item[i+1:]
		}
		name = trimSpace(name)
		if !equalFold(name, "gzip") && !(len(name) == 1 && name[0] == '*') {
			continue
		}
		return !qZero(params)
	}
	return false
}

// qZero reports whether parameters say q=0 (q=0, q=0.0, q=0.000).
func qZero(params []byte) bool {
	for len(params) > 0 {
		var p []byte
		if i := indexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, nil
		}
		p = trimSpace(p)
		if len(p) < 2 || p[0] != 'q' && p[0] != 'Q' || p[1] != '=' {
			continue
		}
		v := p[2:]
		if len(v) == 0 || v[0] != '0' {
			return false
		}
		for _, c := range v[1:] {
			if c != '.' && c != '0' {
				return false
			}
		}
		return true
	}
	return false
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
