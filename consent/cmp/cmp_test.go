package cmp

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/consent"
)

const (
	U = consent.Unset
	G = consent.Granted
	D = consent.Denied
)

// pur builds Purposes in index order: necessary, preferences, statistics, marketing.
func pur(n, p, s, m consent.Status) consent.Purposes { return consent.Purposes{n, p, s, m} }

// The Cookiebot values follow the format in Cookiebot's developer documentation
// (www.cookiebot.com/en/developer/, "Server side usage": CookieConsent holds
// {stamp:'…',necessary:true,preferences:…,statistics:…,marketing:…,method:'explicit',
// ver:1,utc:…,region:'…'} and the value -1 when consent is not required in the region),
// with stamps in the base64 shape Cookiebot issues. The partly encoded form is how the
// cookie appears in Cookie headers sent by browsers (Cookiebot's script encodes quotes
// and commas but not braces and colons).
const (
	cbStamp    = "K1Tq0u6zOqU5fbWzjvGwQ0bHrYxXH3f/2pTtW5nRzS7oVf+1Lm4Ydw=="
	cbLiteral  = "{stamp:'" + cbStamp + "',necessary:true,preferences:false,statistics:true,marketing:false,method:'explicit',ver:1,utc:1700475132451,region:'de'}"
	cbPartial  = "{stamp:%27K1Tq0u6zOqU5fbWzjvGwQ0bHrYxXH3f/2pTtW5nRzS7oVf+1Lm4Ydw==%27%2Cnecessary:true%2Cpreferences:false%2Cstatistics:true%2Cmarketing:false%2Cmethod:%27explicit%27%2Cver:1%2Cutc:1700475132451%2Cregion:%27de%27}"
	cbEncoded  = "%7Bstamp%3A%27K1Tq0u6zOqU5fbWzjvGwQ0bHrYxXH3f%2F2pTtW5nRzS7oVf%2B1Lm4Ydw%3D%3D%27%2Cnecessary%3Atrue%2Cpreferences%3Afalse%2Cstatistics%3Atrue%2Cmarketing%3Afalse%2Cmethod%3A%27explicit%27%2Cver%3A1%2Cutc%3A1700475132451%2Cregion%3A%27de%27%7D"
	cbAllV2    = "{stamp:%27" + cbStamp + "%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:true%2Cmarketing:true%2Cmethod:%27implied%27%2Cver:2%2Cutc:1712059223000%2Ciab2:%27CP8v3QAP8v3QAAGABCENAwEsAP_gAEPgAAiQINJD7C7FbSFCwH5zaLsAMAhHRsAAQoQAAASBAmABQAKQIAQCgkAQFASgBAACAAAAICZBIQIECAAAAUAAQAAAAAAEAAAAAAAIIAAAgAEAAAAIAAACAAAAEAAIAAAAEAAAmAgAAIIACAAAhAAAAAAAAAAAAAAAAgCAAAAAAAAAAAAAAAAAAQOhQD2F2K2kKFkPCmQWYAQBCijYAAhQAAAAkCBIAAgAUgQAgFIIAgAIFAAAAAAAAAQEgCQAAQABAAAIACgAAAAAAIAAAAAAAQQAAAAAIAAAAAAAAEAAAAAAAQAAAAIAABEhCAAQQAEAAAAAAAQAAA%27%2Cgacm:%271~%27%2Cregion:%27us-06%27}"
	cbDenied   = "{stamp:'" + cbStamp + "',necessary:true,preferences:false,statistics:false,marketing:false,method:'explicit',ver:1,utc:1700475132451,region:'fr'}"
	cbNoRegion = "-1"
)

