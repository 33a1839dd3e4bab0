package rules

import (
	"encoding/json"
	"github.com/consentgate/consentgate/internal/corpus"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const corpusDir = "testdata/hits"

func loadCorpus(t testing.TB) []corpus.Hit {
	t.Helper()
	hits, err := corpus.Load(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// corpusAnonymiser compiles the built-in anonymiser of a corpus hit's endpoint.
func corpusAnonymiser(t testing.TB, h *corpus.Hit, hasher *Hasher) (*Endpoint, *Anonymiser) {
	t.Helper()
	ep, ok := EndpointByName(h.Endpoint)
	if !ok {
		t.Fatalf("%s: unknown endpoint %q", h.Name, h.Endpoint)
	}
	// The corpus pages are on shop.example.com, the site's host as a deployment
	// names it in anonymise.site_hosts; other hosts keep their registrable domain.
	a, err := NewAnonymiserWith(ep, AnonymiseOptions{SiteHosts: []string{"shop.example.com"}}, hasher)
	if err != nil {
		t.Fatal(err)
	}
	return ep, a
}

// leakForms are the shapes an identifier value can take in a query or body.
func leakForms(v string) []string {
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil {
		forms = append(forms, strings.Trim(string(b), `"`))
	}
	return forms
}

// TestLeakCorpus anonymises every real-world-shaped hit of the corpus, with and without
// a (truncated) IP, and checks that none of its identifier values survives in any
// encoding, while the values it must keep do.
func TestLeakCorpus(t *testing.T) {
	hits := loadCorpus(t)
	hasher := NewHasher(fixedNow(2024, 4, 5)).WithSecret([]byte("leak-test"))
	covered := map[string]bool{}
	for i := range hits {
		h := &hits[i]
		ep, a := corpusAnonymiser(t, h, hasher)
		covered[h.Endpoint] = true
		if !pathClaimed(ep, h.Path) {
			t.Errorf("%s: path %q is not claimed by %s", h.Name, h.Path, ep.Name)
		}
		if !methodAllowed(ep, h.Method) {
			t.Errorf("%s: method %s not accepted by %s", h.Name, h.Method, ep.Name)
		}
		for _, ip := range []string{"", "203.0.113.0"} {
			var out Out
			hit := Hit{Query: []byte(h.Query), Body: []byte(h.Body), ContentType: []byte(h.ContentType)}
			if err := a.Anonymise(&hit, ip, &out); err != nil {
				t.Errorf("%s: anonymise: %v", h.Name, err)
				continue
			}
			got := string(out.Query) + "\n" + string(out.Body)
			dq, _ := url.QueryUnescape(string(out.Query))
			db, _ := url.QueryUnescape(string(out.Body))
			all := got + "\n" + dq + "\n" + db
			for _, id := range h.Identifiers {
				for _, f := range leakForms(id) {
					if strings.Contains(all, f) {
						t.Errorf("%s (ip %q): identifier %q leaked as %q:\n%s", h.Name, ip, id, f, got)
						break
					}
				}
			}
			for _, k := range h.Kept {
				if !strings.Contains(got, k) {
					t.Errorf("%s: %q should survive anonymisation:\n%s", h.Name, k, got)
				}
			}
			if ip != "" && ep.IP.Param != "" && !strings.Contains(string(out.Query), ep.IP.Param+"="+ip) {
				t.Errorf("%s: IP param not passed: %s", h.Name, out.Query)
			}
			if ip != "" && ep.IP.JSONField != "" && !strings.Contains(string(out.Body), `"`+ep.IP.JSONField+`":"`+ip+`"`) {
				t.Errorf("%s: IP field not passed: %s", h.Name, out.Body)
			}
		}
		// A consented hit must be forwardable as sent (only the IP pass changes).
		var out Out
		hit := Hit{Query: []byte(h.Query), Body: []byte(h.Body), ContentType: []byte(h.ContentType)}
		if _, err := a.RewriteForward(&hit, "198.51.100.200", &out); err != nil {
			t.Errorf("%s: forward: %v", h.Name, err)
		}
	}
	for i := range builtin {
		if !covered[builtin[i].Name] {
			t.Errorf("endpoint %s has no hit in %s", builtin[i].Name, corpusDir)
		}
	}
}

func pathClaimed(ep *Endpoint, path string) bool {
	for _, p := range ep.Paths {
		if pre, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(path, pre) || p == path {
			return true
		}
	}
	return false
}

func methodAllowed(ep *Endpoint, m string) bool {
	for _, x := range ep.Methods {
		if x == m {
			return true
		}
	}
	return false
}

func fixedNow(y int, m time.Month, d int) func() time.Time {
	return func() time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
}

// hostilePayloads are identifiers in the forms that walk past a naive filter; core is
// what must not reach the vendor in any decoding.
var hostilePayloads = []struct{ value, core string }{
	{"jane.doe@example.com", "jane.doe"},
	{"jane.doe%40example.com", "jane.doe"},
	{"jane.doe%2540example.com", "jane.doe"},
	{"jane.doe＠example.com", "jane.doe"},
	{"ｊａｎｅ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ｊａｎｅ"},
	{"jane.doe\u200b@\u200bexample.com", "jane.doe"},
	{"Call +44 20 7946 0958", "7946"},
	{"Call ＋４４ ２０ ７９４６ ０９５８", "７９４６"},
	{"Card 4111 1111 1111 1111", "1111 1111"},
	{"IBAN DE89 3704 0044 0532 0130 00", "3704"},
	{"6f1f5a0e-3c1b-4d6e-9b59-2a8cb9f1a3d4", "6f1f5a0e"},
	{"3f9a8c7d6e5f4a3b2c1d", "3f9a8c7d6e5f4a3b2c1d"},
	{"customer 8812734", "8812734"},
	{"customer 8\u200b8\u200b1\u200b2\u200b7\u200b3\u200b4", "8812"},
	{"customer ８８１２７３４", "８８１２"},
	{"a;gclid=SmuggledGclid42", "SmuggledGclid42"},
	{"a&fbclid=SmuggledFbclid77", "SmuggledFbclid77"},
	{strings.Repeat("x", 300) + " jane.doe@example.com", "jane.doe"},
}

// revealed returns out decoded every way a vendor could read it: as sent, query- and
// percent-decoded up to five times, JSON-unescaped, without invisible characters, in
// lower case.
func revealed(out string) string {
	forms := []string{out}
	s := out
	for range 5 {
		if d, err := url.QueryUnescape(s); err == nil {
			s = d
		} else if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		forms = append(forms, s)
	}
	var js string
	if json.Unmarshal([]byte(`"`+strings.ReplaceAll(out, `"`, `\"`)+`"`), &js) == nil {
		forms = append(forms, js)
	}
	all := strings.ToLower(strings.Join(forms, "\n"))
	return strings.Map(func(r rune) rune {
		if r == '\u200b' {
			return -1
		}
		return r
	}, all)
}

// TestHostilePayloadsInEveryField puts every hostile payload into every allow-listed
// field of every endpoint (a URL field gets it in its path, its campaign value and, for
// a referrer, from another site) and checks that its core reaches the vendor in no
// form: whatever the kind, a value is scrubbed, re-typed or removed. The one exception
// is a plain token (a tag ID, a conversion label, a product ID) given a payload that
// fits its charset and length: such a value is as legitimate as it is opaque, so it is
// kept; the charset and the bound are what limit that channel.
func TestHostilePayloadsInEveryField(t *testing.T) {
	hasher := NewHasher(fixedNow(2024, 4, 5)).WithSecret([]byte("leak-test"))
	for i := range builtin {
		ep := &builtin[i]
		// The corpus pages are on shop.example.com, the site's host as a deployment
		// names it in anonymise.site_hosts; other hosts keep their registrable domain.
		a, err := NewAnonymiserWith(ep, AnonymiseOptions{SiteHosts: []string{"shop.example.com"}}, hasher)
		if err != nil {
			t.Fatal(err)
		}
		values := func(v Value, p string) []string {
			if v.Kind != KindURL {
				return []string{p}
			}
			return []string{
				"https://shop.example.com/x/" + url.PathEscape(p) + "/y",
				"https://shop.example.com/x?utm_content=" + url.QueryEscape(p),
				"https://other.example.net/x/" + url.PathEscape(p),
			}
		}
		check := func(field, payload, core, out string) {
			t.Helper()
			if strings.Contains(revealed(out), strings.ToLower(core)) {
				t.Errorf("%s %s=%q: %q reaches the vendor:\n%s", ep.Name, field, payload, core, out)
			}
		}
		opaque := func(v Value, val string) bool {
			if d, err := url.QueryUnescape(val); err == nil {
				val = d
			}
			return v.Kind == KindToken && !v.Name && checkToken([]byte(val), &v.Chars, v.Max)
		}
		for name, v := range ep.Allow {
			for _, p := range hostilePayloads {
				for _, val := range values(v, p.value) {
					if opaque(v, val) {
						continue
					}
					var out Out
					if err := a.Anonymise(&Hit{Query: []byte(url.QueryEscape(name) + "=" + url.QueryEscape(val))}, "", &out); err != nil {
						if slices.Contains(ep.Property, name) {
							continue // a property that cannot key pseudonyms drops the hit: nothing is sent
						}
						t.Fatal(err)
					}
					check(name, val, p.core, string(out.Query))
				}
			}
		}
		for path, v := range ep.AllowJSON {
			for _, p := range hostilePayloads {
				for _, val := range values(v, p.value) {
					if opaque(v, val) {
						continue
					}
					body, _ := json.Marshal(nest(path, val))
					var out Out
					if err := a.Anonymise(&Hit{Body: body}, "", &out); err != nil {
						if slices.Contains(ep.PropertyJSON, path) {
							continue // a property that cannot key pseudonyms drops the hit: nothing is sent
						}
						t.Fatal(err)
					}
					check(path, val, p.core, string(out.Body))
				}
			}
		}
	}
}
