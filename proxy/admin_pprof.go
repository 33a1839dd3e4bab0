package proxy

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// pprofPrefix is where Go's profiler is served on the admin listener, with admin_pprof:
// true and the admin token: the path `go tool pprof` and every Go operator expect.
const pprofPrefix = "/debug/pprof/"

// pprofMaxSeconds bounds a CPU profile or an execution trace: each holds a connection
// and costs CPU for as long as it runs, and only one CPU profile can run at a time.
const pprofMaxSeconds = 60

// pprofHandler serves net/http/pprof's handlers through fasthttp's adaptor: the index,
// every named profile (heap, goroutine, allocs, block, mutex, threadcreate, with debug=
// and seconds=), cmdline, profile (CPU), symbol and trace. Importing net/http/pprof also
// registers them on http.DefaultServeMux, which consentgate never serves.
var pprofHandler = fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, pprofPrefix) {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}))

// pprof serves /debug/pprof/ when admin_pprof is on (read per request, so a reload turns
// it on or off), behind the admin token; off, the path does not exist.
func (s *Server) pprof(ctx *fasthttp.RequestCtx) {
	if !s.rt.Load().Config.AdminPprof {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	if !s.authorised(ctx) {
		return
	}
	if string(ctx.Path()) == strings.TrimSuffix(pprofPrefix, "/") {
		ctx.Redirect(pprofPrefix, fasthttp.StatusMovedPermanently)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() && !(ctx.IsPost() && string(ctx.Path()) == pprofPrefix+"symbol") {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		jsonError(ctx, fasthttp.StatusMethodNotAllowed, "use GET")
		return
	}
	if v := ctx.QueryArgs().Peek("seconds"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > pprofMaxSeconds {
			jsonError(ctx, fasthttp.StatusBadRequest, "seconds must be a whole number from 1 to "+strconv.Itoa(pprofMaxSeconds))
			return
		}
	}
	// A profile describes this process at this moment.
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	pprofHandler(ctx)
}
