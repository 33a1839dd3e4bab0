package signals

import (
	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/cmp"
)

// The consent banners' own cookies, Cookiebot's CookieConsent and OneTrust's
// OptanonConsent: a refusal always counts; a grant only stands in for a missing stored
// state, and only with signals.cmp.use_as_state. An unreadable cookie is no signal:
// guessing at it could only invent a choice.

const (
	cookieBot      = "CookieConsent"
	cookieOneTrust = "OptanonConsent"
)

type cmpSettings struct {
	oneTrust cmp.OneTrustMap // OptanonConsent groups → purposes
	asState  bool
}

func (s *cmpSettings) compile(cfg *config.CMPConfig) {
	s.oneTrust = cmp.DefaultOneTrustMap
	if len(cfg.OneTrustGroups) > 0 {
		s.oneTrust = cmp.OneTrustMap{}
		for g, name := range cfg.OneTrustGroups {
			if p, ok := consent.ParsePurpose(name); ok {
				s.oneTrust[g] = p
			}
		}
	}
	s.asState = cfg.UseAsState
}

type cmpState struct {
	cookiebot []byte
	onetrust  []byte
	purposes  consent.Purposes // the cookies merged, most protective first
	any       bool             // a cookie was read
	asState   bool             // the cookies stood in for the stored state
}

func (r *Reader) readCMP(req Request, h *Hit, st *State, eff *consent.Effective) {
	c := &st.cmp
	c.cookiebot = req.Cookie(cookieBot)
	c.onetrust = req.Cookie(cookieOneTrust)
	if len(c.cookiebot) > 0 {
		if p, _, err := cmp.ParseCookiebot(c.cookiebot); err == nil {
			mergeCMP(&c.purposes, &p)
			c.any = true
		} else {
			st.Errors.add(KindCookiebot)
		}
	}
	if len(c.onetrust) > 0 {
		if p, err := cmp.ParseOneTrust(c.onetrust, r.cmp.oneTrust); err == nil {
			mergeCMP(&c.purposes, &p)
			c.any = true
		} else {
			st.Errors.add(KindOneTrust)
		}
	}
	if !c.any {
		return
	}
	c.asState = r.cmp.asState && h.Stored == nil && !h.StoreErr
	for p, status := range c.purposes {
		switch {
		case status == consent.Denied:
			eff.Deny(consent.Purpose(p), consent.CauseCMP)
		case status == consent.Granted && c.asState:
			eff.Grant(consent.Purpose(p), consent.CauseCMP)
		}
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

// ExplainCMP is the explain view of the CMP cookies.
type ExplainCMP struct {
	Cookiebot   *ExplainCMPCookie `json:"cookiebot"`
	OneTrust    *ExplainCMPCookie `json:"onetrust"`
	UsedAsState bool              `json:"used_as_state"`
}

// ExplainCMPCookie is one CMP cookie decoded.
type ExplainCMPCookie struct {
	Valid             bool              `json:"valid"`
	Error             string            `json:"error,omitempty"`
	Purposes          map[string]string `json:"purposes,omitempty"`
	NoConsentRequired bool              `json:"no_consent_required,omitempty"`
}

func (r *Reader) explainCMP(st *State) *ExplainCMP {
	c := &st.cmp
	if len(c.cookiebot) == 0 && len(c.onetrust) == 0 {
		return nil
	}
	e := &ExplainCMP{UsedAsState: c.asState}
	if len(c.cookiebot) > 0 {
		p, ncr, err := cmp.ParseCookiebot(c.cookiebot)
		e.Cookiebot = explainCMPCookie(p, err)
		e.Cookiebot.NoConsentRequired = ncr
	}
	if len(c.onetrust) > 0 {
		p, err := cmp.ParseOneTrust(c.onetrust, r.cmp.oneTrust)
		e.OneTrust = explainCMPCookie(p, err)
	}
	return e
}

func explainCMPCookie(p consent.Purposes, err error) *ExplainCMPCookie {
	c := &ExplainCMPCookie{Valid: err == nil}
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Purposes = map[string]string{}
	for i, st := range p {
		c.Purposes[consent.Purpose(i).String()] = st.String()
	}
	return c
}
