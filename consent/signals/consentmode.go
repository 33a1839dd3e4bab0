package signals

import (
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/consentmode"
)

// Google Consent Mode, on the endpoints that carry it: the gcs, gcd, npa and dma
// parameters, and a Measurement Protocol body's consent{}. It only ever tightens: the page
// sets it itself. An unreadable gcd or consent{} is no signal, so that a format change by
// Google cannot drop all traffic; gcs, the store and the regime still decide.

const (
	paramGCS = "gcs"
	paramGCD = "gcd"
	paramNPA = "npa"
	paramDMA = "dma"
)

type consentModeState struct {
	gcs                 []byte
	gcsOK               bool
	gcsAd, gcsAnalytics consent.Status
	gcd                 []byte
	gcdErr              error
	npa, dma            bool
	mp, mpOK            bool // a Measurement Protocol body was read for consent{}, and it decoded
	signals             consentmode.Signals
}

func (r *Reader) readConsentMode(req Request, h *Hit, st *State, eff *consent.Effective) {
	c := &st.cm
	if v := req.Param(paramGCS); len(v) > 0 {
		c.gcs = v
		if c.gcsAd, c.gcsAnalytics, c.gcsOK = consent.ParseGCS(v); c.gcsOK {
			eff.ApplyGCS(c.gcsAd, c.gcsAnalytics)
		} else {
			st.Errors.add(KindGCS)
		}
	}
	if v := req.Param(paramGCD); len(v) > 0 {
		c.gcd = v
		if c.signals.GCD, c.gcdErr = consentmode.ParseGCD(v); c.gcdErr != nil {
			st.Errors.add(KindGCD)
		}
	}
	c.npa = consentmode.NPA(req.Param(paramNPA))
	c.signals.NPA = c.npa
	c.dma = consentmode.DMA(req.Param(paramDMA))
	if h.JSONBody {
		c.mp = true
		if c.signals.AdUserData, c.signals.AdPersonalization, c.mpOK = consentmode.ParseMPConsent(req.Body()); !c.mpOK {
			st.Errors.add(KindMPConsent)
		}
	}
	consentmode.Tighten(eff, &c.signals)
}

// ExplainConsentMode is the explain view of Google Consent Mode.
type ExplainConsentMode struct {
	GCS              string      `json:"gcs,omitempty"`
	Valid            *bool       `json:"valid,omitempty"` // gcs decoded; absent without gcs
	AdStorage        *string     `json:"ad_storage"`
	AnalyticsStorage *string     `json:"analytics_storage"`
	GCD              *ExplainGCD `json:"gcd,omitempty"`
	NPA              bool        `json:"npa"`
	DMA              bool        `json:"dma"`
	MP               *ExplainMP  `json:"mp_consent,omitempty"`
}

// ExplainGCD is a gcd value decoded: for each consent type its default, update and
// current state.
type ExplainGCD struct {
	Value string                       `json:"value"`
	Valid bool                         `json:"valid"`
	Error string                       `json:"error,omitempty"`
	Types map[string]map[string]string `json:"types,omitempty"` // type → default, update, current
}

// ExplainMP is a Measurement Protocol consent{} decoded.
type ExplainMP struct {
	Valid             bool   `json:"valid"`
	AdUserData        string `json:"ad_user_data"`
	AdPersonalization string `json:"ad_personalization"`
}

func explainConsentMode(st *State) *ExplainConsentMode {
	c := &st.cm
	if len(c.gcs) == 0 && len(c.gcd) == 0 && !c.npa && !c.dma && !c.mp {
		return nil
	}
	e := &ExplainConsentMode{GCS: string(c.gcs), GCD: explainGCD(c), NPA: c.npa, DMA: c.dma}
	if len(c.gcs) > 0 {
		ok := c.gcsOK
		e.Valid = &ok
	}
	if c.gcsOK {
		e.AdStorage, e.AnalyticsStorage = strPtr(c.gcsAd.String()), strPtr(c.gcsAnalytics.String())
	}
	if c.mp {
		e.MP = &ExplainMP{Valid: c.mpOK, AdUserData: c.signals.AdUserData.String(), AdPersonalization: c.signals.AdPersonalization.String()}
	}
	return e
}

func explainGCD(c *consentModeState) *ExplainGCD {
	if len(c.gcd) == 0 {
		return nil
	}
	e := &ExplainGCD{Value: string(c.gcd), Valid: c.gcdErr == nil}
	if c.gcdErr != nil {
		e.Error = c.gcdErr.Error()
		return e
	}
	e.Types = map[string]map[string]string{}
	for t := consentmode.Type(0); t < consentmode.NumTypes; t++ {
		s := c.signals.GCD[t]
		e.Types[t.String()] = map[string]string{"default": s.Default.String(), "update": s.Update.String(), "current": s.Current().String()}
	}
	return e
}
