package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		in    string
		depth int
		kind  Kind
		err   error
	}{
		{`{}`, 1, Object, nil},
		{` {"a" : [1, -0.5e+3, "x", true, false, null, {}] } `, 3, Object, nil},
		{`[]`, 1, Array, nil},
		{`"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"`, 0, String, nil},
		{"\"\xff\xfe raw non-UTF-8 is accepted\"", 0, String, nil},
		{`-0`, 0, Number, nil},
		{`1E-2`, 0, Number, nil},
		{`null`, 0, Null, nil},
		{`true`, 0, Bool, nil},
		{"\t\r\n{}\n", 1, Object, nil},
		{`[[[]]]`, 3, Array, nil},
		// Depth.
		{`[[[]]]`, 2, Invalid, ErrDepth},
		{`{"a":{"b":{}}}`, 2, Invalid, ErrDepth},
		{`{}`, 0, Invalid, ErrDepth},
		{`1`, 0, Number, nil},
		// Syntax.
		{``, 1, Invalid, ErrSyntax},
		{` `, 1, Invalid, ErrSyntax},
		{`{`, 1, Invalid, ErrSyntax},
		{`{"a"}`, 1, Invalid, ErrSyntax},
		{`{"a":}`, 1, Invalid, ErrSyntax},
		{`{"a":1,}`, 1, Invalid, ErrSyntax},
		{`{,}`, 1, Invalid, ErrSyntax},
		{`[1,]`, 1, Invalid, ErrSyntax},
		{`[1 2]`, 1, Invalid, ErrSyntax},
		{`{"a":1 "b":2}`, 1, Invalid, ErrSyntax},
		{`{a:1}`, 1, Invalid, ErrSyntax},
		{`{'a':1}`, 1, Invalid, ErrSyntax},
		{`[}`, 1, Invalid, ErrSyntax},
		{`{]`, 1, Invalid, ErrSyntax},
		{`{}}`, 1, Invalid, ErrSyntax},
		{`{} {}`, 1, Invalid, ErrSyntax},
		{`01`, 0, Invalid, ErrSyntax},
		{`1.`, 0, Invalid, ErrSyntax},
		{`.5`, 0, Invalid, ErrSyntax},
		{`1e`, 0, Invalid, ErrSyntax},
		{`-`, 0, Invalid, ErrSyntax},
		{`+1`, 0, Invalid, ErrSyntax},
		{`tru`, 0, Invalid, ErrSyntax},
		{`True`, 0, Invalid, ErrSyntax},
		{`nul`, 0, Invalid, ErrSyntax},
		{`"\x"`, 0, Invalid, ErrSyntax},
		{`"\u12"`, 0, Invalid, ErrSyntax},
		{`"\u12G4"`, 0, Invalid, ErrSyntax},
		{"\"a\x01\"", 0, Invalid, ErrSyntax},
		{`"abc`, 0, Invalid, ErrSyntax},
		{`"abc\`, 0, Invalid, ErrSyntax},
		{"\xef\xbb\xbf{}", 1, Invalid, ErrSyntax}, // a BOM is not whitespace
		{"{}\v", 1, Invalid, ErrSyntax},
	} {
		k, err := Validate([]byte(c.in), c.depth)
		if k != c.kind || !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("Validate(%q, %d) = %v, %v; want %v, %v", c.in, c.depth, k, err, c.kind, c.err)
		}
		if c.err != ErrDepth && (err == nil) != json.Valid([]byte(c.in)) {
			t.Errorf("Validate(%q) = %v, json.Valid disagrees", c.in, err)
		}
	}
}

func TestDepthLimits(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":[`, n/2) + strings.Repeat(`]}`, n/2))
	}
	for _, n := range []int{2, 64, 256, 258, 1000, MaxDepth} {
		b := nest(n)
		if _, err := Validate(b, n); err != nil {
			t.Errorf("depth %d at limit %d: %v", n, n, err)
		}
		if _, err := Validate(b, n-1); !errors.Is(err, ErrDepth) {
			t.Errorf("depth %d at limit %d: %v, want ErrDepth", n, n-1, err)
		}
	}
	// Deeper than MaxDepth is refused whatever the caller asks, as in encoding/json.
	b := nest(MaxDepth + 2)
	if _, err := Validate(b, 1<<30); !errors.Is(err, ErrDepth) || json.Valid(b) {
		t.Errorf("beyond MaxDepth: %v, json.Valid %v", err, json.Valid(b))
	}
}

