package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// refAnonymiseJSON is the JSON path as it was before it walked the body in place:
// decode into map[string]any, filter the map, apply SetJSON and the IP field, encode.
// It is kept as the oracle that the in-place writer must match byte for byte.
func refAnonymiseJSON(a *Anonymiser, key *HashKey, ep *Endpoint, body []byte, ip string) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if len(body) > maxJSONBody {
		return nil, errJSONSize
	}
	if refJSONDepth(body) > maxJSONDepth {
		return nil, errJSONDepth
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errBadJSON
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errBadJSON
	}
	refFilterObject(a, a.json, doc, true, &hitState{key: key})
	for _, p := range ep.SetJSON {
		path := strings.Split(p.Name, ".")
		d := json.NewDecoder(strings.NewReader(p.Value))
		d.UseNumber()
		var val any
		if err := d.Decode(&val); err != nil {
			panic(err)
		}
		m := doc
		for _, k := range path[:len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = val
	}
	if a.ipJSON != "" {
		delete(doc, a.ipJSON)
		if ip != "" {
			doc[a.ipJSON] = ip
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

func refJSONDepth(b []byte) int {
	depth, m, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			m = max(m, depth)
		case '}', ']':
			depth--
		}
	}
	return m
}

func refFilterObject(a *Anonymiser, n *jsonNode, m map[string]any, root bool, st *hitState) bool {
	orig := maps.Clone(m) // the page URL a referrer is judged against, as the hit sent it
	for k, v := range m {
		c := n.fields[k]
		if c == nil {
			delete(m, k)
			continue
		}
		if c.value != nil && c.value.Kind == KindURL && c.value.Role == RoleReferrer {
			refPageHost(n, orig, st)
		}
		nv, ok := refFilterJSON(a, c, v, st)
		if !ok {
			delete(m, k)
			continue
		}
		m[k] = nv
	}
	return root || len(m) > 0
}

// refPageHost is jsonPageHost over a decoded object: the first page URL member in name
// order, its host read from at most the first 508 bytes.
func refPageHost(n *jsonNode, m map[string]any, st *hitState) {
	st.pageKnown, st.pageLen = true, 0
	for _, f := range n.order {
		if v := f.node.value; v == nil || v.Kind != KindURL || v.Role != RolePage {
			continue
		}
		u, ok := m[f.name].(string)
		if !ok {
			continue
		}
		var b []byte
		for _, r := range u {
			if len(b) >= 512-utf8.UTFMax {
				break
			}
			b = utf8.AppendRune(b, r)
		}
		st.setPageHost(b)
		return
	}
}

func refFilterJSON(a *Anonymiser, n *jsonNode, v any, st *hitState) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		if n.fields == nil {
			return nil, false
		}
		return x, refFilterObject(a, n, x, false, st)
	case []any:
		if n.elem == nil {
			return nil, false
		}
		out := x[:0]
		for _, e := range x {
			if ev, ok := refFilterJSON(a, n.elem, e, st); ok {
				out = append(out, ev)
			}
		}
		return out, len(out) > 0
	}
	spec := n.value
	if spec == nil {
		return nil, false
	}
	switch x := v.(type) {
	case string:
		var b []byte
		var verd verdict
		switch spec.Kind {
		case KindID:
			if len(x) > maxIDLen {
				return nil, false
			}
			b, _ = a.appendID(nil, spec, []byte(x), st.key)
		case KindURL:
			b, verd = a.appendCleanURL(nil, []byte(x), spec.Role, st)
		case KindText:
			if a.dropText {
				return nil, false
			}
			var ok bool
			if _, b, ok = a.appendText(nil, []byte(x), spec.Max); !ok {
				return nil, false
			}
		default:
			b, verd = a.appendSmall(nil, []byte(x), spec)
		}
		return string(b), verd == keep
	case json.Number:
		raw := []byte(x)
		switch spec.Kind {
		case KindEnum:
			return x, checkEnum(raw, spec.Enum)
		case KindNumber:
			return x, checkNumber(raw, spec.Max, spec.Decimal)
		case KindToken:
			return x, checkToken(raw, &spec.Chars, spec.Max) && !(spec.Name && looksIdentifying(raw))
		case KindID:
			b, ok := a.appendID(nil, spec, raw, st.key)
			return string(b), ok
		case KindScreen:
			d, ok := parseDim(raw)
			return json.Number(strconv.Itoa(bucketScreen(d))), ok
		case KindText:
			return x, !a.dropText && !looksIdentifying(raw)
		}
	case bool:
		lit := strconv.FormatBool(x)
		return x, spec.Kind == KindEnum && checkEnum([]byte(lit), spec.Enum) || spec.Kind == KindText && !a.dropText
	case nil:
		return nil, spec.Kind != KindID && spec.Kind != KindURL
	}
	return nil, false
}

