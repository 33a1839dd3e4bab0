package proxy

import (
	"slices"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/cmp"
	"github.com/consentgate/consentgate/consent/consentmode"
	"github.com/consentgate/consentgate/consent/gpp"
	"github.com/consentgate/consentgate/consent/tcf"
	"github.com/consentgate/consentgate/consent/usp"
)

// The explain view of the in-band signals: everything decoded, so an operator can see
// why a TC string or a GPP string decided what it did.

type explainTCF struct {
	Source string `json:"source"` // gdpr_consent, euconsent-v2, gpp or store
	Valid  bool   `json:"valid"`
	Error  string `json:"error,omitempty"`
	// Applied: the string decided for this hit's vendor (opt_in regime, vendor on the GVL).
	Applied bool `json:"applied"`
	GVLID   int  `json:"gvl_id,omitempty"` // the hit's vendor, 0 if not on the GVL
	// VendorPurposes: the TCF purposes the vendor may process for under this string.
	VendorPurposes []int `json:"vendor_purposes,omitempty"`

	Version               int                  `json:"version,omitempty"`
	Created               string               `json:"created,omitempty"`
	LastUpdated           string               `json:"last_updated,omitempty"`
	CMPID                 int                  `json:"cmp_id,omitempty"`
	CMPVersion            int                  `json:"cmp_version,omitempty"`
	ConsentScreen         int                  `json:"consent_screen,omitempty"`
	ConsentLanguage       string               `json:"consent_language,omitempty"`
	VendorListVersion     int                  `json:"vendor_list_version,omitempty"`
	PolicyVersion         int                  `json:"policy_version,omitempty"`
	IsServiceSpecific     bool                 `json:"is_service_specific"`
	UseNonStandardTexts   bool                 `json:"use_non_standard_texts"`
	PurposeOneTreatment   bool                 `json:"purpose_one_treatment"`
	PublisherCC           string               `json:"publisher_cc,omitempty"`
	SpecialFeatureOptIns  []int                `json:"special_feature_optins"`
	PurposesConsent       []int                `json:"purposes_consent"`
	PurposesLI            []int                `json:"purposes_li"`
	VendorConsents        []int                `json:"vendor_consents"`
	VendorLI              []int                `json:"vendor_li"`
	PublisherRestrictions []explainRestriction `json:"publisher_restrictions"`
	DisclosedVendors      []int                `json:"disclosed_vendors,omitempty"`
	AllowedVendors        []int                `json:"allowed_vendors,omitempty"`
	PublisherTC           *explainPublisherTC  `json:"publisher_tc,omitempty"`
	Also                  []explainTCF         `json:"also,omitempty"` // further TC strings the hit carried
	GDPR                  *string              `json:"gdpr,omitempty"` // the gdpr hit parameter, shown only
}

type explainRestriction struct {
	Purpose int    `json:"purpose"`
	Type    string `json:"type"` // not_allowed, require_consent, require_li
	Vendors []int  `json:"vendors"`
}

type explainPublisherTC struct {
	PurposesConsent       []int `json:"purposes_consent"`
	PurposesLI            []int `json:"purposes_li"`
	NumCustomPurposes     int   `json:"num_custom_purposes"`
	CustomPurposesConsent []int `json:"custom_purposes_consent"`
	CustomPurposesLI      []int `json:"custom_purposes_li"`
}