func TestIter(t *testing.T) {
	type member struct {
		key, val, mem string
		kind          Kind
	}
	b := []byte(` { "a" : 1 , "b\u0063":{"x":[1,{}]},"c":"s\"" ,"d":null}x`)
	it := Members(b, 1, 4)
	var got []member
	for it.Next() {
		got = append(got, member{string(it.Key()), string(it.Value()), string(it.Member()), it.Kind()})
	}
	want := []member{
		{"a", "1", `"a" : 1`, Number},
		{`b\u0063`, `{"x":[1,{}]}`, `"b\u0063":{"x":[1,{}]}`, Object},
		{"c", `"s\""`, `"c":"s\""`, String},
		{"d", "null", `"d":null`, Null},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || it.Err() != nil || b[it.End()] != 'x' {
		t.Fatalf("got %v, err %v, end %d\nwant %v", got, it.Err(), it.End(), want)
	}

	el := Elements([]byte(`[ 1,"a" ,[2]]`), 0, 2)
	var vals []string
	for el.Next() {
		if el.Key() != nil {
			t.Error("array element has a key")
		}
		vals = append(vals, string(el.Value()))
	}
	if strings.Join(vals, "|") != `1|"a"|[2]` || el.Err() != nil || el.End() != 13 {
		t.Errorf("elements %q, %v, end %d", vals, el.Err(), el.End())
	}

	for _, c := range []struct {
		in    string
		depth int
		n     int // members before the error
		err   error
	}{
		{`{}`, 1, 0, nil},
		{`[]`, 1, 0, ErrSyntax}, // not an object
		{`{"a":1,"b":[[]]}`, 2, 1, ErrDepth},
		{`{"a":1,}`, 5, 1, ErrSyntax},
		{`{"a":1 "b":2}`, 5, 1, ErrSyntax},
		{`{"a":1`, 5, 1, ErrSyntax},
		{`{"a" 1}`, 5, 0, ErrSyntax},
		{`{1:1}`, 5, 0, ErrSyntax},
		{``, 5, 0, ErrSyntax},
		{`{}`, 0, 0, ErrDepth},
	} {
		it := Members([]byte(c.in), 0, c.depth)
		n := 0
		for it.Next() {
			n++
		}
		if n != c.n || !errors.Is(it.Err(), c.err) || (it.Err() == nil) != (c.err == nil) {
			t.Errorf("%q: %d members, %v; want %d, %v", c.in, n, it.Err(), c.n, c.err)
		}
		if it.Next() {
			t.Errorf("%q: Next after the end", c.in)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, raw := range []string{
		``, `plain`, `\"\\\/\b\f\n\r\t`, `\u0041\u00e9\u20ac`, `\ud83d\ude00`,
		`\ud800`, `\ud800x`, `\ud800\u0041`, `\udc00\ud800`, `\ud800\ud800\udc00`, `\uDBFF\uDFFF`,
		"é€😀", "\xff", "a\xe2\x82", "\xed\xa0\x80", `\u0000`, "\u2028",
	} {
		quoted := []byte(`"` + raw + `"`)
		if _, err := Validate(quoted, 0); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		var want string
		if err := json.Unmarshal(quoted, &want); err != nil {
			t.Fatal(err)
		}
		if got := Unescape(nil, []byte(raw)); string(got) != want {
			t.Errorf("Unescape(%q) = %q, want %q", raw, got, want)
		}
		if !Equal([]byte(raw), want) || !EqualFold([]byte(raw), strings.ToUpper(want)) && utf8.ValidString(want) && isASCII(want) {
			t.Errorf("Equal(%q, %q) false", raw, want)
		}
		if Equal([]byte(raw), want+"x") || len(want) > 0 && Equal([]byte(raw), want[:len(want)-1]) {
			t.Errorf("Equal(%q) matches a different string", raw)
		}
	}
	for _, c := range []struct {
		raw, s   string
		eq, fold bool
	}{
		{"consent", "consent", true, true},
		{`\u0063onsent`, "consent", true, true},
		{`DENIED`, "denied", false, true},
		{`\u0044enied`, "DENIED", false, true},
		{`K`, "k", false, true},
		{"\u212a", "k", false, false}, // Kelvin sign folds to k in Unicode, not here
		{`a_b`, "ab", false, false},
	} {
		if Equal([]byte(c.raw), c.s) != c.eq || EqualFold([]byte(c.raw), c.s) != c.fold {
			t.Errorf("%q vs %q: Equal %v EqualFold %v", c.raw, c.s, Equal([]byte(c.raw), c.s), EqualFold([]byte(c.raw), c.s))
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// encodeJSON is the reference: encoding/json's Encoder as the anonymiser used it.
func encodeJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `q"b\s/`, "\b\f\n\r\t\x00\x1f\x7f", "<a&b>", "é€😀", "\u2028\u2029",
		"\xff", "a\xe2\x82b", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	} {
		want := encodeJSON(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+want {
			t.Errorf("AppendString(%q) = %s, want %s", s, got[1:], want)
		}
		if got := AppendString(nil, []byte(s)); string(got) != want {
			t.Errorf("AppendString([]byte %q) = %s, want %s", s, got, want)
		}
	}
}

var mpBody = []byte(`{"client_id":"123456.7654321","user_id":"u-42","timestamp_micros":"1700000000000000","consent":{"ad_user_data":"GRANTED","ad_personalization":"DENIED"},"events":[{"name":"purchase","params":{"currency":"EUR","value":30.03,"transaction_id":"T_12345","items":[{"item_id":"SKU_12345","item_name":"Stan and Friends Tee","price":10.01,"quantity":3}]}}]}`)

func TestZeroAlloc(t *testing.T) {
	var buf [64]byte
	raw := []byte(`\u0063onsent \ud83d\ude00`)
	deep := []byte(strings.Repeat("[", 300) + strings.Repeat("]", 300))
	n := testing.AllocsPerRun(100, func() {
		Validate(mpBody, MaxDepth)
		Validate(deep, MaxDepth)
		Validate(deep, 10)
		it := Members(mpBody, 0, 32)
		for it.Next() {
			if it.Kind() == String {
				Unescape(buf[:0], it.Value())
			}
			EqualFold(it.Key(), "consent")
		}
		Unescape(buf[:0], raw)
		AppendString(buf[:0], "a\"b\u2028")
		AppendString(buf[:0], raw)
	})
	if n != 0 {
		t.Errorf("allocs = %v", n)
	}
}

// FuzzValidate holds Validate and Iter to encoding/json: the same documents are
// valid, and walking a valid object or array visits the values encoding/json decodes,
// with the same decoded keys.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		string(mpBody), `{}`, `[]`, `[1,"a",{"b":null}]`, `{"a\u0062":"\ud800"}`, `{"a":1,}`,
		`01`, `"\u12"`, "\"\xff\"", `{"a":[[[[]]]]}`, ` true `, `{"a":1}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := Validate(b, MaxDepth)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("%q: Validate %v, json.Valid %v", b, err, json.Valid(b))
		}
		if err != nil {
			if k != Invalid {
				t.Fatalf("%q: kind %v with error", b, k)
			}
			return
		}
		i := SkipSpace(b, 0)
		switch k {
		case Object:
			var want []json.RawMessage
			var keys []string
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.Token() // '{'
			for dec.More() {
				tok, _ := dec.Token()
				keys = append(keys, tok.(string))
				var v json.RawMessage
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
				want = append(want, v)
			}
			it := Members(b, i, MaxDepth)
			n := 0
			for it.Next() {
				if n >= len(want) {
					t.Fatalf("%q: more members than encoding/json", b)
				}
				if got := Unescape(nil, it.Key()); string(got) != keys[n] {
					t.Fatalf("%q: key %d = %q, want %q", b, n, got, keys[n])
				}
				checkValue(t, it.Value(), it.Kind(), want[n])
				n++
			}
			if it.Err() != nil || n != len(want) || SkipSpace(b, it.End()) != len(b) {
				t.Fatalf("%q: walk stopped at %d/%d: %v", b, n, len(want), it.Err())
			}
		case Array:
			var want []json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			it := Elements(b, i, MaxDepth)
			n := 0
			for it.Next() {
				checkValue(t, it.Value(), it.Kind(), want[n])
				n++
			}
			if it.Err() != nil || n != len(want) {
				t.Fatalf("%q: walk stopped at %d/%d: %v", b, n, len(want), it.Err())
			}
		}
	})
}

func checkValue(t *testing.T, got []byte, k Kind, want json.RawMessage) {
	t.Helper()
	if !bytes.Equal(got, bytes.TrimSpace(want)) {
		t.Fatalf("value %q, want %q", got, want)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber() // numbers beyond float64 are still JSON
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var wk Kind
	switch x := v.(type) {
	case nil:
		wk = Null
	case bool:
		wk = Bool
	case json.Number:
		wk = Number
	case string:
		wk = String
		if u := Unescape(nil, got[1:len(got)-1]); string(u) != x {
			t.Fatalf("Unescape(%s) = %q, want %q", got, u, x)
		}
		if !Equal(got[1:len(got)-1], x) {
			t.Fatalf("Equal(%s, %q) false", got, x)
		}
	case map[string]any:
		wk = Object
	case []any:
		wk = Array
	}
	if k != wk {
		t.Fatalf("%s: kind %v, want %v", got, k, wk)
	}
}

// FuzzAppendString holds AppendString to encoding/json's encoder and checks that
// Unescape reads back what encoding/json decodes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\x1f\x7f", "é\u2028\u2029", "\xff\xed\xa0\x80", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		if want := encodeJSON(s); string(got) != want {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
		if _, err := Validate(got, 0); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		var dec string
		if err := json.Unmarshal(got, &dec); err != nil {
			t.Fatal(err)
		}
		if u := Unescape(nil, got[1:len(got)-1]); string(u) != dec {
			t.Fatalf("Unescape(%s) = %q, want %q", got, u, dec)
		}
		// Raw bytes as string contents: whatever Validate accepts decodes as encoding/json.
		q := append(append([]byte{'"'}, s...), '"')
		if _, err := Validate(q, 0); err != nil {
			return
		}
		if err := json.Unmarshal(q, &dec); err != nil {
			t.Fatalf("%q accepted, encoding/json: %v", q, err)
		}
		if u := Unescape(nil, []byte(s)); string(u) != dec {
			t.Fatalf("Unescape(%q) = %q, want %q", s, u, dec)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(mpBody)))
	for b.Loop() {
		if _, err := Validate(mpBody, 32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateEncodingJSON is the baseline for BenchmarkValidate.
func BenchmarkValidateEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(mpBody)))
	for b.Loop() {
		if !json.Valid(mpBody) {
			b.Fatal()
		}
	}
}

func BenchmarkMembers(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(mpBody)))
	for b.Loop() {
		it := Members(mpBody, 0, 32)
		for it.Next() {
			if EqualFold(it.Key(), "consent") {
				c := Members(it.Value(), 0, 31)
				for c.Next() {
				}
			}
		}
		if it.Err() != nil {
			b.Fatal(it.Err())
		}
	}
}

func BenchmarkUnescape(b *testing.B) {
	raw := []byte(`https:\/\/shop.example.com\/checkout?utm_medium=cpc \u00e9\ud83d\ude00`)
	var buf [128]byte
	b.ReportAllocs()
	for b.Loop() {
		Unescape(buf[:0], raw)
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := []byte("https://shop.example.com/checkout?utm_medium=cpc \"é\"\n")
	var buf [128]byte
	b.ReportAllocs()
	for b.Loop() {
		AppendString(buf[:0], s)
	}
}
