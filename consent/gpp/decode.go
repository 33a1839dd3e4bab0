package gpp

// b64 maps base64url characters to their 6-bit value; 0xFF marks anything else.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// bitReader reads big-endian bit fields straight from base64url text (no decode
// buffer). The text must have been validated with checkB64.
type bitReader[T ~string | ~[]byte] struct {
	s   T
	pos int // bit position
}

func (r *bitReader[T]) read(n int) (uint32, bool) {
	if r.pos+n > 6*len(r.s) {
		return 0, false
	}
	if off := r.pos % 6; off+n <= 6 { // within one character: the common case
		v := uint32(b64[r.s[r.pos/6]]) >> (6 - off - n) & (1<<n - 1)
		r.pos += n
		return v, true
	}
	var v uint32
	for i := 0; i < n; i++ {
		p := r.pos + i
		v = v<<1 | uint32(b64[r.s[p/6]]>>(5-p%6))&1
	}
	r.pos += n
	return v, true
}

// end reports whether the text stops within the 24-bit group holding the last field read,
// or extra bits beyond it (see ErrTrailingData).
func (r *bitReader[T]) end(extra int) bool { return len(r.s) <= (r.pos+extra+23)/24*4 }

// draftGPCBits are the fields the draft US layouts put at the end of the core, before the
// GPC sub-section replaced them (GpcSegmentType, 2 bits, and Gpc, 1): strings written to
// that draft still circulate (go-gpp's vectors hold some), so a version-1 core without a
// sub-section may run on that far.
const draftGPCBits = 3

func checkB64[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if b64[s[i]] == 0xFF {
			return false
		}
	}
	return true
}

// readFib reads a Fibonacci-coded positive integer (terminated by "11"). Codes longer
// than 16 bits (values > 2583) are rejected: section IDs are small.
func (r *bitReader[T]) readFib() (int, error) {
	fa, fb := 1, 2 // F(2), F(3)
	v, last := 0, uint32(0)
	for i := 0; i < 17; i++ {
		b, ok := r.read(1)
		if !ok {
			return 0, errHeaderTruncated
		}
		if b == 1 && last == 1 {
			return v, nil
		}
		if b == 1 {
			v += fa
		}
		last = b
		fa, fb = fb, fa+fb
	}
	return 0, ErrMalformedHeader
}

// parseHeader decodes the header part of s into ids and checks that s holds no more
// '~'-separated sections than the header lists IDs. Fewer is not a header error: the
// callers report the missing sections one by one (ErrMissingSection).
func parseHeader[T ~string | ~[]byte](s T, ids *[maxSections]uint16) (int, error) {
	if len(s) > MaxLength {
		return 0, ErrTooLong
	}
	h := s[:headerLen(s)]
	if !checkB64(h) {
		return 0, errHeaderBase64
	}
	r := bitReader[T]{s: h}
	typ, ok1 := r.read(6)
	ver, ok2 := r.read(6)
	entries, ok3 := r.read(12)
	if !ok1 || !ok2 || !ok3 {
		return 0, errHeaderTruncated
	}
	if typ != SectionHeader || ver != 1 {
		return 0, ErrMalformedHeader
	}
	n, max := 0, 0
	for range entries {
		isRange, ok := r.read(1)
		if !ok {
			return 0, errHeaderTruncated
		}
		off, err := r.readFib()
		if err != nil {
			return 0, err
		}
		start, end := max+off, max+off
		if isRange == 1 {
			off, err := r.readFib()
			if err != nil {
				return 0, err
			}
			end = start + off
		}
		if end > 0xFFFF || n+end-start+1 > maxSections {
			return 0, ErrMalformedHeader
		}
		for id := start; id <= end; id++ {
			ids[n] = uint16(id)
			n++
		}
		max = end
	}
	if !r.end(0) {
		return 0, errHeaderTrailing
	}
	if countParts(s) > n {
		return 0, ErrMalformedHeader
	}
	return n, nil
}

// Field indexes of usCore.f, in no particular order; layouts give the wire order.
const (
	fSharingNotice = iota
	fSaleOptOutNotice
	fSharingOptOutNotice
	fTargetedAdvertisingOptOutNotice
	fSensitiveDataProcessingOptOutNotice
	fSensitiveDataLimitUseNotice
	fSaleOptOut
	fSharingOptOut
	fTargetedAdvertisingOptOut
	fPersonalDataConsents
	fMspaCoveredTransaction
	fMspaOptOutOptionMode
	fMspaServiceProviderMode
	numFields
	fSensitive  = 100 // followed by a count
	fKnownChild = 101
)