type explainGPP struct {
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

type explainUSP struct {
	Source     string `json:"source"` // us_privacy parameter or usprivacy cookie
	Value      string `json:"value"`
	Valid      bool   `json:"valid"`
	Error      string `json:"error,omitempty"`
	Notice     string `json:"notice,omitempty"`
	OptOutSale string `json:"opt_out_sale,omitempty"`
	LSPA       string `json:"lspa,omitempty"`
	OptedOut   bool   `json:"opted_out"`
}

type explainGCD struct {
	Value string                       `json:"value"`
	Valid bool                         `json:"valid"`
	Error string                       `json:"error,omitempty"`
	Types map[string]map[string]string `json:"types,omitempty"` // type → default, update, current
}

type explainMP struct {
	Valid             bool   `json:"valid"`
	AdUserData        string `json:"ad_user_data"`
	AdPersonalization string `json:"ad_personalization"`
}

type explainCMP struct {
	Cookiebot   *explainCMPCookie `json:"cookiebot"`
	OneTrust    *explainCMPCookie `json:"onetrust"`
	UsedAsState bool              `json:"used_as_state"`
}

type explainCMPCookie struct {
	Valid             bool              `json:"valid"`
	Error             string            `json:"error,omitempty"`
	Purposes          map[string]string `json:"purposes,omitempty"`
	NoConsentRequired bool              `json:"no_consent_required,omitempty"`
}

func explainTCFs(rt *runtime, h *hit, gdpr []byte) *explainTCF {
	var first *explainTCF
	gvl := rt.rules.Signals.GVLID(h.ep.VendorIndex)
	for src := range numTCFSources {
		raw := h.sig.tcfRaw[src]
		if len(raw) == 0 {
			continue
		}
		e := decodeTCF(string(raw), gvl)
		e.Source = tcfSourceNames[src]
		e.Applied = h.sig.tcfApplied
		if first == nil {
			first = &e
			continue
		}
		first.Also = append(first.Also, e)
	}
	if first != nil && len(gdpr) > 0 {
		first.GDPR = strPtr(string(gdpr))
	}
	return first
}

func decodeTCF(raw string, gvl int) explainTCF {
	e := explainTCF{GVLID: gvl}
	t, err := tcf.Parse(raw)
	if err != nil {
		e.Error = err.Error()
		return e
	}
	e.Valid = true
	e.Version, e.CMPID, e.CMPVersion = t.Version, t.CmpID, t.CmpVersion
	e.Created, e.LastUpdated = t.Created.UTC().Format(time.RFC3339), t.LastUpdated.UTC().Format(time.RFC3339)
	e.ConsentScreen, e.ConsentLanguage = t.ConsentScreen, t.ConsentLanguage
	e.VendorListVersion, e.PolicyVersion = t.VendorListVersion, t.PolicyVersion
	e.IsServiceSpecific, e.UseNonStandardTexts, e.PurposeOneTreatment = t.IsServiceSpecific, t.UseNonStandardTexts, t.PurposeOneTreatment
	e.PublisherCC = t.PublisherCC
	e.SpecialFeatureOptIns, e.PurposesConsent, e.PurposesLI = t.SpecialFeatureOptIns, t.PurposeConsents, t.PurposeLegitimateInterests
	e.VendorConsents, e.VendorLI = t.VendorConsents, t.VendorLegitimateInterests
	e.PublisherRestrictions = []explainRestriction{}
	for _, r := range t.PublisherRestrictions {
		e.PublisherRestrictions = append(e.PublisherRestrictions, explainRestriction{
			Purpose: r.Purpose, Type: restrictionNames[min(int(r.Type), 3)], Vendors: r.Vendors(),
		})
	}
	e.DisclosedVendors, e.AllowedVendors = t.DisclosedVendors, t.AllowedVendors
	if p := t.PublisherTC; p != nil {
		e.PublisherTC = &explainPublisherTC{
			PurposesConsent: p.PurposeConsents, PurposesLI: p.PurposeLegitimateInterests,
			NumCustomPurposes: p.NumCustomPurposes, CustomPurposesConsent: p.CustomPurposeConsents,
			CustomPurposesLI: p.CustomPurposeLegitimateInterests,
		}
	}
	if gvl > 0 {
		e.VendorPurposes = []int{}
		for p := 1; p <= 24; p++ {
			if c, li := t.Allowed(gvl, p); c || li {
				e.VendorPurposes = append(e.VendorPurposes, p)
			}
		}
	}
	return e
}

var restrictionNames = [4]string{"not_allowed", "require_consent", "require_li", "undefined"}

var gppSourceNames = [2]string{"gpp", "__gpp"}

func explainGPPs(h *hit) []explainGPP {
	var out []explainGPP
	for i, raw := range h.sig.gppRaw {
		if len(raw) == 0 {
			continue
		}
		e := explainGPP{Source: gppSourceNames[i], SectionIDs: []int{}, Sections: []map[string]any{}}
		// The same applicable sections and verdict as the decision used.
		if len(h.sig.gppSIDs[i]) > 0 {
			e.SID = slices.Clone(h.sig.gppSIDs[i])
		}
		if sid := h.sig.gppSIDRaw[i]; len(sid) > 0 && len(e.SID) == 0 {
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

var uspSourceNames = [2]string{"us_privacy", "usprivacy"}

func explainUSPs(h *hit) []explainUSP {
	var out []explainUSP
	for i, raw := range h.sig.uspRaw {
		if len(raw) == 0 {
			continue
		}
		e := explainUSP{Source: uspSourceNames[i], Value: string(raw)}
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

func explainGCDValue(h *hit) *explainGCD {
	if len(h.sig.gcd) == 0 {
		return nil
	}
	e := &explainGCD{Value: string(h.sig.gcd), Valid: h.sig.gcdErr == nil}
	if h.sig.gcdErr != nil {
		e.Error = h.sig.gcdErr.Error()
		return e
	}
	e.Types = map[string]map[string]string{}
	for t := consentmode.Type(0); t < consentmode.NumTypes; t++ {
		sg := h.sig.cm.GCD[t]
		e.Types[t.String()] = map[string]string{"default": sg.Default.String(), "update": sg.Update.String(), "current": sg.Current().String()}
	}
	return e
}

func explainCMPs(rt *runtime, h *hit) *explainCMP {
	if len(h.sig.cookiebot) == 0 && len(h.sig.onetrust) == 0 {
		return nil
	}
	e := &explainCMP{UsedAsState: h.sig.cmpAsState}
	if len(h.sig.cookiebot) > 0 {
		p, ncr, err := cmp.ParseCookiebot(h.sig.cookiebot)
		e.Cookiebot = cmpCookie(p, err)
		e.Cookiebot.NoConsentRequired = ncr
	}
	if len(h.sig.onetrust) > 0 {
		p, err := cmp.ParseOneTrust(h.sig.onetrust, rt.rules.Signals.OneTrust)
		e.OneTrust = cmpCookie(p, err)
	}
	return e
}

func cmpCookie(p consent.Purposes, err error) *explainCMPCookie {
	c := &explainCMPCookie{Valid: err == nil}
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
