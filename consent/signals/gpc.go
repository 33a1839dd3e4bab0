package signals

import "github.com/consentgate/consentgate/consent"

// Global Privacy Control: the Sec-GPC request header (and a GPP string's GPC sub-section,
// read in gpp.go) opts the visitor out of marketing where the jurisdiction honours it
// (jurisdictions.groups.*.gpc; by default the opt_out groups).

const headerGPC = "Sec-GPC"

type gpcState struct {
	present  bool // Sec-GPC: 1
	honoured bool // … and the jurisdiction honours it
	fromGPP  bool // a GPP section's GPC sub-section said so
}

func (r *Reader) readGPC(req Request, h *Hit, st *State, eff *consent.Effective) {
	if st.gpc.present = consent.ParseGPC(req.Header(headerGPC)); st.gpc.present && h.GPC {
		st.gpc.honoured = true
		eff.ApplyGPC()
	}
}

// ExplainGPC is the explain view of GPC.
type ExplainGPC struct {
	Present  bool `json:"present"`
	Honoured bool `json:"honoured"`
	FromGPP  bool `json:"from_gpp,omitempty"` // a GPP section's GPC sub-section said so
}

func explainGPC(req Request, h *Hit, st *State) *ExplainGPC {
	g := &st.gpc
	if !g.present && !g.fromGPP && len(req.Header(headerGPC)) == 0 {
		return nil
	}
	return &ExplainGPC{
		Present:  g.present || g.fromGPP,
		Honoured: g.honoured || (g.fromGPP && h.GPC),
		FromGPP:  g.fromGPP,
	}
}
