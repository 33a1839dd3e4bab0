package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

type namedWindow struct {
	name string
	d    time.Duration
}

// handlerWindows are the only windows served: the dashboard offers exactly these, and a
// fixed set keeps the endpoint from being asked for arbitrary amounts of work.
var handlerWindows = []namedWindow{
	{"15m", 15 * time.Minute},
	{"1h", time.Hour},
	{"24h", 24 * time.Hour},
}

const defaultWindow = "1h"

// Handler serves GET /api/stats?window=15m|1h|24h (default 1h) as a Report; with
// vendor= and/or jurisdiction= the Report also carries that Selection's series. A window
// longer than this instance keeps (see WithCapacity) is refused rather than padded with
// zeros that would read as "no traffic". scope=fleet sums every instance (WithFleet;
// the default when there is one), scope=instance this one; fleet without a Fleet is a
// 400, and a Redis that does not answer a 503 naming scope=instance as the way out.
func (s *Stats) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		// Per-instance, per-second figures: a cached copy would be wrong at once.
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "use GET or HEAD")
			return
		}
		args := ctx.QueryArgs()
		name := defaultWindow
		if args.Has("window") {
			name = string(args.Peek("window"))
		}
		w, ok := s.window(name)
		if !ok {
			writeError(ctx, fasthttp.StatusBadRequest, s.windowError(name))
			return
		}
		scope := s.scopes()[0]
		if args.Has("scope") {
			scope = string(args.Peek("scope"))
		}
		switch scope {
		case ScopeInstance:
		case ScopeFleet:
			if s.fleet == nil {
				writeError(ctx, fasthttp.StatusBadRequest, "scope \"fleet\": "+ErrNoFleet.Error())
				return
			}
		default:
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("scope %s: must be %s or %s", strconv.Quote(scope), ScopeFleet, ScopeInstance))
			return
		}
		vendor, jur := string(args.Peek("vendor")), string(args.Peek("jurisdiction"))
		if !validKey(vendor) || !validKey(jur) {
			writeError(ctx, fasthttp.StatusBadRequest, "vendor and jurisdiction are names such as ga4 or eea (letters, digits, _ and -, at most 64)")
			return
		}
		var r Report
		if scope == ScopeFleet {
			// Not ctx as the parent: see proxy's storeCtx. The Fleet bounds each round trip.
			var err error
			if r, err = s.fleet.Query(context.Background(), w, s.clock(), vendor, jur); err != nil {
				writeError(ctx, fasthttp.StatusServiceUnavailable, "fleet figures unavailable: Redis did not answer ("+err.Error()+"); scope=instance shows this instance's figures")
				return
			}
			r.Scopes = s.scopes()
			r.Instance = cleanInstance(s.instance())
		} else {
			r = s.QuerySelection(w, s.clock(), vendor, jur)
		}
		body, err := json.Marshal(r)
		if err != nil {
			writeError(ctx, fasthttp.StatusInternalServerError, fmt.Errorf("stats: encode report: %w", err).Error())
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBody(append(body, '\n'))
	}
}

// validKey accepts "" or a vendor / jurisdiction group name. An unknown name is fine
// (its series is all zeros); anything else is refused so it is never echoed back.
func validKey(k string) bool {
	if len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Stats) window(name string) (time.Duration, bool) {
	for _, w := range s.windows {
		if w.name == name {
			return w.d, true
		}
	}
	return 0, false
}

func (s *Stats) windowError(name string) string {
	if len(s.windows) == 0 {
		return fmt.Sprintf("window %s: this instance keeps only %d minutes of history, less than any window", strconv.Quote(name), s.capacity)
	}
	names := make([]string, len(s.windows))
	for i, w := range s.windows {
		names[i] = w.name
	}
	return fmt.Sprintf("window %s: must be one of %s", strconv.Quote(name), strings.Join(names, ", "))
}

func writeError(ctx *fasthttp.RequestCtx, code int, msg string) {
	body, err := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	if err != nil {
		body = []byte(`{"error":"encoding failed"}`)
	}
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(code)
	ctx.SetBody(append(body, '\n'))
}
