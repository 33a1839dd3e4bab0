package rules

import (
	"strings"
	"testing"
)

// upstreamHeader is what goes upstream for one browser header under action a: the
// value and whether it is sent at all.
func upstreamHeader(a Action, name, value string) (string, bool) {
	for _, r := range UpstreamHeaders(a) {
		if strings.EqualFold(r.Name, name) {
			out, ok := r.Build(nil, []byte(value))
			return string(out), ok
		}
	}
	return "", false
}

func TestUpstreamHeadersPerAction(t *testing.T) {
	const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 Safari/537.36"
	const reducedChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	const boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	type want struct {
		value string
		sent  bool
	}
	not := want{}
	cases := []struct {
		name, header, value string
		forward, anonymise  want
	}{
		// Identity, credentials and client IPs: never, whatever the action.
		{"auth proxy email", "X-Forwarded-Email", "jane@example.com", not, not},
		{"auth proxy user", "X-Forwarded-User", "jane", not, not},
		{"remote user", "Remote-User", "jane", not, not},
		{"iap identity", "X-Goog-Authenticated-User-Email", "accounts.google.com:jane@example.com", not, not},
		{"iap id", "X-Goog-Authenticated-User-Id", "accounts.google.com:1234567890", not, not},
		{"client cert", "X-Client-Cert", "MIIB...", not, not},
		{"client cert subject", "X-Ssl-Client-S-Dn", "CN=Jane Doe,O=Example", not, not},
		{"cloudfront viewer", "Cloudfront-Viewer-Address", "203.0.113.9:46532", not, not},
		{"client ip", "Client-Ip", "203.0.113.9", not, not},
		{"true client ip", "True-Client-Ip", "203.0.113.9", not, not},
		{"cloudflare", "Cf-Connecting-Ip", "203.0.113.9", not, not},
		{"azure", "X-Azure-Clientip", "203.0.113.9", not, not},
		{"envoy", "X-Envoy-External-Address", "203.0.113.9", not, not},
		{"forwarded", "Forwarded", "for=203.0.113.9", not, not},
		{"x-forwarded-for", "X-Forwarded-For", "203.0.113.9", not, not},
		{"x-real-ip", "X-Real-Ip", "203.0.113.9", not, not},
		{"cookie", "Cookie", "_ga=GA1.1.1.2", not, not},
		{"authorization", "Authorization", "Bearer abc", not, not},
		{"sec-gpc", "Sec-Gpc", "1", not, not},
		{"made up", "X-Tracking-Id", "abc", not, not},
		{"connection", "Connection", "keep-alive", not, not},
		// The browser's description.
		{"user agent", "User-Agent", chromeUA, want{chromeUA, true}, want{reducedChrome, true}},
		{"user agent garbage", "User-Agent", "uid=john@example.com", want{"uid=john@example.com", true}, not},
		{"user agent with CR", "User-Agent", "Mozilla/5.0\r\nX-Injected: 1", not, not},
		{"user agent with NUL", "User-Agent", "Mozilla/5.0\x00", not, not},
		{"user agent with DEL", "User-Agent", "Mozilla/5.0\x7f", not, not},
		{"user agent with tab", "User-Agent", "Mozilla/5.0\tx", want{"Mozilla/5.0\tx", true}, not},
		{"user agent too long", "User-Agent", strings.Repeat("a", MaxHeaderValue+1), not, not},
		{"client hints", "Sec-CH-UA", `"Chromium";v="131", "Not_A Brand";v="24"`, want{`"Chromium";v="131", "Not_A Brand";v="24"`, true}, not},
		{"client hint platform", "Sec-CH-UA-Platform", `"Windows"`, want{`"Windows"`, true}, not},
		{"client hint model", "Sec-CH-UA-Model", `"Pixel 8"`, want{`"Pixel 8"`, true}, not},
		{"client hint full versions", "Sec-CH-UA-Full-Version-List", `"Chromium";v="131.0.6778.86"`, want{`"Chromium";v="131.0.6778.86"`, true}, not},
		{"client hint invented", "Sec-CH-UA-Serial-Number", "123", not, not},
		// Content negotiation.
		{"accept", "Accept", "image/avif,image/webp,*/*", want{"image/avif,image/webp,*/*", true}, not},
		{"accept-language", "Accept-Language", "de-CH,de;q=0.9,en;q=0.8", want{"de-CH,de;q=0.9,en;q=0.8", true}, want{"de", true}},
		{"accept-language upper", "Accept-Language", "EN-us", want{"EN-us", true}, want{"en", true}},
		{"accept-language filipino", "Accept-Language", "fil-PH,fil;q=0.9", want{"fil-PH,fil;q=0.9", true}, want{"fil", true}},
		{"accept-language other three letters", "Accept-Language", "gsw-CH", want{"gsw-CH", true}, not},
		{"accept-language invented code", "Accept-Language", "qx", want{"qx", true}, not},
		{"accept-language last code", "Accept-Language", "zu-ZA", want{"zu-ZA", true}, want{"zu", true}},
		{"accept-language first code", "Accept-Language", "aa", want{"aa", true}, want{"aa", true}},
		{"accept-language withdrawn code", "Accept-Language", "bh", want{"bh", true}, not},
		{"accept-language one letter", "Accept-Language", "d", want{"d", true}, not},
		{"accept-language digits", "Accept-Language", "12", want{"12", true}, not},
		{"accept-language alone", "Accept-Language", " fr ", want{" fr ", true}, want{"fr", true}},
		{"accept-language weighted", "Accept-Language", "it;q=0.8", want{"it;q=0.8", true}, want{"it", true}},
		{"accept-language wildcard", "Accept-Language", "*", want{"*", true}, not},
		{"accept-language private use", "Accept-Language", "x-klingon", want{"x-klingon", true}, not},
		{"accept-language long", "Accept-Language", "deutsch", want{"deutsch", true}, not},
		{"accept-language payload", "Accept-Language", "de_jane", want{"de_jane", true}, not},
		{"accept-language CRLF", "Accept-Language", "de\r\nX: 1", not, not},
		// The body's type: rebuilt, parameters other than charset (and a multipart
		// boundary on forward) left behind.
		{"content type beacon", "Content-Type", "text/plain;charset=UTF-8", want{"text/plain; charset=utf-8", true}, want{"text/plain; charset=utf-8", true}},
		{"content type form", "Content-Type", "application/x-www-form-urlencoded", want{"application/x-www-form-urlencoded", true}, want{"application/x-www-form-urlencoded", true}},
		{"content type json quoted charset", "Content-Type", `Application/JSON; charset="utf-8"`, want{"application/json; charset=utf-8", true}, want{"application/json; charset=utf-8", true}},
		{"content type with an identifier", "Content-Type", "text/plain; uid=john@example.com; charset=utf-8", want{"text/plain; charset=utf-8", true}, want{"text/plain; charset=utf-8", true}},
		{"content type identifier as charset", "Content-Type", "text/plain; charset=john.doe", want{"text/plain; charset=john.doe", true}, want{"text/plain", true}},
		{"content type latin1", "Content-Type", "application/x-www-form-urlencoded; charset=ISO-8859-1", want{"application/x-www-form-urlencoded; charset=iso-8859-1", true}, want{"application/x-www-form-urlencoded", true}},
		{"content type multipart", "Content-Type", "multipart/form-data; boundary=" + boundary, want{"multipart/form-data; boundary=" + boundary, true}, not},
		{"content type multipart quoted boundary", "Content-Type", `multipart/form-data; boundary="a b(c)"`, want{`multipart/form-data; boundary="a b(c)"`, true}, not},
		{"content type boundary off multipart", "Content-Type", "text/plain; boundary=jane", want{"text/plain", true}, want{"text/plain", true}},
		{"content type unknown to the anonymiser", "Content-Type", "application/vnd.jane+json", want{"application/vnd.jane+json", true}, not},
		{"content type escaped quotes", "Content-Type", `text/plain; charset="u\"tf-8"`, want{"text/plain", true}, want{"text/plain", true}},
		{"content type junk", "Content-Type", "text plain", not, not},
		{"content type no subtype", "Content-Type", "text/", not, not},
		{"content type CR", "Content-Type", "text/plain\r\nX: 1", not, not},
		// Where the hit comes from: origins only.
		{"origin", "Origin", "https://WWW.Example.com", want{"https://www.example.com", true}, not},
		{"origin port", "Origin", "http://localhost:8080", want{"http://localhost:8080", true}, not},
		{"origin default port", "Origin", "https://shop.example:443", want{"https://shop.example", true}, not},
		{"origin null", "Origin", "null", not, not},
		{"origin other scheme", "Origin", "chrome-extension://abcdef", not, not},
		{"referer with a reset token", "Referer", "https://shop.example/account/reset?token=8f14e45fceea167a5a36dedd4bea2543", want{"https://shop.example/", true}, not},
		{"referer with user info", "Referer", "https://jane:secret@shop.example:8443/a#frag", want{"https://shop.example:8443/", true}, not},
		{"referer ipv6", "Referer", "http://[2001:DB8::1]:80/x", want{"http://[2001:db8::1]/", true}, not},
		{"referer backslash path", "Referer", `https://shop.example\@evil.example/`, want{"https://shop.example/", true}, not},
		{"referer email host", "Referer", "https://jane%40example.com.evil.example/", not, not},
		{"referer bad port", "Referer", "https://shop.example:99999/", not, not},
		{"referer relative", "Referer", "/account?token=1", not, not},
		{"referer javascript", "Referer", "javascript:alert(1)", not, not},
		{"empty value", "Accept", "", not, not},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, a := range []struct {
				action Action
				want   want
			}{{Forward, c.forward}, {Anonymise, c.anonymise}, {Drop, not}} {
				got, sent := upstreamHeader(a.action, c.header, c.value)
				if sent != a.want.sent || got != a.want.value {
					t.Errorf("%s %s: %q → %q (sent %v), want %q (sent %v)",
						a.action, c.header, c.value, got, sent, a.want.value, a.want.sent)
				}
			}
		})
	}
}

