package consentmode

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/consent"
)

const (
	U = consent.Unset
	G = consent.Granted
	D = consent.Denied
)

func sig(def, upd consent.Status) Signal { return Signal{def, upd} }

func TestParseGCD(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want GCD
		err  error
	}{
		// Values of the shape shown in Google's consent debugging guide and Simo Ahava's
		// "Consent Mode V2 For Google Tags"; "11t1t1t1t5": all granted by default.
		{"11t1t1t1t5", GCD{sig(G, U), sig(G, U), sig(G, U), sig(G, U)}, nil},
		// "13r3r3r3r5l1": denied by default, granted by the CMP's update; trailing "l1".
		{"13r3r3r3r5l1", GCD{sig(D, G), sig(D, G), sig(D, G), sig(D, G)}, nil},
		// "11p1p1p1p5": denied by default, no update yet (banner not answered).
		{"11p1p1p1p5", GCD{sig(D, U), sig(D, U), sig(D, U), sig(D, U)}, nil},
		// "13q3q3q3q5": denied by default, visitor rejected.
		{"13q3q3q3q5", GCD{sig(D, D), sig(D, D), sig(D, D), sig(D, D)}, nil},
		// "11l1l1l1l5": Consent Mode not implemented.
		{"11l1l1l1l5", GCD{}, nil},
		// Mixed: ad denied by update, analytics granted by update, ad_user_data only
		// updated denied, ad_personalization granted both times.
		{"13u3n3m3v5", GCD{sig(G, D), sig(U, G), sig(U, D), sig(G, G)}, nil},
		{"13r3q3r3p5l1", GCD{sig(D, G), sig(D, D), sig(D, G), sig(D, U)}, nil},
		{"11t1t1t1t5l1p1", GCD{sig(G, U), sig(G, U), sig(G, U), sig(G, U)}, nil},
		// Errors.
		{"", GCD{}, ErrGCDLength},
		{"11t1t1t1t", GCD{}, ErrGCDLength},
		{"11t1t1t", GCD{}, ErrGCDLength},
		{"1t1t1t1t5", GCD{}, ErrGCDLength},
		{"x1t1t1t1t5", GCD{}, ErrGCDFormat},
		{"1xt1t1t1t5", GCD{}, ErrGCDFormat},
		{"11t1t1t1tx", GCD{}, ErrGCDFormat},
		{"11tt1t1t15", GCD{}, ErrGCDFormat}, // letter in a digit slot
		{"1111t1t1t5", GCD{}, ErrGCDFormat}, // digit in a letter slot
		{"11o1t1t1t5", GCD{}, ErrGCDLetter},
		{"11t1s1t1t5", GCD{}, ErrGCDLetter},
		{"11t1t1w1t5", GCD{}, ErrGCDLetter},
		{"11t1t1t1e5", GCD{}, ErrGCDLetter},
		{"11T1t1t1t5", GCD{}, ErrGCDLetter},
		{"11-1t1t1t5", GCD{}, ErrGCDFormat},
		{"11t1t1t1t5 ", GCD{}, ErrGCDFormat},
		{"11t1t1t1t5&x", GCD{}, ErrGCDFormat},
		{"11t1t1t1t5\x00", GCD{}, ErrGCDFormat},
		{"11\xff1t1t1t5", GCD{}, ErrGCDFormat},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseGCD([]byte(tc.in))
			if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("ParseGCD(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// A shifted value (extra digit) is rejected rather than read out of phase.
func TestParseGCDShifted(t *testing.T) {
	if _, err := ParseGCD([]byte("11t11t1t1t5")); !errors.Is(err, ErrGCDFormat) {
		t.Errorf("err = %v", err)
	}
}

// TestGCDLetterEncoding cross-checks the documented table against the bit layout it
// follows: letter = 'l' + 4*default + update, with 0 unset, 1 denied, 2 granted.
func TestGCDLetterEncoding(t *testing.T) {
	code := map[consent.Status]int{U: 0, D: 1, G: 2}
	n := 0
	for c := 0; c < 256; c++ {
		if !validLetter[c] {
			if letters[c] != (Signal{}) {
				t.Errorf("letters[%q] set but not valid", rune(c))
			}
			continue
		}
		n++
		s := letters[c]
		if want := 'l' + 4*code[s.Default] + code[s.Update]; c != want {
			t.Errorf("letter %q = %+v, encoding says %q", rune(c), s, rune(want))
		}
	}
	if n != 9 {
		t.Errorf("%d valid letters, want 9", n)
	}
}

func TestSignalCurrent(t *testing.T) {
	for _, tc := range []struct {
		letter byte
		want   consent.Status
	}{
		{'l', U}, {'p', D}, {'q', D}, {'t', G}, {'r', G}, {'m', D}, {'n', G}, {'u', D}, {'v', G},
	} {
		if got := letters[tc.letter].Current(); got != tc.want {
			t.Errorf("%c: Current = %v, want %v", tc.letter, got, tc.want)
		}
		v := []byte("11l1l1l1l5")
		v[2+2*int(AdUserData)] = tc.letter
		g, err := ParseGCD(v)
		if err != nil || g.Current(AdUserData) != tc.want || g.Current(AdStorage) != U {
			t.Errorf("%s: %v %v", v, g, err)
		}
	}
}

func TestTypeString(t *testing.T) {
	if AdStorage.String() != "ad_storage" || AdPersonalization.String() != "ad_personalization" || NumTypes.String() != "type(4)" {
		t.Error("Type.String")
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{{"1", true}, {"0", false}, {"", false}, {" 1", false}, {"11", false}, {"true", false}} {
		if NPA([]byte(tc.in)) != tc.want || DMA([]byte(tc.in)) != tc.want {
			t.Errorf("%q: want %v", tc.in, tc.want)
		}
	}
}

func TestParseMPConsent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		ud, ap consent.Status
		ok     bool
	}{
		// Body as in Google's MP reference (developers.google.com/analytics/devguides/
		// collection/protocol/ga4/reference, "consent" attribute).
		{"reference", `{"client_id":"123456.7654321","consent":{"ad_user_data":"GRANTED","ad_personalization":"DENIED"},"events":[{"name":"purchase","params":{"value":9.99,"currency":"EUR"}}]}`, G, D, true},
		{"both denied", `{"consent":{"ad_user_data":"DENIED","ad_personalization":"DENIED"}}`, D, D, true},
		{"only ud", `{"consent":{"ad_user_data":"DENIED"}}`, D, U, true},
		{"only ap", ` { "consent" : { "ad_personalization" : "GRANTED" } } `, U, G, true},
		{"consent last", "{\"events\":[{\"name\":\"x\",\"params\":{\"consent\":{\"ad_user_data\":\"GRANTED\"}}}],\n\"consent\":{\"ad_user_data\":\"DENIED\"}}", D, U, true},
		{"nested consent ignored", `{"events":[{"params":{"consent":{"ad_user_data":"DENIED"}}}]}`, U, U, true},
		{"no consent", `{"client_id":"1.2","events":[]}`, U, U, true},
		{"empty", `{}`, U, U, true},
		{"empty consent", `{"consent":{}}`, U, U, true},
		{"null consent", `{"consent":null}`, U, U, true},
		{"null value", `{"consent":{"ad_user_data":null,"ad_personalization":"DENIED"}}`, U, D, true},
		{"lowercase", `{"consent":{"ad_user_data":"denied","ad_personalization":"Granted"}}`, D, G, true},
		{"escaped key", `{"\u0063onsent":{"ad_user_data":"\u0044ENIED"}}`, D, U, true},
		{"unknown consent key", `{"consent":{"ad_storage":"DENIED","ad_user_data":"GRANTED"}}`, G, U, true},
		{"dup protective", `{"consent":{"ad_user_data":"DENIED","ad_user_data":"GRANTED"}}`, D, U, true},
		{"dup consent", `{"consent":{"ad_user_data":"GRANTED"},"consent":{"ad_personalization":"DENIED"}}`, G, D, true},
		{"Consent other case", `{"Consent":{"ad_user_data":"DENIED"}}`, U, U, true},
		{"numbers", `{"a":-0.5e+10,"b":[1,2.0,3E-2,true,false,null],"consent":{"ad_user_data":"DENIED"}}`, D, U, true},
		{"escapes elsewhere", `{"a\b\f\n\r\t\/\\\"":"x","consent":{"ad_user_data":"\u0064\u0045NIED","ad_personalization\u00e9":"DENIED"}}`, D, U, true},
		{"non-ascii key", `{"consént":{"ad_user_data":"DENIED"}}`, U, U, true},
		{"longer key", `{"consent2":{"ad_user_data":"DENIED"},"consen":1}`, U, U, true},
		{"escaped value long", `{"consent":{"ad_user_data":"DENIEDX"}}`, U, U, false},
		// Malformed.
		{"bad unicode escape", `{"a\u00G0":1}`, U, U, false},
		{"short unicode escape", `{"a\u00`, U, U, false},
		{"cut escape", `{"a\`, U, U, false},
		{"cut string", `{"a`, U, U, false},
		{"bad number -", `{"a":-}`, U, U, false},
		{"bad number 1.", `{"a":1.}`, U, U, false},
		{"bad number 1e", `{"a":1e}`, U, U, false},
		{"bad literal", `{"a":tru}`, U, U, false},
		{"bad literal null", `{"consent":nul}`, U, U, false},
		{"bad value null", `{"consent":{"ad_user_data":nul}}`, U, U, false},
		{"unknown value bad", `{"consent":{"x":}}`, U, U, false},
		{"consent no colon", `{"consent"{}}`, U, U, false},
		{"consent key not string", `{"consent":{ad_user_data:"DENIED"}}`, U, U, false},
		{"consent missing colon", `{"consent":{"ad_user_data" "DENIED"}}`, U, U, false},
		{"object missing colon", `{"a":{"b" 1}}`, U, U, false},
		{"object bad key", `{"a":{1:1}}`, U, U, false},
		{"array unterminated", `{"a":[1 2]}`, U, U, false},
		{"top missing comma", `{"a":1 "b":2}`, U, U, false},
		{"top bad key", `{1:2}`, U, U, false},
		{"empty nested", `{"a":{},"b":[],"c":{"d":[{}]}}`, U, U, true},
		{"nil", ``, U, U, false},
		{"array", `[]`, U, U, false},
		{"truncated", `{"consent":{"ad_user_data":"DENIED"}`, U, U, false},
		{"trailing", `{"consent":{"ad_user_data":"DENIED"}} x`, U, U, false},
		{"bad value", `{"consent":{"ad_user_data":"YES"}}`, U, U, false},
		{"bool value", `{"consent":{"ad_user_data":false}}`, U, U, false},
		{"consent string", `{"consent":"DENIED"}`, U, U, false},
		{"consent array", `{"consent":[]}`, U, U, false},
		{"bad json later", `{"consent":{"ad_user_data":"DENIED"},"x":01}`, U, U, false},
		{"bad escape", `{"consent":{"ad_user_data":"\x"}}`, U, U, false},
		{"ctrl in string", "{\"a\":\"\x01\"}", U, U, false},
		{"trailing comma", `{"consent":{"ad_user_data":"DENIED",}}`, U, U, false},
		{"single quotes", `{'consent':{}}`, U, U, false},
		{"deep", strings.Repeat("[", 1000), U, U, false},
		{"deep valid", `{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, U, U, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ud, ap, ok := ParseMPConsent([]byte(tc.in))
			if ud != tc.ud || ap != tc.ap || ok != tc.ok {
				t.Errorf("ParseMPConsent(%s) = %v, %v, %v; want %v, %v, %v", tc.in, ud, ap, ok, tc.ud, tc.ap, tc.ok)
			}
		})
	}
}

func TestTighten(t *testing.T) {
	stored := func(s consent.Status) consent.Effective {
		return consent.FromState(&consent.State{Purposes: consent.Purposes{s, s, s, s}})
	}
	mustGCD := func(v string) GCD {
		g, err := ParseGCD([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	CM, ST, NO := consent.CauseConsentMode, consent.CauseStore, consent.CauseNone
	type pc struct {
		s consent.Status
		c consent.Cause
	}
	for _, tc := range []struct {
		name string
		e    consent.Effective
		s    *Signals
		want [consent.NumPurposes]pc // necessary, preferences, statistics, marketing
	}{
		{"nil", stored(G), nil, [4]pc{{G, ST}, {G, ST}, {G, ST}, {G, ST}}},
		{"zero", stored(G), &Signals{}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {G, ST}}},
		{"all granted never upgrades", consent.Effective{}, &Signals{GCD: mustGCD("13r3r3r3r5"), AdUserData: G, AdPersonalization: G}, [4]pc{{U, NO}, {U, NO}, {U, NO}, {U, NO}}},
		{"granted keeps stored denial", stored(D), &Signals{GCD: mustGCD("11t1t1t1t5")}, [4]pc{{D, ST}, {D, ST}, {D, ST}, {D, ST}}},
		{"all denied", stored(G), &Signals{GCD: mustGCD("13q3q3q3q5")}, [4]pc{{G, ST}, {G, ST}, {D, CM}, {D, CM}}},
		{"default denied pending", consent.Effective{}, &Signals{GCD: mustGCD("11p1p1p1p5")}, [4]pc{{U, NO}, {U, NO}, {D, CM}, {D, CM}}},
		{"update grants over default denial", stored(G), &Signals{GCD: mustGCD("13r3r3r3r5")}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {G, ST}}},
		{"ad_storage only", stored(G), &Signals{GCD: mustGCD("13u3v3v3v5")}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {D, CM}}},
		{"analytics only", stored(G), &Signals{GCD: mustGCD("13v3u3v3v5")}, [4]pc{{G, ST}, {G, ST}, {D, CM}, {G, ST}}},
		{"ad_user_data only", stored(G), &Signals{GCD: mustGCD("13v3v3m3v5")}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {D, CM}}},
		{"ad_personalization only", stored(G), &Signals{GCD: mustGCD("13v3v3v3q5")}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {D, CM}}},
		{"mp ud", stored(G), &Signals{AdUserData: D}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {D, CM}}},
		{"mp ap", stored(G), &Signals{AdPersonalization: D}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {D, CM}}},
		{"npa", stored(G), &Signals{NPA: true}, [4]pc{{G, ST}, {G, ST}, {G, ST}, {D, CM}}},
		{"keeps first cause", stored(D), &Signals{GCD: mustGCD("13q3q3q3q5"), NPA: true}, [4]pc{{D, ST}, {D, ST}, {D, ST}, {D, ST}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			Tighten(&e, tc.s)
			for p := range consent.NumPurposes {
				if e.Status[p] != tc.want[p].s || e.Cause[p] != tc.want[p].c {
					t.Errorf("%v = %v/%v, want %v/%v", p, e.Status[p], e.Cause[p], tc.want[p].s, tc.want[p].c)
				}
			}
		})
	}
}

func TestZeroAlloc(t *testing.T) {
	gcd := []byte("13r3r3r3r5l1")
	body := []byte(`{"client_id":"1.2","consent":{"ad_user_data":"DENIED","ad_personalization":"GRANTED"},"events":[{"name":"x"}]}`)
	if n := testing.AllocsPerRun(100, func() {
		g, _ := ParseGCD(gcd)
		ud, ap, _ := ParseMPConsent(body)
		s := Signals{GCD: g, AdUserData: ud, AdPersonalization: ap, NPA: NPA([]byte("1"))}
		var e consent.Effective
		Tighten(&e, &s)
	}); n != 0 {
		t.Errorf("allocs = %v", n)
	}
}

func FuzzParseGCD(f *testing.F) {
	for _, s := range []string{"11t1t1t1t5", "13r3r3r3r5l1", "11p1p1p1p5", "13q3u3m3n5", "", "11", "11t1t1t1t5\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		g, err := ParseGCD(v)
		if err != nil {
			if g != (GCD{}) {
				t.Fatalf("error with non-zero GCD %v", g)
			}
			return
		}
		// Success implies the documented layout.
		if len(v) < 10 {
			t.Fatalf("accepted short %q", v)
		}
		for i := range int(NumTypes) {
			if !validLetter[v[2+2*i]] || letters[v[2+2*i]] != g[i] {
				t.Fatalf("%q: slot %d", v, i)
			}
		}
	})
}

// FuzzParseMPConsent checks the scanner against encoding/json: it never accepts
// invalid JSON, and on valid JSON without duplicate keys agrees with a full decode.
func FuzzParseMPConsent(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"1.2","consent":{"ad_user_data":"GRANTED","ad_personalization":"DENIED"},"events":[{"name":"x","params":{"v":1.5e3}}]}`,
		`{"consent":null}`, `{"consent":{"ad_user_data":"\u0044enied"}}`, `{}`, `[]`, `{"a":"\ud83d\ude00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ud, ap, ok := ParseMPConsent(body)
		if !ok {
			if ud != U || ap != U {
				t.Fatal("not ok with statuses")
			}
		}
		valid := json.Valid(body)
		if ok && !valid {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if !valid || hasDupKeys(body) {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil || top == nil { // "null" decodes to a nil map
			if ok {
				t.Fatalf("accepted non-object %q", body)
			}
			return
		}
		wantUD, wantAP, wantOK := U, U, true
		if raw, has := top["consent"]; has && string(bytes.TrimSpace(raw)) != "null" {
			var c map[string]json.RawMessage
			if json.Unmarshal(raw, &c) != nil {
				wantOK = false
			} else {
				wantUD, wantOK = refStatus(c["ad_user_data"], wantOK)
				wantAP, wantOK = refStatus(c["ad_personalization"], wantOK)
			}
		}
		if !wantOK {
			wantUD, wantAP = U, U
		}
		if depth(body) > maxDepth {
			return // we refuse absurd nesting; encoding/json accepts up to 10000
		}
		if ud != wantUD || ap != wantAP || ok != wantOK {
			t.Fatalf("%q: got %v %v %v, want %v %v %v", body, ud, ap, ok, wantUD, wantAP, wantOK)
		}
	})
}

func refStatus(raw json.RawMessage, ok bool) (consent.Status, bool) {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return U, ok
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return U, false
	}
	switch {
	case strings.EqualFold(s, "GRANTED") && isASCII(s):
		return G, ok
	case strings.EqualFold(s, "DENIED") && isASCII(s):
		return D, ok
	}
	return U, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hasDupKeys reports whether any object in the (valid) JSON has a repeated key.
func hasDupKeys(b []byte) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj    bool
		keys   map[string]bool
		expKey bool
	}
	var st []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(st) > 0 {
			top = st[len(st)-1]
		}
		if top != nil && top.obj && top.expKey {
			if k, isStr := tok.(string); isStr {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.expKey = false
				continue
			}
		}
		if top != nil && top.obj && !top.expKey {
			top.expKey = true
		}
		switch tok {
		case json.Delim('{'):
			st = append(st, &frame{obj: true, keys: map[string]bool{}, expKey: true})
		case json.Delim('['):
			st = append(st, &frame{})
		case json.Delim('}'), json.Delim(']'):
			st = st[:len(st)-1]
			if len(st) > 0 && st[len(st)-1].obj {
				st[len(st)-1].expKey = true
			}
		}
	}
}

func depth(b []byte) int {
	d, m := 0, 0
	in, esc := false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case !in && (c == '{' || c == '['):
			d++
			m = max(m, d)
		case !in && (c == '}' || c == ']'):
			d--
		}
	}
	return m
}

func BenchmarkParseGCD(b *testing.B) {
	v := []byte("13r3r3r3r5l1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseGCD(v); err != nil {
			b.Fatal(err)
		}
	}
}

var mpBody = []byte(`{"client_id":"123456.7654321","user_id":"u-42","timestamp_micros":"1700000000000000","consent":{"ad_user_data":"GRANTED","ad_personalization":"DENIED"},"events":[{"name":"purchase","params":{"currency":"EUR","value":30.03,"transaction_id":"T_12345","items":[{"item_id":"SKU_12345","item_name":"Stan and Friends Tee","price":10.01,"quantity":3}]}}]}`)

func BenchmarkParseMPConsent(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(mpBody)))
	for b.Loop() {
		if _, _, ok := ParseMPConsent(mpBody); !ok {
			b.Fatal("not ok")
		}
	}
}

// BenchmarkParseMPConsentJSON is the encoding/json baseline for the same body.
func BenchmarkParseMPConsentJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(mpBody)))
	for b.Loop() {
		var v struct {
			Consent *struct {
				AdUserData        string `json:"ad_user_data"`
				AdPersonalization string `json:"ad_personalization"`
			} `json:"consent"`
		}
		if err := json.Unmarshal(mpBody, &v); err != nil || v.Consent == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTighten(b *testing.B) {
	g, _ := ParseGCD([]byte("13q3r3q3q5"))
	s := Signals{GCD: g, NPA: true}
	b.ReportAllocs()
	for b.Loop() {
		var e consent.Effective
		Tighten(&e, &s)
	}
}
