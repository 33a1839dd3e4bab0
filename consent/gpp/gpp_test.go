package gpp

import (
	"errors"
	"reflect"
	"testing"
)

// OptOutString is OptOut for a string (test helper: the product passes []byte).
func OptOutString(s string, applicableSections []int) (optedOut, gpc bool, err error) {
	return optOut(s, applicableSections)
}

// A is shorthand for Absent in the expected structs below.
const A = Absent

func fs(v ...int) []Field {
	out := make([]Field, len(v))
	for i, x := range v {
		out[i] = Field(x)
	}
	return out
}

// Vectors encoded field by field with encodeUS (encode_test.go). Each sets distinct
// values so a swapped field would show.
var encodedUS = []struct {
	name string
	id   int
	u    US
}{
	{"usnat v1 sale opt-out + gpc", SectionUSNat, US{Version: 1,
		SharingNotice: 1, SaleOptOutNotice: 1, SharingOptOutNotice: 2, TargetedAdvertisingOptOutNotice: 1,
		SensitiveDataProcessingOptOutNotice: 0, SensitiveDataLimitUseNotice: 2,
		SaleOptOut: 1, SharingOptOut: 2, TargetedAdvertisingOptOut: 2,
		SensitiveDataProcessing:         fs(0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0),
		KnownChildSensitiveDataConsents: fs(1, 2), PersonalDataConsents: 0,
		MspaCoveredTransaction: 1, MspaOptOutOptionMode: 2, MspaServiceProviderMode: 0,
		GPCSegmentIncluded: true, GPC: true}},
	{"usnat v2 no opt-out", SectionUSNat, US{Version: 2,
		SharingNotice: 1, SaleOptOutNotice: 1, SharingOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1,
		SensitiveDataProcessingOptOutNotice: 1, SensitiveDataLimitUseNotice: 1,
		SaleOptOut: 2, SharingOptOut: 2, TargetedAdvertisingOptOut: 2,
		SensitiveDataProcessing:         fs(2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 2, 1, 0, 2),
		KnownChildSensitiveDataConsents: fs(0, 1, 2), PersonalDataConsents: 2,
		MspaCoveredTransaction: 2, MspaOptOutOptionMode: 0, MspaServiceProviderMode: 0}},
	{"usca sharing opt-out", SectionUSCA, US{Version: 1,
		SharingNotice: A, SaleOptOutNotice: 1, SharingOptOutNotice: 1, TargetedAdvertisingOptOutNotice: A,
		SensitiveDataProcessingOptOutNotice: A, SensitiveDataLimitUseNotice: 2,
		SaleOptOut: 2, SharingOptOut: 1, TargetedAdvertisingOptOut: A,
		SensitiveDataProcessing:         fs(1, 2, 0, 1, 2, 0, 1, 2, 0),
		KnownChildSensitiveDataConsents: fs(2, 1), PersonalDataConsents: 1,
		MspaCoveredTransaction: 2, MspaOptOutOptionMode: 1, MspaServiceProviderMode: 2,
		GPCSegmentIncluded: true, GPC: false}},
	{"usva targeted-ads opt-out", SectionUSVA, US{Version: 1,
		SharingNotice: 2, SaleOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1, SharingOptOutNotice: A,
		SensitiveDataProcessingOptOutNotice: A, SensitiveDataLimitUseNotice: A,
		SaleOptOut: 2, SharingOptOut: A, TargetedAdvertisingOptOut: 1,
		SensitiveDataProcessing:         fs(0, 0, 1, 1, 2, 2, 0, 1),
		KnownChildSensitiveDataConsents: fs(1), PersonalDataConsents: A,
		MspaCoveredTransaction: 1, MspaOptOutOptionMode: 1, MspaServiceProviderMode: 2}},
	{"usco gpc only", SectionUSCO, US{Version: 1,
		SharingNotice: 1, SaleOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1, SharingOptOutNotice: A,
		SensitiveDataProcessingOptOutNotice: A, SensitiveDataLimitUseNotice: A,
		SaleOptOut: 2, SharingOptOut: A, TargetedAdvertisingOptOut: 2,
		SensitiveDataProcessing:         fs(2, 1, 0, 2, 1, 0, 2),
		KnownChildSensitiveDataConsents: fs(2), PersonalDataConsents: A,
		MspaCoveredTransaction: 2, MspaOptOutOptionMode: 2, MspaServiceProviderMode: 1,
		GPCSegmentIncluded: true, GPC: true}},
	{"usut sale opt-out", SectionUSUT, US{Version: 1,
		SharingNotice: 1, SaleOptOutNotice: 2, TargetedAdvertisingOptOutNotice: 0, SharingOptOutNotice: A,
		SensitiveDataProcessingOptOutNotice: 1, SensitiveDataLimitUseNotice: A,
		SaleOptOut: 1, SharingOptOut: A, TargetedAdvertisingOptOut: 0,
		SensitiveDataProcessing:         fs(1, 0, 2, 1, 0, 2, 1, 0),
		KnownChildSensitiveDataConsents: fs(0), PersonalDataConsents: A,
		MspaCoveredTransaction: 0, MspaOptOutOptionMode: 1, MspaServiceProviderMode: 1}},
	{"usct no opt-out", SectionUSCT, US{Version: 1,
		SharingNotice: 1, SaleOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1, SharingOptOutNotice: A,
		SensitiveDataProcessingOptOutNotice: A, SensitiveDataLimitUseNotice: A,
		SaleOptOut: 2, SharingOptOut: A, TargetedAdvertisingOptOut: 2,
		SensitiveDataProcessing:         fs(2, 2, 1, 1, 0, 0, 2, 1),
		KnownChildSensitiveDataConsents: fs(1, 2, 0), PersonalDataConsents: A,
		MspaCoveredTransaction: 1, MspaOptOutOptionMode: 0, MspaServiceProviderMode: 2,
		GPCSegmentIncluded: true, GPC: false}},
}