type step struct{ field, count uint8 }

type layout struct {
	steps []step
	gpc   bool // GPC sub-section allowed
}

var (
	mspa = []step{{fMspaCoveredTransaction, 1}, {fMspaOptOutOptionMode, 1}, {fMspaServiceProviderMode, 1}}

	// usnat v1: IAB GPP "US National Privacy Technical Specification" v1.
	layoutUSNatV1 = &layout{gpc: true, steps: cat([]step{
		{fSharingNotice, 1}, {fSaleOptOutNotice, 1}, {fSharingOptOutNotice, 1},
		{fTargetedAdvertisingOptOutNotice, 1}, {fSensitiveDataProcessingOptOutNotice, 1},
		{fSensitiveDataLimitUseNotice, 1}, {fSaleOptOut, 1}, {fSharingOptOut, 1},
		{fTargetedAdvertisingOptOut, 1}, {fSensitive, 12}, {fKnownChild, 2},
		{fPersonalDataConsents, 1}}, mspa)}
	// usnat v2: same fields, 16 sensitive-data and 3 known-child entries.
	layoutUSNatV2 = &layout{gpc: true, steps: cat([]step{
		{fSharingNotice, 1}, {fSaleOptOutNotice, 1}, {fSharingOptOutNotice, 1},
		{fTargetedAdvertisingOptOutNotice, 1}, {fSensitiveDataProcessingOptOutNotice, 1},
		{fSensitiveDataLimitUseNotice, 1}, {fSaleOptOut, 1}, {fSharingOptOut, 1},
		{fTargetedAdvertisingOptOut, 1}, {fSensitive, 16}, {fKnownChild, 3},
		{fPersonalDataConsents, 1}}, mspa)}
	layoutUSCA = &layout{gpc: true, steps: cat([]step{
		{fSaleOptOutNotice, 1}, {fSharingOptOutNotice, 1}, {fSensitiveDataLimitUseNotice, 1},
		{fSaleOptOut, 1}, {fSharingOptOut, 1}, {fSensitive, 9}, {fKnownChild, 2},
		{fPersonalDataConsents, 1}}, mspa)}
	layoutUSVA = &layout{gpc: false, steps: cat([]step{
		{fSharingNotice, 1}, {fSaleOptOutNotice, 1}, {fTargetedAdvertisingOptOutNotice, 1},
		{fSaleOptOut, 1}, {fTargetedAdvertisingOptOut, 1}, {fSensitive, 8}, {fKnownChild, 1}}, mspa)}
	layoutUSCO = &layout{gpc: true, steps: cat([]step{
		{fSharingNotice, 1}, {fSaleOptOutNotice, 1}, {fTargetedAdvertisingOptOutNotice, 1},
		{fSaleOptOut, 1}, {fTargetedAdvertisingOptOut, 1}, {fSensitive, 7}, {fKnownChild, 1}}, mspa)}
	layoutUSUT = &layout{gpc: false, steps: cat([]step{
		{fSharingNotice, 1}, {fSaleOptOutNotice, 1}, {fTargetedAdvertisingOptOutNotice, 1},
		{fSensitiveDataProcessingOptOutNotice, 1}, {fSaleOptOut, 1}, {fTargetedAdvertisingOptOut, 1},
		{fSensitive, 8}, {fKnownChild, 1}}, mspa)}
	layoutUSCT = &layout{gpc: true, steps: cat([]step{
		{fSharingNotice, 1}, {fSaleOptOutNotice, 1}, {fTargetedAdvertisingOptOutNotice, 1},
		{fSaleOptOut, 1}, {fTargetedAdvertisingOptOut, 1}, {fSensitive, 8}, {fKnownChild, 3}}, mspa)}
)

func cat(a, b []step) []step { return append(append([]step(nil), a...), b...) }

// layoutFor returns the layout of a US section version, or nil.
func layoutFor(id, version int) *layout {
	switch id {
	case SectionUSNat:
		switch version {
		case 1:
			return layoutUSNatV1
		case 2:
			return layoutUSNatV2
		}
	case SectionUSCA:
		if version == 1 {
			return layoutUSCA
		}
	case SectionUSVA:
		if version == 1 {
			return layoutUSVA
		}
	case SectionUSCO:
		if version == 1 {
			return layoutUSCO
		}
	case SectionUSUT:
		if version == 1 {
			return layoutUSUT
		}
	case SectionUSCT:
		if version == 1 {
			return layoutUSCT
		}
	}
	return nil
}

