package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/rules"
)

// FuzzScriptParams: whatever query a page (or anyone) sends, a script request is refused
// with a message that repeats nothing of it, or its upstream URL carries only declared
// parameters, each once, each a token.
func FuzzScriptParams(f *testing.F) {
	ld := testLoader
	cfg, err := ld.LoadBytes("f.yaml", []byte("scripts:\n  gtag: { ids: [G-ABC123, G-X] }\n"))
	if err != nil {
		f.Fatal(err)
	}
	snap, err := rules.Compile(cfg, rules.CompileOptions{})
	if err != nil {
		f.Fatal(err)
	}
	gtag, _ := snap.Scripts.Lookup([]byte("/gtag/js"))
	gtm, _ := snap.Scripts.Lookup([]byte("/gtm.js"))
	for _, q := range []string{"id=G-ABC123", "id=G-ABC123&l=dl&x=1", "id=G-1%26x%3D1", "id=a&id=b", "l=%00", "id=G-X&&&=&id", "gtm_auth=a&id=GTM-1&gtm_preview=env-1"} {
		f.Add(q, false)
		f.Add(q, true)
	}
	f.Fuzz(func(t *testing.T, query string, useGTM bool) {
		sc := &snap.Scripts.Scripts[gtag]
		if useGTM {
			sc = &snap.Scripts.Scripts[gtm]
		}
		var args fasthttp.Args
		args.Parse(query)
		var vals [config.MaxScriptParams][]byte
		if msg := scriptParams(&args, sc, &vals); msg != "" {
			for _, v := range args.All() {
				if len(v) > 3 && strings.Contains(msg, string(v)) && !strings.Contains("parameter is given twice required must be letters, digits not one of the IDs this proxy serves", string(v)) {
					t.Fatalf("message %q repeats value %q", msg, v)
				}
			}
			return
		}
		key := string(sc.AppendKey(nil, 0, &vals))
		_, q, _ := strings.Cut(key, "?")
		seen := map[string]bool{}
		for pair := range strings.SplitSeq(q, "&") {
			if q == "" {
				break
			}
			name, value, ok := strings.Cut(pair, "=")
			if !ok || seen[name] || sc.ParamIndex([]byte(name)) < 0 || !config.IsScriptToken(value) {
				t.Fatalf("query %q gave upstream %q", query, key)
			}
			seen[name] = true
		}
		if !seen["id"] {
			t.Fatalf("query %q passed without its required id: %q", query, key)
		}
	})
}

// FuzzScriptHeaders: the header values the scripts read from browsers (If-None-Match,
// Accept-Encoding) and from vendors (Cache-Control, Expires, Date) never panic, and a
// vendor's freshness is never negative.
func FuzzScriptHeaders(f *testing.F) {
	for _, s := range []string{`W/"abc"`, `"abc", W/"def"`, "*", "gzip;q=0", "br, gzip;q=0.5", "max-age=60, s-maxage=10",
		`max-age="30"`, "no-store", "max-age=99999999999999999999", "Tue, 01 Dec 2026 12:10:00 GMT", ",,;;==", "\x00"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		etagMatches([]byte(a), []byte(`W/"0123456789abcdef"`))
		acceptsGzip([]byte(a))
		var h fasthttp.ResponseHeader
		h.Set(fasthttp.HeaderCacheControl, a)
		h.Set(fasthttp.HeaderExpires, b)
		h.Set(fasthttp.HeaderDate, a)
		if d := vendorMaxAge(&h); d < -1 || d > maxDeltaSeconds*time.Second {
			t.Fatalf("Cache-Control %q, Expires %q: max age %v", a, b, d)
		}
	})
}
