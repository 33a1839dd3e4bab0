package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/corpus"
	"github.com/consentgate/consentgate/rules"
)

// TestEveryVendorEveryAction drives the real-world hit corpus (rules/testdata/hits)
// through real sockets three times: consented (forward), under a policy that anonymises
// (anonymise) and denied (drop). For anonymise and drop, none of the hit's identifier
// values, nor the visitor's IP, may reach the upstream sink in any form.
func TestEveryVendorEveryAction(t *testing.T) {
	hits, err := corpus.Load("../rules/testdata/hits")
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	up := startSink(t)
	anonPolicy := "policy:\n  opt_in:\n    unset:\n      statistics: anonymise\n      marketing: anonymise\n      preferences: anonymise\n"
	p := startProxy(t, testConfig(up.URL(), anonPolicy))
	granted := p.consentCookie(`{"necessary":true,"preferences":true,"statistics":true,"marketing":true}`)
	denied := p.consentCookie(`{"necessary":true,"preferences":false,"statistics":false,"marketing":false}`)

	seen := map[string]map[string]bool{} // vendor → actions exercised
	for _, h := range hits {
		ep, ok := rules.EndpointByName(h.Endpoint)
		if !ok {
			t.Fatalf("%s: unknown endpoint %q", h.Name, h.Endpoint)
		}
		target := h.Path
		if h.Query != "" {
			target += "?" + h.Query
		}
		send := func(cookie string) resp {
			t.Helper()
			hdr := []string{"X-Forwarded-For", ipSE, "User-Agent", "Mozilla/5.0 corpus"}
			if h.ContentType != "" {
				hdr = append(hdr, "Content-Type", h.ContentType)
			}
			if cookie != "" {
				hdr = append(hdr, "Cookie", cookie+"; _ga=GA1.1.999; _fbp=fb.1.2.3")
			}
			r := p.do(h.Method, target, h.Body, hdr...)
			if r.Status >= 500 {
				t.Fatalf("%s: browser got %d", h.Name, r.Status)
			}
			return r
		}
		mark := func(action string) {
			if seen[ep.Vendor] == nil {
				seen[ep.Vendor] = map[string]bool{}
			}
			seen[ep.Vendor][action] = true
		}

		t.Run(h.Name+"/forward", func(t *testing.T) {
			send(granted)
			got := up.one(t)
			if got.Path == "" {
				t.Fatalf("forwarded to %q", got.Path)
			}
			if got.Header.Get("Cookie") != "" {
				t.Errorf("site cookies went upstream: %q", got.Header.Get("Cookie"))
			}
			mark("forward")
		})
		t.Run(h.Name+"/anonymise", func(t *testing.T) {
			send("")
			got := up.one(t)
			assertNoLeak(t, h, got)
			mark("anonymise")
		})
		t.Run(h.Name+"/drop", func(t *testing.T) {
			send(denied)
			up.none(t)
			mark("drop")
		})
	}
	for _, v := range rules.VendorNames() {
		for _, a := range []string{"forward", "anonymise", "drop"} {
			if !seen[v][a] {
				t.Errorf("vendor %s: action %s never exercised end to end", v, a)
			}
		}
	}
}

// assertNoLeak fails if any identifier value of the hit, raw or URL-encoded, or the
// visitor's full IP, is in what the upstream received, parsed or as the bytes it read.
func assertNoLeak(t *testing.T, h corpus.Hit, got received) {
	t.Helper()
	all := got.Path + "?" + got.Query + "\n" + got.Body + "\n" + headerText(got) + "\n" + got.Raw
	decoded, _ := url.QueryUnescape(got.Query)
	all += "\n" + decoded
	for _, id := range append(h.Identifiers, ipSE) {
		if id == "" {
			continue
		}
		for _, form := range []string{id, url.QueryEscape(id), url.PathEscape(id)} {
			if strings.Contains(all, form) {
				t.Errorf("%s: identifier %q reached the upstream:\n%s", h.Name, id, all)
				break
			}
		}
	}
	for _, c := range []string{"_ga=", "_fbp=", "cg_id="} {
		if strings.Contains(all, c) {
			t.Errorf("%s: site cookie %s reached the upstream", h.Name, c)
		}
	}
}