// jsonTestEndpoints are the built-in JSON endpoints plus synthetic ones whose SetJSON
// paths overlap the allow-list, each other and the IP field in every order.
func jsonTestEndpoints(t testing.TB) []*Endpoint {
	eps := []*Endpoint{
		{
			Name: "overlay", Body: BodyJSON, Identifiers: []string{"o.p[].q", "n"},
			AllowJSON: map[string]Value{
				"a.b": Text(50), "a.c": Int(5), "x": Dec(10), "arr[]": Text(50), "arr2[][]": Text(50), "o.p[].q": ID,
				"u": PageURL, "n": ID, "s.t": Enum("true", "1"), "k.l.m": Text(50), "e": Text(500), "é": Text(50), "a\u2028": Text(50),
				"zz.deep.er": Token(csAlnum, 10), "r": Referrer, "w": Screen, "c": Currency, "l": Lang,
			},
			SetJSON: []Param{
				{Name: "a.d", Value: `"S"`}, {Name: "x.y", Value: `1`}, {Name: "s", Value: `"v"`},
				{Name: "s.t", Value: `true`}, {Name: "k.l", Value: `null`}, {Name: "k", Value: `2.50`},
				{Name: "ip.z", Value: `1`}, {Name: "h", Value: `"<&>\u2028"`}, {Name: "zz.deep.set", Value: `-1e3`},
				{Name: "A", Value: `false`},
			},
			IP: IPPass{JSONField: "ip"},
		},
		{
			Name: "noset", Body: BodyJSON,
			AllowJSON: map[string]Value{"a": Text(20), "b[].c": Text(20), "d.e": PageURL, "d.f": Referrer, "d.g": PageURL},
		},
	}
	for i := range builtin {
		if builtin[i].Body == BodyJSON {
			eps = append(eps, &builtin[i])
		}
	}
	return eps
}

var jsonTestBodies = []string{
	`{}`,
	` {"a":{"b":1,"c":[1],"x":2},"x":{"q":1},"u":"https://u:p@a.example/p;jsid=1?utm_source=s&gclid=g#f","n":12.50e3}`,
	`{"a":1,"s":{"t":false},"k":{"l":{"m":"x"}},"ip":"6.6.6.6","o":{"p":[{"q":"id"},{"q":7},{"r":1},3]}}`,
	`{"arr":[1,"a",null,true,{"x":1},[2]],"arr2":[[1,[2]],[],3,[{}]],"e":"\u00e9\ud83d\ude00\ud800\u0041 \u2028\u0000\b\f\n\r\t\"\\\/<&>"}`,
	"{\"e\":\"raw é and \xff bad \xed\xa0\x80 bytes\",\"\\u00e9\":1,\"é\":2,\"a\\u2028\":3,\"a\u2028\":4,\"\xffe\":5}",
	`{"x":1,"x":{"y":2},"x":[3],"n":1,"n":"2"}`,
	`{"a":{"b":1},"a":{"c":2}}`,
	`{"a":{},"zz":{"deep":{"er":"kept","no":1}},"k":[1]}`,
	`{"u":"/relative","n":"","n":null}`,
	`{"client_id":"c1","events":[{"name":"x","params":{"page_location":"https://a.example/?gclid=1&utm_source=s","page_title":"a<b>&c","items":[{"item_id":"S1","coupon":"J"}]}}],"consent":{"ad_user_data":"GRANTED","x":1},"timestamp_micros":1712345678901234567}`,
	`{"consent":"x","ip_override":"1.2.3.4","client_id":""}`,
	`{"event":"Pageview","context":{"user":{"anonymous_id":"A1","email":"e"},"page":{"url":"https://a.example/?ttclid=T"}},"properties":{"contents":[{"content_id":"S","email":"e"}],"value":1}}`,
	`{"n":"pageview","u":"https://a.example/p?utm_medium=m&fbclid=F#h","props":{"email":"j"},"revenue":{"currency":"EUR","amount":"1.00"},"d":"a.example","w":1920}`,
	`{"u":"https://a.example/p/12345","r":"https://a.example/q/67890","w":"1366x768","c":"eur","l":"de-CH","e":"call +44 20 7946 0958 or jane%2540doe.com","a":{"b":true,"c":"123"},"x":"1e3","s":{"t":1}}`,
	`{"d":{"g":"https://b.example/","e":"https://c.example/","f":"https://c.example/x/1"},"b":[{"c":12345678},{"c":false},{"c":null},{"c":"4111 1111 1111 1111"}]}`,
	`{"r":"https://other.example/jane.doe","u":null,"w":0,"c":"EURO","l":"x","zz":{"deep":{"er":"ab_c"}}}`,
	// Errors.
	``, ` `, `[]`, `{"a":1}x`, `{"a":1}{}`, `{"a":}`, `{"a":01}`, `"a"`, `{"a":"\x01"}`, `{"a":1,}`,
	strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth),
	strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1),
	`{"a":[` + strings.Repeat("[", maxJSONDepth) + `}`,
}

