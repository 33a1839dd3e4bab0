package rules

import (
	"strings"
	"testing"
	"unicode"
)

// uaCases are real User-Agent strings (as the browsers, crawlers and tools named send
// them) and what an anonymised hit carries instead; "" means no User-Agent at all.
var uaCases = []struct{ name, in, want string }{
	// Chrome desktop: already reduced, an older full string, every platform.
	{"chrome windows reduced",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	{"chrome windows 7 full version",
		"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.0.0 Safari/537.36"},
	{"chrome macos",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"},
	{"chrome linux",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
	{"chrome chromeos build number",
		"Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.212 Safari/537.36",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36"},
	// Chrome Android: device model and Android version go.
	{"chrome android phone full",
		"Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.5615.48 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36"},
	{"chrome android phone reduced",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"},
	{"chrome android tablet",
		"Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	{"android webview with build id",
		"Mozilla/5.0 (Linux; Android 12; Pixel 6 Build/SD1A.210817.023; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/94.0.4606.71 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.0.0 Mobile Safari/537.36"},
	{"facebook in-app android",
		"Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/444.0.0.0.110;]",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"},
	// Safari.
	{"safari macos",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"},
	{"safari ios 17",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"},
	{"safari ios 26 frozen os",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1"},
	{"safari ipad mobile site",
		"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPad; CPU OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1"},
	{"chrome ios",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.0.0 Mobile/15E148 Safari/604.1"},
	{"firefox ios",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/604.1"},
	{"edge ios",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/126.2592.56 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) EdgiOS/126.0.0.0 Mobile/15E148 Safari/604.1"},
	{"instagram in-app ios: device and app build go",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 307.0.0.22.109 (iPhone14,5; iOS 17_1_2; de_DE; de; scale=3.00; 1170x2532; 531310289)",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"},
	// Firefox.
	{"firefox windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"},
	{"firefox macos",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0"},
	{"firefox ubuntu frozen rv",
		"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
		"Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"},
	{"firefox android phone",
		"Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
		"Mozilla/5.0 (Android 10; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"},
	{"firefox android tablet",
		"Mozilla/5.0 (Android 13; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
		"Mozilla/5.0 (Android 10; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"},
	// Chromium browsers that keep their own token.
	{"edge windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"},
	{"edge android",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0"},
	{"samsung internet phone",
		"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"},
	{"samsung internet tablet",
		"Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36"},
	{"opera windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"},
	{"legacy edge reads as its chrome",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.0.0 Safari/537.36"},
	// Crawlers keep their name, nothing else; other automation is "bot".
	{"googlebot smartphone",
		"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.139 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; Googlebot)"},
	{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "Mozilla/5.0 (compatible; bingbot)"},
	{"facebook crawler", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "Mozilla/5.0 (compatible; facebookexternalhit)"},
	{"headless chrome",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
		genericBotUA},
	{"unnamed bot with contact", "Mozilla/5.0 (compatible; AcmeMonitor/3.1; +https://acme.example/bot)", genericBotUA},
	{"curl", "curl/8.5.0", genericBotUA},
	{"python requests", "python-requests/2.31.0", genericBotUA},
	// Garbage and attacks: nothing, or the reduced string without the payload.
	{"empty", "", ""},
	{"just mozilla", "Mozilla/5.0", ""},
	{"free text", "uid=john@example.com", ""},
	{"internet explorer 11", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", ""},
	{"safari token off apple systems", "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", ""},
	{"identifier appended to a real string",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 uid/john@example.com",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	{"identifier in the version", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/4815162342.0 Safari/537.36", ""},
	{"identifier glued to the major", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131abc Safari/537.36", ""},
	{"version zero", "Mozilla/5.0 (X11; Linux x86_64) Chrome/0.1 Safari/537.36", ""},
	{"edge without chrome", "Mozilla/5.0 (Windows NT 10.0) Edg/131.0.0.0", ""},
	{"control character",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0\x00 Safari/537.36", ""},
	{"huge", strings.Repeat("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 ", 40), ""},
	{"just over the limit",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 " + strings.Repeat("x", MaxUserAgent), ""},
}

func TestReduceUserAgent(t *testing.T) {
	check := func(t *testing.T, in, want string) {
		t.Helper()
		got := string(ReduceUserAgent(nil, []byte(in)))
		if got != want {
			t.Fatalf("ReduceUserAgent(%q)\n got %q\nwant %q", in, got, want)
		}
		if again := string(ReduceUserAgent(nil, []byte(got))); again != got {
			t.Errorf("not idempotent: %q reduces to %q", got, again)
		}
		if len(got) > MaxReducedUserAgent {
			t.Errorf("%d bytes, over MaxReducedUserAgent", len(got))
		}
	}
	for _, c := range uaCases {
		t.Run(c.name, func(t *testing.T) { check(t, c.in, c.want) })
	}
	// dst is appended to, never overwritten.
	if got := string(ReduceUserAgent([]byte("x"), []byte("curl/8"))); got != "x"+genericBotUA {
		t.Errorf("append: %q", got)
	}
}

func TestReduceUserAgentAllocatesNothing(t *testing.T) {
	dst := make([]byte, 0, MaxReducedUserAgent)
	for _, c := range uaCases {
		in := []byte(c.in)
		if n := testing.AllocsPerRun(50, func() { ReduceUserAgent(dst[:0], in) }); n != 0 {
			t.Errorf("%s: %.1f allocs", c.name, n)
		}
	}
}

// uaVocabulary is every word (run of letters) a reduced string may contain: the words
// of the reducer's own constant pieces. A word outside it would be text copied from
// the input.
func uaVocabulary() map[string]bool {
	words := map[string]bool{}
	add := func(s string) {
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) {
			words[w] = true
		}
	}
	for _, c := range uaCases {
		add(c.want)
	}
	for _, b := range uaBots {
		add("Mozilla/5.0 (compatible; " + b + ")")
	}
	add(genericBotUA)
	return words
}

// checkReduced asserts what must hold of any output: bounded, printable ASCII, made
// only of the reducer's words and of numbers no longer than a major version (or one of
// the template's fixed numbers), and idempotent.
func checkReduced(t *testing.T, vocab map[string]bool, in, out []byte) {
	t.Helper()
	if len(out) > MaxReducedUserAgent {
		t.Fatalf("%q: output of %d bytes", in, len(out))
	}
	for _, c := range out {
		if c < 0x20 || c > 0x7e {
			t.Fatalf("%q: output byte %#x", in, c)
		}
	}
	s := string(out)
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if !vocab[w] {
			t.Fatalf("%q: output %q has the word %q, not the reducer's", in, s, w)
		}
	}
	for _, n := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(n) > 3 && n != "14541" && n != "20100101" {
			t.Fatalf("%q: output %q has the number %q", in, s, n)
		}
	}
	if again := ReduceUserAgent(nil, out); string(again) != s {
		t.Fatalf("%q: not idempotent: %q then %q", in, s, again)
	}
}

func FuzzReduceUserAgent(f *testing.F) {
	for _, c := range uaCases {
		f.Add([]byte(c.in))
	}
	vocab := uaVocabulary()
	f.Fuzz(func(t *testing.T, ua []byte) {
		out := ReduceUserAgent(nil, ua)
		checkReduced(t, vocab, ua, out)
	})
}

func BenchmarkReduceUserAgent(b *testing.B) {
	dst := make([]byte, 0, MaxReducedUserAgent)
	for _, c := range []struct{ name, ua string }{
		{"chrome android", uaCases[5].in},
		{"safari ios", uaCases[11].in},
		{"googlebot", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.139 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
	} {
		ua := []byte(c.ua)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dst = ReduceUserAgent(dst[:0], ua)
			}
		})
	}
}
