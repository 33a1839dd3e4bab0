package consent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseWrite(t *testing.T) {
	good := func(t *testing.T, body string, want Purposes) {
		t.Helper()
		got, err := ParseWrite([]byte(body))
		if err != nil {
			t.Fatalf("ParseWrite(%s): %v", body, err)
		}
		if got.Purposes != want || got.TCF != "" {
			t.Fatalf("ParseWrite(%s) = %v, want %v", body, got, want)
		}
	}
	for _, tc := range []struct {
		name, body string
		want       Purposes
	}{
		{"example", `{"purposes":{"statistics":true,"marketing":false,"preferences":true}}`,
			Purposes{Preferences: Granted, Statistics: Granted, Marketing: Denied}},
		{"all four", `{"purposes":{"necessary":true,"preferences":false,"statistics":false,"marketing":true}}`,
			Purposes{Granted, Denied, Denied, Granted}},
		{"empty purposes", `{"purposes":{}}`, Purposes{}},
		{"whitespace", " \n\t{ \"purposes\" : { \"marketing\" : true } }\r\n ", Purposes{Marketing: Granted}},
		{"escaped key", `{"purpos\u0065s":{"m\u0061rketing":false}}`, Purposes{Marketing: Denied}},
	} {
		t.Run(tc.name, func(t *testing.T) { good(t, tc.body, tc.want) })
	}
}

// validTC is the TC string of the IAB GPP specification's header examples.
const validTC = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"

