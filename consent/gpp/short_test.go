package gpp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// GPP strings whose header lists more sections than the body holds, or holds blank.
// Vectors from iabgpp-es, github.com/IABTechLab/iabgpp-es (commit fd0546e7b28e, v3.2.0),
// modules/cmpapi/test/:
//   - GppModel.test.ts "should fail to decode missing sections" and "should fail to
//     decode blank sections": the two strings below. iabgpp-es v3 refuses both whole
//     ("The number of sections does not match the number of sections defined in the
//     header", since commit d37a58a "Fail fast", 2024); before that it read the header
//     and took the sections by position. We read the header and what is there, and
//     report the rest as an error.
//   - GppModel.test.ts "should decode uspv1 and tcfeuv2 and tcfcav1 sections": header
//     DBACOeA lists [2, 5, 6]; "should decode uspv1 and tcfeuv2 sections": the full
//     string cut here.
//   - encoder/section/HeaderV1.test.ts "should decode DBACNYA to section ids [2, 6]",
//     "... DBABMA to section ids [2]", "... DBAA to section ids []": headers alone.
const (
	gppesTCF      = "CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA"
	gppesTCFCA    = "BPSG_8APSG_8AAyACAENGdCgf_gfgAfgfgBhADVqxGAD0AILVgAA.fHHHA4444ao"
	gppesMissing  = "DBACOeA~" + gppesTCF + "~" + gppesTCFCA
	gppesBlank    = "DBACOeA~~1YNN"
	gppesTCF2     = "CPSG_8APSG_8ANwAAAENAwCgAAAAAAAAAAAAAAAAAAAA.IAAA.YAAAAAAAAAAA"
	gppesTCFAndUS = "DBACNYA~" + gppesTCF2 + "~1YNN"
)

type optOutWant struct {
	sid      []int
	err      error // nil, or the sentinel the error wraps
	opt, gpc bool
}