func TestEncodedUSSections(t *testing.T) {
	for _, tc := range encodedUS {
		t.Run(tc.name, func(t *testing.T) {
			payload := encodeUS(tc.id, tc.u)
			s := encodeHeader(tc.id) + "~" + payload
			got, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if !reflect.DeepEqual(got.Header, Header{Type: 3, Version: 1, SectionIDs: []int{tc.id}}) {
				t.Fatalf("header %+v", got.Header)
			}
			sec := got.Sections[0]
			if sec.ID != tc.id || !sec.Supported || sec.Raw != payload || sec.Name != SectionName(tc.id) || sec.USPv1 != nil || sec.TCFEUv2 != "" {
				t.Fatalf("section %+v", sec)
			}
			if !reflect.DeepEqual(*sec.US, tc.u) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", *sec.US, tc.u)
			}
			opt, gpc, err := OptOutString(s, nil)
			if err != nil || opt != tc.u.OptedOut() || gpc != tc.u.GPC {
				t.Fatalf("OptOut = %v %v %v, want %v %v", opt, gpc, err, tc.u.OptedOut(), tc.u.GPC)
			}
		})
	}
}

// IAB GPP spec "Consent String Specification" header examples (also in go-gpp v0.2.0
// parse_test.go): DBABMA = [2] (tcfeuv2), DBACNY = [2,6], DBABjw = [5,6].
func TestSpecHeaderExamples(t *testing.T) {
	const tc = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
	for _, v := range []struct {
		s   string
		ids []int
	}{
		{"DBABMA~" + tc, []int{2}},
		{"DBABM~" + tc, []int{2}}, // go-gpp: same, without the trailing padding char
		{"DBACNY~" + tc + "~1YNN", []int{2, 6}},
		{"DBABjw~" + tc + "~1YNN", []int{5, 6}},
	} {
		got, err := Parse(v.s)
		if err != nil {
			t.Fatalf("%s: %v", v.s, err)
		}
		if !reflect.DeepEqual(got.Header.SectionIDs, v.ids) || got.Header.Type != 3 || got.Header.Version != 1 {
			t.Fatalf("%s: header %+v", v.s, got.Header)
		}
		for i, sec := range got.Sections {
			switch sec.ID {
			case 2:
				if !sec.Supported || sec.TCFEUv2 != tc || sec.Raw != tc || sec.Name != "tcfeuv2" {
					t.Fatalf("%s: tcf %+v", v.s, sec)
				}
			case 5:
				if sec.Supported || sec.Raw != tc || sec.US != nil || sec.Name != "tcfcav1" {
					t.Fatalf("%s: tcfca should be skipped: %+v", v.s, sec)
				}
			case 6:
				if !sec.Supported || *sec.USPv1 != (USPv1{'1', 'Y', 'N', 'N'}) || sec.Raw != "1YNN" {
					t.Fatalf("%s: usp %+v", v.s, sec)
				}
			default:
				t.Fatalf("%s: section %d: %+v", v.s, i, sec)
			}
		}
		// 1YNN: notice given, no sale opt-out.
		if opt, gpc, err := OptOutString(v.s, nil); opt || gpc || err != nil {
			t.Fatalf("%s: OptOut %v %v %v", v.s, opt, gpc, err)
		}
	}
}

