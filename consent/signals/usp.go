package signals

import (
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/usp"
)

// IAB US Privacy strings, from the us_privacy parameter and the usprivacy cookie: an
// opt-out of sale, or a string that cannot be read (a version other than 1 included),
// refuses marketing everywhere.

const (
	paramUSP  = "us_privacy"
	cookieUSP = "usprivacy"
)

var uspSourceNames = [2]string{"us_privacy", "usprivacy"}

type uspState struct {
	raw [2][]byte // parameter, cookie
}

func (r *Reader) readUSP(req Request, st *State, eff *consent.Effective) {
	u := &st.usp
	u.raw[0], u.raw[1] = req.Param(paramUSP), req.Cookie(cookieUSP)
	for _, s := range u.raw {
		if len(s) == 0 {
			continue
		}
		switch sig, err := usp.Parse(s); {
		case err != nil:
			st.Errors.add(KindUSP)
			eff.Deny(consent.Marketing, consent.CauseUSPInvalid)
		case sig.OptedOut():
			eff.Deny(consent.Marketing, consent.CauseUSP)
		}
	}
}

// ExplainUSP is the explain view of one US Privacy string.
type ExplainUSP struct {
	Source     string `json:"source"` // us_privacy parameter or usprivacy cookie
	Value      string `json:"value"`
	Valid      bool   `json:"valid"`
	Error      string `json:"error,omitempty"`
	Notice     string `json:"notice,omitempty"`
	OptOutSale string `json:"opt_out_sale,omitempty"`
	LSPA       string `json:"lspa,omitempty"`
	OptedOut   bool   `json:"opted_out"`
}

func explainUSP(st *State) []ExplainUSP {
	var out []ExplainUSP
	for i, raw := range st.usp.raw {
		if len(raw) == 0 {
			continue
		}
		e := ExplainUSP{Source: uspSourceNames[i], Value: string(raw)}
		sig, err := usp.Parse(raw)
		e.Valid = err == nil
		if err != nil {
			e.Error = err.Error()
		} else {
			e.Notice, e.OptOutSale, e.LSPA = sig.Notice.String(), sig.OptOutSale.String(), sig.LSPA.String()
			e.OptedOut = sig.OptedOut()
		}
		out = append(out, e)
	}
	return out
}
