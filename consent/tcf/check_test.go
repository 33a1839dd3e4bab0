package tcf

// Check is the allocation-free twin of Parse + TCString.Allowed, kept as a test oracle:
// it walks the same decoder without building a TCString (no sinks), so the tests and
// FuzzParse can prove that both accept and reject exactly the same strings and give the
// same answer. It is not product code: nothing outside this package's tests calls it
// (callers decode with Parse and cache the answers per raw string).
//
// It decides whether vendorID may process for purpose (1-based ids) under the TC string
// s by the rule documented on TCString.Allowed. On error both results are false.
// Out-of-range ids (vendor < 1, purpose outside 1-24) yield false, false, nil.
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
	if err := r.end(); err != nil {
		return false, false, err
	}
	if err := otherSegments(s, next, nil); err != nil {
		return false, false, err
	}
	consent, li = decide(&c, purpose, vc, vli, types)
	return consent, li, nil
}
