package tcf

import "errors"

// Sentinel errors; test with errors.Is. Every decode failure wraps exactly one of them.
var (
	// ErrTruncated: the string (or a segment) ends before a field it declares, or is empty.
	ErrTruncated = errors.New("tcf: truncated TC string")
	// ErrVersion: the core segment's version is not 2.
	ErrVersion = errors.New("tcf: unsupported TC string version")
	// ErrBase64: a character outside the base64url alphabet and '.', or '=' other than a
	// segment's trailing padding (one or two '=' completing a group of four characters).
	ErrBase64 = errors.New("tcf: invalid base64url")
	// ErrSegmentType: a segment after the core one has an unknown type.
	ErrSegmentType = errors.New("tcf: unknown segment type")
	// ErrBitFieldOverrun: a vendor range or ID lies outside 1..MaxVendorId (or, in a
	// publisher restriction, outside 1..65535 or with end < start).
	ErrBitFieldOverrun = errors.New("tcf: vendor range outside its section")
	// ErrTrailingData: a segment goes on past the group of four characters (24 bits)
	// that holds its last field. Encoders pad a segment's bits to a byte, to six bits or
	// (the IAB's own) to 24 bits, never further: anything beyond is not part of a TC
	// string, and a string padded with kilobytes of it must not be stored or cached.
	ErrTrailingData = errors.New("tcf: data after the last field of a segment")
	// ErrTooLong: the string is longer than MaxLength.
	ErrTooLong = errors.New("tcf: TC string too long")
)

// MaxLength bounds a TC string. Real ones, even with range-encoded vendor lists and
// publisher restrictions, stay well under 2 KB; the bound keeps what a visitor can make
// the proxy decode, cache and store small.
const MaxLength = 4096

// RestrictionType is a publisher restriction type.
type RestrictionType uint8

const (
	NotAllowed     RestrictionType = 0 // purpose flatly not allowed for the vendor
	RequireConsent RestrictionType = 1 // vendor may only use consent
	RequireLI      RestrictionType = 2 // vendor may only use legitimate interest
	// 3 is undefined in the spec; it is decoded but has no effect in Allowed.
)

// Segment types after the core segment.
const (
	segDisclosedVendors = 1
	segAllowedVendors   = 2 // TCF v2.0 only; removed in v2.2
	segPublisherTC      = 3
)

// b64 maps a base64url character to its 6-bit value, 0xff for anything else.
var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	return t
}()

// reader reads big-endian bit fields straight out of base64url characters.
// All characters were validated, and the segment's '=' padding cut off, before a reader
// is made.
type reader struct {
	s   []byte // one segment, no '.'
	pos int    // bit offset
}

func (r *reader) remaining() int { return len(r.s)*6 - r.pos }

// end checks that the segment stops within the group of four characters holding its last
// field (see ErrTrailingData).
func (r *reader) end() error {
	if len(r.s) > (r.pos+23)/24*4 {
		return ErrTrailingData
	}
	return nil
}

// bits reads n <= 64 bits.
func (r *reader) bits(n int) (uint64, error) {
	if r.remaining() < n {
		return 0, ErrTruncated
	}
	if n > 36 { // custom-purpose fields only: split so the window below fits 64 bits
		hi, _ := r.bits(n - 32)
		lo, _ := r.bits(32)
		return hi<<32 | lo, nil
	}
	if n == 0 {
		return 0, nil
	}
	// Gather the k characters covering [pos, pos+n) into a window, then cut.
	first, off := r.pos/6, r.pos%6
	k := (off + n + 5) / 6
	var w uint64
	for _, c := range r.s[first : first+k] {
		w = w<<6 | uint64(b64[c])
	}
	r.pos += n
	return (w >> (k*6 - off - n)) & (1<<n - 1), nil
}

func (r *reader) bit() (bool, error) {
	v, err := r.bits(1)
	return v == 1, err
}

func (r *reader) skip(n int) error {
	if r.remaining() < n {
		return ErrTruncated
	}
	r.pos += n
	return nil
}

// bitAt reports bit off (absolute) without moving; the caller ensured it is in range.
func (r *reader) bitAt(off int) bool {
	return (b64[r.s[off/6]]>>(5-off%6))&1 == 1
}

// vendorSet collects the vendors of a section, for Parse; nil when only validating
// (the tests' Check).
type vendorSet struct {
	words []uint64
}

func (v *vendorSet) add(lo, hi int) {
	if need := hi/64 + 1; len(v.words) < need {
		v.words = append(v.words, make([]uint64, need-len(v.words))...)
	}
	for i := lo; i <= hi; {
		if i%64 == 0 && hi-i >= 63 {
			v.words[i/64] = ^uint64(0)
			i += 64
			continue
		}
		v.words[i/64] |= 1 << (i % 64)
		i++
	}
}