func TestShortBody(t *testing.T) {
	nat := encodeUS(SectionUSNat, encodedUS[1].u) // usnat v2, no opt-out
	cases := []struct {
		name, s string
		ids     []int  // Header.SectionIDs
		secs    []int  // IDs of the sections Parse returns
		msg     string // Parse's error, exactly ("" none)
		tcf     string // TCFEUv2's answer ("" not ok)
		optOut  []optOutWant
	}{
		{"iabgpp-es missing sections", gppesMissing, []int{2, 5, 6}, []int{2, 5},
			"gpp: section 6 (uspv1) is missing: the header lists 3 sections, the string holds 2", gppesTCF,
			[]optOutWant{
				{nil, ErrMissingSection, false, false},
				{[]int{6}, ErrMissingSection, false, false},
				{[]int{2}, ErrMissingSection, false, false},
				{[]int{2, 5}, ErrMissingSection, false, false},
			}},
		{"iabgpp-es blank sections", gppesBlank, []int{2, 5, 6}, []int{5},
			"gpp: section 2 (tcfeuv2) is blank; gpp: section 6 (uspv1) is missing: the header lists 3 sections, the string holds 2", "",
			[]optOutWant{
				{nil, ErrMissingSection, false, false},
				{[]int{2}, ErrMissingSection, false, false},
				{[]int{6}, ErrMissingSection, false, false},
				{[]int{5}, ErrMissingSection, false, false},
			}},
		{"iabgpp-es header DBACNYA alone", "DBACNYA", []int{2, 6}, []int{},
			"gpp: section 2 (tcfeuv2) is missing: the header lists 2 sections, the string holds 0; " +
				"gpp: section 6 (uspv1) is missing: the header lists 2 sections, the string holds 0", "",
			[]optOutWant{{nil, ErrMissingSection, false, false}, {[]int{6}, ErrMissingSection, false, false}}},
		{"iabgpp-es header DBABMA alone", "DBABMA", []int{2}, []int{},
			"gpp: section 2 (tcfeuv2) is missing: the header lists 1 sections, the string holds 0", "",
			[]optOutWant{{nil, ErrMissingSection, false, false}, {[]int{7}, ErrMissingSection, false, false}}},
		{"iabgpp-es header DBAA: no sections, nothing missing", "DBAA", []int{}, []int{}, "", "",
			[]optOutWant{{nil, nil, false, false}, {[]int{7}, nil, false, false}}},
		{"iabgpp-es tcfeuv2+uspv1, whole", gppesTCFAndUS, []int{2, 6}, []int{2, 6}, "", gppesTCF2,
			[]optOutWant{{nil, nil, false, false}, {[]int{6}, nil, false, false}}},
		{"iabgpp-es tcfeuv2+uspv1 cut after tcfeuv2 (ours)", "DBACNYA~" + gppesTCF2, []int{2, 6}, []int{2},
			"gpp: section 6 (uspv1) is missing: the header lists 2 sections, the string holds 1", gppesTCF2,
			[]optOutWant{
				{nil, ErrMissingSection, false, false},
				{[]int{6}, ErrMissingSection, false, false},
				{[]int{2}, ErrMissingSection, false, false},
			}},
		{"iabgpp-es header, blank tcfeuv2, uspv1 opt-out (ours)", "DBACNYA~~1YYN", []int{2, 6}, []int{6},
			"gpp: section 2 (tcfeuv2) is blank", "",
			[]optOutWant{
				{nil, ErrMissingSection, false, false},
				{[]int{2}, ErrMissingSection, false, false},
				{[]int{6}, nil, true, false}, // a blank section that does not apply never failed
			}},
		{"usnat present, usca missing (ours)", encodeHeader(7, 8) + "~" + nat, []int{7, 8}, []int{7},
			"gpp: section 8 (usca) is missing: the header lists 2 sections, the string holds 1", "",
			[]optOutWant{
				{nil, ErrMissingSection, false, false},
				{[]int{8}, ErrMissingSection, false, false},
				{[]int{7}, ErrMissingSection, false, false},
			}},
		{"usnat blank, usca malformed, usco missing (ours)", encodeHeader(7, 8, 10) + "~~xlgWE", []int{7, 8, 10}, []int{},
			"gpp: section 7 (usnat) is blank; gpp: section 8 (usca): gpp: unsupported section version; " +
				"gpp: section 10 (usco) is missing: the header lists 3 sections, the string holds 2", "",
			[]optOutWant{
				{nil, ErrMissingSection, false, false},
				{[]int{10}, ErrMissingSection, false, false},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(c.s)
			if !reflect.DeepEqual(got.Header, Header{Type: 3, Version: 1, SectionIDs: c.ids}) {
				t.Errorf("header %+v, want IDs %v", got.Header, c.ids)
			}
			secs := []int{}
			for _, sec := range got.Sections {
				secs = append(secs, sec.ID)
			}
			if !reflect.DeepEqual(secs, c.secs) {
				t.Errorf("sections %v, want %v", secs, c.secs)
			}
			switch {
			case c.msg == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case c.msg != "" && (err == nil || err.Error() != c.msg):
				t.Errorf("Parse error\n got %v\nwant %s", err, c.msg)
			case c.msg != "" && strings.Contains(c.msg, "missing") && !errors.Is(err, ErrMissingSection):
				t.Errorf("Parse error %v is not ErrMissingSection", err)
			}
			tc, ok := TCFEUv2([]byte(c.s))
			if string(tc) != c.tcf || ok != (c.tcf != "") {
				t.Errorf("TCFEUv2 = %q, %v; want %q", tc, ok, c.tcf)
			}
			for _, w := range c.optOut {
				opt, gpc, err := OptOut([]byte(c.s), w.sid)
				if opt != w.opt || gpc != w.gpc || (err == nil) != (w.err == nil) || (w.err != nil && !errors.Is(err, w.err)) {
					t.Errorf("OptOut(sid %v) = %v %v %v; want %v %v %v", w.sid, opt, gpc, err, w.opt, w.gpc, w.err)
				}
				if err != nil && (opt || gpc) {
					t.Errorf("OptOut(sid %v): a result with the error %v", w.sid, err)
				}
			}
		})
	}
}

// TestOptOutErrorsNameTheSection: OptOut's errors are preallocated but still say which
// section is wrong (explain shows them).
func TestOptOutErrorsNameTheSection(t *testing.T) {
	for _, c := range []struct{ s, msg string }{
		{gppesMissing, "gpp: section 6 (uspv1) is missing: the string holds fewer sections than its header lists"},
		{"DBACNYA~~1YYN", "gpp: section 2 (tcfeuv2) is blank"},
		{encodeHeader(8) + "~xlgWE", "gpp: section 8 (usca): gpp: unsupported section version"},
		{encodeHeader(6) + "~1YN", "gpp: section 6 (uspv1): gpp: truncated"},
		{encodeHeader(70) + "~", "gpp: missing section"}, // IDs from 64 on: the bare sentinel
	} {
		_, _, err := OptOut([]byte(c.s), nil)
		if err == nil || err.Error() != c.msg {
			t.Errorf("%q: %v, want %s", c.s, err, c.msg)
		}
	}
	s := []byte(gppesMissing)
	if n := testing.AllocsPerRun(100, func() { _, _, _ = OptOut(s, nil) }); n != 0 {
		t.Errorf("failing OptOut allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { TCFEUv2(s) }); n != 0 {
		t.Errorf("TCFEUv2 on a short string allocates %v times", n)
	}
}
