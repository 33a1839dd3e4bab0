package gpp

import "strings"

// Test-only encoder: builds GPP strings field by field, independently of the decoder's
// layout tables (the field order below is transcribed from the IAB GPP specification).

type bitWriter struct{ bits []byte }

func (w *bitWriter) put(v, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, byte(v>>i)&1)
	}
}

func (w *bitWriter) putFib(v int) {
	fibs := []int{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987}
	k := 0
	for k+1 < len(fibs) && fibs[k+1] <= v {
		k++
	}
	out := make([]byte, k+1)
	for i := k; i >= 0; i-- {
		if fibs[i] <= v {
			out[i] = 1
			v -= fibs[i]
		}
	}
	w.bits = append(w.bits, out...)
	w.bits = append(w.bits, 1)
}

func (w *bitWriter) base64() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var sb strings.Builder
	for i := 0; i < len(w.bits); i += 6 {
		v := 0
		for j := range 6 {
			v <<= 1
			if i+j < len(w.bits) {
				v |= int(w.bits[i+j])
			}
		}
		sb.WriteByte(alphabet[v])
	}
	return sb.String()
}

// encodeHeader encodes IDs (ascending) as single Fibonacci entries.
func encodeHeader(ids ...int) string {
	var w bitWriter
	w.put(3, 6)
	w.put(1, 6)
	w.put(len(ids), 12)
	prev := 0
	for _, id := range ids {
		w.put(0, 1)
		w.putFib(id - prev)
		prev = id
	}
	return w.base64()
}

// encodeUS encodes a US section in the spec's field order for id/version.
func encodeUS(id int, u US) string {
	var w bitWriter
	w.put(u.Version, 6)
	p := func(f Field) { w.put(int(f), 2) }
	ps := func(fs []Field) {
		for _, f := range fs {
			p(f)
		}
	}
	switch id {
	case SectionUSNat:
		p(u.SharingNotice)
		p(u.SaleOptOutNotice)
		p(u.SharingOptOutNotice)
		p(u.TargetedAdvertisingOptOutNotice)
		p(u.SensitiveDataProcessingOptOutNotice)
		p(u.SensitiveDataLimitUseNotice)
		p(u.SaleOptOut)
		p(u.SharingOptOut)
		p(u.TargetedAdvertisingOptOut)
		ps(u.SensitiveDataProcessing)
		ps(u.KnownChildSensitiveDataConsents)
		p(u.PersonalDataConsents)
	case SectionUSCA:
		p(u.SaleOptOutNotice)
		p(u.SharingOptOutNotice)
		p(u.SensitiveDataLimitUseNotice)
		p(u.SaleOptOut)
		p(u.SharingOptOut)
		ps(u.SensitiveDataProcessing)
		ps(u.KnownChildSensitiveDataConsents)
		p(u.PersonalDataConsents)
	case SectionUSVA, SectionUSCO, SectionUSCT:
		p(u.SharingNotice)
		p(u.SaleOptOutNotice)
		p(u.TargetedAdvertisingOptOutNotice)
		p(u.SaleOptOut)
		p(u.TargetedAdvertisingOptOut)
		ps(u.SensitiveDataProcessing)
		ps(u.KnownChildSensitiveDataConsents)
	case SectionUSUT:
		p(u.SharingNotice)
		p(u.SaleOptOutNotice)
		p(u.TargetedAdvertisingOptOutNotice)
		p(u.SensitiveDataProcessingOptOutNotice)
		p(u.SaleOptOut)
		p(u.TargetedAdvertisingOptOut)
		ps(u.SensitiveDataProcessing)
		ps(u.KnownChildSensitiveDataConsents)
	}
	p(u.MspaCoveredTransaction)
	p(u.MspaOptOutOptionMode)
	p(u.MspaServiceProviderMode)
	s := w.base64()
	if u.GPCSegmentIncluded {
		var g bitWriter
		g.put(1, 2)
		if u.GPC {
			g.put(1, 1)
		} else {
			g.put(0, 1)
		}
		s += "." + g.base64()
	}
	return s
}