func (v *vendorSet) list() []int {
	var out []int
	for w, word := range v.words {
		for b := 0; b < 64; b++ {
			if word&(1<<b) != 0 {
				out = append(out, w*64+b)
			}
		}
	}
	return out
}

// vendorSection scans a MaxVendorId + IsRangeEncoding + (bit field | range list)
// section. It reports the max vendor id and whether want (0: none) is in the section,
// and adds every member to set when set is non-nil.
func vendorSection(r *reader, want int, set *vendorSet) (maxID int, hit bool, err error) {
	m, err := r.bits(16)
	if err != nil {
		return 0, false, err
	}
	maxID = int(m)
	isRange, err := r.bit()
	if err != nil {
		return 0, false, err
	}
	if !isRange {
		start := r.pos
		if err := r.skip(maxID); err != nil {
			return 0, false, err
		}
		if want >= 1 && want <= maxID {
			hit = r.bitAt(start + want - 1)
		}
		if set != nil {
			for id := 1; id <= maxID; id++ {
				if r.bitAt(start + id - 1) {
					set.add(id, id)
				}
			}
		}
		return maxID, hit, nil
	}
	hit, err = rangeEntries(r, maxID, want, set, nil)
	return maxID, hit, err
}

// rangeEntries reads NumEntries(12) then that many entries of IsARange(1),
// StartOrOnlyVendorId(16), [EndVendorId(16)]. Ids must lie in 1..maxID.
// With rs non-nil the entries are also appended, as encoded, to rs.rs.
func rangeEntries(r *reader, maxID, want int, set *vendorSet, rs *restrictionSink) (hit bool, err error) {
	n, err := r.bits(12)
	if err != nil {
		return false, err
	}
	for range n {
		isRange, err := r.bit()
		if err != nil {
			return false, err
		}
		lo, err := r.bits(16)
		if err != nil {
			return false, err
		}
		hi := lo
		if isRange {
			if hi, err = r.bits(16); err != nil {
				return false, err
			}
		}
		if lo < 1 || hi < lo || int(hi) > maxID {
			return false, ErrBitFieldOverrun
		}
		if want >= int(lo) && want <= int(hi) {
			hit = true
		}
		if set != nil {
			set.add(int(lo), int(hi))
		}
		if rs != nil {
			rs.rs = append(rs.rs, VendorRange{Start: int(lo), End: int(hi)})
		}
	}
	return hit, nil
}

// core holds the fixed-size part of the core segment.
type core struct {
	version            int
	created, updated   int64 // deciseconds since the Unix epoch
	cmpID, cmpVersion  int
	consentScreen      int
	lang               [2]byte
	vendorListVersion  int
	policyVersion      int
	serviceSpecific    bool
	nonStandardTexts   bool
	specialFeatures    uint32 // bit i-1 = special feature i (12 bits)
	purposeConsent     uint32 // bit i-1 = purpose i (24 bits)
	purposeLI          uint32
	purposeOneTreament bool
	cc                 [2]byte
}

// letter decodes a 6-bit letter field (A=0).
func letter(v uint64) byte { return byte('A' + v) }

// revBits turns an n-bit MSB-first field into a mask with field bit k at bit k.
func revBits(v uint64, n int) uint64 {
	var out uint64
	for i := 0; i < n; i++ {
		if v&(1<<(n-1-i)) != 0 {
			out |= 1 << i
		}
	}
	return out
}

func readCore(r *reader, c *core) error {
	v, err := r.bits(6)
	if err != nil {
		return err
	}
	if c.version = int(v); v != 2 {
		return ErrVersion
	}
	// The fixed part is 213 bits; check once, then read without errors.
	if r.remaining() < 213-6 {
		return ErrTruncated
	}
	get := func(n int) uint64 { x, _ := r.bits(n); return x }
	c.created = int64(get(36))
	c.updated = int64(get(36))
	c.cmpID = int(get(12))
	c.cmpVersion = int(get(12))
	c.consentScreen = int(get(6))
	c.lang = [2]byte{letter(get(6)), letter(get(6))}
	c.vendorListVersion = int(get(12))
	c.policyVersion = int(get(6))
	c.serviceSpecific = get(1) == 1
	c.nonStandardTexts = get(1) == 1
	c.specialFeatures = uint32(revBits(get(12), 12))
	c.purposeConsent = uint32(revBits(get(24), 24))
	c.purposeLI = uint32(revBits(get(24), 24))
	c.purposeOneTreament = get(1) == 1
	c.cc = [2]byte{letter(get(6)), letter(get(6))}
	return nil
}

// restrictionSink receives publisher restrictions in Parse; nil when only validating.
type restrictionSink struct {
	list []PublisherRestriction
	rs   []VendorRange // backing store for every restriction's Ranges
}

