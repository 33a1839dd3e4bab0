package proxy

import (
	"errors"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/config"
)

// reloadAnswer is the body of POST /admin/reload.
type reloadAnswer struct {
	// ConfigVersion is the config in force after the call: the new one on success, the
	// one that stayed on failure.
	ConfigVersion  string    `json:"config_version"`
	ConfigLoadedAt time.Time `json:"config_loaded_at"`
	Reloaded       bool      `json:"reloaded"`
	Error          string    `json:"error,omitempty"`
	// Errors has one line per problem, FILE:LINE:COL first where the problem has one.
	Errors []string `json:"errors,omitempty"`
}

// reloadAPI answers POST /admin/reload: the same reload as SIGHUP (Server.Reload, one at
// a time, counted in consentgate_config_* as ever), for orchestrators that cannot send a
// signal. 200 with the new config's version, or 400 with every problem and the running
// config kept.
func (s *Server) reloadAPI(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, fasthttp.MethodPost)
		jsonError(ctx, fasthttp.StatusMethodNotAllowed, "use POST")
		return
	}
	if s.draining.Load() {
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "the server is shutting down: nothing was reloaded")
		return
	}
	s.log.Info("reload requested", "source", "admin")
	err := s.Reload() // logs and counts its own outcome
	rt := s.rt.Load()
	a := reloadAnswer{ConfigVersion: rt.Version, ConfigLoadedAt: rt.CompiledAt.UTC(), Reloaded: err == nil}
	if err != nil {
		a.Error = "reload failed: the running config stays in force"
		a.Errors = problemLines(err)
		writeJSON(ctx, fasthttp.StatusBadRequest, a)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, a)
}

// problemLines lists every problem an error holds: a config.Error's, each of a joined
// error's, or the error's own lines.
func problemLines(err error) []string {
	var ce *config.Error
	if errors.As(err, &ce) && ce.Error() == err.Error() {
		lines := make([]string, 0, len(ce.Problems))
		for _, p := range ce.Problems {
			lines = append(lines, p.String())
		}
		return lines
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var lines []string
		for _, e := range j.Unwrap() {
			lines = append(lines, problemLines(e)...)
		}
		return lines
	}
	var lines []string
	for l := range strings.SplitSeq(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