func TestParseCookiebot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  consent.Purposes
		noReq bool
		err   error
	}{
		{"literal", cbLiteral, pur(G, D, G, D), false, nil},
		{"partly encoded", cbPartial, pur(G, D, G, D), false, nil},
		{"fully encoded", cbEncoded, pur(G, D, G, D), false, nil},
		{"v2 with iab2 gacm", cbAllV2, pur(G, G, G, G), false, nil},
		{"all denied", cbDenied, pur(G, D, D, D), false, nil},
		{"no consent required", cbNoRegion, consent.Purposes{}, true, nil},
		{"no consent required encoded", "%2D1", consent.Purposes{}, true, nil},
		{"spaces", "{ necessary : true , marketing : false }", pur(G, U, U, D), false, nil},
		{"missing purposes", "{stamp:'x',method:'explicit'}", consent.Purposes{}, false, nil},
		{"empty object", "{}", consent.Purposes{}, false, nil},
		{"repeat protective", "{marketing:false,marketing:true,statistics:true,statistics:true}", pur(U, U, G, D), false, nil},
		{"double-quoted strings", `{stamp:"a,b}",necessary:true}`, pur(G, U, U, U), false, nil},
		{"nested unknown", "{x:{a:[1,'}',{b:2}]},preferences:true}", pur(U, G, U, U), false, nil},
		{"escaped quote", `{stamp:'a\'b',statistics:false}`, pur(U, U, D, U), false, nil},
		// Errors.
		{"empty", "", consent.Purposes{}, false, ErrSyntax},
		{"open", "{", consent.Purposes{}, false, ErrSyntax},
		{"no braces", "necessary:true", consent.Purposes{}, false, ErrSyntax},
		{"json quoted keys", `{"necessary":true}`, consent.Purposes{}, false, ErrSyntax},
		{"bad bool", "{necessary:yes}", consent.Purposes{}, false, ErrValue},
		{"quoted bool", "{necessary:'true'}", consent.Purposes{}, false, ErrValue},
		{"numeric bool", "{marketing:1}", consent.Purposes{}, false, ErrValue},
		{"True", "{marketing:True}", consent.Purposes{}, false, ErrValue},
		{"trailing", cbLiteral + "x", consent.Purposes{}, false, ErrSyntax},
		{"trailing comma", "{necessary:true,}", consent.Purposes{}, false, ErrSyntax},
		{"double comma", "{necessary:true,,marketing:true}", consent.Purposes{}, false, ErrSyntax},
		{"missing colon", "{necessary true}", consent.Purposes{}, false, ErrSyntax},
		{"empty value", "{stamp:,necessary:true}", consent.Purposes{}, false, ErrSyntax},
		{"unterminated quote", "{stamp:'abc,necessary:true}", consent.Purposes{}, false, ErrSyntax},
		{"unterminated nest", "{x:[1,2}", consent.Purposes{}, false, ErrSyntax},
		{"deep", "{x:" + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}", consent.Purposes{}, false, ErrSyntax},
		{"bad escape", "%7Bnecessary%3Atrue%ZZ", consent.Purposes{}, false, ErrEncoding},
		{"cut escape", "{necessary:true%7", consent.Purposes{}, false, ErrEncoding},
		{"bad escape in value", "{marketing:tr%GGue}", consent.Purposes{}, false, ErrEncoding},
		{"-2", "-2", consent.Purposes{}, false, ErrSyntax},
		{"-1 spaced", " -1", consent.Purposes{}, false, ErrSyntax},
		{"double encoded", "%257Bnecessary%253Atrue%257D", consent.Purposes{}, false, ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, noReq, err := ParseCookiebot([]byte(tc.in))
			if p != tc.want || noReq != tc.noReq || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("ParseCookiebot(%q) = %v, %v, %v; want %v, %v, %v", tc.in, p, noReq, err, tc.want, tc.noReq, tc.err)
			}
		})
	}
}

