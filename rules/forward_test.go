package rules

import (
	"strings"
	"testing"
)

// mpForwardBody is a Measurement Protocol body as a browser-side tag may send it, with
// an ip_override of its own that the forward rewrite must replace.
func mpForwardBody(t testing.TB) string {
	t.Helper()
	for _, h := range loadCorpus(t) {
		if h.Name == "ga4_mp_purchase" {
			return h.Body
		}
	}
	t.Fatal("no ga4_mp_purchase in corpus")
	return ""
}

func TestRewriteForwardJSONAllocs(t *testing.T) {
	a := testAnonymiser(t, "ga4_mp", nil, nil)
	body := mpForwardBody(t)
	if !strings.Contains(body, "ip_override") {
		t.Fatal("corpus body has no ip_override to replace")
	}
	hit := &Hit{Body: []byte(body)}
	var out Out
	if changed, err := a.RewriteForward(hit, "198.51.100.7", &out); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if got := testing.AllocsPerRun(200, func() {
		if _, err := a.RewriteForward(hit, "198.51.100.7", &out); err != nil {
			t.Fatal(err)
		}
	}); got != 0 {
		t.Errorf("forward ga4_mp: %.1f allocs per hit, want 0", got)
	}
}

func BenchmarkRewriteForwardGA4MP(b *testing.B) {
	a := testAnonymiser(b, "ga4_mp", nil, nil)
	hit := &Hit{Body: []byte(mpForwardBody(b))}
	var out Out
	b.ReportAllocs()
	b.SetBytes(int64(len(hit.Body)))
	for b.Loop() {
		if _, err := a.RewriteForward(hit, "198.51.100.7", &out); err != nil {
			b.Fatal(err)
		}
	}
}