func TestUSPv1(t *testing.T) {
	s := encodeHeader(6) + "~1YYN"
	got, err := Parse(s)
	if err != nil || *got.Sections[0].USPv1 != (USPv1{Version: '1', Notice: 'Y', OptOutSale: 'Y', LSPACovered: 'N'}) {
		t.Fatalf("%+v %v", got, err)
	}
	if opt, gpc, err := OptOutString(s, nil); !opt || gpc || err != nil {
		t.Fatalf("OptOut %v %v %v", opt, gpc, err)
	}
	if opt, _, err := OptOutString(s, []int{7}); opt || err != nil {
		t.Fatalf("uspv1 not applicable: %v %v", opt, err)
	}
}

func TestApplicableSections(t *testing.T) {
	// usnat: no opt-out; usca: sale opt-out; usco: GPC.
	nat := encodeUS(7, encodedUS[1].u)
	ca := encodeUS(8, US{Version: 1, SaleOptOut: 1, SensitiveDataProcessing: make([]Field, 9), KnownChildSensitiveDataConsents: make([]Field, 2)})
	co := encodeUS(10, encodedUS[4].u)
	s := encodeHeader(7, 8, 10) + "~" + nat + "~" + ca + "~" + co
	for _, c := range []struct {
		sid      []int
		opt, gpc bool
	}{
		{nil, true, true}, {[]int{7}, false, false}, {[]int{8}, true, false},
		{[]int{10}, false, true}, {[]int{7, 10}, false, true}, {[]int{99}, false, false},
	} {
		opt, gpc, err := OptOut([]byte(s), c.sid)
		if err != nil || opt != c.opt || gpc != c.gpc {
			t.Errorf("sid %v: %v %v %v, want %v %v", c.sid, opt, gpc, err, c.opt, c.gpc)
		}
	}
	// A malformed section fails only when applicable.
	bad := encodeHeader(7, 8) + "~" + nat + "~" + ca[:3]
	if _, _, err := OptOutString(bad, []int{7}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OptOutString(bad, []int{8}); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
	if _, err := Parse(bad); !errors.Is(err, ErrTruncated) {
		t.Fatal(err)
	}
}

func TestHeaderRangeEntry(t *testing.T) {
	// Range entry 7..12 (isRange=1, fib(7), fib(5)) built by hand.
	var w bitWriter
	w.put(3, 6)
	w.put(1, 6)
	w.put(1, 12)
	w.put(1, 1)
	w.putFib(7)
	w.putFib(5)
	ids := []int{7, 8, 9, 10, 11, 12}
	s := w.base64()
	payloads := []string{encodeUS(7, encodedUS[0].u), encodeUS(8, encodedUS[2].u), encodeUS(9, encodedUS[3].u),
		encodeUS(10, encodedUS[4].u), encodeUS(11, encodedUS[5].u), encodeUS(12, encodedUS[6].u)}
	for _, p := range payloads {
		s += "~" + p
	}
	got, err := Parse(s)
	if err != nil || !reflect.DeepEqual(got.Header.SectionIDs, ids) {
		t.Fatalf("%+v %v", got.Header, err)
	}
	for i, sec := range got.Sections {
		want := encodedUS[[]int{0, 2, 3, 4, 5, 6}[i]].u
		if !reflect.DeepEqual(*sec.US, want) {
			t.Fatalf("section %d: %+v", sec.ID, *sec.US)
		}
	}
}

func TestErrors(t *testing.T) {
	nat := encodeUS(7, encodedUS[0].u)
	h7 := encodeHeader(7)
	for _, c := range []struct {
		s    string
		want []error
		why  string
	}{
		{"", []error{ErrMalformedHeader, ErrTruncated}, "empty"},
		{"DBA", []error{ErrMalformedHeader, ErrTruncated}, "header cut in the entry count"},
		{"DBAB", []error{ErrMalformedHeader, ErrTruncated}, "header cut before the entry"},
		{"CBABMA~x", []error{ErrMalformedHeader}, "type 2, not 3"},
		{"DCABMA~x", []error{ErrMalformedHeader}, "header version 2"},
		{"DB!BMA~x", []error{ErrMalformedHeader, ErrBadBase64}, "bad char in header"},
		{h7, []error{ErrMissingSection}, "1 ID, 0 sections"},
		{h7 + "~" + nat + "~" + nat, []error{ErrMalformedHeader}, "1 ID, 2 sections"},
		{"DBABAAAA", []error{ErrMalformedHeader}, "Fibonacci code without its terminating 11"},
		{"DBAB____", []error{ErrMissingSection}, "IDs 1 (range 1..2), no sections"},
		{"DBAB_____________", []error{ErrMalformedHeader, ErrTrailingData}, "header running on past its last field"},
		{h7 + "~", []error{ErrMissingSection}, "blank usnat"},
		{h7 + "~" + nat[:5], []error{ErrTruncated}, "usnat cut"},
		{h7 + "~" + nat[:len(nat)-3] + "*", []error{ErrBadBase64}, "bad char in usnat core"},
		{h7 + "~" + nat + "!", []error{ErrBadBase64}, "bad char in gpc"},
		{h7 + "~" + nat[:len(nat)-2] + ".", []error{ErrTruncated}, "empty gpc"},
		{h7 + "~" + nat + ".YA", []error{ErrMalformedSection}, "two sub-sections"},
		{h7 + "~" + nat[:len(nat)-1] + "w", []error{ErrMalformedSection}, "gpc sub-section type 3"},
		{h7 + "~DA", []error{ErrUnsupportedVersion}, "usnat version 3"},
		{h7 + "~A", []error{ErrUnsupportedVersion}, "usnat version 0"},
		{h7 + "~B_____________", []error{ErrMalformedSection}, "2-bit value 3"},
		{encodeHeader(9) + "~" + encodeUS(9, encodedUS[3].u) + ".YA", []error{ErrMalformedSection}, "usva has no gpc"},
		{encodeHeader(6) + "~1YN", []error{ErrTruncated}, "uspv1 3 chars"},
		{encodeHeader(6) + "~1YNNN", []error{ErrMalformedSection}, "uspv1 5 chars"},
		{encodeHeader(6) + "~1YXN", []error{ErrMalformedSection}, "uspv1 bad char"},
		{encodeHeader(6) + "~2YNN", []error{ErrUnsupportedVersion}, "uspv1 version 2"},
		{encodeHeader(2) + "~", []error{ErrMissingSection}, "blank tcf"},
		{encodeHeader(2) + "~CPX*", []error{ErrBadBase64}, "bad tcf"},
	} {
		_, err := Parse(c.s)
		_, _, err2 := OptOutString(c.s, nil)
		for _, w := range c.want {
			if !errors.Is(err, w) || !errors.Is(err2, w) {
				t.Errorf("%s (%q): Parse err %v, OptOut err %v, want %v", c.why, c.s, err, err2, w)
			}
		}
	}
	// Unsupported sections are skipped, not errors.
	s := encodeHeader(7, 15) + "~" + nat + "~whatever*garbage"
	got, err := Parse(s)
	if err != nil || got.Sections[1].Supported || got.Sections[1].Raw != "whatever*garbage" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ParseSection(15, "x"); !errors.Is(err, ErrUnsupportedSection) {
		t.Fatal(err)
	}
	if opt, gpc, err := OptOutString(s, nil); !opt || !gpc || err != nil {
		t.Fatal(opt, gpc, err)
	}
}

func TestAppendSID(t *testing.T) {
	var a [8]int
	for _, c := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"7", []int{7}, true}, {"7,8", []int{7, 8}, true}, {"2_6", []int{2, 6}, true},
		{"", nil, false}, {"7,", nil, false}, {"a", nil, false}, {"-1", nil, false}, {"12345", nil, false},
	} {
		got, ok := AppendSID(a[:0], []byte(c.in))
		if ok != c.ok || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("%q: %v %v", c.in, got, ok)
		}
	}
}

