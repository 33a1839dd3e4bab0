package canary

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// TestFindEveryForm: a canary is found in every encoding the leak test plants it in and
// in the ones a rewrite could produce (decoded, re-encoded, base64, JSON-escaped,
// upper-cased); text without it is not flagged.
func TestFindEveryForm(t *testing.T) {
	for _, kind := range AllKinds() {
		c := New(kind, 4242)
		forms := map[string]string{
			"plain":       c.Value,
			"query":       url.QueryEscape(c.Value),
			"percent":     Encode(Percent, c.Value),
			"double":      Encode(Double, c.Value),
			"json":        JSONString(JSONEsc, c.Value),
			"base64":      base64.StdEncoding.EncodeToString([]byte("xy" + c.Value + "z")),
			"base64url":   base64.RawURLEncoding.EncodeToString([]byte("q" + c.Value)),
			"upper":       strings.ToUpper(c.Value),
			"in sentence": "Order for " + url.PathEscape(c.Value) + " today",
		}
		for name, f := range forms {
			if _, _, ok := Find([]byte("GET /x?a="+f+" HTTP/1.1"), c); !ok {
				t.Errorf("%s: %s form %q not found", kind, name, f)
			}
		}
		other := New(kind, 4243)
		if n, form, ok := Find([]byte(other.Value+" "+Encode(Percent, other.Value)), c); ok {
			t.Errorf("%s: found %q (%s) in another canary", kind, n, form)
		}
	}
}

// TestNewIsUnique: serials give distinct needles, so a finding names its case.
func TestNewIsUnique(t *testing.T) {
	for _, kind := range AllKinds() {
		seen := map[string]int{}
		for n := 0; n < 2000; n++ {
			c := New(kind, n)
			if len(c.Needles) == 0 {
				t.Fatalf("%s: no needles", kind)
			}
			for _, nd := range c.Needles {
				if len(nd) < 8 {
					t.Errorf("%s: needle %q shorter than 8", kind, nd)
				}
			}
			if prev, ok := seen[c.Needles[0]]; ok {
				t.Fatalf("%s: serials %d and %d share needle %q", kind, prev, n, c.Needles[0])
			}
			seen[c.Needles[0]] = n
		}
	}
}

func TestInflate(t *testing.T) {
	if got := string(Inflate("gzip", Compress([]byte("hello")))); got != "hello" {
		t.Errorf("Inflate(Compress) = %q", got)
	}
	if got := string(Inflate("br", []byte("raw"))); got != "raw" {
		t.Errorf("unknown coding changed the body: %q", got)
	}
}