func (s *restrictionSink) ranges() []VendorRange {
	if s == nil {
		return nil
	}
	return s.rs
}

// pubRestrictions reads the publisher-restriction section and folds every restriction
// naming (purpose, vendor) into a bit mask of restriction types (bit t = type t).
func pubRestrictions(r *reader, purpose, vendor int, sink *restrictionSink) (types uint8, err error) {
	n, err := r.bits(12)
	if err != nil {
		return 0, err
	}
	for range n {
		pt, err := r.bits(8)
		if err != nil {
			return 0, err
		}
		p, t := int(pt>>2), RestrictionType(pt&3)
		start := len(sink.ranges())
		hit, err := rangeEntries(r, 65535, vendor, nil, sink)
		if err != nil {
			return 0, err
		}
		if hit && p == purpose {
			types |= 1 << t
		}
		if sink != nil {
			sink.list = append(sink.list, PublisherRestriction{Purpose: p, Type: t, Ranges: sink.rs[start:len(sink.rs):len(sink.rs)]})
		}
	}
	return types, nil
}

// validate checks that s is not empty and holds only base64url characters and '.',
// each segment optionally ending in its padding (see padded).
func validate(s []byte) error {
	if len(s) == 0 {
		return ErrTruncated
	}
	if len(s) > MaxLength {
		return ErrTooLong
	}
	start, pad := 0, 0 // start of the current segment, '=' seen at its end so far
	for i, c := range s {
		if b64[c] != 0xff { // the common case first
			if pad > 0 { // a character after '='
				return ErrBase64
			}
			continue
		}
		switch c {
		case '.':
			if !padded(i-start-pad, pad) {
				return ErrBase64
			}
			start, pad = i+1, 0
		case '=':
			pad++
		default:
			return ErrBase64
		}
	}
	if !padded(len(s)-start-pad, pad) {
		return ErrBase64
	}
	return nil
}

// padded reports whether n base64url characters followed by pad '=' are well formed:
// no padding, or the one or two '=' a padding encoder writes to complete a group of four
// (so never after a group of four or a lone character, as RFC 4648 §5 and the
// java.util.Base64 URL decoder used by iabtcf-java require).
func padded(n, pad int) bool {
	return pad == 0 || (pad <= 2 && (n+pad)%4 == 0)
}

// nextSegment returns the segment starting at s[i:], without its '=' padding, and the
// index after it.
func nextSegment(s []byte, i int) (seg []byte, next int) {
	j := i
	for j < len(s) && s[j] != '.' {
		j++
	}
	k := j
	for k > i && s[k-1] == '=' {
		k--
	}
	return s[i:k], j + 1
}

// segmentSink receives the optional segments in Parse; nil when only validating.
type segmentSink struct {
	t *TCString
}

// otherSegments validates (and, with sink, decodes) every segment after the core one.
func otherSegments(s []byte, i int, sink *segmentSink) error {
	for i <= len(s) {
		seg, next := nextSegment(s, i)
		i = next
		r := reader{s: seg}
		typ, err := r.bits(3)
		if err != nil {
			return err
		}
		switch typ {
		case segDisclosedVendors, segAllowedVendors:
			var set *vendorSet
			if sink != nil {
				set = &vendorSet{}
			}
			if _, _, err := vendorSection(&r, 0, set); err != nil {
				return err
			}
			if sink != nil {
				l := set.list()
				if l == nil {
					l = []int{}
				}
				if typ == segDisclosedVendors {
					sink.t.DisclosedVendors = l
				} else {
					sink.t.AllowedVendors = l
				}
			}
		case segPublisherTC:
			pc, err := r.bits(24)
			if err != nil {
				return err
			}
			pl, err := r.bits(24)
			if err != nil {
				return err
			}
			nc, err := r.bits(6)
			if err != nil {
				return err
			}
			n := int(nc)
			cc, err := r.bits(n)
			if err != nil {
				return err
			}
			cl, err := r.bits(n)
			if err != nil {
				return err
			}
			if sink != nil {
				sink.t.PublisherTC = &PublisherTC{
					PurposeConsents:                  maskList(revBits(pc, 24)),
					PurposeLegitimateInterests:       maskList(revBits(pl, 24)),
					NumCustomPurposes:                n,
					CustomPurposeConsents:            maskList(revBits(cc, n)),
					CustomPurposeLegitimateInterests: maskList(revBits(cl, n)),
				}
			}
		default:
			return ErrSegmentType
		}
		if err := r.end(); err != nil {
			return err
		}
	}
	return nil
}

func maskList(m uint64) []int {
	out := []int{}
	for i := 0; i < 64; i++ {
		if m&(1<<i) != 0 {
			out = append(out, i+1)
		}
	}
	return out
}
