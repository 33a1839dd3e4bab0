package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"

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
	// BodyBase64 is the body for bytes a JSON string cannot hold, such as a gzip body
	// (with a Content-Encoding header); not with Body.
	BodyBase64 []byte `json:"body_base64"`
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
	// Store says what the consent cookie led to: no_cookie, invalid_id, not_found, found,
	// error, or dataset_lost (no record, and the cookie's snapshot predates the store's
	// dataset: it decided in full).
	Store string `json:"store"`
	signals.Explanation
}

// explainUpstream is the upstream request, from the bytes the HostClient writes: Wire
// is the whole of it byte for byte (request line, headers, blank line, body), and the
// other fields are its parts. Wire is left out for bytes that are not UTF-8, which a
// JSON string cannot hold; WireBase64 has them then.
type explainUpstream struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`          // scheme://host and the request target as on the line
	RequestLine string            `json:"request_line"` // e.g. "GET /g/collect?v=2&… HTTP/1.1"
	Headers     map[string]string `json:"headers"`
	Body        string            `json:"body"`
	Wire        string            `json:"wire,omitempty"`
	WireBase64  []byte            `json:"wire_base64,omitempty"`
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
	// In name order, as net/http and curl send them: the order they are set in is the
	// order forwarded headers take on the wire.
	names := slices.SortedFunc(maps.Keys(in.Headers), func(a, b string) int {
		return strings.Compare(textproto.CanonicalMIMEHeaderKey(a), textproto.CanonicalMIMEHeaderKey(b))
	})
	for _, k := range names {
		req.Header.Set(k, in.Headers[k])
	}
	switch {
	case in.Body != "" && len(in.BodyBase64) > 0:
		return explainError(fasthttp.StatusBadRequest, "body and body_base64: give one")
	case in.Body != "":
		req.SetBodyString(in.Body)
	case len(in.BodyBase64) > 0:
		req.SetBody(in.BodyBase64)
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
	idx, tailAt := rt.Router.LookupRoute(hostOnly(req.Host()), path)
	if idx < 0 {
		return explainError(fasthttp.StatusNotFound, "no route for "+string(path))
	}
	h := acquireHit()
	defer releaseHit(h)
	h.ep, h.tailAt = &rt.Endpoints[idx], tailAt
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
	// A hit dropped before the signals were read (method, path, body) still has them
	// shown, as they stand in the request.
	h.req.r, h.req.body = req, h.body
	out.Signals.Explanation = rt.Signals.Explain(&h.req, &h.sigHit, &h.sig)
	if h.action != rules.Drop {
		up := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(up)
		s.buildUpstream(req, h, up)
		eu, err := explainWire(up)
		if err != nil {
			return explainError(fasthttp.StatusInternalServerError, err.Error())
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

// explainWire describes up from the bytes that go on the wire.
func explainWire(up *fasthttp.Request) (*explainUpstream, error) {
	wire, err := wireBytes(up)
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(wire, []byte("\r\n"))
	eu := &explainUpstream{
		Method:      string(up.Header.Method()),
		URL:         string(up.URI().FullURI()),
		RequestLine: string(line),
		Headers:     map[string]string{},
		Body:        string(up.Body()),
	}
	// The headers as written on the wire, read back: what fasthttp adds when it writes
	// (Content-Length) is shown too, so explain is the exact request.
	var hdr fasthttp.RequestHeader
	if err := hdr.Read(bufio.NewReader(bytes.NewReader(wire))); err != nil {
		return nil, fmt.Errorf("explain: read upstream request back: %w", err)
	}
	for k, v := range hdr.All() {
		eu.Headers[string(k)] = string(v)
	}
	if utf8.Valid(wire) {
		eu.Wire = string(wire)
	} else {
		eu.WireBase64 = wire
	}
	return eu, nil
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
	case h.snapshot == snapshotLost:
		return "dataset_lost"
	}
	return "not_found"
}

func explainError(code int, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return code, append(b, '\n')
}

func strPtr(s string) *string { return &s }
