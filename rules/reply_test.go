package rules

import (
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config/load"
)

// TestReplyParamsRemovedWhenAnonymising: parameters that ask the vendor for a response
// stream, a redirect or a script never survive anonymisation (the hit is answered
// locally), while a consented hit keeps them.
func TestReplyParamsRemovedWhenAnonymising(t *testing.T) {
	cases := []struct{ name, ep, query, want string }{
		{"ga4 richsstsse bare", "ga4_collect", "v=2&tid=G-1&en=page_view&richsstsse", "v=2&tid=G-1&en=page_view&gcs=G100&npa=1"},
		{"ga4 richsstsse with a value", "ga4_collect", "richsstsse=1&v=2", "v=2&gcs=G100&npa=1"},
		{"ga4 richsstsse encoded name", "ga4_collect", "rich%73stsse&v=2", "v=2&gcs=G100&npa=1"},
		{"google ads answer format", "google_ads_conversion", "label=L&fmt=4&rfmt=3&async=1&script=0&guid=ON", "label=L&script=0&guid=ON&gcs=G100&npa=1"},
		{"google ads remarketing", "google_ads_viewthrough", "label=L&fmt=3&async=1", "label=L&gcs=G100&npa=1"},
		{"linkedin script becomes the image", "linkedin_collect", "pid=1&fmt=js&v=2", "pid=1&v=2&fmt=gif"},
		{"linkedin twice", "linkedin_collect", "fmt=js&pid=1&fmt=gif", "pid=1&fmt=gif"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := testAnonymiser(t, c.ep, nil, nil)
			var out Out
			if err := a.Anonymise(&Hit{Query: []byte(c.query)}, "", &out); err != nil {
				t.Fatal(err)
			}
			if string(out.Query) != c.want {
				t.Errorf("\n got %s\nwant %s", out.Query, c.want)
			}
			changed, err := a.RewriteForward(&Hit{Query: []byte(c.query)}, "", &out)
			if err != nil {
				t.Fatal(err)
			}
			if fwd := c.query; changed {
				fwd = string(out.Query)
				if fwd != c.query {
					t.Errorf("forward rewrote the query: %s", fwd)
				}
			}
		})
	}
}

// TestReplyParamsNeverKept: neither the catalogue, nor a prefix, nor an operator's
// anonymise.allow can keep a reply parameter.
func TestReplyParamsNeverKept(t *testing.T) {
	for i := range builtin {
		ep := &builtin[i]
		for _, p := range ep.ReplyParams {
			if _, ok := ep.Allow[p]; ok {
				t.Errorf("%s: reply parameter %s is on the allow-list", ep.Name, p)
			}
			if _, err := NewAnonymiser(ep, []string{p}, nil, NewHasher(testDay).WithSecret([]byte(testSecret))); err == nil ||
				!strings.Contains(err.Error(), "never kept") {
				t.Errorf("%s: anonymise.allow %s: err %v, want refused", ep.Name, p, err)
			}
		}
	}
	for _, p := range []string{"richsstsse", "fmt", "rfmt", "async"} {
		found := false
		for i := range builtin {
			for _, r := range builtin[i].ReplyParams {
				found = found || r == p
			}
		}
		if !found {
			t.Errorf("%s is no endpoint's reply parameter", p)
		}
	}
	ep := &Endpoint{Name: "synthetic", ReplyParams: []string{"stream"}, Allow: map[string]Value{"stream": Int(5)}}
	if err := CheckAllowList(ep); err == nil {
		t.Error("Allow keeps a reply parameter: want error")
	}
	ep = &Endpoint{Name: "synthetic", ReplyParams: []string{"stream"}, AllowPrefix: map[string]Value{"s": Int(5)}}
	a, err := NewAnonymiser(ep, nil, nil, NewHasher(testDay).WithSecret([]byte(testSecret)))
	if err != nil {
		t.Fatal(err)
	}
	var out Out
	if err := a.Anonymise(&Hit{Query: []byte("stream=1&size=2")}, "", &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Query) != "size=2" {
		t.Errorf("prefix kept a reply parameter: %s", out.Query)
	}
}

// TestReplyParamInConfigIsRefused: an operator who adds a reply parameter to
// anonymise.allow gets an error at the line that says so, and the config is refused.
func TestReplyParamInConfigIsRefused(t *testing.T) {
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	cfg, err := ld.LoadBytes("t.yaml", []byte("anonymise:\n  secret: \"Xp4Lq8zRw2Nc7Vt5Kj9M\"\n  allow:\n    ga4: [richsstsse]\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(cfg, CompileOptions{})
	if err == nil || !strings.Contains(err.Error(), "t.yaml:4:") || !strings.Contains(err.Error(), `"richsstsse"`) {
		t.Fatalf("err %v, want the position of anonymise.allow.ga4 and the parameter", err)
	}
}
