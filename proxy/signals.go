package proxy

import (
	"slices"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/cmp"
	"github.com/consentgate/consentgate/consent/consentmode"
	"github.com/consentgate/consentgate/consent/gpp"
	"github.com/consentgate/consentgate/consent/tcf"
	"github.com/consentgate/consentgate/consent/usp"
	"github.com/consentgate/consentgate/geo"
	"github.com/consentgate/consentgate/telemetry"
)

// Where a hit's consent signals are read (README "Consent signals").
const (
	paramTCF       = "gdpr_consent"
	paramGDPR      = "gdpr"
	cookieTCF      = "euconsent-v2"
	paramGPP       = "gpp"
	paramGPPSID    = "gpp_sid"
	cookieGPP      = "__gpp"
	cookieGPPSID   = "__gpp_sid"
	paramUSP       = "us_privacy"
	cookieUSP      = "usprivacy"
	cookieBot      = "CookieConsent"
	cookieOneTrust = "OptanonConsent"
)

// tcfSource names where a TC string came from, in the order they are read.
type tcfSource uint8

const (
	tcfParam  tcfSource = iota // gdpr_consent hit parameter
	tcfCookie                  // euconsent-v2 cookie
	tcfGPP                     // the tcfeuv2 section of a GPP string
	tcfStore                   // written through the consent API
	numTCFSources
)

var tcfSourceNames = [numTCFSources]string{"gdpr_consent", "euconsent-v2", "gpp", "store"}

// tcf verdicts for one purpose, ordered so the most protective is the largest.
const (
	tcfNothing uint8 = iota
	tcfGrant
	tcfInvalid
	tcfDeny
)

// signalState is what the in-band signals of one hit said, as far as explain needs it
// beyond the raw values. Raw values alias the request and live only as long as the
// handler; explain re-decodes them in full.
type signalState struct {
	tcfRaw      [numTCFSources][]byte
	tcfApplied  bool // the regime is opt_in and the vendor is on the GVL
	tcfVerdict  [consent.NumPurposes]uint8
	gppRaw      [2][]byte // parameter, cookie
	gppSIDRaw   [2][]byte
	gppSIDs     [2][]int // applicable sections; empty = all
	sidBuf      [2][8]int
	gppGPC      bool
	uspRaw      [2][]byte // parameter, cookie
	gcd         []byte
	gcdErr      error
	npa, dma    bool
	mp          bool // a Measurement Protocol body was read for consent{}
	mpOK        bool
	cm          consentmode.Signals
	cookiebot   []byte
	onetrust    []byte
	cmpPurposes consent.Purposes // the CMP cookies merged, most protective first
	cmpAny      bool
	cmpAsState  bool
}

// applicableSIDs parses a gpp_sid value into dst. An unreadable list means every
// section applies (the stricter reading); ok reports whether it was readable.
func applicableSIDs(dst []int, raw []byte) (ids []int, ok bool) {
	if len(raw) == 0 {
		return dst[:0], true
	}
	if ids, ok = gpp.AppendSID(dst[:0], raw); !ok {
		return dst[:0], false
	}
	return ids, true
}

// sectionApplies reports whether GPP section id applies under the sids list (empty = all).
func sectionApplies(sids []int, id int) bool {
	return len(sids) == 0 || slices.Contains(sids, id)
}