// TestUpstreamHeaderNames pins the allow-lists: a header joins one only with a reason
// in headers.go, and anonymised hits carry strictly fewer than forwarded ones.
func TestUpstreamHeaderNames(t *testing.T) {
	names := func(a Action) []string {
		var out []string
		for _, r := range UpstreamHeaders(a) {
			out = append(out, r.Name)
		}
		return out
	}
	if got, want := strings.Join(names(Anonymise), ","), "User-Agent,Accept-Language,Content-Type"; got != want {
		t.Errorf("anonymise headers %s, want %s", got, want)
	}
	fwd := map[string]bool{}
	for _, n := range names(Forward) {
		fwd[n] = true
		if !strings.HasPrefix(n, "Sec-Ch-Ua") && !map[string]bool{"User-Agent": true, "Accept": true,
			"Accept-Language": true, "Content-Type": true, "Origin": true, "Referer": true}[n] {
			t.Errorf("forward header %s is not one vendors use", n)
		}
	}
	for _, n := range names(Anonymise) {
		if !fwd[n] {
			t.Errorf("anonymised hits send %s, which forwarded hits do not", n)
		}
	}
	if len(UpstreamHeaders(Drop)) != 0 {
		t.Error("a dropped hit has headers")
	}
}

func TestUpstreamHeadersAllocateNothing(t *testing.T) {
	dst := make([]byte, 0, 512)
	for _, a := range []Action{Forward, Anonymise} {
		for _, r := range UpstreamHeaders(a) {
			v := []byte(map[string]string{
				"User-Agent":      "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
				"Accept-Language": "de-CH,de;q=0.9",
				"Content-Type":    "application/x-www-form-urlencoded; charset=UTF-8",
				"Origin":          "https://www.example.com",
				"Referer":         "https://www.example.com/a?b=c",
			}[r.Name] + "x")
			if n := testing.AllocsPerRun(50, func() { r.Build(dst[:0], v) }); n != 0 {
				t.Errorf("%s %s: %.1f allocs", a, r.Name, n)
			}
		}
	}
}

