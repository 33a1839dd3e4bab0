package rules

import (
	"encoding/json"
	"github.com/consentgate/consentgate/internal/corpus"
	"net/url"
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
	a, err := NewAnonymiser(ep, nil, nil, hasher)
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