// readSignals applies every signal the hit carries to h.eff. Order matters only for
// which cause a denial keeps (the first); the outcome is the most protective of all.
// A signal that cannot be read is counted (consentgate_signal_errors_total).
func (s *Server) readSignals(rt *runtime, req *fasthttp.Request, h *hit, st *consent.State, gpcHere bool) {
	sg := &h.sig
	args := req.URI().QueryArgs()
	sig := &rt.rules.Signals

	// CMP cookies: a refusal always counts; a grant only stands in for a missing state.
	// An unreadable cookie is no signal: guessing at it could only invent a choice.
	sg.cookiebot = req.Header.Cookie(cookieBot)
	sg.onetrust = req.Header.Cookie(cookieOneTrust)
	if len(sg.cookiebot) > 0 {
		if p, _, err := cmp.ParseCookiebot(sg.cookiebot); err == nil {
			mergeCMP(&sg.cmpPurposes, &p)
			sg.cmpAny = true
		} else {
			s.signalError(h, telemetry.SignalCookiebot)
		}
	}
	if len(sg.onetrust) > 0 {
		if p, err := cmp.ParseOneTrust(sg.onetrust, sig.OneTrust); err == nil {
			mergeCMP(&sg.cmpPurposes, &p)
			sg.cmpAny = true
		} else {
			s.signalError(h, telemetry.SignalOneTrust)
		}
	}
	if sg.cmpAny {
		sg.cmpAsState = sig.CMPAsState && !h.stored && !h.storeErr
		for p, status := range sg.cmpPurposes {
			switch {
			case status == consent.Denied:
				h.eff.Deny(consent.Purpose(p), consent.CauseCMP)
			case status == consent.Granted && sg.cmpAsState:
				h.eff.Grant(consent.Purpose(p), consent.CauseCMP)
			}
		}
	}

	// GPP strings and the sections that apply to them (gpp_sid).
	sg.gppRaw[0], sg.gppRaw[1] = args.Peek(paramGPP), req.Header.Cookie(cookieGPP)
	sg.gppSIDRaw[0], sg.gppSIDRaw[1] = args.Peek(paramGPPSID), req.Header.Cookie(cookieGPPSID)
	for i, g := range sg.gppRaw {
		if len(g) == 0 {
			continue
		}
		// The buffers live in the pooled hit: a stack array would escape through append.
		var ok bool
		if sg.gppSIDs[i], ok = applicableSIDs(sg.sidBuf[i][:], sg.gppSIDRaw[i]); !ok {
			s.signalError(h, telemetry.SignalGPPSID)
		}
	}

	// IAB TCF: decides for a vendor on the GVL where consent is opt-in.
	sg.tcfRaw[tcfParam] = args.Peek(paramTCF)
	sg.tcfRaw[tcfCookie] = req.Header.Cookie(cookieTCF)
	for i, g := range sg.gppRaw {
		if len(sg.tcfRaw[tcfGPP]) > 0 || !sectionApplies(sg.gppSIDs[i], gpp.SectionTCFEUv2) {
			continue
		}
		if tc, ok := gpp.TCFEUv2(g); ok {
			sg.tcfRaw[tcfGPP] = tc
		}
	}
	if st != nil && st.TCF != "" {
		sg.tcfRaw[tcfStore] = s2b(st.TCF)
	}
	slot := sig.GVLSlot[h.ep.VendorIndex]
	if h.regime == geo.OptIn && slot >= 0 {
		for src := range numTCFSources {
			raw := sg.tcfRaw[src]
			if len(raw) == 0 {
				continue
			}
			sg.tcfApplied = true
			allowed, valid := rt.tcf.allowed(raw, slot)
			if !valid {
				s.signalError(h, telemetry.SignalTCF)
			}
			for p := range consent.NumPurposes {
				need := sig.TCFNeed[p]
				if need == 0 {
					continue
				}
				v := tcfDeny
				switch {
				case !valid:
					v = tcfInvalid
				case allowed&need == need:
					v = tcfGrant
				}
				sg.tcfVerdict[p] = max(sg.tcfVerdict[p], v)
			}
		}
		for p, v := range sg.tcfVerdict {
			switch v {
			case tcfGrant:
				h.eff.Grant(consent.Purpose(p), consent.CauseTCF)
			case tcfInvalid:
				h.eff.NoConsent(consent.Purpose(p), consent.CauseTCFInvalid)
			case tcfDeny:
				h.eff.Deny(consent.Purpose(p), consent.CauseTCF)
			}
		}
	}

	// IAB GPP: a US opt-out (or a string we cannot read) refuses marketing everywhere.
	for i, g := range sg.gppRaw {
		if len(g) == 0 {
			continue
		}
		out, gpc, err := gpp.OptOut(g, sg.gppSIDs[i])
		switch {
		case err != nil:
			s.signalError(h, telemetry.SignalGPP)
			h.eff.Deny(consent.Marketing, consent.CauseGPPInvalid)
		case out:
			h.eff.Deny(consent.Marketing, consent.CauseGPP)
		}
		if gpc {
			sg.gppGPC = true
			if gpcHere {
				h.eff.ApplyGPC()
			}
		}
	}

	// IAB US Privacy: an opt-out of sale (or an unreadable string) refuses marketing.
	sg.uspRaw[0], sg.uspRaw[1] = args.Peek(paramUSP), req.Header.Cookie(cookieUSP)
	for _, u := range sg.uspRaw {
		if len(u) == 0 {
			continue
		}
		switch sig, err := usp.Parse(u); {
		case err != nil:
			s.signalError(h, telemetry.SignalUSP)
			h.eff.Deny(consent.Marketing, consent.CauseUSPInvalid)
		case sig.OptedOut():
			h.eff.Deny(consent.Marketing, consent.CauseUSP)
		}
	}
}

