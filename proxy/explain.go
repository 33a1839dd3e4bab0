package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/signals"
	"github.com/consentgate/consentgate/rules"
)

// ExplainRequest is a hit described as JSON, for POST /admin/explain and the CLI.
type ExplainRequest struct {
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers"`
	RemoteAddr string            `json:"remote_addr"`
	Body       string            `json:"body"`
}

type explainOut struct {
	Vendor       string            `json:"vendor"`
	Endpoint     string            `json:"endpoint"`
	ClientIP     *string           `json:"client_ip"`
	Country      *string           `json:"country"`
	Subdivision  *string           `json:"subdivision"`
	Jurisdiction string            `json:"jurisdiction"`
	Regime       string            `json:"regime"`
	Consent      consent.Effective `json:"consent"`
	Sources      map[string]string `json:"consent_sources"`
	Signals      explainSignals    `json:"signals"`
	Action       string            `json:"action"`
	Reason       string            `json:"reason"`
	Upstream     *explainUpstream  `json:"upstream"`
}

type explainSignals struct {
	// Store says what the consent cookie led to: no_cookie, invalid_id, not_found, found, error.
	Store string `json:"store"`
	signals.Explanation
}

type explainUpstream struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// Explain runs a described hit through the same code as a live one, sending nothing, and
// returns the HTTP status and the JSON report.
func (s *Server) Explain(ctx context.Context, in ExplainRequest) (int, []byte) {
	rt := s.rt.Load()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if in.Method == "" {
		in.Method = fasthttp.MethodGet
	}
	if in.URL == "" {
		return explainError(fasthttp.StatusBadRequest, "url is required")
	}
	req.Header.SetMethod(strings.ToUpper(in.Method))
	req.SetRequestURI(in.URL)
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	if in.Body != "" {
		req.SetBodyString(in.Body)
	}
	var peer netip.Addr
	if in.RemoteAddr != "" {
		ap, err := netip.ParseAddrPort(in.RemoteAddr)
		if err == nil {
			peer = ap.Addr().Unmap()
		} else if peer, err = netip.ParseAddr(in.RemoteAddr); err != nil {
			return explainError(fasthttp.StatusBadRequest, "remote_addr: not an IP address: "+in.RemoteAddr)
		}
		peer = peer.Unmap()
	}
	path := req.URI().Path()
	idx := rt.Router.Lookup(hostOnly(req.Host()), path)
	if idx < 0 {
		return explainError(fasthttp.StatusNotFound, "no route for "+string(path))
	}
	h := acquireHit()
	defer releaseHit(h)
	h.ep = &rt.Endpoints[idx]
	h.explain = true
	s.evaluate(rt, req, peer, h)

	g := rt.Table.Group(h.group)
	out := explainOut{
		Vendor: h.ep.Vendor, Endpoint: h.ep.Name,
		Jurisdiction: g.Name, Regime: h.regime.String(),
		Consent: h.eff, Sources: map[string]string{},
		Action: h.action.String(), Reason: h.reason.String(),
	}
	if h.ip.IsValid() {
		out.ClientIP = strPtr(h.ip.String())
	}
	if h.loc.Known() {
		out.Country = strPtr(h.loc.CountryCode())
		if sub := h.loc.SubdivisionCode(); sub != "" {
			out.Subdivision = strPtr(sub)
		}
	}
	for p := consent.Purpose(0); p < consent.NumPurposes; p++ {
		out.Sources[p.String()] = h.eff.Cause[p].String()
	}
	out.Signals.Store = storeOutcome(req, rt, h)
	out.Signals.Explanation = rt.Signals.Explain(&h.req, &h.sigHit, &h.sig)
	if h.action != rules.Drop {
		up := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(up)
		s.buildUpstream(req, h, up)
		eu := &explainUpstream{
			Method:  string(up.Header.Method()),
			URL:     up.URI().String(),
			Headers: map[string]string{},
			Body:    string(up.Body()),
		}
		// The headers as written on the wire, read back: what fasthttp adds when it
		// writes (Content-Length) is shown too, so explain is the exact request.
		wire, err := wireHeader(up)
		if err != nil {
			return explainError(fasthttp.StatusInternalServerError, err.Error())
		}
		for k, v := range wire.All() {
			eu.Headers[string(k)] = string(v)
		}
		out.Upstream = eu
	}
	// No HTML escaping: URLs must read as they would be sent ("&", not "\u0026").
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return explainError(fasthttp.StatusInternalServerError, err.Error())
	}
	return fasthttp.StatusOK, b.Bytes()
}

// wireHeader writes up as the upstream client would and parses its header back.
func wireHeader(up *fasthttp.Request) (*fasthttp.RequestHeader, error) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := up.Write(w); err != nil {
		return nil, fmt.Errorf("explain: write upstream request: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("explain: write upstream request: %w", err)
	}
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(&b)); err != nil {
		return nil, fmt.Errorf("explain: read upstream request back: %w", err)
	}
	return &h, nil
}

func storeOutcome(req *fasthttp.Request, rt *runtime, h *hit) string {
	switch {
	case len(req.Header.Cookie(rt.Config.Consent.Cookie)) == 0:
		return "no_cookie"
	case !h.hasID:
		return "invalid_id"
	case h.storeErr:
		return "error"
	case h.stored:
		return "found"
	}
	return "not_found"
}

func explainError(code int, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return code, append(b, '\n')
}

func strPtr(s string) *string { return &s }
