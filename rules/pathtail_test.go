package rules

import (
	"regexp"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config/load"
)

// compileYAML compiles a config for the path tests.
func compileYAML(t testing.TB, yaml string) (*Snapshot, error) {
	t.Helper()
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	cfg, err := ld.LoadBytes("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return Compile(cfg, CompileOptions{})
}

func mustCompileYAML(t testing.TB, yaml string) *Snapshot {
	t.Helper()
	s, err := compileYAML(t, yaml)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

// upstreamPath routes path (as fasthttp would after decoding and normalising: norm, or
// raw when empty) and builds the upstream path from raw.
func upstreamPath(t *testing.T, s *Snapshot, norm, raw string) (string, bool, string) {
	t.Helper()
	if norm == "" {
		norm = raw
	}
	idx, tailAt := s.Router.LookupRoute(nil, []byte(norm))
	if idx < 0 {
		return "", false, ""
	}
	ep := &s.Endpoints[idx]
	got, ok := ep.UpstreamPathFor([]byte("x"), []byte(norm), []byte(raw), tailAt)
	if !strings.HasPrefix(string(got), "x") {
		t.Fatalf("%q: dst's contents were overwritten: %q", raw, got)
	}
	if !ok && string(got) != "x" {
		t.Errorf("%q: refused, but appended %q", raw, got)
	}
	return string(got[1:]), ok, ep.Name
}

// TestUpstreamPathShapes: the Google Ads paths the vendor's tags send are rebuilt from
// the catalogue, and every other shape after the claimed prefix is refused, whatever it
// decodes to.
func TestUpstreamPathShapes(t *testing.T) {
	s := mustCompileYAML(t, "")
	good := []struct{ raw, want string }{
		{"/pagead/conversion/123456789/", "/pagead/conversion/123456789/"},
		{"/pagead/conversion/123456789", "/pagead/conversion/123456789/"}, // the "/" is written back
		{"/pagead/conversion/1/", "/pagead/conversion/1/"},
		{"/pagead/conversion/17653593916/", "/pagead/conversion/17653593916/"},
		{"/pagead/conversion/12345678901234567890/", "/pagead/conversion/12345678901234567890/"}, // 20 digits
		{"/pagead/viewthroughconversion/803721649/", "/pagead/viewthroughconversion/803721649/"},
		{"/pagead/1p-conversion/11160642801/", "/pagead/1p-conversion/11160642801/"},
		{"/pagead/1p-conversion/11160642801", "/pagead/1p-conversion/11160642801/"},
		// Fixed paths come from the catalogue too, never from the request.
		{"/g/collect", "/g/collect"},
		{"/tr/", "/tr"},
		{"/li/collect", "/collect"},
		{"/api/v2/pixel/track", "/api/v2/pixel/track"},
		{"/ccm/collect", "/ccm/collect"},
	}
	for _, c := range good {
		got, ok, _ := upstreamPath(t, s, "", c.raw)
		if !ok || got != c.want {
			t.Errorf("%q → %q, %v; want %q", c.raw, got, ok, c.want)
		}
	}
	const p = "/pagead/conversion/"
	hostile := []struct{ name, raw, norm string }{
		{"encoded ? & # (the review's hit)", p + "123/%3Fgclid%3Dabc%26em%3Dx%23", p + "123/?gclid=abc&em=x#"},
		{"encoded ? lower-case", p + "123/%3fgclid=abc", p + "123/?gclid=abc"},
		{"encoded #", p + "123%23frag/", p + "123#frag/"},
		{"encoded / inside the ID", p + "123%2F456/", p + "123/456/"},
		{"encoded / after the ID", p + "123%2f", p + "123/"},
		{"dot segments", p + "123/../../../g/collect", "/g/collect"},
		{"encoded dot segments", p + "123/%2e%2e/%2e%2e/x", "/pagead/x"},
		{"dot-dot with encoded slashes", p + "123/..%2f..%2fg%2fcollect", "/pagead/g/collect"},
		{"dot segment as the ID", p + "./", p},
		{"encoded NUL", p + "123%00/", p + "123\x00/"},
		{"raw NUL", p + "123\x00/", ""},
		{"raw space", p + "123 456/", ""},
		{"encoded space", p + "123%20/", p + "123 /"},
		{"plus", p + "123+456/", ""},
		{"tab", p + "123\t/", ""},
		{"CRLF", p + "123\r\nX-Injected: 1/", ""},
		{"encoded CRLF", p + "123%0D%0AX-Injected:%201/", p + "123\r\nX-Injected: 1/"},
		{"21 digits", p + "123456789012345678901/", ""},
		{"a very long ID", p + strings.Repeat("9", 10000) + "/", ""},
		{"non-ASCII raw", p + "123\xc3\xa9/", ""},
		{"non-ASCII encoded", p + "123%C3%A9/", p + "123\xc3\xa9/"},
		{"full-width digits", p + "１２３/", ""},
		{"Arabic-Indic digits", p + "١٢٣/", ""},
		{"double-encoded ?", p + "123/%253Fgclid%253Dabc", p + "123/%3Fgclid%3Dabc"},
		{"double-encoded digit", p + "%2531%2532/", p + "%31%32/"},
		{"encoded digits", p + "%31%32%33/", p + "123/"},
		{"empty ID", p + "/", ""},
		{"nothing after the prefix", p, ""},
		{"two segments", p + "123/456/", ""},
		{"extra segment", p + "123/gclid/", ""},
		{"trailing text", p + "123/x", ""},
		{"double trailing slash", p + "123//", ""},
		{"matrix parameter", p + "123;gclid=abc/", ""},
		{"letters", p + "AW-123/", ""},
		{"negative", p + "-123/", ""},
		{"hex", p + "0x1F/", ""},
		{"decimal point", p + "123.5/", ""},
		{"backslash", p + "123\\/", ""},
		{"percent alone", p + "123%/", ""},
		{"prefix spelled with an escape", "/pagead/%63onversion/123/", p + "123/"},
		{"prefix with a double slash", "//pagead/conversion/123/", p + "123/"},
		{"prefix with an upper-case escape of /", "/pagead%2Fconversion/123/", p + "123/"},
	}
	for _, c := range hostile {
		got, ok, name := upstreamPath(t, s, c.norm, c.raw)
		// "123/../../../g/collect" is routed, once normalised, to GA4's fixed path: GA4
		// gets its own catalogue path, and the request's never goes anywhere.
		if ok && (name != "ga4_collect" || got != "/g/collect") {
			t.Errorf("%s: %q routed to %s went upstream as %q", c.name, c.raw, name, got)
		}
	}
}

// TestConfiguredPrefixRoutes: a configured prefix route onto a Google Ads endpoint
// checks the rest of the path against the endpoint's shape and sends the endpoint's own
// path upstream, never the configured prefix; routes that could not be checked are
// refused at load with their position.
func TestConfiguredPrefixRoutes(t *testing.T) {
	s := mustCompileYAML(t, `routes:
  - { path: "/ads/*", endpoint: google_ads_conversion }
  - { path: "/t/v/*", host: "t.example.com", endpoint: google_ads_viewthrough }
  - { path: "/tt", endpoint: tiktok_pixel }
upstreams:
  google_ads: "http://127.0.0.1:9/base%3F/"
`)
	for _, c := range []struct{ raw, want string }{
		{"/ads/123/", "/base%3F/pagead/conversion/123/"},
		{"/ads/123", "/base%3F/pagead/conversion/123/"},
		{"/tt", "/api/v2/pixel"}, // the endpoint's first path, not "/tt"
	} {
		if got, ok, _ := upstreamPath(t, s, "", c.raw); !ok || got != c.want {
			t.Errorf("%q → %q, %v; want %q", c.raw, got, ok, c.want)
		}
	}
	for _, raw := range []string{"/ads/", "/ads/123/x", "/ads/%3F/", "/ads/123%2F"} {
		if got, ok, _ := upstreamPath(t, s, "", raw); ok {
			t.Errorf("%q went upstream as %q", raw, got)
		}
	}
	idx, tailAt := s.Router.LookupRoute([]byte("T.Example.COM"), []byte("/t/v/42/"))
	if got, ok := s.Endpoints[idx].UpstreamPathFor(nil, []byte("/t/v/42/"), []byte("/t/v/42/"), tailAt); !ok || string(got) != "/base%3F/pagead/viewthroughconversion/42/" {
		t.Errorf("host route: %q, %v", got, ok)
	}

	for _, c := range []struct{ yaml, want string }{
		{"routes:\n  - { path: \"/mtm/*\", endpoint: matomo_track }\n", `t.yaml:2:13: route /mtm/*: ends in "*", but endpoint matomo_track has a fixed path (/matomo.php)`},
		{"routes:\n  - { path: \"/caf\u00e9/*\", endpoint: google_ads_conversion }\n", `t.yaml:2:13: route /café/*: a prefix route's path may hold only letters, digits, "-._~" and "/"`},
		{"routes:\n  - { path: \"/a%2Fb/*\", endpoint: google_ads_conversion }\n", `route /a%2Fb/*: a prefix route's path may hold only`},
		{"routes:\n  - { path: \"/conv\", endpoint: google_ads_conversion }\n", `t.yaml:2:13: route /conv: endpoint google_ads_conversion takes a path that goes on with {conversion_id:digits}/; end the route's path in "*"`},
	} {
		_, err := compileYAML(t, c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestParsePathTail(t *testing.T) {
	for _, c := range []struct {
		pattern string
		ok      bool
	}{
		{"{id:digits}/", true},
		{"{id:digits}", true},
		{"v1/{id:digits}/x", true},
		{"", false},
		{"{id:letters}/", false},
		{"{id}/", false},
		{"{:digits}/", false},
		{"{id:digits", false},
		{"{a:digits}{b:digits}", false},
		{"{a:digits}1", false}, // "1" could be part of the ID
		{"a b/{id:digits}", false},
		{"%3F/{id:digits}", false},
		{"?{id:digits}", false},
		{strings.Repeat("{a:digits}/", 5), false}, // longer than maxTailLen once re-encoded
	} {
		_, err := parsePathTail(c.pattern)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.pattern, err, c.ok)
		}
	}
}

// FuzzUpstreamPath: whatever follows the Google Ads prefix, either the hit is refused
// and nothing is appended, or the upstream path is the documented shape with the
// request's digits, contains only bytes that stand on a request line as they are, and
// rebuilding from it gives it back.
func FuzzUpstreamPath(f *testing.F) {
	for _, seed := range []string{"123/", "123", "%3F", "123/%3Fgclid%3Dabc", "../../g/collect", "\x00", "１２３/",
		"%31%32/", strings.Repeat("1", 21), "12345678901234567890/", "1//", "1/2/"} {
		f.Add(seed)
	}
	s := mustCompileYAML(f, "")
	const prefix = "/pagead/conversion/"
	idx, tailAt := s.Router.LookupRoute(nil, []byte(prefix+"1/"))
	ep := &s.Endpoints[idx]
	shape := regexp.MustCompile(`^/pagead/conversion/[0-9]{1,20}/$`)
	f.Fuzz(func(t *testing.T, rest string) {
		raw := []byte(prefix + rest)
		got, ok := ep.UpstreamPathFor([]byte("x"), raw, raw, tailAt)
		if !ok {
			if string(got) != "x" {
				t.Fatalf("%q refused, but %q appended", rest, got)
			}
			return
		}
		up := got[1:]
		if !shape.Match(up) {
			t.Fatalf("%q → %q: not the vendor's shape", rest, up)
		}
		if strings.TrimSuffix(rest, "/")+"/" != string(up[len(prefix):]) {
			t.Fatalf("%q → %q: not the request's ID", rest, up)
		}
		again, ok := ep.UpstreamPathFor(nil, up, up, tailAt)
		if !ok || string(again) != string(up) {
			t.Fatalf("%q → %q → %q, %v: not stable", rest, up, again, ok)
		}
	})
}
