package signals

import (
	"maps"
	"sync"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/gpp"
	"github.com/consentgate/consentgate/consent/tcf"
	"github.com/consentgate/consentgate/internal/enum"
)

// IAB TCF: a TC string decides for a vendor on the Global Vendor List where consent is
// opt-in. It is read from the gdpr_consent parameter, the euconsent-v2 cookie, the tcfeuv2
// section of a GPP string that applies, and a string written through the consent API. For
// each of our purposes the vendor must be allowed every TCF purpose mapped to it (by
// consent, or by legitimate interest where TCF permits it); an unreadable string leaves the
// purpose without consent (tcf_invalid). The gdpr parameter is shown, never trusted:
// GeoIP decides where the GDPR applies.

const (
	paramTCF  = "gdpr_consent"
	paramGDPR = "gdpr"
	cookieTCF = "euconsent-v2"
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

var tcfSourceNames = enum.New("source", numTCFSources, "gdpr_consent", "euconsent-v2", "gpp", "store")

// TCF verdicts for one purpose, ordered so the most protective is the largest.
const (
	tcfNothing uint8 = iota
	tcfGrant
	tcfUnknown // the stored string could not be read (Hit.StoredTCFUnknown)
	tcfInvalid
	tcfDeny
)

// DefaultTCFPurposes maps our purposes to the TCF v2.2 purposes a vendor must be allowed
// for a TC string to grant the purpose (signals.tcf.purposes replaces an entry):
//
//	necessary    —            no TCF purpose gates what the site strictly needs
//	preferences  1            store and/or access information on a device
//	statistics   1, 8         … and measure content performance
//	marketing    1, 2, 3, 4, 7 … and use limited data to select ads, create and use
//	                          a personalised ads profile, measure ad performance
var DefaultTCFPurposes = map[consent.Purpose][]int{
	consent.Preferences: {1},
	consent.Statistics:  {1, 8},
	consent.Marketing:   {1, 2, 3, 4, 7},
}

type tcfSettings struct {
	// need[p] has bit i set for each TCF purpose i the vendor must be allowed for a TC
	// string to grant p; 0 means TCF says nothing about p.
	need [consent.NumPurposes]uint32
	// gvlIDs are the distinct GVL IDs of the catalogue's vendors, and gvlSlot[vendor
	// index] the vendor's position in it (-1: not on the GVL). A TC string's verdict is
	// computed once per GVL ID and cached.
	gvlIDs  []int
	gvlSlot []int
	cache   *tcfCache
	// grantFromHits: a string a hit carries may grant (signals.tcf.grant_from: hits);
	// otherwise only the one written through the consent API may, and the others only
	// refuse.
	grantFromHits bool
}

func (s *tcfSettings) compile(cfg *config.TCFConfig, vendors []string, gvl func(string) int) {
	need := maps.Clone(DefaultTCFPurposes)
	for name, ids := range cfg.Purposes {
		if p, ok := consent.ParsePurpose(name); ok {
			need[p] = ids
		}
	}
	for p, ids := range need {
		for _, id := range ids {
			if id >= 1 && id <= 24 {
				s.need[p] |= 1 << id
			}
		}
	}
	s.gvlSlot = make([]int, len(vendors))
	for i, v := range vendors {
		id := gvl(v)
		if set, ok := cfg.Vendors[v]; ok {
			id = set
		}
		s.gvlSlot[i] = -1
		if id <= 0 {
			continue
		}
		slot := -1
		for j, g := range s.gvlIDs {
			if g == id {
				slot = j
			}
		}
		if slot < 0 {
			slot = len(s.gvlIDs)
			s.gvlIDs = append(s.gvlIDs, id)
		}
		s.gvlSlot[i] = slot
	}
	s.cache = newTCFCache(s.gvlIDs)
	s.grantFromHits = cfg.GrantFrom == "hits"
}

// GVLID is the GVL ID used for the vendor at vendorIndex; 0 if it is not on the GVL.
func (r *Reader) GVLID(vendorIndex int) int {
	s := &r.tcf
	if vendorIndex < 0 || vendorIndex >= len(s.gvlSlot) || s.gvlSlot[vendorIndex] < 0 {
		return 0
	}
	return s.gvlIDs[s.gvlSlot[vendorIndex]]
}

type tcfState struct {
	raw     [numTCFSources][]byte
	applied bool // the regime is opt_in and the vendor is on the GVL
	// grantIgnored: a string on the hit would have granted, but only the consent API's may.
	grantIgnored bool
	verdict      [consent.NumPurposes]uint8
}

// readTCF runs after readGPPSections, whose applicable sections say whether a GPP
// string's tcfeuv2 section counts.
func (r *Reader) readTCF(req Request, h *Hit, st *State, eff *consent.Effective) {
	t := &st.tcf
	t.raw[tcfParam] = req.Param(paramTCF)
	t.raw[tcfCookie] = req.Cookie(cookieTCF)
	for i, g := range st.gpp.raw {
		if len(t.raw[tcfGPP]) > 0 || !sectionApplies(st.gpp.sids[i], gpp.SectionTCFEUv2) {
			continue
		}
		if tc, ok := gpp.TCFEUv2(g); ok {
			t.raw[tcfGPP] = tc
		}
	}
	if h.Stored != nil && h.Stored.TCF != "" {
		t.raw[tcfStore] = s2b(h.Stored.TCF)
	}
	slot := -1
	if h.VendorIndex >= 0 && h.VendorIndex < len(r.tcf.gvlSlot) {
		slot = r.tcf.gvlSlot[h.VendorIndex]
	}
	if !h.OptIn || slot < 0 {
		return
	}
	for src := range numTCFSources {
		raw := t.raw[src]
		if len(raw) == 0 {
			continue
		}
		t.applied = true
		allowed, valid := r.tcf.cache.allowed(raw, slot)
		if !valid {
			st.Errors.add(KindTCF)
		}
		for p := range consent.NumPurposes {
			need := r.tcf.need[p]
			if need == 0 {
				continue
			}
			v := tcfDeny
			switch {
			case !valid:
				v = tcfInvalid
			case allowed&need == need:
				v = tcfGrant
				if src != tcfStore && !r.tcf.grantFromHits {
					v = tcfNothing // only a refusal counts from a hit
					t.grantIgnored = true
				}
			}
			t.verdict[p] = max(t.verdict[p], v)
		}
	}
	if h.StoredTCFUnknown {
		t.applied = true
		for p := range consent.NumPurposes {
			if r.tcf.need[p] != 0 {
				t.verdict[p] = max(t.verdict[p], tcfUnknown)
			}
		}
	}
	for p, v := range t.verdict {
		switch v {
		case tcfUnknown:
			eff.NoConsent(consent.Purpose(p), consent.CauseStoreError)
		case tcfGrant:
			eff.Grant(consent.Purpose(p), consent.CauseTCF)
		case tcfInvalid:
			eff.NoConsent(consent.Purpose(p), consent.CauseTCFInvalid)
		case tcfDeny:
			eff.Deny(consent.Purpose(p), consent.CauseTCF)
		}
	}
}

// tcfCache remembers, per raw TC string, which TCF purposes each GVL vendor of the
// catalogue may process for. A visitor sends the same string on every hit, so the string
// is decoded once; the bound keeps a flood of distinct strings from growing it.
type tcfCache struct {
	gvl []int
	mu  sync.RWMutex
	m   map[string]tcfEntry
}

// tcfCacheMax bounds the entries; when full the cache starts over, which costs one decode
// per live visitor rather than an eviction structure on every hit.
const tcfCacheMax = 16384

type tcfEntry struct {
	valid bool
	mask  []uint32 // by GVL slot: bit i set = TCF purpose i allowed
}

func newTCFCache(gvl []int) *tcfCache {
	return &tcfCache{gvl: gvl, m: make(map[string]tcfEntry)}
}

// allowed returns the mask of TCF purposes the vendor in slot may process for under raw,
// and whether raw decodes at all.
func (c *tcfCache) allowed(raw []byte, slot int) (uint32, bool) {
	if len(raw) > tcf.MaxLength {
		// Refused unread, and not cached: a key may not cost more than a TC string.
		return 0, false
	}
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

// ExplainTCF is the explain view of a TC string. The decoded fields are shown whenever the
// string decodes, zero or not; the optional segments only when the string has them.
type ExplainTCF struct {
	Source string `json:"source"` // gdpr_consent, euconsent-v2, gpp or store
	Valid  bool   `json:"valid"`
	Error  string `json:"error,omitempty"`
	// Applied: the string decided for this hit's vendor (opt_in regime, vendor on the GVL).
	Applied bool `json:"applied"`
	// GrantIgnored: a string on the hit would have granted a purpose, but only a string
	// written through the consent API may grant (signals.tcf.grant_from: api).
	GrantIgnored bool `json:"grant_ignored,omitempty"`
	GVLID        int  `json:"gvl_id,omitempty"` // the hit's vendor, 0 if not on the GVL
	// VendorPurposes: the TCF purposes the vendor may process for under this string.
	VendorPurposes []int `json:"vendor_purposes,omitempty"`
	*TCFFields
	Also []ExplainTCF `json:"also,omitempty"` // further TC strings the hit carried
	GDPR *string      `json:"gdpr,omitempty"` // the gdpr hit parameter, shown only
}

// TCFFields are the decoded fields of a TC string.
type TCFFields struct {
	Version               int                  `json:"version"`
	Created               string               `json:"created"`
	LastUpdated           string               `json:"last_updated"`
	CMPID                 int                  `json:"cmp_id"`
	CMPVersion            int                  `json:"cmp_version"`
	ConsentScreen         int                  `json:"consent_screen"`
	ConsentLanguage       string               `json:"consent_language"`
	VendorListVersion     int                  `json:"vendor_list_version"`
	PolicyVersion         int                  `json:"policy_version"`
	IsServiceSpecific     bool                 `json:"is_service_specific"`
	UseNonStandardTexts   bool                 `json:"use_non_standard_texts"`
	PurposeOneTreatment   bool                 `json:"purpose_one_treatment"`
	PublisherCC           string               `json:"publisher_cc"`
	SpecialFeatureOptIns  []int                `json:"special_feature_optins"`
	PurposesConsent       []int                `json:"purposes_consent"`
	PurposesLI            []int                `json:"purposes_li"`
	VendorConsents        []int                `json:"vendor_consents"`
	VendorLI              []int                `json:"vendor_li"`
	PublisherRestrictions []ExplainRestriction `json:"publisher_restrictions"`
	DisclosedVendors      []int                `json:"disclosed_vendors,omitempty"` // optional segment
	AllowedVendors        []int                `json:"allowed_vendors,omitempty"`   // optional segment
	PublisherTC           *ExplainPublisherTC  `json:"publisher_tc,omitempty"`      // optional segment
}

// ExplainRestriction is one publisher restriction of a TC string.
type ExplainRestriction struct {
	Purpose int    `json:"purpose"`
	Type    string `json:"type"` // not_allowed, require_consent, require_li
	Vendors []int  `json:"vendors"`
}

// ExplainPublisherTC is the publisher purposes segment of a TC string.
type ExplainPublisherTC struct {
	PurposesConsent       []int `json:"purposes_consent"`
	PurposesLI            []int `json:"purposes_li"`
	NumCustomPurposes     int   `json:"num_custom_purposes"`
	CustomPurposesConsent []int `json:"custom_purposes_consent"`
	CustomPurposesLI      []int `json:"custom_purposes_li"`
}

func (r *Reader) explainTCF(req Request, h *Hit, st *State) *ExplainTCF {
	var first *ExplainTCF
	gvl := r.GVLID(h.VendorIndex)
	for src := range numTCFSources {
		raw := st.tcf.raw[src]
		if len(raw) == 0 {
			continue
		}
		e := decodeTCF(string(raw), gvl)
		e.Source = tcfSourceNames.String(src)
		e.Applied = st.tcf.applied
		e.GrantIgnored = st.tcf.grantIgnored && src != tcfStore
		if first == nil {
			first = &e
			continue
		}
		first.Also = append(first.Also, e)
	}
	if gdpr := req.Param(paramGDPR); first != nil && len(gdpr) > 0 {
		first.GDPR = strPtr(string(gdpr))
	}
	return first
}

func decodeTCF(raw string, gvl int) ExplainTCF {
	e := ExplainTCF{GVLID: gvl}
	t, err := tcf.Parse(raw)
	if err != nil {
		e.Error = err.Error()
		return e
	}
	e.Valid = true
	f := &TCFFields{
		Version: t.Version, CMPID: t.CmpID, CMPVersion: t.CmpVersion,
		Created: t.Created.UTC().Format(time.RFC3339), LastUpdated: t.LastUpdated.UTC().Format(time.RFC3339),
		ConsentScreen: t.ConsentScreen, ConsentLanguage: t.ConsentLanguage,
		VendorListVersion: t.VendorListVersion, PolicyVersion: t.PolicyVersion,
		IsServiceSpecific: t.IsServiceSpecific, UseNonStandardTexts: t.UseNonStandardTexts, PurposeOneTreatment: t.PurposeOneTreatment,
		PublisherCC:          t.PublisherCC,
		SpecialFeatureOptIns: t.SpecialFeatureOptIns, PurposesConsent: t.PurposeConsents, PurposesLI: t.PurposeLegitimateInterests,
		VendorConsents: t.VendorConsents, VendorLI: t.VendorLegitimateInterests,
		PublisherRestrictions: []ExplainRestriction{},
		DisclosedVendors:      t.DisclosedVendors, AllowedVendors: t.AllowedVendors,
	}
	for _, r := range t.PublisherRestrictions {
		f.PublisherRestrictions = append(f.PublisherRestrictions, ExplainRestriction{
			Purpose: r.Purpose, Type: restrictionNames[min(int(r.Type), 3)], Vendors: r.Vendors(),
		})
	}
	if p := t.PublisherTC; p != nil {
		f.PublisherTC = &ExplainPublisherTC{
			PurposesConsent: p.PurposeConsents, PurposesLI: p.PurposeLegitimateInterests,
			NumCustomPurposes: p.NumCustomPurposes, CustomPurposesConsent: p.CustomPurposeConsents,
			CustomPurposesLI: p.CustomPurposeLegitimateInterests,
		}
	}
	e.TCFFields = f
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
