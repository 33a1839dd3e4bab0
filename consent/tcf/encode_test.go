package tcf

// A field-by-field TC string encoder, written from the IAB "TCF v2.2 TC string format"
// specification tables (Core, Disclosed Vendors, Publisher TC), so tests can build
// strings with known contents and decode them.

import "time"

type bitWriter struct{ bits []byte }

func (w *bitWriter) put(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, byte(v>>i)&1)
	}
}

func (w *bitWriter) flag(b bool) {
	if b {
		w.put(1, 1)
	} else {
		w.put(0, 1)
	}
}

// list writes an n-bit field with the 1-based ids in l set.
func (w *bitWriter) list(l []int, n int) {
	start := len(w.bits)
	w.bits = append(w.bits, make([]byte, n)...)
	for _, id := range l {
		w.bits[start+id-1] = 1
	}
}

func (w *bitWriter) letters(s string) {
	w.put(uint64(s[0]-'A'), 6)
	w.put(uint64(s[1]-'A'), 6)
}

func (w *bitWriter) String() string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := w.bits
	for len(b)%6 != 0 {
		b = append(b, 0)
	}
	out := make([]byte, 0, len(b)/6)
	for i := 0; i < len(b); i += 6 {
		var v byte
		for _, x := range b[i : i+6] {
			v = v<<1 | x
		}
		out = append(out, alpha[v])
	}
	return string(out)
}

func deci(t time.Time) uint64 { return uint64(t.UnixMilli() / 100) }

// vendors writes MaxVendorId, IsRangeEncoding and the bit field or range list.
func (w *bitWriter) vendors(maxID int, ids []int, ranged bool) {
	w.put(uint64(maxID), 16)
	w.flag(ranged)
	if !ranged {
		w.list(ids, maxID)
		return
	}
	w.ranges(toRanges(ids))
}

func (w *bitWriter) ranges(rs []VendorRange) {
	w.put(uint64(len(rs)), 12)
	for _, r := range rs {
		if r.Start == r.End {
			w.put(0, 1)
			w.put(uint64(r.Start), 16)
		} else {
			w.put(1, 1)
			w.put(uint64(r.Start), 16)
			w.put(uint64(r.End), 16)
		}
	}
}

func toRanges(ids []int) []VendorRange {
	var rs []VendorRange
	for _, id := range ids {
		if n := len(rs); n > 0 && rs[n-1].End == id-1 {
			rs[n-1].End = id
			continue
		}
		rs = append(rs, VendorRange{id, id})
	}
	return rs
}

// encode writes t as a TC string; ranged picks the vendor-section encoding.
func encode(t *TCString, ranged bool) string {
	var w bitWriter
	w.put(uint64(t.Version), 6)
	w.put(deci(t.Created), 36)
	w.put(deci(t.LastUpdated), 36)
	w.put(uint64(t.CmpID), 12)
	w.put(uint64(t.CmpVersion), 12)
	w.put(uint64(t.ConsentScreen), 6)
	w.letters(t.ConsentLanguage)
	w.put(uint64(t.VendorListVersion), 12)
	w.put(uint64(t.PolicyVersion), 6)
	w.flag(t.IsServiceSpecific)
	w.flag(t.UseNonStandardTexts)
	w.list(t.SpecialFeatureOptIns, 12)
	w.list(t.PurposeConsents, 24)
	w.list(t.PurposeLegitimateInterests, 24)
	w.flag(t.PurposeOneTreatment)
	w.letters(t.PublisherCC)
	w.vendors(t.MaxVendorConsentID, t.VendorConsents, ranged)
	w.vendors(t.MaxVendorLIID, t.VendorLegitimateInterests, ranged)
	w.put(uint64(len(t.PublisherRestrictions)), 12)
	for _, pr := range t.PublisherRestrictions {
		w.put(uint64(pr.Purpose), 6)
		w.put(uint64(pr.Type), 2)
		w.ranges(pr.Ranges)
	}
	s := w.String()
	maxOf := func(l []int) int {
		if len(l) == 0 {
			return 0
		}
		return l[len(l)-1]
	}
	if t.DisclosedVendors != nil {
		var d bitWriter
		d.put(segDisclosedVendors, 3)
		d.vendors(maxOf(t.DisclosedVendors), t.DisclosedVendors, ranged)
		s += "." + d.String()
	}
	if t.AllowedVendors != nil {
		var d bitWriter
		d.put(segAllowedVendors, 3)
		d.vendors(maxOf(t.AllowedVendors), t.AllowedVendors, ranged)
		s += "." + d.String()
	}
	if p := t.PublisherTC; p != nil {
		var d bitWriter
		d.put(segPublisherTC, 3)
		d.list(p.PurposeConsents, 24)
		d.list(p.PurposeLegitimateInterests, 24)
		d.put(uint64(p.NumCustomPurposes), 6)
		d.list(p.CustomPurposeConsents, p.NumCustomPurposes)
		d.list(p.CustomPurposeLegitimateInterests, p.NumCustomPurposes)
		s += "." + d.String()
	}
	return s
}
