package rules

import (
	"maps"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/cmp"
)

// vendorGVL holds the IAB Global Vendor List IDs of catalogue vendors that are on the
// GVL. Meta, TikTok's pixel, Matomo and Plausible are not listed: Meta and TikTok do not
// take part in TCF for these tags, and the analytics tools are the site's own. A site
// sets or clears one with signals.tcf.vendors.
var vendorGVL = map[string]int{
	"ga4":        755,  // Google Advertising Products
	"google_ads": 755,  // Google Advertising Products
	"bing":       1126, // Microsoft Advertising
	"linkedin":   804,  // LinkedIn Ireland Unlimited Company
}

// VendorGVLID is the built-in Global Vendor List ID of a catalogue vendor; 0 if none.
func VendorGVLID(vendor string) int { return vendorGVL[vendor] }

// DefaultTCFPurposes maps our purposes to the TCF v2.2 purposes a vendor must be allowed
// (by consent, or by legitimate interest where TCF permits it) for a TC string to grant
// the purpose. All listed purposes are needed:
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

// Signals is the compiled signals section: what a hit's consent signals mean.
type Signals struct {
	// TCFNeed[p] has bit i set for each TCF purpose i the vendor must be allowed for a
	// TC string to grant p; 0 means TCF says nothing about p.
	TCFNeed [consent.NumPurposes]uint32
	// GVLIDs are the distinct GVL IDs of the catalogue's vendors, and GVLSlot[vendor
	// index] the vendor's position in it (-1: not on the GVL). A TC string's verdict is
	// computed once per GVL ID and cached by the proxy.
	GVLIDs  []int
	GVLSlot []int
	// OneTrust maps OptanonConsent groups to purposes.
	OneTrust   cmp.OneTrustMap
	CMPAsState bool
}

// compileSignals builds Signals; the loader has validated every name and number.
func compileSignals(cfg *SignalsConfig, vendors []string) Signals {
	var s Signals
	need := maps.Clone(DefaultTCFPurposes)
	for name, ids := range cfg.TCF.Purposes {
		if p, ok := consent.ParsePurpose(name); ok {
			need[p] = ids
		}
	}
	for p, ids := range need {
		for _, id := range ids {
			if id >= 1 && id <= 24 {
				s.TCFNeed[p] |= 1 << id
			}
		}
	}
	s.GVLSlot = make([]int, len(vendors))
	for i, v := range vendors {
		id := VendorGVLID(v)
		if set, ok := cfg.TCF.Vendors[v]; ok {
			id = set
		}
		s.GVLSlot[i] = -1
		if id <= 0 {
			continue
		}
		slot := -1
		for j, g := range s.GVLIDs {
			if g == id {
				slot = j
			}
		}
		if slot < 0 {
			slot = len(s.GVLIDs)
			s.GVLIDs = append(s.GVLIDs, id)
		}
		s.GVLSlot[i] = slot
	}
	s.OneTrust = cmp.DefaultOneTrustMap
	if len(cfg.CMP.OneTrustGroups) > 0 {
		s.OneTrust = cmp.OneTrustMap{}
		for g, name := range cfg.CMP.OneTrustGroups {
			if p, ok := consent.ParsePurpose(name); ok {
				s.OneTrust[g] = p
			}
		}
	}
	s.CMPAsState = cfg.CMP.UseAsState
	return s
}

// GVLID is the GVL ID used for the vendor at vendorIndex; 0 if it is not on the GVL.
func (s *Signals) GVLID(vendorIndex int) int {
	if vendorIndex < 0 || vendorIndex >= len(s.GVLSlot) || s.GVLSlot[vendorIndex] < 0 {
		return 0
	}
	return s.GVLIDs[s.GVLSlot[vendorIndex]]
}
