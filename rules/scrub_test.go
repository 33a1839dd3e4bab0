package rules

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestScrubText holds the free-text scrubber to what it must replace and what it must
// leave alone, including the forms an identifier takes to walk past it.
func TestScrubText(t *testing.T) {
	check := func(t *testing.T, in, want string, wantChanged bool) {
		t.Helper()
		got, changed := scrubText(nil, []byte(in), escNone)
		if string(got) != want || changed != wantChanged {
			t.Errorf("scrubText(%q)\n got %q (changed %v)\nwant %q (changed %v)", in, got, changed, want, wantChanged)
		}
	}
	for _, c := range []struct{ in, want string }{
		// Kept as they are.
		{"Running shoe", "Running shoe"},
		{"Help / Feedback", "Help / Feedback"},
		{"Order 2024-04-05", "Order 2024-04-05"},
		{"Size 42, 2 pairs, 1234 left", "Size 42, 2 pairs, 1234 left"},
		{"Version 1.2.3", "Version 1.2.3"},
		{"Room 101 2024", "Room 101 2024"},
		{"100% cotton", "100% cotton"},
		{"Spring sale 2024 – 50% off!", "Spring sale 2024 – 50% off!"},
		{"InternationalBusinessMachines", "InternationalBusinessMachines"},
		{"running-shoe-size-42-blue", "running-shoe-size-42-blue"},
		{"Café déjà vu", "Café déjà vu"},
		{"Follow @consentgate", "Follow @consentgate"},
		{"Mission:identity", "Mission:identity"},
		{"12:30 pm", "12:30 pm"},
		{"Placed 2024-04-05 10:30", "Placed 2024-04-05 10:30"},
		{"Placed 05.04.2024 12 items", "Placed 05.04.2024 12 items"},
		{"Prices from 1.234.567,89", "Prices from 1.234.567,89"},
		{"", ""},
	} {
		check(t, c.in, c.want, false)
	}
	for _, c := range []struct{ in, want string }{
		// E-mail addresses, plain and disguised.
		{"Order for jane@doe.com", "Order for :email"},
		{"Order for jane.doe+shop@mail.example.co.uk.", "Order for :email."},
		{"jane%40doe.com", ":email"},
		{"jane＠doe.com", ":email"},             // full-width at
		{"jane﹫doe.com", ":email"},             // small commercial at
		{"ｊａｎｅ＠ｄｏｅ．ｃｏｍ", ":email"},             // all full-width
		{"jane\u200b@\u200bdoe.com", ":email"}, // zero-width spaces inside
		{"j\u00adane@doe.com", ":email"},       // soft hyphen
		{"<jane@doe.com>", "<:email>"},
		{"jane @doe.com", "jane :email"},
		{"jane\xa0@doe.com", ":email"},     // a Latin-1 no-break space is not UTF-8: dropped
		{"jane\xc0\x80@doe.com", ":email"}, // an overlong NUL likewise
		{"mailto:jane@doe.com", "mailto::email"},
		// Phone numbers.
		{"Call +44 20 7946 0958 now", "Call :phone now"},
		{"Call (555) 123-4567", "Call (:phone"},
		{"Call 555-123-4567", "Call :phone"},
		{"Call 555.123.4567", "Call :phone"},
		{"Call 555-1234", "Call :phone"},
		{"On 05.04.2024 call 030 12345678", "On 05.04.2024 call :phone"},
		{"Tel +4930123456", "Tel :phone"},
		{"Tel ＋４４ ２０ ７９４６ ０９５８", "Tel :phone"}, // full-width digits and plus
		{"Tel ٠١٢٣٤٥٦٧٨٩", "Tel :id"},          // Arabic-Indic digits
		// Payment cards (Luhn) and IBANs (mod 97).
		{"Card 4111 1111 1111 1111", "Card :card"},
		{"Card 4111-1111-1111-1111 exp", "Card :card exp"},
		{"Card 4111111111111111", "Card :card"},
		{"Card 4111111111111112", "Card :id"}, // not Luhn: still a long digit run
		{"IBAN DE89 3704 0044 0532 0130 00 please", "IBAN :iban please"},
		{"IBAN DE89370400440532013000", "IBAN :iban"},
		{"iban gb82 west 1234 5698 7654 32", "iban :iban"},
		{"IBAN GB82 WEST 1234 5698 7654 32 Bank", "IBAN :iban Bank"},
		// Addresses, IDs, tokens.
		{"From 192.168.1.23", "From :ip"},
		{"Customer 12345", "Customer :id"},
		{"Customer #1712345678", "Customer #:id"},
		{"order12345", "order:id"},
		{"user-8812734", "user-:id"},
		{"Order ５５５５５", "Order :id"},
		{"1\u200b2\u200b3\u200b4\u200b5", ":id"},               // digits split by zero-width spaces
		{"Ref 1\u03382\u03383\u03384\u03385\u0338", "Ref :id"}, // combining marks between digits
		{"Ref ¹²³⁴⁵", "Ref :id"},                               // superscript digits
		{"Ref ①②③④⑤", "Ref :id"},                               // circled digits
		{"Ref 𝟏𝟐𝟑𝟒𝟓", "Ref :id"},                               // mathematical bold digits
		{"session 6f1f5a0e-3c1b-4d6e-9b59-2a8cb9f1a3d4", "session :uuid"},
		{"token 3f9a8c7d6e5f4a3b2c1d", "token :token"},
		{"key=a1b2c3d4e5f60718", "key=:token"},
		{"Cj0KCQjw0caCBhCIARIsAGAfuMwsqb0uZ", ":token"},
		{"amFuZUBkb2UuY29t", ":token"}, // base64 of an e-mail address
		{"Reset link eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "Reset link :token"},
		// White space: runs collapse, invisible characters go.
		{"a \t\n  b", "a b"},
	} {
		check(t, c.in, c.want, !strings.Contains(c.in, "\t"))
	}
	// Invisible characters are dropped even where nothing is replaced: a run of them
	// can spell an identifier no reader sees.
	check(t, "Pricing\u200b\u200c\u200b\u200d\u2060\ufeff", "Pricing", false)
	check(t, "  padded  ", "padded", false)
	check(t, "a\u0001b\u007fc", "abc", false)
}

func TestScrubTextEscaping(t *testing.T) {
	for _, c := range []struct {
		in   string
		esc  escMode
		want string
	}{
		{"a b/c?d#e&f;g%h:i @j", escPath, "a%20b%2Fc%3Fd%23e%26f%3Bg%25h:i%20@j"},
		{"jane@doe.com x", escPath, ":email%20x"},
		{"a b+c&d=e:f", escQuery, "a%20b%2Bc%26d%3De:f"},
		{"straße", escPath, "stra%C3%9Fe"},
		{"bad\xffbyte 12345", escQuery, "badbyte%20:id"},
	} {
		if got, _ := scrubText(nil, []byte(c.in), c.esc); string(got) != c.want {
			t.Errorf("scrubText(%q, %d) = %q, want %q", c.in, c.esc, got, c.want)
		}
	}
}

func TestDecodeFix(t *testing.T) {
	for in, want := range map[string]string{
		"jane%40doe.com":       "jane@doe.com",
		"jane%2540doe.com":     "jane@doe.com",
		"jane%252540doe.com":   "jane@doe.com",
		"100% cotton":          "100% cotton",
		"50%2":                 "50%2",
		"a+b":                  "a+b",
		"%E2%80%8B":            "",
		"%25%E2%80%8B40":       "@",
		"a%00b":                "ab",
		"%25252525252541":      "%252541", // four rounds at most
		"":                     "",
		"%ZZ%41":               "%ZZA",
		strings.Repeat("x", 9): strings.Repeat("x", 9),
	} {
		got, ok := decodeFix([]byte("pre"), []byte(in))
		if string(got) != "pre"+want || ok != !hasEscape([]byte(want)) {
			t.Errorf("decodeFix(%q) = %q %v, want %q", in, got[3:], ok, want)
		}
	}
}

func TestCutText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},
		{"a€b", 3, "a"},
		{"a€b", 4, "a€"},
		{"😀", 3, ""},
		{"ab cd", 3, "ab"},
	} {
		if got := cutText([]byte(c.in), c.max); string(got) != c.want {
			t.Errorf("cutText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestLuhnAndIBAN(t *testing.T) {
	for _, c := range []struct {
		digits string
		ok     bool
	}{{"4111111111111111", true}, {"79927398713", true}, {"4111111111111112", false}, {"0000000000000", true}} {
		d := make([]byte, len(c.digits))
		for i := range c.digits {
			d[i] = c.digits[i] - '0'
		}
		if luhnValid(d) != c.ok {
			t.Errorf("luhnValid(%s) != %v", c.digits, c.ok)
		}
	}
	for _, c := range []struct {
		iban string
		ok   bool
	}{{"DE89370400440532013000", true}, {"GB82WEST12345698765432", true}, {"GB82WEST12345698765433", false}, {"NL91ABNA0417164300", true}} {
		if ibanValid([]byte(c.iban)) != c.ok {
			t.Errorf("ibanValid(%s) != %v", c.iban, c.ok)
		}
	}
}

// TestScrubURL covers the URL scrubber on its own: the forms an identifier takes in a
// path or a campaign value.
func TestScrubURL(t *testing.T) {
	a := testAnonymiser(t, "ga4_collect", nil, []string{"ref"})
	for _, c := range []struct{ in, want string }{
		{"https://shop.example/", "https://shop.example/"},
		{"https://shop.example", "https://shop.example"},
		{"https://shop.example/products/running-shoe", "https://shop.example/products/running-shoe"},
		{"https://shop.example/blog/2024/04/spring", "https://shop.example/blog/2024/04/spring"},
		{"https://shop.example/users/12345", "https://shop.example/users/:id"},
		{"https://shop.example/users/12345/", "https://shop.example/users/:id/"},
		{"https://shop.example//double//slash", "https://shop.example//double//slash"},
		{"https://shop.example/confirm/john.doe@example.com", "https://shop.example/confirm/:email"},
		{"https://shop.example/confirm/john.doe%40example.com", "https://shop.example/confirm/:email"},
		{"https://shop.example/confirm/john.doe%2540example.com", "https://shop.example/confirm/:email"},
		{"https://shop.example/confirm/john.doe%25252540example.com", "https://shop.example/confirm/:email"},
		{"https://shop.example/confirm/john.doe%EF%BC%A0example.com", "https://shop.example/confirm/:email"},
		{"https://shop.example/reset-password/3f9a8c7d6e5f4a3b", "https://shop.example/reset-password/:token"},
		{"https://shop.example/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N", "https://shop.example/reset/:token"},
		{"https://shop.example/o/6F1F5A0E-3C1B-4D6E-9B59-2A8CB9F1A3D4", "https://shop.example/o/:uuid"},
		{"https://shop.example/call/+44-20-7946-0958", "https://shop.example/call/:phone"},
		{"https://shop.example/a%2Fb/c", "https://shop.example/a%2Fb/c"},
		{"https://shop.example/a;jsessionid=0123456789ABCDEF/b", "https://shop.example/a/b"},
		{"https://shop.example/straße/ü", "https://shop.example/stra%C3%9Fe/%C3%BC"},
		{"https://shop.example/p?utm_source=news&utm_medium=email", "https://shop.example/p?utm_source=news&utm_medium=email"},
		{"https://shop.example/p?utm_content=john@example.com", "https://shop.example/p?utm_content=:email"},
		{"https://shop.example/p?utm_content=john%2540example.com", "https://shop.example/p?utm_content=:email"},
		{"https://shop.example/p?utm_source=a;gclid=abc", "https://shop.example/p?utm_source=a"},
		{"https://shop.example/p?utm_source=a%3Bgclid%3Dabc", "https://shop.example/p?utm_source=a"},
		{"https://shop.example/p?utm_source=a%26gclid%3Dabc", "https://shop.example/p?utm_source=a"},
		{"https://shop.example/p?utm_source=a%2526gclid%253Dabc", "https://shop.example/p?utm_source=a"},
		{"https://shop.example/p?utm_term=call+555-123-4567", "https://shop.example/p?utm_term=call%20:phone"},
		{"https://shop.example/p?utm_campaign=", "https://shop.example/p"},
		{"https://shop.example/p?utm_campaign=%E2%80%8B", "https://shop.example/p"},
		{"https://shop.example/p?ref=hn&ref2=x", "https://shop.example/p?ref=hn"},
		{"https://shop.example/p?utm_id=" + strings.Repeat("a", 300), "https://shop.example/p?utm_id=" + strings.Repeat("a", maxCampaignValue)},
		{"https://shop.example/p?utm_id=" + strings.Repeat("ab ", 60) + "12345", "https://shop.example/p?utm_id=" + strings.Repeat("ab%20", 33) + "a"},
		{"https://shop.example/#/users/12345", "https://shop.example/"},
	} {
		st := hitState{}
		got, verd := a.appendCleanURL(nil, []byte(c.in), RolePage, &st)
		if verd != keep || string(got) != c.want {
			t.Errorf("appendCleanURL(%q)\n got %q (%d)\nwant %q", c.in, got, verd, c.want)
		}
		if _, err := url.Parse(string(got)); err != nil {
			t.Errorf("%q: output does not parse: %v", c.in, err)
		}
	}
	// A very long path: every segment is scrubbed, nothing is lost or grows unbounded.
	long := "https://shop.example/" + strings.Repeat("seg/", 500) + "12345"
	st := hitState{}
	got, verd := a.appendCleanURL(nil, []byte(long), RolePage, &st)
	if verd != keep || !strings.HasSuffix(string(got), "/seg/:id") || len(got) > len(long) {
		t.Errorf("long path: %d bytes, %q…", len(got), got[len(got)-20:])
	}
}

// TestKinds checks each kind on good, bad and hostile values through the pair path,
// which decodes, checks and re-encodes.
func TestKinds(t *testing.T) {
	h := testHasher(testDay)
	ep := &Endpoint{
		Name: "kinds", Vendor: "x", Identifiers: []string{"id", "short", "guid"},
		Allow: map[string]Value{
			"enum": Enum("0", "1", "smart TV"), "int": Int(5), "dec": Dec(8), "tok": Token(csTagID, 12),
			"name": Name(csEventName, 40), "id": ID, "short": ShortID(6), "guid": GUIDID, "lang": Lang,
			"screen": Screen, "cur": Currency, "text": Text(20),
		},
	}
	a, err := NewAnonymiser(ep, nil, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("9", 5000)
	for _, c := range []struct {
		name, raw, want string // want "" = removed
	}{
		{"enum", "1", "1"},
		{"enum", "smart+TV", "smart%20TV"},
		{"enum", "2", ""},
		{"enum", "1%00", ""},
		{"enum", "1;gclid=x", ""},
		{"int", "12345", "12345"},
		{"int", "123456", ""},
		{"int", "-1", ""},
		{"int", "1.5", ""},
		{"int", "１２", ""}, // full-width digits are not a number
		{"int", "1e3", ""},
		{"int", "+1", ""},
		{"int", long, ""},
		{"dec", "-12.50", "-12.50"},
		{"dec", "3", "3"},
		{"dec", "12.", ""},
		{"dec", ".5", ""},
		{"dec", "1.2.3", ""},
		{"dec", "jane%40doe.com", ""},
		{"dec", "123456789", ""},
		{"tok", "G-ABC123XYZ9", "G-ABC123XYZ9"},
		{"tok", "G-ABC123XYZ9X", ""},
		{"tok", "G_ABC", ""},
		{"tok", "G-AB%3B", ""},
		{"name", "page_view", "page_view"},
		{"name", "signup_8812734", ""},
		{"name", "view_3f9a8c7d6e5f4a3b", ""},
		{"name", "Page%20View", ""},
		{"id", "1186384312.1712340000", hv("x", "", "1186384312.1712340000")},
		{"id", "a%2Eb+c", hv("x", "", "a.b c")},
		{"id", strings.Repeat("x", maxIDLen+1), ""},
		{"short", "Xa3bC9", hv("x", "", "Xa3bC9")[:6]},
		{"guid", "x", guid(hv("x", "", "x"))},
		{"lang", "en-US", "en"},
		{"lang", "EN_gb", "en"},
		{"lang", "de-CH%2Cde%3Bq%3D0.9", "de"},
		{"lang", "zh-Hant-TW", "zh"},
		{"lang", "fil", "fil"},
		{"lang", "x-klingon", ""},
		{"lang", "english", ""},
		{"lang", "en us", ""},
		{"lang", "jane@doe.com", ""},
		{"screen", "1920x1080", "1920x1080"},
		{"screen", "1366x768", "1280x768"},
		{"screen", "390x844", "360x768"},
		{"screen", "100x100", "320x320"},
		{"screen", "99999x99999", "3840x3840"},
		{"screen", "2560X1440", "2560x1440"},
		{"screen", "414", "360"},
		{"screen", "0x0", ""},
		{"screen", "1920x", ""},
		{"screen", "1920x1080x24", ""},
		{"screen", "123456x1", ""},
		{"screen", "1920%C3%971080", ""},
		{"cur", "eur", "EUR"},
		{"cur", "EUR", "EUR"},
		{"cur", "EURO", ""},
		{"cur", "E1R", ""},
		{"cur", "jane@doe.com", ""},
		{"cur", "ＥＵＲ", ""},
		{"text", "Order for jane@doe.com", "Order%20for%20%3Aemail"},
		{"text", strings.Repeat("abc ", 20), "abc%20abc%20abc%20abc%20abc"},
	} {
		var out Out
		err := a.Anonymise(&Hit{Query: []byte(c.name + "=" + c.raw)}, "", &out)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if c.want != "" {
			want = c.name + "=" + c.want
		}
		if string(out.Query) != want {
			t.Errorf("%s=%.40q\n got %q\nwant %q", c.name, c.raw, out.Query, want)
		}
		total := uint32(0)
		for _, n := range out.Removed {
			total += n
		}
		if (c.want == "") != (total == 1) {
			t.Errorf("%s=%.40q: removed %v", c.name, c.raw, out.Removed)
		}
	}
}

// TestAnonymiseFreeTextDrop: under anonymise.free_text: drop, free text goes (not
// counted as removed: it fits, policy drops it) and campaign values stay only if the
// scrubber has nothing to replace.
func TestAnonymiseFreeTextDrop(t *testing.T) {
	h := testHasher(testDay)
	ga4, _ := EndpointByName("ga4_collect")
	a, err := NewAnonymiserWith(ga4, AnonymiseOptions{DropText: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	dl := url.QueryEscape("https://shop.example/p?utm_source=news&utm_content=jane%40doe.com")
	var out Out
	if err := a.Anonymise(&Hit{Query: []byte("en=page_view&dt=Pricing&dl=" + dl)}, "", &out); err != nil {
		t.Fatal(err)
	}
	want := "en=page_view&dl=" + url.QueryEscape("https://shop.example/p?utm_source=news") + "&gcs=G100&npa=1"
	if string(out.Query) != want || out.Removed != [NumKinds]uint32{} {
		t.Errorf("\n got %s %v\nwant %s", out.Query, out.Removed, want)
	}
	mp, _ := EndpointByName("ga4_mp")
	m, err := NewAnonymiserWith(mp, AnonymiseOptions{DropText: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Anonymise(&Hit{Body: []byte(`{"events":[{"name":"x","params":{"page_title":"T","items":[{"item_name":"N","price":5}]}}]}`)}, "", &out); err != nil {
		t.Fatal(err)
	}
	if want := `{"consent":{"ad_personalization":"DENIED","ad_user_data":"DENIED"},"events":[{"name":"x","params":{"items":[{"price":5}]}}],"non_personalized_ads":true}`; string(out.Body) != want {
		t.Errorf("mp\n got %s\nwant %s", out.Body, want)
	}
}

// FuzzScrubText: the scrubber never panics, writes valid UTF-8 (escaped as asked), and,
// run again on its own
// output, changes nothing (a placeholder is never mistaken for an identifier, and no
// identifier survives one pass only to be found by the next).
func FuzzScrubText(f *testing.F) {
	for _, s := range []string{
		"Order for jane@doe.com", "Call +44 20 7946 0958", "Card 4111 1111 1111 1111", "IBAN DE89 3704 0044 0532 0130 00",
		"jane＠doe.com", "1\u200b2\u200b3\u200b4\u200b5", "6f1f5a0e-3c1b-4d6e-9b59-2a8cb9f1a3d4", "a1b2c3d4e5f60718",
		"(555) 123-4567", "192.168.1.23", "\xff\xfe", "  a  b  ", "%40%2540",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, esc := range []escMode{escNone, escPath, escQuery} {
			out, _ := scrubText(nil, []byte(s), esc)
			if esc == escNone && !utf8.Valid(out) {
				t.Fatalf("%q → invalid UTF-8 %q", s, out)
			}
			if esc != escNone {
				for _, c := range out {
					if c <= ' ' || c >= 0x7f || c == '&' || c == '#' || c == '?' || c == ';' || esc == escQuery && (c == '=' || c == '+') {
						t.Fatalf("%q (esc %d) → unescaped %q in %q", s, esc, c, out)
					}
				}
			}
		}
		once, _ := scrubText(nil, []byte(s), escNone)
		twice, changed := scrubText(nil, once, escNone)
		if changed || string(twice) != string(once) {
			t.Fatalf("not idempotent: %q → %q → %q", s, once, twice)
		}
	})
}

// FuzzScrubURL: the URL scrubber never panics; what it keeps is an absolute http(s) URL
// that parses, whose query holds only allowed names, with no fragment, user info or
// path parameters, and that scrubbing again leaves unchanged.
func FuzzScrubURL(f *testing.F) {
	for _, s := range []string{
		"https://shop.example/users/12345?utm_source=a;gclid=b#x", "https://u:p@[::1]:80/a;b/c?utm_content=jane%2540doe.com",
		"http://bücher.example/straße?utm_term=x%26y", "https://shop.example/reset/3f9a8c7d6e5f4a3b", "https://a.example/%zz/%2F",
		"https://a.example?utm_id=%E2%80%8B", "https://a.example/users/42/orders/7",
	} {
		f.Add(s, false)
	}
	h := testHasher(testDay)
	ga4, _ := EndpointByName("ga4_collect")
	a, err := NewAnonymiserWith(ga4, AnonymiseOptions{PathTemplates: []string{"/users/{id}", "/*/orders/{order}"}, URLParams: []string{"ref"}}, h)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, u string, referrer bool) {
		role := RolePage
		if referrer {
			role = RoleReferrer
		}
		st := hitState{pageKnown: true}
		out, verd := a.appendCleanURL(nil, []byte(u), role, &st)
		if verd != keep {
			return
		}
		p, err := url.Parse(string(out))
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", u, out, err)
		}
		if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" || p.User != nil || p.Fragment != "" || strings.Contains(p.EscapedPath(), ";") {
			t.Fatalf("%q → %q: scheme %q host %q user %v fragment %q", u, out, p.Scheme, p.Host, p.User, p.Fragment)
		}
		for name := range p.Query() {
			if _, ok := a.urlKeep[name]; !ok {
				t.Fatalf("%q → %q keeps query parameter %q", u, out, name)
			}
		}
		if referrer && (p.Path != "/" || p.RawQuery != "") {
			t.Fatalf("%q → %q: a cross-site referrer keeps more than its origin", u, out)
		}
		again, verd := a.appendCleanURL(nil, out, role, &st)
		if verd != keep || string(again) != string(out) {
			t.Fatalf("not idempotent: %q → %q → %q", u, out, again)
		}
	})
}