// readConsentMode applies Google Consent Mode (gcs, gcd, npa, MP consent{}): it only
// ever tightens.
func (s *Server) readConsentMode(req *fasthttp.Request, h *hit, jsonBody bool) {
	sg := &h.sig
	args := req.URI().QueryArgs()
	if v := args.Peek("gcs"); len(v) > 0 {
		h.gcs = v
		h.gcsAd, h.gcsAnalytics, h.gcsOK = consent.ParseGCS(v)
		if h.gcsOK {
			h.eff.ApplyGCS(h.gcsAd, h.gcsAnalytics)
		} else {
			s.signalError(h, telemetry.SignalGCS)
		}
	}
	if v := args.Peek("gcd"); len(v) > 0 {
		sg.gcd = v
		// An unreadable gcd is no signal: it can only tighten, and a format change by
		// Google must not drop all traffic. gcs, the store and the regime still decide.
		if sg.cm.GCD, sg.gcdErr = consentmode.ParseGCD(v); sg.gcdErr != nil {
			s.signalError(h, telemetry.SignalGCD)
		}
	}
	sg.npa = consentmode.NPA(args.Peek("npa"))
	sg.cm.NPA = sg.npa
	sg.dma = consentmode.DMA(args.Peek("dma"))
	if jsonBody {
		sg.mp = true
		if sg.cm.AdUserData, sg.cm.AdPersonalization, sg.mpOK = consentmode.ParseMPConsent(req.Body()); !sg.mpOK {
			s.signalError(h, telemetry.SignalMPConsent)
		}
	}
	consentmode.Tighten(&h.eff, &sg.cm)
}

// signalError counts an unreadable signal of a live hit (explain counts nothing).
func (s *Server) signalError(h *hit, k telemetry.SignalKind) {
	if !h.explain {
		s.metrics.SignalError(k)
	}
}

// mergeCMP folds src into dst, the most protective status winning.
func mergeCMP(dst, src *consent.Purposes) {
	for p, s := range src {
		if s == consent.Denied || (s == consent.Granted && dst[p] == consent.Unset) {
			dst[p] = s
		}
	}
}

// tcfCache remembers, per raw TC string, which TCF purposes each GVL vendor of the
// catalogue may process for. A visitor sends the same string on every hit, so the
// string is decoded once; the bound keeps a flood of distinct strings from growing it.
type tcfCache struct {
	gvl []int
	mu  sync.RWMutex
	m   map[string]tcfEntry
}

// tcfCacheMax bounds the entries; when full the cache starts over, which costs one
// decode per live visitor rather than an eviction structure on every hit.
const tcfCacheMax = 16384

type tcfEntry struct {
	valid bool
	mask  []uint32 // by GVL slot: bit i set = TCF purpose i allowed
}

func newTCFCache(gvl []int) *tcfCache {
	return &tcfCache{gvl: gvl, m: make(map[string]tcfEntry)}
}

// allowed returns the mask of TCF purposes the vendor in slot may process for under
// raw, and whether raw decodes at all.
func (c *tcfCache) allowed(raw []byte, slot int) (uint32, bool) {
	c.mu.RLock()
	e, ok := c.m[b2s(raw)]
	c.mu.RUnlock()
	if !ok {
		e = c.decode(string(raw))
		c.mu.Lock()
		if len(c.m) >= tcfCacheMax {
			clear(c.m)
		}
		c.m[string(raw)] = e
		c.mu.Unlock()
	}
	if !e.valid || slot < 0 || slot >= len(e.mask) {
		return 0, e.valid
	}
	return e.mask[slot], true
}

func (c *tcfCache) decode(raw string) tcfEntry {
	t, err := tcf.Parse(raw)
	if err != nil {
		return tcfEntry{}
	}
	e := tcfEntry{valid: true, mask: make([]uint32, len(c.gvl))}
	for i, id := range c.gvl {
		for p := 1; p <= 24; p++ {
			if cons, li := t.Allowed(id, p); cons || li {
				e.mask[i] |= 1 << p
			}
		}
	}
	return e
}