func TestParseWriteTCF(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Write
	}{
		{"tcf only", `{"tcf":"` + validTC + `"}`, Write{TCF: validTC}},
		{"tcf and purposes", `{"purposes":{"marketing":false},"tcf":"` + validTC + `"}`, Write{Purposes: Purposes{Marketing: Denied}, TCF: validTC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWrite([]byte(tc.body))
			if err != nil || got != tc.want {
				t.Fatalf("ParseWrite(%s) = %+v, %v; want %+v", tc.body, got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, body, msg string }{
		{"not base64", `{"tcf":"not a tc string!"}`, `"tcf" is not a valid TC string: tcf: parse: tcf: invalid base64url`},
		{"truncated", `{"tcf":"CPXxRfAPXxRf"}`, `truncated TC string`},
		{"number", `{"tcf":12}`, `"tcf" must be a TC string (the euconsent-v2 value), not a number`},
		{"twice", `{"tcf":"` + validTC + `","tcf":"` + validTC + `"}`, `"tcf" is given twice`},
		{"too long", `{"tcf":"` + strings.Repeat("A", 5000) + `"}`, `over the limit of 4096`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWrite([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.msg) || got != (Write{}) {
				t.Fatalf("ParseWrite(%.60s) = %+v, %v; want error containing %q", tc.body, got, err, tc.msg)
			}
		})
	}
}

func TestParseWriteErrors(t *testing.T) {
	bad := func(t *testing.T, body, wantMsg string) {
		t.Helper()
		got, err := ParseWrite([]byte(body))
		if err == nil {
			t.Fatalf("ParseWrite(%.60s) = %v, want an error containing %q", body, got, wantMsg)
		}
		if !strings.Contains(err.Error(), wantMsg) {
			t.Fatalf("ParseWrite(%.60s) error %q does not contain %q", body, err, wantMsg)
		}
		if got != (Write{}) {
			t.Fatalf("ParseWrite(%.60s) failed but returned %v", body, got)
		}
	}
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"empty", ``, "the body is empty: send a JSON object such as"},
		{"blank", " \n ", "the body is empty"},
		{"bad JSON", `{"purposes":{"marketing":tru}}`, "the body is not valid JSON: invalid character '}' in literal true"},
		{"single quotes", `{'purposes':{}}`, "the body is not valid JSON: invalid character '\\''"},
		{"truncated", `{"purposes":{"marketing":true}`, "ends before the object is closed"},
		{"truncated in key", `{"purp`, "not valid JSON"},
		{"missing comma", `{"purposes":{"marketing":true "statistics":true}}`, "not valid JSON: invalid character '\"' after object key:value pair"},
		{"trailing comma", `{"purposes":{"marketing":true,}}`, "not valid JSON: invalid character '}' looking for beginning of object key string"},
		{"non-string key", `{"purposes":{1:true}}`, "not valid JSON: invalid character '1'"},
		{"control char in key", "{\"purposes\":{\"mark\x01\":true}}", "not valid JSON: invalid character"},
		{"not an object", `["purposes"]`, "the body must be a JSON object such as {\"purposes\":{\"statistics\":true,\"marketing\":false}}, not an array"},
		{"string body", `"purposes"`, "must be a JSON object such as"},
		{"null body", `null`, "must be a JSON object such as {\"purposes\":{\"statistics\":true,\"marketing\":false}}, not null"},
		{"unknown top-level key", `{"purposes":{},"visitor":"x"}`, `unknown key "visitor": the body has the keys "purposes" and "tcf"`},
		{"top-level key case", `{"Purposes":{}}`, `unknown key "Purposes"`},
		{"long unknown key is cut", `{"` + strings.Repeat("k", 500) + `":1}`, `unknown key "` + strings.Repeat("k", 40) + `"…:`},
		{"missing purposes", `{}`, `missing "purposes": send a body such as`},
		{"purposes twice", `{"purposes":{},"purposes":{"marketing":true}}`, `"purposes" is given twice`},
		{"purposes null", `{"purposes":null}`, `"purposes" must be an object such as {"statistics":true}, not null`},
		{"purposes array", `{"purposes":["marketing"]}`, `"purposes" must be an object such as {"statistics":true}, not an array`},
		{"purposes string", `{"purposes":"all"}`, `"purposes" must be an object`},
		{"purposes bool", `{"purposes":true}`, `"purposes" must be an object such as {"statistics":true}, not true`},
		{"unknown purpose", `{"purposes":{"ads":true}}`, `unknown purpose "ads": expected one of necessary, preferences, statistics, marketing`},
		{"purpose case", `{"purposes":{"Marketing":true}}`, `unknown purpose "Marketing"`},
		{"purpose twice", `{"purposes":{"marketing":true,"marketing":false}}`, `purpose "marketing" is given twice`},
		{"null purpose", `{"purposes":{"marketing":null}}`, `purpose "marketing" must be true or false, not null`},
		{"number purpose", `{"purposes":{"marketing":1}}`, `purpose "marketing" must be true or false, not a number`},
		{"huge number purpose", `{"purposes":{"marketing":1e999}}`, `must be true or false, not a number`},
		{"string purpose", `{"purposes":{"statistics":"true"}}`, `purpose "statistics" must be true or false, not a string`},
		{"object purpose", `{"purposes":{"statistics":{}}}`, `purpose "statistics" must be true or false, not an object`},
		{"array purpose", `{"purposes":{"statistics":[true]}}`, `purpose "statistics" must be true or false, not an array`},
		{"trailing object", `{"purposes":{}} {}`, "unexpected data after the JSON object, which ends at byte 15: send a single object"},
		{"trailing garbage", `{"purposes":{}}x`, "unexpected data after the JSON object"},
		{"two bodies", `{"purposes":{}}{"purposes":{}}`, "unexpected data after the JSON object"},
		{"over 16 KiB", `{"purposes":{}}` + strings.Repeat(" ", MaxWriteBody), "over the limit of 16 KiB (16384 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) { bad(t, tc.body, tc.msg) })
	}
}

func TestParseWriteLimit(t *testing.T) {
	body := `{"purposes":{}}`
	body += strings.Repeat(" ", MaxWriteBody-len(body))
	if _, err := ParseWrite([]byte(body)); err != nil {
		t.Fatalf("a body of exactly 16 KiB: %v", err)
	}
}

func TestMarshalState(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	st := State{
		Purposes: Purposes{Necessary: Granted, Statistics: Denied},
		Source:   "api",
		Version:  3,
		Created:  time.Date(2026, 3, 1, 10, 0, 0, 500, cet),
		Updated:  time.Date(2026, 3, 2, 12, 30, 15, 0, time.UTC),
	}
	check := func(t *testing.T, id string, st State, want string) {
		t.Helper()
		got := MarshalState(id, st)
		if string(got) != want {
			t.Errorf("MarshalState(%q) =\n%s\nwant\n%s", id, got, want)
		}
		if !json.Valid(got) {
			t.Errorf("MarshalState(%q) is not valid JSON: %s", id, got)
		}
	}
	const purposes = `"purposes":{"necessary":"granted","preferences":"unset","statistics":"denied","marketing":"unset"}`
	const rest = `"source":"api","version":3,"created":"2026-03-01T09:00:00Z","updated":"2026-03-02T12:30:15Z"}`
	odd := st
	odd.Source = "a\"dm<in>\n"
	for _, tc := range []struct {
		name, id string
		st       State
		want     string
	}{
		{"public", "", st, `{` + purposes + `,` + rest},
		{"admin", "aZ09-_aZ09-_aZ09-_aZ0Q", st, `{"id":"aZ09-_aZ09-_aZ09-_aZ0Q",` + purposes + `,` + rest},
		{"source is escaped", "", odd, `{` + purposes + `,"source":"a\"dm\u003cin\u003e\n","version":3,"created":"2026-03-01T09:00:00Z","updated":"2026-03-02T12:30:15Z"}`},
		{"zero state", "", State{}, `{"purposes":{"necessary":"unset","preferences":"unset","statistics":"unset","marketing":"unset"},"source":"","version":0,"created":"0001-01-01T00:00:00Z","updated":"0001-01-01T00:00:00Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.id, tc.st, tc.want) })
	}
}

func TestEffectiveMarshalJSON(t *testing.T) {
	e := eff(Granted, CauseStore, Unset, CauseNone, Denied, CauseConsentMode, Denied, CauseGPC)
	check := func(t *testing.T, v any, want string) {
		t.Helper()
		got, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		if string(got) != want {
			t.Errorf("json.Marshal = %s, want %s", got, want)
		}
	}
	const want = `{"necessary":"granted","preferences":"unset","statistics":"denied","marketing":"denied"}`
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"value", e, want},
		{"pointer", &e, want},
		{"field", struct {
			Consent Effective `json:"consent"`
		}{e}, `{"consent":` + want + `}`},
		{"zero", Effective{}, `{"necessary":"unset","preferences":"unset","statistics":"unset","marketing":"unset"}`},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.v, tc.want) })
	}
}

// FuzzParseWrite checks that ParseWrite never panics, accepts only valid JSON, and that
// whatever it accepts survives MarshalState unchanged.
func FuzzParseWrite(f *testing.F) {
	for _, s := range []string{
		`{"purposes":{"statistics":true,"marketing":false,"preferences":true}}`,
		`{"purposes":{"necessary":true}}`,
		`{"purposes":{}}`,
		`{"purposes":{"ads":true}}`,
		`{"purposes":{"marketing":null}}`,
		`{"purposes":null}`,
		`{"purposes":{},"x":1}`,
		`{"purposes":{}} {}`,
		`{"purposes":{"marketing":true,"marketing":true}}`,
		`[]`, ``, `{`, `{"purposes":{"m\u0061rketing":false}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := ParseWrite(body)
		p := w.Purposes
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseWrite(%q): empty error message", body)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("ParseWrite accepted invalid JSON %q", body)
		}
		out := MarshalState("", State{Purposes: p, Source: "api"})
		var view struct {
			Purposes map[string]string `json:"purposes"`
		}
		if err := json.Unmarshal(out, &view); err != nil {
			t.Fatalf("MarshalState output %s: %v", out, err)
		}
		if len(view.Purposes) != int(NumPurposes) {
			t.Fatalf("MarshalState lists %d purposes, want %d: %s", len(view.Purposes), NumPurposes, out)
		}
		var back Purposes
		for name, status := range view.Purposes {
			pu, ok1 := ParsePurpose(name)
			s, ok2 := ParseStatus(status)
			if !ok1 || !ok2 {
				t.Fatalf("MarshalState wrote %q:%q", name, status)
			}
			back[pu] = s
		}
		if back != p {
			t.Fatalf("round trip of %q: parsed %v, marshalled back as %v", body, p, back)
		}
	})
}

func BenchmarkParseWrite(b *testing.B) {
	body := []byte(`{"purposes":{"statistics":true,"marketing":false,"preferences":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseWrite(body); err != nil {
			b.Fatal(err)
		}
	}
}