// FuzzUpstreamHeaders: whatever the browser sends, no value goes upstream with a
// control character or over MaxHeaderValue, anonymised values come from the vocabulary
// (the reduced User-Agent's words, a 2-3 letter language, a known media type), and
// origins are origins.
func FuzzUpstreamHeaders(f *testing.F) {
	for _, s := range []string{
		"text/plain;charset=UTF-8", `multipart/form-data; boundary="a b"`, "de-CH,de;q=0.9",
		"https://jane:x@shop.example:8443/reset?token=1", "http://[::1]:80/", "null",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	} {
		f.Add(s)
	}
	vocab := uaVocabulary()
	f.Fuzz(func(t *testing.T, v string) {
		for _, a := range []Action{Forward, Anonymise} {
			for _, r := range UpstreamHeaders(a) {
				out, ok := r.Build(nil, []byte(v))
				if !ok {
					if len(out) != 0 {
						t.Fatalf("%s %s: not sent but wrote %q", a, r.Name, out)
					}
					continue
				}
				if len(out) == 0 || len(out) > MaxHeaderValue {
					t.Fatalf("%s %s: %q → %d bytes", a, r.Name, v, len(out))
				}
				for _, c := range out {
					if c < 0x20 && c != '\t' || c == 0x7f {
						t.Fatalf("%s %s: %q → control byte in %q", a, r.Name, v, out)
					}
				}
				s := string(out)
				switch {
				case a == Anonymise && r.Name == "User-Agent":
					checkReduced(t, vocab, []byte(v), out)
				case a == Anonymise && r.Name == "Accept-Language":
					if s != "fil" && (len(s) != 2 || iso6391[s[0]-'a']&(1<<(s[1]-'a')) == 0) {
						t.Fatalf("language %q → %q", v, s)
					}
				case a == Anonymise && r.Name == "Content-Type":
					mt, rest, _ := strings.Cut(s, ";")
					if !strings.Contains(strings.Join(anonymisedMediaTypes, " "), mt) || rest != "" && rest != " charset=utf-8" {
						t.Fatalf("content type %q → %q", v, s)
					}
				case r.Name == "Origin" || r.Name == "Referer":
					if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") ||
						strings.ContainsAny(strings.SplitN(s, "://", 2)[1], "@?#\\ ") {
						t.Fatalf("%s %q → %q", r.Name, v, s)
					}
				}
				again, ok := r.Build(nil, out)
				if r.Name != "User-Agent" || a == Anonymise {
					if !ok || string(again) != s {
						t.Fatalf("%s %s: %q → %q → %q: not stable", a, r.Name, v, s, again)
					}
				}
			}
		}
	})
}

// TestISO6391: the language vocabulary is the 183 ISO 639-1 codes.
func TestISO6391(t *testing.T) {
	n := 0
	for _, row := range iso6391 {
		for ; row != 0; row &= row - 1 {
			n++
		}
	}
	if n != 183 {
		t.Errorf("%d codes, want 183", n)
	}
	for _, c := range []string{"en", "de", "fr", "es", "zh", "ja", "pt", "ru", "ar", "hi", "nb", "sr"} {
		if iso6391[c[0]-'a']&(1<<(c[1]-'a')) == 0 {
			t.Errorf("%s missing", c)
		}
	}
}