func TestAnonymiseJSONMatchesReference(t *testing.T) {
	h := testHasher(testDay)
	for _, ep := range jsonTestEndpoints(t) {
		a, err := NewAnonymiser(ep, nil, nil, h)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range jsonTestBodies {
			for _, ip := range []string{"", "203.0.113.0"} {
				checkJSONReference(t, a, ep, []byte(body), ip)
			}
		}
	}
}

func checkJSONReference(t *testing.T, a *Anonymiser, ep *Endpoint, body []byte, ip string) {
	t.Helper()
	key := a.h.Key(a.scope, []byte("G-REF"), nil)
	want, wantErr := refAnonymiseJSON(a, &key, ep, body, ip)
	var sbuf [scratchSize]byte
	got, err := a.anonymiseJSON([]byte("prefix"), body, ip, sbuf[:0], &hitState{key: &key})
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%s %q ip %q: error %v, reference %v", ep.Name, body, ip, err, wantErr)
	}
	if err != nil {
		if string(got) != "prefix" {
			t.Fatalf("%s %q: error left output %q", ep.Name, body, got)
		}
		return
	}
	if string(got) != "prefix"+string(want) {
		t.Fatalf("%s %q ip %q:\n got %s\nwant %s", ep.Name, body, ip, got[len("prefix"):], want)
	}
}

func TestAnonymiseJSONErrors(t *testing.T) {
	a := testAnonymiser(t, "ga4_mp", nil, nil)
	for body, want := range map[string]error{
		`[]`:       errBadJSON,
		`{"a":1}x`: errBadJSON,
		`{"a":}`:   errBadJSON,
		strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1): errJSONDepth,
		`{"n":"` + strings.Repeat("x", maxJSONBody) + `"}`:                                  errJSONSize,
	} {
		if _, err := a.anonymiseJSON(nil, []byte(body), "", nil, &hitState{}); err == nil || !strings.Contains(err.Error(), want.Error()) {
			t.Errorf("%.40q: %v, want %v", body, err, want)
		}
	}
}

func TestAnonymiseJSONAllocs(t *testing.T) {
	hits := loadCorpus(t)
	n := 0
	for _, h := range hits {
		ep, ok := EndpointByName(h.Endpoint)
		if !ok || ep.Body != BodyJSON {
			continue
		}
		n++
		a := testAnonymiser(t, h.Endpoint, nil, nil)
		hit := &Hit{Query: []byte(h.Query), Body: []byte(h.Body), ContentType: []byte(h.ContentType)}
		var out Out
		if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
			t.Fatal(err)
		}
		if got := testing.AllocsPerRun(100, func() {
			if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
				t.Fatal(err)
			}
		}); got != 0 {
			t.Errorf("%s: %.1f allocs per hit, want 0", h.Name, got)
		}
	}
	if n == 0 {
		t.Fatal("no JSON hits in the corpus")
	}
}

// FuzzAnonymiseJSON holds the in-place JSON writer to the decode-filter-encode
// reference on every JSON endpoint, built-in and synthetic.
func FuzzAnonymiseJSON(f *testing.F) {
	for i, b := range jsonTestBodies {
		if len(b) < 4096 {
			f.Add(uint8(i), b, i%2 == 0)
		}
	}
	for _, h := range loadCorpus(f) {
		if strings.HasPrefix(strings.TrimSpace(h.Body), "{") {
			f.Add(uint8(0), h.Body, true)
		}
	}
	eps := jsonTestEndpoints(f)
	hasher := testHasher(testDay)
	anons := make([]*Anonymiser, len(eps))
	for i, ep := range eps {
		a, err := NewAnonymiser(ep, nil, nil, hasher)
		if err != nil {
			f.Fatal(err)
		}
		anons[i] = a
	}
	f.Fuzz(func(t *testing.T, epi uint8, body string, withIP bool) {
		ip := ""
		if withIP {
			ip = "203.0.113.0"
		}
		for i := range eps {
			if int(epi)%len(eps) == i || epi >= 128 {
				checkJSONReference(t, anons[i], eps[i], []byte(body), ip)
			}
		}
	})
}

func BenchmarkAnonymiseJSONReference(b *testing.B) {
	for _, h := range loadCorpus(b) {
		if h.Name != "ga4_mp_purchase" {
			continue
		}
		ep, _ := EndpointByName(h.Endpoint)
		a := testAnonymiser(b, h.Endpoint, nil, nil)
		body := []byte(h.Body)
		key := a.h.Key(a.scope, []byte("G-REF"), nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := refAnonymiseJSON(a, &key, ep, body, "203.0.113.0"); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.Fatal(fmt.Sprint("no ga4_mp_purchase in corpus"))
}
