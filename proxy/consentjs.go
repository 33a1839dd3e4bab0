package proxy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/cmp"
	"github.com/consentgate/consentgate/consent/signals"
	"github.com/consentgate/consentgate/geo"
)

// consentScriptPath is where the public listener serves consentgate.js.
const consentScriptPath = "/consentgate.js"

// consentScriptSource is consentgate.js with one placeholder where the proxy writes the
// visitor's settings when it serves the script.
//
//go:embed consentjs/consentgate.js
var consentScriptSource []byte

const consentScriptMarker = "__CONSENTGATE_CONFIG__"

// consentScript is consentgate.js compiled for one config: the source cut at the
// placeholder, the settings every visitor shares (the OneTrust group map, the TCF
// purpose map), and each jurisdiction group's own, so that serving it is a few appends
// and the visitor's stored choice.
type consentScript struct {
	head, tail []byte
	shared     []byte   // `,"onetrust":{…},"tcf":{…}`
	groups     [][]byte // by geo.GroupID: `{"regime":"opt_in","jurisdiction":"eea","gpc":false`
}

// scriptConfig is what the script reads besides the visitor's stored choice.
type scriptGroup struct {
	Regime       string `json:"regime"`
	Jurisdiction string `json:"jurisdiction"`
	// GPC: Sec-GPC: 1 refuses marketing in this group, so the Consent Mode defaults
	// refuse the ad types when the browser sends it.
	GPC bool `json:"gpc"`
}

type scriptShared struct {
	// OneTrust maps OneTrust group IDs to purposes: signals.cmp.onetrust_groups, or
	// OneTrust's default categories, the map the proxy reads OptanonConsent with.
	OneTrust map[string]string `json:"onetrust"`
	// TCF maps our purposes to the TCF purposes that must all be allowed for a TC
	// string to grant them: signals.tcf.purposes over the defaults.
	TCF map[string][]int `json:"tcf"`
}

func compileConsentScript(rt *runtime) (*consentScript, error) {
	head, tail, ok := bytes.Cut(consentScriptSource, []byte(consentScriptMarker))
	if !ok || bytes.Contains(tail, []byte(consentScriptMarker)) {
		return nil, fmt.Errorf("consentgate.js: the placeholder %s must appear exactly once", consentScriptMarker)
	}
	cfg := rt.Config.Signals
	sh := scriptShared{OneTrust: map[string]string{}, TCF: map[string][]int{}}
	if len(cfg.CMP.OneTrustGroups) > 0 {
		maps.Copy(sh.OneTrust, cfg.CMP.OneTrustGroups)
	} else {
		for g, p := range cmp.DefaultOneTrustMap {
			sh.OneTrust[g] = p.String()
		}
	}
	for p, ids := range signals.DefaultTCFPurposes {
		sh.TCF[p.String()] = ids
	}
	for name, ids := range cfg.TCF.Purposes {
		sh.TCF[name] = ids
	}
	shared, err := json.Marshal(sh)
	if err != nil {
		return nil, fmt.Errorf("consentgate.js: %w", err)
	}
	cs := &consentScript{head: head, tail: tail}
	// The object's braces are dropped: the group's fields, these and "stored" are one
	// object in the script.
	cs.shared = append([]byte{','}, shared[1:len(shared)-1]...)
	for id := geo.GroupID(0); int(id) < len(rt.Table.Names()); id++ {
		g := rt.Table.Group(id)
		b, err := json.Marshal(scriptGroup{Regime: g.Regime.String(), Jurisdiction: g.Name, GPC: g.GPC})
		if err != nil {
			return nil, fmt.Errorf("consentgate.js: %w", err)
		}
		cs.groups = append(cs.groups, b[:len(b)-1])
	}
	return cs, nil
}

// handleConsentScript serves /consentgate.js: the script with the visitor's regime and
// jurisdiction (located as a hit is) and stored choice filled in. It differs per visitor,
// so no cache may keep it.
func (s *Server) handleConsentScript(ctx *fasthttp.RequestCtx, rt *runtime) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed: use GET", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD") // after Error, which resets the headers
		return
	}
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderContentType, "application/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(fasthttp.HeaderCacheControl, "private, no-store")
	// The answer depends on the consent cookie and on the client's address, which no
	// request header names to a cache; no-store is what keeps it out of shared caches.
	h.Set(fasthttp.HeaderVary, "Cookie")
	cs := rt.script
	ip := rt.Trusted.ClientIP(peerAddr(ctx.RemoteIP()), ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor))
	group := visitorGroup(rt, ip)
	body := ctx.Response.AppendBody
	body(cs.head)
	body(cs.groups[group])
	body(cs.shared)
	body([]byte(`,"stored":`))
	body(s.storedForScript(ctx, rt))
	body([]byte{'}'})
	body(cs.tail)
}

// visitorGroup is the jurisdiction group of a browser at ip, found as a hit's is.
func visitorGroup(rt *runtime, ip netip.Addr) geo.GroupID {
	var loc geo.Location
	if ip.IsValid() {
		loc = rt.geo.Lookup(ip)
	}
	return rt.Table.Resolve(loc)
}

// storedForScript is the visitor's stored state as the consent API shows it, or null
// when there is none or the store cannot say: the bridges then post the banner's choice,
// which is what they would do for a new visitor.
func (s *Server) storedForScript(ctx *fasthttp.RequestCtx, rt *runtime) []byte {
	// The store's record only, as GET /consent shows it: the signed snapshot's grants
	// decide nothing without one (snapshot.go), and a bridge that posts the banner's
	// choice again in that case writes the record back.
	id, _, ok := consent.SplitCookie(ctx.Request.Header.Cookie(rt.Config.Consent.Cookie))
	if !ok || !consent.ValidID(id) {
		return []byte("null")
	}
	st, ok, err := s.store.Get(storeCtx, string(id))
	if err != nil || !ok {
		return []byte("null")
	}
	return consent.MarshalState("", st)
}

// scriptPart compiles consentgate.js for each config.
type scriptPart struct{ nop }

func (scriptPart) prepare(_, next *runtime) error {
	cs, err := compileConsentScript(next)
	if err != nil {
		return err
	}
	next.script = cs
	return nil
}
