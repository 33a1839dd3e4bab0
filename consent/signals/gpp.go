package signals

import (
	"slices"
	"strconv"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/gpp"
)

// IAB Global Privacy Platform strings, from the gpp parameter and the __gpp cookie, each
// with the sections that apply to it (gpp_sid, __gpp_sid; none listed = all). A US opt-out
// in an applicable section, or a string that cannot be read, refuses marketing everywhere;
// a GPC sub-section acts as Sec-GPC: 1. The tcfeuv2 section is read as a TC string
// (tcf.go).

const (
	paramGPP     = "gpp"
	paramGPPSID  = "gpp_sid"
	cookieGPP    = "__gpp"
	cookieGPPSID = "__gpp_sid"
)

var gppSourceNames = [2]string{"gpp", "__gpp"}

type gppState struct {
	raw    [2][]byte // parameter, cookie
	sidRaw [2][]byte
	sids   [2][]int // applicable sections; empty = all
	// sidBuf backs sids: it lives in the pooled State, since a stack array would escape
	// through append.
	sidBuf [2][8]int
}

// readGPPSections reads the GPP strings and the sections that apply to each; it decides
// nothing by itself.
func (r *Reader) readGPPSections(req Request, st *State) {
	g := &st.gpp
	g.raw[0], g.raw[1] = req.Param(paramGPP), req.Cookie(cookieGPP)
	g.sidRaw[0], g.sidRaw[1] = req.Param(paramGPPSID), req.Cookie(cookieGPPSID)
	for i, s := range g.raw {
		if len(s) == 0 {
			continue
		}
		var ok bool
		if g.sids[i], ok = applicableSIDs(g.sidBuf[i][:], g.sidRaw[i]); !ok {
			st.Errors.add(KindGPPSID)
		}
	}
}

// applicableSIDs parses a gpp_sid value into dst. An unreadable list means every section
// applies (the stricter reading); ok reports whether it was readable.
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

// readGPP applies the US opt-outs and the GPC sub-sections of the GPP strings.
func (r *Reader) readGPP(h *Hit, st *State, eff *consent.Effective) {
	g := &st.gpp
	for i, s := range g.raw {
		if len(s) == 0 {
			continue
		}
		out, gpc, err := gpp.OptOut(s, g.sids[i])
		switch {
		case err != nil:
			st.Errors.add(KindGPP)
			eff.Deny(consent.Marketing, consent.CauseGPPInvalid)
		case out:
			eff.Deny(consent.Marketing, consent.CauseGPP)
		}
		if gpc {
			st.gpc.fromGPP = true
			if h.GPC {
				eff.ApplyGPC()
			}
		}
	}
}

// ExplainGPP is the explain view of one GPP string.
type ExplainGPP struct {
	Source     string           `json:"source"` // gpp parameter or __gpp cookie
	Valid      bool             `json:"valid"`
	Error      string           `json:"error,omitempty"`
	SectionIDs []int            `json:"section_ids"`
	SID        []int            `json:"applicable_sections,omitempty"` // gpp_sid; absent = all
	SIDError   string           `json:"gpp_sid_error,omitempty"`
	OptedOut   bool             `json:"opted_out"`
	GPC        bool             `json:"gpc"`
	Sections   []map[string]any `json:"sections"`
}

func explainGPP(st *State) []ExplainGPP {
	g := &st.gpp
	var out []ExplainGPP
	for i, raw := range g.raw {
		if len(raw) == 0 {
			continue
		}
		e := ExplainGPP{Source: gppSourceNames[i], SectionIDs: []int{}, Sections: []map[string]any{}}
		// The same applicable sections and verdict as the decision used.
		if len(g.sids[i]) > 0 {
			e.SID = slices.Clone(g.sids[i])
		}
		if sid := g.sidRaw[i]; len(sid) > 0 && len(e.SID) == 0 {
			e.SIDError = "unreadable gpp_sid " + strconv.Quote(string(sid)) + ": every section applies"
		}
		opt, gpc, err := gpp.OptOut(raw, e.SID)
		e.OptedOut, e.GPC, e.Valid = opt, gpc, err == nil
		if err != nil {
			e.Error = err.Error()
		}
		str, perr := gpp.Parse(string(raw))
		if perr != nil && err == nil {
			// A section that does not apply is malformed: it did not count for this hit.
			e.Error = perr.Error()
		}
		if str.Header.SectionIDs != nil {
			e.SectionIDs = str.Header.SectionIDs
		}
		for _, sec := range str.Sections {
			e.Sections = append(e.Sections, gppSection(sec))
		}
		out = append(out, e)
	}
	return out
}

// gppSection lists a section's fields by their GPP specification names (snake_case).
func gppSection(sec gpp.Section) map[string]any {
	m := map[string]any{"id": sec.ID, "name": sec.Name, "supported": sec.Supported}
	switch {
	case sec.TCFEUv2 != "":
		m["tc_string"] = sec.TCFEUv2
	case sec.USPv1 != nil:
		u := sec.USPv1
		m["version"], m["notice"], m["opt_out_sale"], m["lspa_covered"] = string(u.Version), string(u.Notice), string(u.OptOutSale), string(u.LSPACovered)
	case sec.US != nil:
		u := sec.US
		m["version"] = u.Version
		put := func(name string, f gpp.Field) {
			if f != gpp.Absent {
				m[name] = int(f)
			}
		}
		put("sharing_notice", u.SharingNotice)
		put("sale_opt_out_notice", u.SaleOptOutNotice)
		put("sharing_opt_out_notice", u.SharingOptOutNotice)
		put("targeted_advertising_opt_out_notice", u.TargetedAdvertisingOptOutNotice)
		put("sensitive_data_processing_opt_out_notice", u.SensitiveDataProcessingOptOutNotice)
		put("sensitive_data_limit_use_notice", u.SensitiveDataLimitUseNotice)
		put("sale_opt_out", u.SaleOptOut)
		put("sharing_opt_out", u.SharingOptOut)
		put("targeted_advertising_opt_out", u.TargetedAdvertisingOptOut)
		put("personal_data_consents", u.PersonalDataConsents)
		put("mspa_covered_transaction", u.MspaCoveredTransaction)
		put("mspa_opt_out_option_mode", u.MspaOptOutOptionMode)
		put("mspa_service_provider_mode", u.MspaServiceProviderMode)
		ints := func(fs []gpp.Field) []int {
			out := make([]int, len(fs))
			for i, f := range fs {
				out[i] = int(f)
			}
			return out
		}
		if u.SensitiveDataProcessing != nil {
			m["sensitive_data_processing"] = ints(u.SensitiveDataProcessing)
		}
		if u.KnownChildSensitiveDataConsents != nil {
			m["known_child_sensitive_data_consents"] = ints(u.KnownChildSensitiveDataConsents)
		}
		m["gpc_segment_included"], m["gpc"] = u.GPCSegmentIncluded, u.GPC
		m["opted_out"] = u.OptedOut()
	default:
		m["raw"] = sec.Raw
	}
	return m
}