// The OneTrust values follow the OptanonConsent format in OneTrust's developer
// documentation (my.onetrust.com, "Cookie Consent: OptanonConsent cookie" / "Get the
// Active Groups"): URL-encoded key=value pairs, groups holding GROUPID:0|1 pairs with
// the default categories C0001 Strictly Necessary, C0002 Performance, C0003 Functional,
// C0004 Targeting, C0005 Social Media.
const (
	otFull     = "isGpcEnabled=0&datestamp=Mon+Nov+20+2023+10%3A15%3A00+GMT%2B0100+(Central+European+Standard+Time)&version=202310.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId=3b1f2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d&interactionCount=1&landingPath=NotLandingPage&groups=C0001%3A1%2CC0002%3A0%2CC0003%3A1%2CC0004%3A0&AwaitingReconsent=false&geolocation=DE%3BBE"
	otAccepted = "isGpcEnabled=0&datestamp=Tue+Apr+02+2024+14%3A02%3A11+GMT%2B0200+(Central+European+Summer+Time)&version=202402.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId=9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d&interactionCount=2&isAnonUser=1&landingPath=NotLandingPage&groups=C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A1%2CC0005%3A1&intType=1&geolocation=NL%3BNH&AwaitingReconsent=false"
	otLanding  = "isGpcEnabled=1&datestamp=Tue+Apr+02+2024+14%3A00%3A00+GMT%2B0200&version=202402.1.0&browserGpcFlag=1&isIABGlobal=false&hosts=&landingPath=https%3A%2F%2Fwww.example.com%2F&groups=C0001%3A1%2CC0002%3A0%2CC0003%3A0%2CC0004%3A0%2CC0005%3A0"
)

func TestParseOneTrust(t *testing.T) {
	custom := OneTrustMap{"C0001": consent.Necessary, "C0002": consent.Statistics, "C0004": consent.Marketing, "C0005": consent.Marketing, "BG10": consent.Preferences}
	for _, tc := range []struct {
		name string
		in   string
		m    OneTrustMap
		want consent.Purposes
		err  error
	}{
		{"full", otFull, nil, pur(G, G, D, D), nil},
		{"accepted, C0005 ignored by default", otAccepted, nil, pur(G, G, G, G), nil},
		{"landing GPC", otLanding, nil, pur(G, D, D, D), nil},
		{"explicit default map", otFull, DefaultOneTrustMap, pur(G, G, D, D), nil},
		{"custom C0005 denial wins", "groups=C0001%3A1%2CC0004%3A1%2CC0005%3A0", custom, pur(G, U, U, D), nil},
		{"custom both granted", "groups=C0004:1,C0005:1,BG10:0", custom, pur(U, D, U, G), nil},
		{"unencoded", "groups=C0001:1,C0002:1,C0003:0,C0004:0", nil, pur(G, D, G, D), nil},
		{"unknown groups", "groups=C0001%3A1%2CSPD_BG%3A1%2CV2STACK42%3A0%2CC0004%3A1", nil, pur(G, U, U, G), nil},
		{"repeat protective", "groups=C0004:1,C0004:0,C0004:1", nil, pur(U, U, U, D), nil},
		{"repeated groups field", "groups=C0002:1&groups=C0002:0", nil, pur(U, U, D, U), nil},
		{"empty groups", "isGpcEnabled=0&groups=&hosts=", nil, consent.Purposes{}, nil},
		{"groups first", "groups=C0003%3A1&version=1", nil, pur(U, G, U, U), nil},
		{"encoded key", "%67roups=C0003:0", nil, pur(U, D, U, U), nil},
		{"empty map", otFull, OneTrustMap{}, consent.Purposes{}, nil},
		{"long id ignored", "groups=" + strings.Repeat("C", 100) + ":1,C0004:0", nil, pur(U, U, U, D), nil},
		{"junk elsewhere ignored", "x=%ZZ&groups=C0004:1", nil, pur(U, U, U, G), nil},
		// Errors.
		{"empty", "", nil, consent.Purposes{}, ErrNoGroups},
		{"no groups", "isGpcEnabled=0&hosts=&version=202310.1.0", nil, consent.Purposes{}, ErrNoGroups},
		{"groups without =", "groups&x=1", nil, consent.Purposes{}, ErrNoGroups},
		{"Groups case", "Groups=C0001:1", nil, consent.Purposes{}, ErrNoGroups},
		{"bad status", "groups=C0001%3A2", nil, consent.Purposes{}, ErrValue},
		{"long status", "groups=C0001:10", nil, consent.Purposes{}, ErrValue},
		{"true status", "groups=C0001:true", nil, consent.Purposes{}, ErrValue},
		{"no status", "groups=C0001", nil, consent.Purposes{}, ErrSyntax},
		{"colon no status", "groups=C0001:", nil, consent.Purposes{}, ErrSyntax},
		{"no id", "groups=:1", nil, consent.Purposes{}, ErrSyntax},
		{"trailing comma", "groups=C0001%3A1%2C", nil, consent.Purposes{}, ErrSyntax},
		{"semicolon", "groups=C0001:1;C0002:0", nil, consent.Purposes{}, ErrSyntax},
		{"cut escape", "groups=C0001%3", nil, consent.Purposes{}, ErrEncoding},
		{"bad escape", "groups=C0001%3A1%2XC0002%3A0", nil, consent.Purposes{}, ErrEncoding},
		{"bad escape in id", "groups=C00%ZZ01:1", nil, consent.Purposes{}, ErrEncoding},
		{"error after valid field", "groups=C0001:1&groups=C0004:x", nil, consent.Purposes{}, ErrValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseOneTrust([]byte(tc.in), tc.m)
			if p != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("ParseOneTrust(%q) = %v, %v; want %v, %v", tc.in, p, err, tc.want, tc.err)
			}
		})
	}
}