func TestOptOutZeroAllocs(t *testing.T) {
	s := []byte(encodeHeader(7) + "~" + encodeUS(7, encodedUS[0].u))
	sid := []int{7}
	var a [8]int
	sidParam := []byte("7")
	n := testing.AllocsPerRun(1000, func() {
		ids, _ := AppendSID(a[:0], sidParam)
		opt, gpc, err := OptOut(s, ids)
		if !opt || !gpc || err != nil {
			panic("wrong")
		}
		if _, _, err := OptOut(s[:8], sid); err == nil {
			panic("no error")
		}
	})
	if n != 0 {
		t.Fatalf("OptOut allocates %v per run", n)
	}
}

func TestTCFEUv2(t *testing.T) {
	const tc = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
	for _, v := range []struct {
		s, want string
		ok      bool
	}{
		{"DBABMA~" + tc, tc, true},
		{"DBACNY~" + tc + "~1YNN", tc, true},
		{"DBABjw~" + tc + "~1YNN", "", false}, // section 5 is tcfcav1, not tcfeuv2
		{"DBABMA~", "", false},
		{"garbage", "", false},
		{"", "", false},
	} {
		got, ok := TCFEUv2([]byte(v.s))
		if string(got) != v.want || ok != v.ok {
			t.Errorf("TCFEUv2(%q) = %q, %v; want %q, %v", v.s, got, ok, v.want, v.ok)
		}
	}
	s := []byte("DBACNY~" + tc + "~1YNN")
	if n := testing.AllocsPerRun(100, func() { TCFEUv2(s) }); n != 0 {
		t.Errorf("TCFEUv2 allocates %v times", n)
	}
}