// usCore is a decoded US section without slices (stays on the stack).
type usCore struct {
	version            int
	f                  [numFields]Field
	sensitive          [16]Field
	nSensitive         int
	child              [3]Field
	nChild             int
	gpcSegmentIncluded bool
	gpc                bool
}

// decodeUS decodes a usnat/state payload "<core>[.<gpc>]". strictVersion false decodes
// unknown versions with the version-1 layout (tests only: the go-gpp vectors use
// arbitrary versions).
func decodeUS[T ~string | ~[]byte](p T, id int, c *usCore, strictVersion bool) error {
	core, sub, hasSub := p, p[len(p):], false
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			core, sub, hasSub = p[:i], p[i+1:], true
			break
		}
	}
	if !checkB64(core) || (hasSub && !checkB64(sub)) {
		for i := 0; i < len(sub); i++ {
			if sub[i] == '.' {
				return ErrMalformedSection // a second sub-section
			}
		}
		return ErrBadBase64
	}
	r := bitReader[T]{s: core}
	v, ok := r.read(6)
	if !ok {
		return ErrTruncated
	}
	c.version = int(v)
	lay := layoutFor(id, c.version)
	if lay == nil {
		if strictVersion {
			return ErrUnsupportedVersion
		}
		lay = layoutFor(id, 1)
	}
	for i := range c.f {
		c.f[i] = Absent
	}
	for _, st := range lay.steps {
		for range st.count {
			v, ok := r.read(2)
			if !ok {
				return ErrTruncated
			}
			if v == 3 {
				return ErrMalformedSection
			}
			switch st.field {
			case fSensitive:
				c.sensitive[c.nSensitive] = Field(v)
				c.nSensitive++
			case fKnownChild:
				c.child[c.nChild] = Field(v)
				c.nChild++
			default:
				c.f[st.field] = Field(v)
			}
		}
	}
	extra := 0
	if lay.gpc && !hasSub && (c.version == 1 || !strictVersion) {
		extra = draftGPCBits
	}
	if !r.end(extra) {
		return ErrTrailingData
	}
	if hasSub {
		if !lay.gpc {
			return ErrMalformedSection
		}
		r := bitReader[T]{s: sub}
		typ, ok1 := r.read(2)
		g, ok2 := r.read(1)
		if !ok1 || !ok2 {
			return ErrTruncated
		}
		if typ != 1 {
			return ErrMalformedSection
		}
		if !r.end(0) {
			return ErrTrailingData
		}
		c.gpcSegmentIncluded, c.gpc = true, g == 1
	}
	return nil
}

func (c *usCore) export() *US {
	u := &US{
		Version:                             c.version,
		SharingNotice:                       c.f[fSharingNotice],
		SaleOptOutNotice:                    c.f[fSaleOptOutNotice],
		SharingOptOutNotice:                 c.f[fSharingOptOutNotice],
		TargetedAdvertisingOptOutNotice:     c.f[fTargetedAdvertisingOptOutNotice],
		SensitiveDataProcessingOptOutNotice: c.f[fSensitiveDataProcessingOptOutNotice],
		SensitiveDataLimitUseNotice:         c.f[fSensitiveDataLimitUseNotice],
		SaleOptOut:                          c.f[fSaleOptOut],
		SharingOptOut:                       c.f[fSharingOptOut],
		TargetedAdvertisingOptOut:           c.f[fTargetedAdvertisingOptOut],
		PersonalDataConsents:                c.f[fPersonalDataConsents],
		MspaCoveredTransaction:              c.f[fMspaCoveredTransaction],
		MspaOptOutOptionMode:                c.f[fMspaOptOutOptionMode],
		MspaServiceProviderMode:             c.f[fMspaServiceProviderMode],
		GPCSegmentIncluded:                  c.gpcSegmentIncluded,
		GPC:                                 c.gpc,
	}
	if c.nSensitive > 0 {
		u.SensitiveDataProcessing = append([]Field(nil), c.sensitive[:c.nSensitive]...)
	}
	if c.nChild > 0 {
		u.KnownChildSensitiveDataConsents = append([]Field(nil), c.child[:c.nChild]...)
	}
	return u
}
