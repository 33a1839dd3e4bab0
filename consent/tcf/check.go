package tcf

// Check decides whether vendorID may process for purpose (1-based ids) under the TC
// string s, without allocating. It returns the two legal bases separately:
//
//	consent: purpose consent for P and vendor consent for V
//	li:      purpose legitimate interest for P and vendor legitimate interest for V,
//	         where P admits legitimate interest: never purpose 1, and not purposes 3-6
//	         under TCF policy version >= 4 (TCF v2.2)
//
// then narrowed by publisher restrictions naming (P, V): type 0 (not allowed) clears
// both, type 1 (require consent) clears li, type 2 (require legitimate interest) clears
// consent; conflicting restrictions clear both. The vendor may process when either
// result is true AND the Global Vendor List declares P under that basis for V (or as
// flexible) — the GVL is not in the string and is the caller's concern. Restrictions are
// applied whether or not the vendor is flexible, which can only make the answer
// stricter. PurposeOneTreatment is decoded (see Parse) but not applied.
//
// The whole string is validated (every segment), so Check returns an error exactly when
// Parse does; on error both results are false and the caller must treat it as no
// consent. Out-of-range ids (vendor < 1, purpose outside 1-24) yield false, false, nil.
func Check(s []byte, vendorID, purpose int) (consent, li bool, err error) {
	if err := validate(s); err != nil {
		return false, false, err
	}
	seg, next := nextSegment(s, 0)
	r := reader{s: seg}
	var c core
	if err := readCore(&r, &c); err != nil {
		return false, false, err
	}
	_, vc, err := vendorSection(&r, vendorID, nil)
	if err != nil {
		return false, false, err
	}
	_, vli, err := vendorSection(&r, vendorID, nil)
	if err != nil {
		return false, false, err
	}
	types, err := pubRestrictions(&r, purpose, vendorID, nil)
	if err != nil {
		return false, false, err
	}
	if err := otherSegments(s, next, nil); err != nil {
		return false, false, err
	}
	consent, li = decide(&c, purpose, vc, vli, types)
	return consent, li, nil
}

// liAllowed reports whether purpose may rest on legitimate interest.
func liAllowed(purpose, policyVersion int) bool {
	if purpose == 1 {
		return false
	}
	if policyVersion >= 4 && purpose >= 3 && purpose <= 6 {
		return false
	}
	return true
}

func decide(c *core, purpose int, vendorConsent, vendorLI bool, types uint8) (consent, li bool) {
	if purpose < 1 || purpose > 24 {
		return false, false
	}
	bit := uint32(1) << (purpose - 1)
	consent = c.purposeConsent&bit != 0 && vendorConsent
	li = c.purposeLI&bit != 0 && vendorLI && liAllowed(purpose, c.policyVersion)
	if types&(1<<NotAllowed) != 0 {
		return false, false
	}
	if types&(1<<RequireConsent) != 0 {
		li = false
	}
	if types&(1<<RequireLI) != 0 {
		consent = false
	}
	return consent, li
}