func TestOutOfRangePurposeIgnored(t *testing.T) {
	p, err := ParseOneTrust([]byte("groups=X:0"), OneTrustMap{"X": consent.NumPurposes})
	if err != nil || p != (consent.Purposes{}) {
		t.Errorf("%v %v", p, err)
	}
}

func TestZeroAlloc(t *testing.T) {
	cb, ot := []byte(cbPartial), []byte(otFull)
	bad := []byte("groups=C0001%3")
	if n := testing.AllocsPerRun(100, func() {
		ParseCookiebot(cb)
		ParseOneTrust(ot, nil)
		ParseOneTrust(bad, nil)
	}); n != 0 {
		t.Errorf("allocs = %v", n)
	}
}

// encodeAll percent-encodes every byte.
func encodeAll(b []byte) []byte {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return []byte(sb.String())
}

func FuzzParseCookiebot(f *testing.F) {
	for _, s := range []string{cbLiteral, cbPartial, cbEncoded, cbAllV2, cbNoRegion, "{}", "{x:[{'a'}]}", "%7"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		p, noReq, err := ParseCookiebot(v)
		if err != nil && (p != consent.Purposes{} || noReq) {
			t.Fatalf("error with result %v %v", p, noReq)
		}
		if noReq && p != (consent.Purposes{}) {
			t.Fatal("noConsentRequired with purposes")
		}
		for _, s := range p {
			if s >= consent.NumStatuses {
				t.Fatal("bad status")
			}
		}
		// Percent-encoding the value must not change the result (if the value has no
		// '%' of its own and is not the -1 special case).
		if strings.Contains(string(v), "%") || noReq || len(v) > 1000 {
			return
		}
		p2, noReq2, err2 := ParseCookiebot(encodeAll(v))
		if p2 != p || noReq2 != noReq || (err == nil) != (err2 == nil) {
			t.Fatalf("%q: raw %v %v %v, encoded %v %v %v", v, p, noReq, err, p2, noReq2, err2)
		}
	})
}

func FuzzParseOneTrust(f *testing.F) {
	for _, s := range []string{otFull, otAccepted, otLanding, "groups=", "groups=C0001:1", "groups=C0001%3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		p, err := ParseOneTrust(v, nil)
		if err != nil && p != (consent.Purposes{}) {
			t.Fatalf("error with result %v", p)
		}
		// The groups value may be encoded or not: same result.
		if err != nil || !strings.HasPrefix(string(v), "groups=") || strings.ContainsAny(string(v), "%&") {
			return
		}
		p2, err2 := ParseOneTrust([]byte("groups="+url.PathEscape(string(v[len("groups="):]))), nil)
		if p2 != p || err2 != nil {
			t.Fatalf("%q: raw %v, encoded %v %v", v, p, p2, err2)
		}
	})
}

func BenchmarkParseCookiebot(b *testing.B) {
	for _, bc := range []struct{ name, v string }{{"literal", cbLiteral}, {"partial", cbPartial}, {"encoded", cbEncoded}, {"v2iab", cbAllV2}} {
		v := []byte(bc.v)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if _, _, err := ParseCookiebot(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseOneTrust(b *testing.B) {
	v := []byte(otFull)
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, err := ParseOneTrust(v, nil); err != nil {
			b.Fatal(err)
		}
	}
}
