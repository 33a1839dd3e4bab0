package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config"
)

func mustScripts(t testing.TB, yaml string) *ScriptTable {
	t.Helper()
	return mustCompileYAML(t, yaml).Scripts
}

// served describes a script as a request sees it: path → upstream URL of a request with
// every parameter set to "v".
func served(tab *ScriptTable) map[string]string {
	out := map[string]string{}
	for i := range tab.Scripts {
		s := &tab.Scripts[i]
		var vals [config.MaxScriptParams][]byte
		for j := range s.Params {
			vals[j] = []byte("v")
		}
		out[s.Path] = string(s.AppendKey(nil, 0, &vals))
	}
	return out
}

func TestScriptsCompile(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       map[string]string
	}{
		{"defaults: matomo off without its host", "", map[string]string{
			"/gtag/js":           "https://www.googletagmanager.com/gtag/js?id=v&l=v",
			"/gtm.js":            "https://www.googletagmanager.com/gtm.js?id=v&l=v&gtm_auth=v&gtm_preview=v&gtm_cookies_win=v",
			"/js/script.js":      "https://plausible.io/js/script.js",
			"/en_US/fbevents.js": "https://connect.facebook.net/en_US/fbevents.js",
		}},
		{"matomo from upstreams.matomo, prefix, overrides, a new script", `
upstreams:
  matomo: "https://stats.example.com/matomo/"
scripts:
  prefix: /assets/x9
  gtag: { path: /g.js, params: [id] }
  gtm: { disabled: true }
  fbevents: { upstream: "https://connect.facebook.net/de_DE/fbevents.js" }
  plausible: { disabled: true }
  clarity: { path: /c/tag.js, upstream: "http://cdn.example:8080/t%20ag.js", params: [id, v] }
`, map[string]string{
			"/assets/x9/g.js":              "https://www.googletagmanager.com/gtag/js?id=v",
			"/assets/x9/matomo.js":         "https://stats.example.com/matomo/matomo.js",
			"/assets/x9/en_US/fbevents.js": "https://connect.facebook.net/de_DE/fbevents.js",
			"/assets/x9/c/tag.js":          "http://cdn.example:8080/t%20ag.js?id=v&v=v",
		}},
		{"scripts.matomo.upstream without upstreams.matomo", "scripts:\n  matomo: { upstream: \"https://m.example/js/matomo.js\" }\n  gtag: {disabled: true}\n  gtm: {disabled: true}\n  plausible: {disabled: true}\n  fbevents: {disabled: true}\n",
			map[string]string{"/matomo.js": "https://m.example/js/matomo.js"}},
		{"all off", "scripts:\n  enabled: false\n  gtag: { path: /g.js }\n", map[string]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := served(mustScripts(t, c.yaml))
			if len(got) != len(c.want) {
				t.Errorf("served %v\nwant %v", got, c.want)
			}
			for p, w := range c.want {
				if got[p] != w {
					t.Errorf("%s: upstream %q, want %q", p, got[p], w)
				}
			}
		})
	}
}

func TestScriptsCompileErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"scripts:\n  a: { path: /x.js, upstream: \"https://a.example/x.js\" }\n  b: { path: /x.js, upstream: \"https://b.example/x.js\" }\n",
			"t.yaml:3:14: scripts.b: path /x.js is scripts.a's too"},
		{"scripts:\n  gtag: { path: /gtm.js }\n", "t.yaml:2:17: scripts.gtag: path /gtm.js is scripts.gtm's too"},
		{"scripts:\n  c: { path: /tr, upstream: \"https://a.example/x.js\" }\n", "t.yaml:2:14: scripts.c: path /tr is taken by a route of endpoint meta_tr"},
		{"scripts:\n  c: { path: /pagead/conversion/x.js, upstream: \"https://a.example/x.js\" }\n",
			"scripts.c: path /pagead/conversion/x.js is taken by a route of endpoint google_ads_conversion"},
		{"routes:\n  - { path: /js/script.hash.js, endpoint: plausible_event }\n", "t.yaml:2:13: scripts.plausible: path /js/script.js is taken by a route of endpoint plausible_event"},
		{"routes:\n  - { path: /g.js, endpoint: ga4_collect }\nscripts:\n  prefix: /g.js\n", ""}, // under the prefix: no clash
		{"scripts:\n  c: { path: /consent, upstream: \"https://a.example/x.js\" }\n", "t.yaml:2:14: scripts.c: path /consent is the proxy's own"},
		{"scripts:\n  gtag: { params: [l], ids: [G-1] }\n", "t.yaml:2:24: scripts.gtag: ids are values of the id parameter, which params leaves out"},
		{"scripts:\n  c: { path: /c.js, upstream: \"https://a.example/x.js\", ids: [G-1] }\n", "scripts.c: ids are values of the id parameter, which params does not list"},
	} {
		_, err := compileYAML(t, c.yaml)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q:\n got %v\nwant %s", c.yaml, err, c.want)
		}
	}
}

func TestScriptLookup(t *testing.T) {
	tab := mustScripts(t, "scripts:\n  prefix: /p\n")
	var none [config.MaxScriptParams][]byte
	for _, c := range []struct {
		path, script, upstream string
	}{
		{"/p/gtag/js", "gtag", "https://www.googletagmanager.com/gtag/js"},
		{"/gtag/js", "", ""},
		{"/p/gtag/js/", "", ""},
		{"/p/js/script.js", "plausible", "https://plausible.io/js/script.js"},
		{"/p/js/script.hash.js", "plausible", "https://plausible.io/js/script.hash.js"},
		// Any order is the vendor's one file, fetched in the catalogue's order.
		{"/p/js/script.outbound-links.hash.file-downloads.js", "plausible", "https://plausible.io/js/script.file-downloads.hash.outbound-links.js"},
		{"/p/js/script.file-downloads.hash.outbound-links.js", "plausible", "https://plausible.io/js/script.file-downloads.hash.outbound-links.js"},
		{"/p/js/script.tagged-events.revenue.pageview-props.pageleave.outbound-links.manual.local.hash.file-downloads.exclusions.compat.js", "plausible",
			"https://plausible.io/js/script.compat.exclusions.file-downloads.hash.local.manual.outbound-links.pageleave.pageview-props.revenue.tagged-events.js"},
		{"/p/js/script.hash.hash.js", "", ""},
		{"/p/js/script.hash..js", "", ""},
		{"/p/js/script..js", "", ""},
		{"/p/js/script.hash.js.js", "", ""},
		{"/p/js/script.nope.js", "", ""},
		{"/p/js/script.hash./js", "", ""},
		{"/p/js/script.HASH.js", "", ""},
		{"/p/js/script.", "", ""},
	} {
		idx, v := tab.Lookup([]byte(c.path))
		name, up := "", ""
		if idx >= 0 {
			name, up = tab.Scripts[idx].Name, string(tab.Scripts[idx].AppendKey(nil, v, &none))
		}
		if name != c.script || up != c.upstream {
			t.Errorf("%s: %q %q, want %q %q", c.path, name, up, c.script, c.upstream)
		}
	}
	if idx, _ := (*ScriptTable)(nil).Lookup([]byte("/gtag/js")); idx != -1 {
		t.Error("nil table found a script")
	}
}

func TestScriptValues(t *testing.T) {
	tab := mustScripts(t, "scripts:\n  gtag: { ids: [G-ABC123, G-DEF] }\n")
	gtag, gtm := &tab.Scripts[0], &tab.Scripts[1]
	if gtag.ParamIndex([]byte("id")) != 0 || gtag.ParamIndex([]byte("l")) != 1 || gtag.ParamIndex([]byte("cx")) != -1 {
		t.Error("ParamIndex")
	}
	if !gtag.Required(0) || gtag.Required(1) {
		t.Error("id must be required, l not")
	}
	for _, c := range []struct {
		s    *Script
		i    int
		v    string
		want bool
	}{
		{gtag, 0, "G-ABC123", true},
		{gtag, 0, "G-ABC12", false},
		{gtag, 0, "G-XYZ", false},
		{gtag, 1, "myLayer", true},
		{gtm, 0, "GTM-ANY", true},
		{gtm, 3, "env-5", true},
		{gtm, 0, "", false},
		{gtm, 0, "GTM X", false},
		{gtm, 0, "GTM/X", false},
		{gtm, 0, "GTM%2FX", false},
		{gtm, 0, "a&b=c", false},
		{gtm, 0, "é", false},
		{gtm, 0, strings.Repeat("a", config.MaxScriptToken), true},
		{gtm, 0, strings.Repeat("a", config.MaxScriptToken+1), false},
	} {
		if got := c.s.ValueOK(c.i, []byte(c.v)); got != c.want {
			t.Errorf("%s %s=%q: %v, want %v", c.s.Name, c.s.Params[c.i], c.v, got, c.want)
		}
	}
}

// FuzzScriptLookup: whatever the path, a script found is one whose path, or whose variant
// path with the extensions in some order, is the path asked for.
func FuzzScriptLookup(f *testing.F) {
	tab := mustScripts(f, "scripts:\n  prefix: /p\n")
	for _, s := range []string{"/p/js/script.hash.js", "/p/js/script.hash.manual.js", "/p/gtag/js", "/p/js/script..js", "/p/js/script.hash.hash.js"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		idx, v := tab.Lookup([]byte(path))
		if idx < 0 {
			return
		}
		s := &tab.Scripts[idx]
		if v == 0 {
			if s.Path != path {
				t.Fatalf("%q found %s (%s)", path, s.Name, s.Path)
			}
			return
		}
		if !strings.HasPrefix(path, s.pathHead) || !strings.HasSuffix(path, s.pathTail) {
			t.Fatalf("%q found %s", path, s.Name)
		}
		exts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, s.pathHead), s.pathTail), ".")
		var want uint64
		for _, ext := range exts {
			j := slices.Index(s.Variants, ext)
			if j < 0 || want&(1<<j) != 0 {
				t.Fatalf("%q: extension %q", path, ext)
			}
			want |= 1 << j
		}
		if want != v {
			t.Fatalf("%q: set %b, want %b", path, v, want)
		}
	})
}
