package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/consentgate/consentgate/internal/corpus"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testSecret = "test-secret"

var testDay = fixedNow(2024, 4, 5)

// testSalt is the salt tests install for testDay, so expected pseudonyms can be written
// down; production salts come from crypto/rand.
var testSalt = []byte("0123456789abcdef0123456789abcdef")

// testHasher is a hasher keyed by testSecret with testSalt installed for now's day.
func testHasher(now func() time.Time) *Hasher {
	h := NewHasher(now).WithSecret([]byte(testSecret))
	if !h.SetSalt(now(), testSalt, false) {
		panic("SetSalt refused the test salt")
	}
	return h
}

// wantHash computes the documented pseudonym independently of Hasher (hasher.go):
// hex(HMAC(HMAC(salt, SHA-256(domain ‖ SHA-256(secret) ‖ len ‖ vendor) ‖ len16 ‖ property ‖ len16 ‖ site), value)[:16]).
func wantHash(salt []byte, secret, vendor, property, value string) string {
	return wantSiteHash(salt, secret, vendor, property, "", value)
}

// wantSiteHash is wantHash for a hit sent to site.
func wantSiteHash(salt []byte, secret, vendor, property, site, value string) string {
	pepper := sha256.Sum256([]byte(secret))
	scope := sha256.Sum256([]byte("consentgate pseudonym v2\x00" + string(pepper[:]) + string(rune(len(vendor))) + vendor))
	m := hmac.New(sha256.New, salt)
	m.Write(scope[:])
	m.Write([]byte{byte(len(property) >> 8), byte(len(property))})
	m.Write([]byte(property))
	m.Write([]byte{byte(len(site) >> 8), byte(len(site))})
	m.Write([]byte(site))
	m = hmac.New(sha256.New, m.Sum(nil))
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// hv is the pseudonym of value for vendor and property under the test salt and secret.
func hv(vendor, property, value string) string {
	return wantHash(testSalt, testSecret, vendor, property, value)
}

func testAnonymiser(t testing.TB, name string, extra, urlParams []string) *Anonymiser {
	t.Helper()
	ep, ok := EndpointByName(name)
	if !ok {
		t.Fatalf("no endpoint %s", name)
	}
	a, err := NewAnonymiser(ep, extra, urlParams, testHasher(testDay))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type anonCase struct {
	name         string
	ep           string
	query, body  string
	ct, ip       string
	wantQ, wantB string
	wantErr      bool
}

func runAnonCases(t *testing.T, cases []anonCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := testAnonymiser(t, c.ep, nil, nil)
			out := Out{Query: []byte("stale"), Body: []byte("stale")}
			err := a.Anonymise(&Hit{Query: []byte(c.query), Body: []byte(c.body), ContentType: []byte(c.ct)}, c.ip, &out)
			if c.wantErr {
				if err == nil {
					t.Fatalf("want error, got query %q body %q", out.Query, out.Body)
				}
				if !strings.Contains(err.Error(), "rules: anonymise "+c.ep) {
					t.Errorf("error lacks context: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out.Query) != c.wantQ {
				t.Errorf("query\n got %s\nwant %s", out.Query, c.wantQ)
			}
			if string(out.Body) != c.wantB {
				t.Errorf("body\n got %s\nwant %s", out.Body, c.wantB)
			}
		})
	}
}

func TestAnonymiseQuery(t *testing.T) {
	gs := "&gcs=G100&npa=1"
	runAnonCases(t, []anonCase{
		{
			name:  "ga4 page_view",
			ep:    "ga4_collect",
			query: "v=2&tid=G-1&cid=555.666&uid=u1&dl=https%3A%2F%2Fwww.example.com%2Fp%3Futm_source%3Dx%26gclid%3Dabc%23frag&dr=&en=page_view&ep.foo=bar&up.x=1&uaa=x86&uap=Windows&gcs=G111&gcd=13l3&npa=0&_uip=1.2.3.4&_p=998877",
			ip:    "203.0.113.0",
			wantQ: "v=2&tid=G-1&cid=" + hv("ga4", "G-1", "555.666") + "&dl=https%3A%2F%2Fexample.com%2Fp%3Futm_source%3Dx&en=page_view" + gs + "&_uip=203.0.113.0",
		},
		{
			name:  "ga4 ipv6 is escaped, no ip omits _uip",
			ep:    "ga4_collect",
			query: "en=x&_uip=2001%3Adb8%3A%3A1",
			ip:    "2001:db8::",
			wantQ: "en=x" + gs + "&_uip=2001%3Adb8%3A%3A",
		},
		{
			name:  "ga4 browser _uip removed when there is no ip",
			ep:    "ga4_collect",
			query: "en=x&_uip=6.6.6.6&%5Fuip=7.7.7.7",
			wantQ: "en=x" + gs,
		},
		{
			name:  "set overrides every occurrence",
			ep:    "ga4_collect",
			query: "gcs=G111&npa=0&en=x&gcs=G101&g%63s=G111",
			wantQ: "en=x" + gs,
		},
		{
			name:  "repeated params judged one by one",
			ep:    "ga4_collect",
			query: "en=a&uid=1&en=b&uid=2&&&cid=c1&cid=c2",
			wantQ: "en=a&en=b&cid=" + hv("ga4", "", "c1") + "&cid=" + hv("ga4", "", "c2") + gs,
		},
		{
			name:  "values are written in their kind's canonical form",
			ep:    "ga4_collect",
			query: "dt=Caf%C3%A9+%26+co&tid=G-1&ul=en-US&sr=1366x768&cu=eur&en=page_view",
			wantQ: "dt=Caf%C3%A9%20%26%20co&tid=G-1&ul=en&sr=1280x768&cu=EUR&en=page_view" + gs,
		},
		{
			name:  "values that do not fit their kind are removed",
			ep:    "ga4_collect",
			query: "tid=G;1&ul=en us&sr=1#2&cu=jane@doe.com&v=3&en=signup_8812734&_et=12a&frm=7&epn.value=1e9&dl=javascript:alert(1)",
			wantQ: gs[1:],
		},
		{
			name:  "bad escapes: name dropped, kept value dropped",
			ep:    "ga4_collect",
			query: "dt=%ZZ&e%n=x&en=ok&tid=%4",
			wantQ: "en=ok" + gs,
		},
		{
			name:  "flag without value, empty hash stays empty",
			ep:    "ga4_collect",
			query: "richsstsse&cid=&en=",
			wantQ: "cid=&en=" + gs, // richsstsse is a reply parameter (reply_test.go)
		},
		{
			name:  "ga4 cross-day linkers go",
			ep:    "ga4_collect",
			query: "en=page_view&sct=3&_s=7&_fv=1&_ss=1&_nsi=1&seg=1",
			wantQ: "en=page_view&seg=1" + gs,
		},
		{
			name:  "matomo cross-day linkers go, page view ID is hashed short",
			ep:    "matomo_track",
			query: "idsite=1&h=23&m=59&s=58&_idvc=12&_idn=0&_idts=1712000001&_viewts=1712300002&pv_id=Xa3bC9",
			wantQ: "idsite=1&pv_id=" + hv("matomo", "1", "Xa3bC9")[:6],
		},
		{
			name:  "free text is scrubbed",
			ep:    "ga4_collect",
			query: "dt=Order%20for%20jane%40doe.com%2C%20call%20%2B44%2020%207946%200958&en=x",
			wantQ: "dt=Order%20for%20%3Aemail%2C%20call%20%3Aphone&en=x" + gs,
		},
		{
			name:  "hash of the decoded value",
			ep:    "ga4_collect",
			query: "cid=a%2Eb+c",
			wantQ: "cid=" + hv("ga4", "", "a.b c") + gs,
		},
		{
			name:  "meta percent-encoded bracket names",
			ep:    "meta_tr",
			query: "id=1&ev=PageView&cd%5Bvalue%5D=5&cd[currency]=EUR&cd%5Bemail%5D=x&ud%5Bem%5D=abc&ud[ph]=123&fbp=fb.1.2.3&fbc=fb.1.2.x&external_id=e&eid=9",
			ip:    "203.0.113.0",
			wantQ: "id=1&ev=PageView&cd%5Bvalue%5D=5&cd[currency]=EUR",
		},
		{
			name:  "bing hashes vid and sid, drops msclkid",
			ep:    "bing_action",
			query: "ti=1&Ver=2&vid=V1&sid=S1&msclkid=M1&p=https%3A%2F%2Fa.example%2F%3Fmsclkid%3DM1&evt=pageLoad",
			wantQ: "ti=1&Ver=2&vid=" + hv("bing", "1", "V1") + "&sid=" + hv("bing", "1", "S1") + "&p=https%3A%2F%2Fa.example%2F&evt=pageLoad",
		},
		{
			name:  "bing page view GUID hashed as a GUID",
			ep:    "bing_action",
			query: "mid=6f1f5a0e-3c1b-4d6e-9b59-2a8cb9f1a3d4",
			wantQ: "mid=" + guid(hv("bing", "", "6f1f5a0e-3c1b-4d6e-9b59-2a8cb9f1a3d4")),
		},
		{
			name:  "google ads: set appended, body dropped",
			ep:    "google_ads_conversion",
			query: "label=L&gclaw=G&auid=1.2&oid=O&url=https%3A%2F%2Fa.example%2Fx%3Fgclid%3DG&value=1&currency_code=EUR&npa=0&gcs=G111",
			body:  "gclid=G",
			ct:    "application/x-www-form-urlencoded",
			wantQ: "label=L&url=https%3A%2F%2Fa.example%2Fx&value=1&currency_code=EUR" + gs,
		},
		{
			name:  "google ads title is scrubbed, screen bucketed",
			ep:    "google_ads_conversion",
			query: "tiba=Thanks%20jane.doe%40example.com&u_w=414&u_h=896",
			wantQ: "tiba=Thanks%20%3Aemail&u_w=360&u_h=768" + gs,
		},
		{
			name:  "matomo hashes _id, drops uid cid cip token_auth",
			ep:    "matomo_track",
			query: "idsite=1&rec=1&_id=0123456789abcdef&uid=jane&cid=fedcba9876543210&cip=1.2.3.4&token_auth=t&url=https%3A%2F%2Fa.example%2F&dimension1=x",
			ip:    "203.0.113.0",
			wantQ: "idsite=1&rec=1&_id=" + hv("matomo", "1", "0123456789abcdef") + "&url=https%3A%2F%2Fa.example%2F",
		},
		{
			name:  "linkedin drops li_fat_id",
			ep:    "linkedin_collect",
			query: "pid=1&fmt=gif&li_fat_id=abc&url=https%3A%2F%2Fa.example%2F%3Fli_fat_id%3Dabc",
			wantQ: "pid=1&url=https%3A%2F%2Fa.example%2F&fmt=gif",
		},
	})
}

// guid writes 32 hex characters as a GUID.
func guid(h string) string {
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func TestAnonymiseBodies(t *testing.T) {
	gs := "gcs=G100&npa=1"
	runAnonCases(t, []anonCase{
		{
			name:  "ga4 sendBeacon lines",
			ep:    "ga4_collect",
			query: "v=2&tid=G-1&cid=1.2",
			body:  "en=scroll&_et=10&ep.x=1\n\nen=click&uid=9&_uip=1.1.1.1\r\nuid=only\nen=purchase&epn.value=9.5&cu=EUR&ep.transaction_id=T1\n",
			ct:    "text/plain;charset=UTF-8",
			wantQ: "v=2&tid=G-1&cid=" + hv("ga4", "G-1", "1.2") + "&" + gs,
			wantB: "en=scroll&_et=10\nen=click\nen=purchase&epn.value=9.5&cu=EUR",
		},
		{
			name:  "ga4 lines: a body of nothing allowed",
			ep:    "ga4_collect",
			body:  "uid=1\nup.a=b",
			wantQ: gs,
		},
		{name: "ga4 lines multipart", ep: "ga4_collect", body: "--x\r\n", ct: "multipart/form-data; boundary=x", wantErr: true},
		{
			name:  "meta form POST",
			ep:    "meta_tr",
			body:  "id=1&ev=Purchase&cd%5Bvalue%5D=9&ud%5Bem%5D=h&fbp=fb.1.2.3&dl=https%3A%2F%2Fu%3Ap%40a.example%2Fx%3Fx%3D1\r\n",
			ct:    "application/x-www-form-urlencoded; charset=UTF-8",
			wantB: "id=1&ev=Purchase&cd%5Bvalue%5D=9&dl=https%3A%2F%2Fa.example%2Fx",
		},
		{name: "meta form as text/plain", ep: "meta_tr", body: "id=1&fbp=x", ct: "text/plain", wantB: "id=1"},
		{name: "meta form without content type", ep: "meta_tr", body: "id=1&fbp=x", wantB: "id=1"},
		{name: "meta multipart", ep: "meta_tr", body: "--b\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1\r\n--b--", ct: "multipart/form-data; boundary=b", wantErr: true},
		{name: "meta JSON body", ep: "meta_tr", body: `{"id":"1"}`, ct: "application/json", wantErr: true},
		{
			name:  "matomo form POST with query",
			ep:    "matomo_track",
			query: "idsite=1&uid=x",
			body:  "rec=1&_id=abc&e_c=Video&cip=1.2.3.4",
			ct:    "application/x-www-form-urlencoded",
			wantQ: "idsite=1",
			wantB: "rec=1&_id=" + hv("matomo", "1", "abc") + "&e_c=Video",
		},
		{
			name:  "ga4 mp JSON",
			ep:    "ga4_mp",
			query: "measurement_id=G-1&api_secret=s&uid=u",
			body:  `{"client_id":"c1","user_id":"u","timestamp_micros":1712345678901234567,"user_properties":{"a":{"value":"b"}},"user_data":{"sha256_email_address":["aa"]},"consent":{"ad_user_data":"GRANTED"},"non_personalized_ads":false,"ip_override":"1.2.3.4","events":[{"name":"x","params":{"page_location":"https://a.example/?gclid=1&utm_source=s","page_title":"a<b>&c","session_id":12345,"custom":"y","items":[{"item_id":"S1","coupon":"JANE"}]}},{"params":{"custom":1}},{"name":"y","params":"notanobject"}]}`,
			ct:    "application/json",
			ip:    "203.0.113.0",
			wantQ: "measurement_id=G-1&api_secret=s",
			wantB: `{"client_id":"` + hv("ga4", "G-1", "c1") + `","consent":{"ad_personalization":"DENIED","ad_user_data":"DENIED"},"events":[{"name":"x","params":{"items":[{"item_id":"S1"}],"page_location":"https://a.example/?utm_source=s","page_title":"a<b>&c","session_id":"` + hv("ga4", "G-1", "12345") + `"}},{"name":"y"}],"ip_override":"203.0.113.0","non_personalized_ads":true,"timestamp_micros":1712345678901234567}`,
		},
		{
			name:  "ga4 mp: consent that is not an object is replaced, no ip",
			ep:    "ga4_mp",
			body:  `{"consent":"x","ip_override":"1.2.3.4","client_id":""}`,
			wantB: `{"client_id":"","consent":{"ad_personalization":"DENIED","ad_user_data":"DENIED"},"non_personalized_ads":true}`,
		},
		{
			name:  "plausible: props, objects under Keep paths and relative URLs go",
			ep:    "plausible_event",
			body:  `{"name":{"x":1},"n":"pageview","url":"/relative","u":"https://a.example/p?utm_medium=m&fbclid=F#h","referrer":null,"props":{"email":"j@example.com"},"revenue":{"currency":"EUR","amount":"1.00","buyer":"j"},"d":"a.example","w":1920}`,
			ct:    "text/plain",
			wantB: `{"d":"a.example","n":"pageview","revenue":{"amount":"1.00","currency":"EUR"},"u":"https://a.example/p?utm_medium=m","w":1920}`,
		},
		{
			name:  "tiktok: user subtree gone except the hashed anonymous id",
			ep:    "tiktok_pixel",
			body:  `{"event":"Pageview","context":{"user":{"anonymous_id":"A1","email":"e","external_id":"x"},"ad":{"callback":"T"},"ip":"1.2.3.4","page":{"url":"https://a.example/?ttclid=T"}},"properties":{"contents":[{"content_id":"S","email":"e"}],"value":1}}`,
			wantB: `{"context":{"page":{"url":"https://a.example/"},"user":{"anonymous_id":"` + hv("tiktok", "", "A1") + `"}},"event":"Pageview","properties":{"contents":[{"content_id":"S"}],"value":1}}`,
		},
		{name: "json empty body", ep: "plausible_event", body: " \n", wantB: ""},
		{name: "json syntax error", ep: "ga4_mp", body: `{"client_id":`, wantErr: true},
		{name: "json not an object", ep: "ga4_mp", body: `[{"client_id":"c"}]`, wantErr: true},
		{name: "json trailing data", ep: "ga4_mp", body: `{"a":1}{"client_id":"c"}`, wantErr: true},
		{name: "json too deep", ep: "ga4_mp", body: strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1), wantErr: true},
		{name: "json too large", ep: "plausible_event", body: `{"n":"` + strings.Repeat("x", maxJSONBody) + `"}`, wantErr: true},
	})
}

// TestAnonymiseURLs runs URL values through every URL parameter of every endpoint:
// page and link URLs keep their scrubbed path, a referrer is judged against the page
// (here the hit has none, so it is cross-site and keeps its origin).
func TestAnonymiseURLs(t *testing.T) {
	cases := []struct{ in, want, wantRef string }{ // want "" = removed
		{"https://www.example.com/p?utm_source=a&utm_medium=b&utm_campaign=c&utm_term=d&utm_content=e&utm_id=f&gclid=1&dclid=2&gbraid=3&wbraid=4&fbclid=5&msclkid=6&ttclid=7&li_fat_id=8&twclid=9&yclid=10&mc_eid=11#frag",
			"https://example.com/p?utm_source=a&utm_medium=b&utm_campaign=c&utm_term=d&utm_content=e&utm_id=f", "https://example.com/"},
		{"https://www.example.com/p?gclid=1&utm_source=a%20b&fbclid=2", "https://example.com/p?utm_source=a%20b", "https://example.com/"},
		{"https://www.example.com/?gclid=x", "https://example.com/", "https://example.com/"},
		{"https://www.example.com/p?UTM_SOURCE=x&utm%5Fsource=y&email=j%40example.com", "https://example.com/p?utm_source=y", "https://example.com/"},
		{"https://user:pw@www.example.com:8443/a/b", "https://example.com/a/b", "https://example.com/"},
		{"https://j%40example.com@www.example.com/", "https://example.com/", "https://example.com/"},
		{"HTTP://Example.com", "http://Example.com", "http://Example.com/"},
		{"https://www.example.com/a;jsessionid=XYZ/b;v=1?gclid=1", "https://example.com/a/b", "https://example.com/"},
		{"https://www.example.com/#/route?gclid=1", "https://example.com/", "https://example.com/"},
		{"https://[2001:db8::1]:8080/p", "", ""},
		{"https://198.51.100.7/p", "", ""},
		{"https://bücher.example/straße", "https://bücher.example/stra%C3%9Fe", "https://bücher.example/"},
		{" https://www.example.com/ ", "https://example.com/", "https://example.com/"},
		{"https://shop.example/reset-password/3f9a8c7d6e5f4a3b2c1d0e9f8a7b6c5d", "https://shop.example/reset-password/:token", "https://shop.example/"},
		{"https://shop.example/users/12345/orders/2024", "https://shop.example/users/:id/orders/2024", "https://shop.example/"},
		{"https://shop.example/confirm/john.doe@example.com", "https://shop.example/confirm/:email", "https://shop.example/"},
		{"https://shop.example/confirm/john.doe%2540example.com?utm_content=john%40example.com", "https://shop.example/confirm/:email?utm_content=:email", "https://shop.example/"},
		{"https://shop.example/o/6f1f5a0e-3c1b-4d6e-9b59-2a8cb9f1a3d4/", "https://shop.example/o/:uuid/", "https://shop.example/"},
		{"https://shop.example/p?utm_source=a;gclid=abc", "https://shop.example/p?utm_source=a", "https://shop.example/"},
		{"https://shop.example/p?utm_source=a%26gclid%3Dabc", "https://shop.example/p?utm_source=a", "https://shop.example/"},
		{"https://shop.example/p?utm_campaign=spring%20sale%202024", "https://shop.example/p?utm_campaign=spring%20sale%202024", "https://shop.example/"},
		{"https://u48213.mail.example/inbox/18c2f", "", ""},
		{"https://shop12.example/p", "https://shop12.example/p", "https://shop12.example/"},
		{"https://mail.example/#inbox/FMfcgzQXJWDtrsMJ", "https://mail.example/", "https://mail.example/"},
		{"/relative/path?utm_source=x", "", ""},
		{"//www.example.com/protocol-relative", "", ""},
		{"not a url", "", ""},
		{"javascript:alert(1)", "", ""},
		{"ftp://www.example.com/f", "", ""},
		{"android-app://com.google.android.gm/", "", ""},
		{"https:///nohost", "", ""},
		{"https://:80/", "", ""},
		{"https://exa mple.com/", "", ""},
		{"https://www.example.com\\@evil.example/", "", ""},
	}
	for i := range builtin {
		ep := &builtin[i]
		a := testAnonymiser(t, ep.Name, nil, nil)
		want := func(v Value, c struct{ in, want, wantRef string }) string {
			if v.Role == RoleReferrer {
				return c.wantRef
			}
			return c.want
		}
		for name, v := range ep.Allow {
			if v.Kind != KindURL {
				continue
			}
			for _, c := range cases {
				var out Out
				q := name + "=" + url.QueryEscape(c.in)
				if err := a.Anonymise(&Hit{Query: []byte(q)}, "", &out); err != nil {
					t.Fatalf("%s %s: %v", ep.Name, q, err)
				}
				vals, err := url.ParseQuery(string(out.Query))
				if err != nil {
					t.Fatalf("%s: output %q does not parse: %v", ep.Name, out.Query, err)
				}
				w := want(v, c)
				if got, present := vals[name]; w == "" && present || w != "" && (len(got) != 1 || got[0] != w) {
					t.Errorf("%s %s=%q\n got %q\nwant %q", ep.Name, name, c.in, got, w)
				}
				if removed := out.Removed[KindURL]; (w == "" && c.in != "") != (removed == 1) {
					t.Errorf("%s %s=%q: removed count %d", ep.Name, name, c.in, removed)
				}
			}
		}
		for path, v := range ep.AllowJSON {
			if v.Kind != KindURL {
				continue
			}
			for _, c := range cases {
				var out Out
				body, _ := json.Marshal(nest(path, c.in))
				if err := a.Anonymise(&Hit{Body: body}, "", &out); err != nil {
					t.Fatalf("%s %s: %v", ep.Name, body, err)
				}
				var doc any
				if err := json.Unmarshal(out.Body, &doc); err != nil {
					t.Fatalf("%s: output %q: %v", ep.Name, out.Body, err)
				}
				w := want(v, c)
				got, present := dig(doc, path)
				if w == "" && present || w != "" && got != w {
					t.Errorf("%s %s=%q\n got %q\nwant %q", ep.Name, path, c.in, got, w)
				}
			}
		}
	}
}

// TestAnonymiseReferrer: a referrer keeps its scrubbed path when it comes from the
// page's own host or one of the site's hosts, and its origin otherwise.
func TestAnonymiseReferrer(t *testing.T) {
	h := testHasher(testDay)
	ga4, _ := EndpointByName("ga4_collect")
	mp, _ := EndpointByName("ga4_mp")
	tiktok, _ := EndpointByName("tiktok_pixel")
	a, err := NewAnonymiserWith(ga4, AnonymiseOptions{SiteHosts: []string{"Blog.Example"}}, h)
	if err != nil {
		t.Fatal(err)
	}
	page := "dl=" + url.QueryEscape("https://Shop.Example/p/1")
	for _, c := range []struct{ query, wantDR string }{
		{page + "&dr=" + url.QueryEscape("https://shop.example/cart/12345?utm_source=x"), "https://shop.example/cart/:id?utm_source=x"},
		{"dr=" + url.QueryEscape("https://shop.example/cart/12345") + "&" + page, "https://shop.example/cart/:id"}, // the page comes later
		{page + "&dr=" + url.QueryEscape("https://blog.example/post/7"), "https://blog.example/post/7"},
		{page + "&dr=" + url.QueryEscape("https://mail.example.org/mail/u/0/#inbox/FMfcgzQXJWDtrs"), "https://example.org/"},
		{page + "&dr=" + url.QueryEscape("https://www.social.example/jane.doe.1987"), "https://social.example/"},
		{page + "&dr=" + url.QueryEscape("https://www.google.com/search?q=jane+doe"), "https://google.com/"},
		{page + "&dr=" + url.QueryEscape("https://shop.example.evil.example/x"), "https://evil.example/"},
		{"dr=" + url.QueryEscape("https://shop.example/cart"), "https://shop.example/"}, // no page: cross-site
		{page + "&dr=" + url.QueryEscape("http://10.0.0.12/intranet"), ""},
		// Labels in front of a registrable domain are free for whoever writes the URL.
		{page + "&dr=" + url.QueryEscape("https://jane-doe.shop.example/x"), "https://shop.example/"},
		{page + "&dr=" + url.QueryEscape("https://velmora.quast.blog.example/post/7"), "https://blog.example/"},
		{page + "&dr=" + url.QueryEscape("https://3f9a8c7d6e5f4a3b.preview.example/x"), ""},
	} {
		var out Out
		if err := a.Anonymise(&Hit{Query: []byte(c.query)}, "", &out); err != nil {
			t.Fatal(err)
		}
		vals, _ := url.ParseQuery(string(out.Query))
		if got := vals.Get("dr"); got != c.wantDR {
			t.Errorf("%s\n got dr %q\nwant %q", c.query, got, c.wantDR)
		}
	}
	// A page on a host that looks like an ID goes, unless it is one of the site's.
	for _, c := range []struct {
		sites []string
		want  string
	}{{nil, ""}, {[]string{"Shop12345.example"}, "https://shop12345.example/p"}} {
		b, err := NewAnonymiserWith(ga4, AnonymiseOptions{SiteHosts: c.sites}, h)
		if err != nil {
			t.Fatal(err)
		}
		var out Out
		if err := b.Anonymise(&Hit{Query: []byte("dl=" + url.QueryEscape("https://shop12345.example/p"))}, "", &out); err != nil {
			t.Fatal(err)
		}
		vals, _ := url.ParseQuery(string(out.Query))
		if got := vals.Get("dl"); got != c.want || (c.want == "") != (out.Removed[KindURL] == 1) {
			t.Errorf("site hosts %v: dl %q, removed %v", c.sites, got, out.Removed)
		}
	}
	// The referrer of a form body is judged against the page in the query.
	meta := testAnonymiser(t, "meta_tr", nil, nil)
	var out Out
	err = meta.Anonymise(&Hit{Query: []byte("dl=" + url.QueryEscape("https://shop.example/a")), Body: []byte("rl=" + url.QueryEscape("https://shop.example/b/98765")), ContentType: []byte("text/plain")}, "", &out)
	if err != nil || string(out.Body) != "rl="+url.QueryEscape("https://shop.example/b/:id") {
		t.Errorf("meta form referrer: %q, %v", out.Body, err)
	}
	// JSON: the page is the referrer's sibling, per object.
	ma, err := NewAnonymiserWith(mp, AnonymiseOptions{}, h)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"events":[{"name":"a","params":{"page_referrer":"https://shop.example/r/55555","page_location":"https://shop.example/p"}},{"name":"b","params":{"page_referrer":"https://shop.example/r/55555"}}]}`
	if err := ma.Anonymise(&Hit{Body: []byte(body)}, "", &out); err != nil {
		t.Fatal(err)
	}
	want := `{"consent":{"ad_personalization":"DENIED","ad_user_data":"DENIED"},"events":[{"name":"a","params":{"page_location":"https://shop.example/p","page_referrer":"https://shop.example/r/:id"}},{"name":"b","params":{"page_referrer":"https://shop.example/"}}],"non_personalized_ads":true}`
	if string(out.Body) != want {
		t.Errorf("mp referrer\n got %s\nwant %s", out.Body, want)
	}
	ta, err := NewAnonymiserWith(tiktok, AnonymiseOptions{}, h)
	if err != nil {
		t.Fatal(err)
	}
	body = `{"event":"Pageview","context":{"page":{"url":"https://shop.example/p","referrer":"https://shop.example/orders/123456"}}}`
	if err := ta.Anonymise(&Hit{Body: []byte(body)}, "", &out); err != nil {
		t.Fatal(err)
	}
	if want := `{"context":{"page":{"referrer":"https://shop.example/orders/:id","url":"https://shop.example/p"}},"event":"Pageview"}`; string(out.Body) != want {
		t.Errorf("tiktok referrer\n got %s\nwant %s", out.Body, want)
	}
}

// TestAnonymisePathTemplates: operator templates replace whole segments before the
// built-in scrubbing, matched decoded and without regard to case.
func TestAnonymisePathTemplates(t *testing.T) {
	h := testHasher(testDay)
	ga4, _ := EndpointByName("ga4_collect")
	a, err := NewAnonymiserWith(ga4, AnonymiseOptions{PathTemplates: []string{"/users/{id}", "/u/{user}/orders/{order}", "/*/profile/{name}"}}, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{"/users/42", "/users/:id"},
		{"/users/42/settings", "/users/:id/settings"},
		{"/Users/%34%32", "/Users/:id"},
		{"/users/", "/users/"},
		{"/users", "/users"},
		{"/u/jane/orders/7", "/u/:user/orders/:order"},
		{"/u/jane/invoices/7", "/u/jane/invoices/7"},
		{"/de/profile/jane-doe", "/de/profile/:name"},
		{"/users;jsessionid=1/42", "/users/:id"},
		{"/other/12345", "/other/:id"},
	} {
		var out Out
		if err := a.Anonymise(&Hit{Query: []byte("dl=" + url.QueryEscape("https://shop.example"+c.path))}, "", &out); err != nil {
			t.Fatal(err)
		}
		vals, _ := url.ParseQuery(string(out.Query))
		if got := vals.Get("dl"); got != "https://shop.example"+c.want {
			t.Errorf("%s: got %q, want %q", c.path, got, "https://shop.example"+c.want)
		}
	}
	for _, bad := range []string{"users/{id}", "/users/{}", "/users/{ID}", "/users//{id}", "/users/x", "/a b/{id}", "/users/{id", "/%41/{id}"} {
		if _, err := NewAnonymiserWith(ga4, AnonymiseOptions{PathTemplates: []string{bad}}, h); err == nil {
			t.Errorf("template %q: want error", bad)
		}
	}
}

// nest builds the JSON value that holds v at the dotted path (with "[]" for arrays).
func nest(path string, v any) any {
	segs := strings.Split(path, ".")
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		for strings.HasSuffix(s, "[]") {
			s = s[:len(s)-2]
			v = []any{v}
		}
		v = map[string]any{s: v}
	}
	return v
}

// dig returns the value at the dotted path, following the first array element.
func dig(v any, path string) (any, bool) {
	for _, s := range strings.Split(path, ".") {
		arrays := strings.Count(s, "[]")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[strings.TrimSuffix(s, strings.Repeat("[]", arrays))]; !ok {
			return nil, false
		}
		for ; arrays > 0; arrays-- {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return nil, false
			}
			v = arr[0]
		}
	}
	return v, true
}

func TestAnonymiserConfig(t *testing.T) {
	h := testHasher(testDay)
	ga4, _ := EndpointByName("ga4_collect")
	meta, _ := EndpointByName("meta_tr")
	mp, _ := EndpointByName("ga4_mp")
	plausible, _ := EndpointByName("plausible_event")
	for _, c := range []struct {
		ep        *Endpoint
		extra     []string
		urlParams []string
	}{
		{ga4, []string{"cid"}, nil},
		{ga4, []string{"up.customer_tier"}, nil},
		{ga4, []string{"_uip"}, nil},
		{meta, []string{"ud[em]"}, nil},
		{mp, []string{"user_data.sha256_email_address"}, nil},
		{mp, []string{"events[].params.user_id"}, nil},
		{ga4, []string{""}, nil},
		{ga4, nil, []string{"gclid"}},
		{ga4, nil, []string{"FBCLID"}},
		{ga4, nil, []string{""}},
	} {
		if _, err := NewAnonymiser(c.ep, c.extra, c.urlParams, h); err == nil {
			t.Errorf("%s allow %q url_params %q: want error", c.ep.Name, c.extra, c.urlParams)
		} else if !strings.HasPrefix(err.Error(), "rules: anonymiser "+c.ep.Name+": ") {
			t.Errorf("error lacks context: %v", err)
		}
	}
	if _, err := NewAnonymiser(ga4, nil, nil, nil); err == nil {
		t.Error("nil hasher: want error")
	}
	for _, bad := range []Param{{"x", "DENIED"}, {"x", `{}`}, {"x", `[1]`}, {"a..b", `1`}, {"a[].b", `1`}} {
		ep := &Endpoint{Name: "setjson", Body: BodyJSON, SetJSON: []Param{bad}}
		if _, err := NewAnonymiser(ep, nil, nil, h); err == nil {
			t.Errorf("SetJSON %+v: want error", bad)
		}
	}

	a, err := NewAnonymiser(ga4, []string{"ep.campaign_group", "uap", "dl"}, []string{"ref", "mtm_campaign"}, h)
	if err != nil {
		t.Fatal(err)
	}
	var out Out
	q := "ep.campaign_group=spring&uap=Windows&ep.other=x&dl=" + url.QueryEscape("https://a.example/?ref=hn&mtm_campaign=c&gclid=g")
	if err := a.Anonymise(&Hit{Query: []byte(q)}, "", &out); err != nil {
		t.Fatal(err)
	}
	if want := "ep.campaign_group=spring&uap=Windows&dl=" + url.QueryEscape("https://a.example/?ref=hn&mtm_campaign=c") + "&gcs=G100&npa=1"; string(out.Query) != want {
		t.Errorf("extended allow-list\n got %s\nwant %s", out.Query, want)
	}

	pa, err := NewAnonymiser(plausible, []string{"props.plan", "u"}, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := pa.Anonymise(&Hit{Body: []byte(`{"n":"x","u":"https://a.example/?fbclid=f","props":{"plan":"pro","email":"j@example.com"}}`)}, "", &out); err != nil {
		t.Fatal(err)
	}
	if want := `{"n":"x","props":{"plan":"pro"},"u":"https://a.example/"}`; string(out.Body) != want {
		t.Errorf("JSON extension\n got %s\nwant %s", out.Body, want)
	}
}

// TestAnonymiseAllowPrefix exercises prefix rules on a synthetic endpoint: no built-in endpoint
// uses one today, because each vendor's free-form namespace can carry identifiers.
func TestAnonymiseAllowPrefix(t *testing.T) {
	h := testHasher(testDay)
	ep := &Endpoint{
		Name: "synthetic", Vendor: "x", Identifiers: []string{"cd[em]", "uid", "xid"},
		Allow:       map[string]Value{"xid": ID},
		AllowPrefix: map[string]Value{"cd[v": Int(5), "cd[value]": PageURL, "h_": Text(10)},
	}
	if _, err := NewAnonymiser(ep, nil, nil, h); err != nil {
		t.Fatal(err)
	}
	ep.AllowPrefix["cd["] = Text(10)
	if _, err := NewAnonymiser(ep, nil, nil, h); err == nil {
		t.Fatal(`prefix "cd[" keeps identifier cd[em]: want error`)
	}
	delete(ep.AllowPrefix, "cd[")
	ep.AllowPrefix["id_"] = ID
	if _, err := NewAnonymiser(ep, nil, nil, h); err == nil {
		t.Fatal(`prefix "id_" hashes by prefix: want error`)
	}
	delete(ep.AllowPrefix, "id_")
	a, _ := NewAnonymiser(ep, nil, nil, h)
	var out Out
	in := "cd%5Bvx%5D=1&cd[value]y=https%3A%2F%2Fa.example%2F%3Fgclid%3D1&xid=2&h_a=3%20x%2012345&cd[em]=4&uid=5&cd[vz]=x"
	if err := a.Anonymise(&Hit{Query: []byte(in)}, "", &out); err != nil {
		t.Fatal(err)
	}
	want := "cd%5Bvx%5D=1&cd[value]y=https%3A%2F%2Fa.example%2F&xid=" + hv("x", "", "2") + "&h_a=3%20x%20%3Aid"
	if string(out.Query) != want {
		t.Errorf("\n got %s\nwant %s", out.Query, want)
	}
}

func TestAnonymiseCheckAllowList(t *testing.T) {
	for _, ep := range []*Endpoint{
		{Name: "a", Identifiers: []string{"cid"}, Allow: map[string]Value{"cid": Token(csAlnum, 10)}},
		{Name: "b", Identifiers: []string{"ud[*]"}, Allow: map[string]Value{"ud[em]": PageURL}},
		{Name: "c", Identifiers: []string{"user"}, AllowJSON: map[string]Value{"user.email": Text(10)}},
		{Name: "d", Identifiers: []string{"up.*"}, AllowPrefix: map[string]Value{"u": Enum("1")}},
		{Name: "e", Allow: map[string]Value{"x": {}}},
		{Name: "f", Allow: map[string]Value{"x": {Kind: 99}}},
		{Name: "g", Allow: map[string]Value{"x": ID}},
		{Name: "h", Allow: map[string]Value{"x": Int(0)}},
		{Name: "i", Allow: map[string]Value{"x": {Kind: KindToken, Max: 5}}},
		{Name: "j", Allow: map[string]Value{"x": Text(0)}},
		{Name: "k", Allow: map[string]Value{"x": {Kind: KindURL, Role: 7}}},
		{Name: "l", Identifiers: []string{"x"}, Allow: map[string]Value{"x": {Kind: KindID, Max: 40}}},
		{Name: "m", Identifiers: []string{"x"}, AllowPrefix: map[string]Value{"x": ID}},
	} {
		if err := CheckAllowList(ep); err == nil {
			t.Errorf("%s: want error", ep.Name)
		}
	}
	ok := &Endpoint{Identifiers: []string{"user", "ud[*]"}, AllowJSON: map[string]Value{"user.id": ID, "username": Text(20)}, Allow: map[string]Value{"udx": Enum("1")}}
	if err := CheckAllowList(ok); err != nil {
		t.Error(err)
	}
}

func TestAnonymiseDropsBodyForBodyNone(t *testing.T) {
	a := testAnonymiser(t, "google_ads_ccm", nil, nil)
	out := Out{Body: []byte("old")}
	if err := a.Anonymise(&Hit{Query: []byte("en=x"), Body: []byte("auid=1"), ContentType: []byte("multipart/form-data")}, "", &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Body) != 0 {
		t.Errorf("body %q", out.Body)
	}
}

func TestHasher(t *testing.T) {
	var now atomic.Pointer[time.Time]
	set := func(s string) {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		now.Store(&tm)
	}
	set("2024-04-05T00:00:01Z")
	clock := func() time.Time { return *now.Load() }
	h := NewHasher(clock).WithSecret([]byte(testSecret))
	if !h.SetSalt(clock(), testSalt, true) {
		t.Fatal("SetSalt refused today's salt")
	}
	hash := func(h *Hasher, vendor, property, v string) string {
		k := h.Key(h.Scope(vendor), []byte(property), nil)
		return string(k.AppendHash(nil, []byte(v)))
	}
	const cid = "1186384312.1712340000"
	first := hash(h, "ga4", "G-1", cid)
	if first != hv("ga4", "G-1", cid) {
		t.Fatalf("hash %s does not follow the documented derivation", first)
	}
	if len(first) != HashLen || strings.ToLower(first) != first {
		t.Errorf("hash %q: want %d lowercase hex chars", first, HashLen)
	}
	for _, c := range []struct{ what, vendor, property string }{
		{"another property", "ga4", "G-2"},
		{"no property", "ga4", ""},
		{"another vendor, same property ID", "bing", "G-1"},
		{"a property that shifts into the vendor name", "ga", "4G-1"},
	} {
		if hash(h, c.vendor, c.property, cid) == first {
			t.Errorf("%s: same pseudonym", c.what)
		}
	}
	set("2024-04-05T23:59:59Z")
	if got := hash(h, "ga4", "G-1", cid); got != first {
		t.Errorf("same day, different hash: %s vs %s", got, first)
	}
	set("2024-04-06T01:59:59+02:00") // still the 5th in UTC
	if got := hash(h, "ga4", "G-1", cid); got != first {
		t.Errorf("day must be the UTC date: %s vs %s", got, first)
	}
	set("2024-04-06T00:00:00Z")
	if got := hash(h, "ga4", "G-1", cid); got == first {
		t.Error("hash survived the day change")
	}
	// The 5th is over: its salt cannot be installed again, and going back gets a new one.
	if h.SetSalt(time.Date(2024, 4, 5, 12, 0, 0, 0, time.UTC), testSalt, true) {
		t.Error("SetSalt installed a past day's salt")
	}
	set("2024-04-05T12:00:00Z")
	if got := hash(h, "ga4", "G-1", cid); got == first {
		t.Error("the clock set back recovered the past day's pseudonym")
	}
	if hash(h, "ga4", "G-1", "a") == hash(h, "ga4", "G-1", "b") {
		t.Error("different values, same hash")
	}
	k := h.Key(h.Scope("ga4"), nil, nil)
	if got := k.AppendHash([]byte("cid="), nil); string(got) != "cid=" {
		t.Errorf("empty value: %q", got)
	}
	var zero HashKey
	if got := zero.AppendHash([]byte("cid="), []byte("1.2")); string(got) != "cid=" {
		t.Errorf("the zero HashKey hashed: %q", got)
	}
	if long := h.Key(nil, make([]byte, MaxPropertyLen+1), nil); long.AppendHash(nil, []byte("x")) != nil {
		t.Error("an over-long property gave a working key")
	}
	// value may live in dst's spare capacity
	buf := make([]byte, 0, 64)
	buf = append(buf, "xyz"...)
	if got := k.AppendHash(buf[:0], buf[:3]); string(got) != string(k.AppendHash(nil, []byte("xyz"))) {
		t.Errorf("aliased value: %s", got)
	}
}

// TestHasherSecretAndSalts: the secret keys the pseudonyms, a Hasher made WithSecret
// shares its parent's salts, and a salt is random, not derived: two processes with the
// same secret and clock hash differently unless they share the salt (SetSalt).
func TestHasherSecretAndSalts(t *testing.T) {
	hash := func(h *Hasher) string {
		k := h.Key(h.Scope("ga4"), []byte("G-1"), nil)
		return string(k.AppendHash(nil, []byte("1.2")))
	}
	base := NewHasher(testDay)
	a, b := base.WithSecret([]byte(testSecret)), base.WithSecret([]byte("another-secret"))
	if hash(a) == hash(b) {
		t.Error("the secret does not key the pseudonyms")
	}
	if again := base.WithSecret([]byte(testSecret)); hash(again) != hash(a) {
		t.Error("a reload with the same secret changed today's pseudonyms")
	}
	other := NewHasher(testDay).WithSecret([]byte(testSecret))
	if hash(other) == hash(a) {
		t.Error("two processes with one secret and one clock hash alike: the salt is derived, not random")
	}
	salt, shared, ok := a.Salt(testDay())
	if !ok || shared {
		t.Fatalf("Salt: ok %v shared %v, want the local salt made by the first hash", ok, shared)
	}
	if !other.SetSalt(testDay(), salt[:], true) || hash(other) != hash(a) {
		t.Error("sharing the salt did not give the same pseudonyms")
	}
	if other.SetSalt(testDay(), salt[:5], true) {
		t.Error("SetSalt took a short salt")
	}
}

// TestHasherNextDay: a salt installed ahead is used from its day on, and a sharer's
// hasher counts the days it had to make a salt itself.
func TestHasherNextDay(t *testing.T) {
	var day atomic.Int64
	clock := func() time.Time { return time.Date(2024, 4, 5+int(day.Load()), 23, 59, 0, 0, time.UTC) }
	h := NewHasher(clock).WithSecret([]byte(testSecret))
	var local atomic.Int32
	h.Share(func() { local.Add(1) })
	hash := func() string {
		k := h.Key(h.Scope("ga4"), []byte("G-1"), nil)
		return string(k.AppendHash(nil, []byte("1.2")))
	}
	hash()
	if local.Load() != 1 {
		t.Errorf("%d local salts counted, want 1: nothing was installed for the 5th", local.Load())
	}
	if !h.SetSalt(clock().Add(time.Hour), testSalt, true) {
		t.Fatal("SetSalt refused tomorrow's salt")
	}
	if _, _, ok := h.Salt(clock().Add(time.Hour)); !ok {
		t.Error("Salt does not report the salt installed ahead")
	}
	day.Store(1)
	if got, want := hash(), hv("ga4", "G-1", "1.2"); got != want {
		t.Errorf("the 6th: %s, want the salt installed ahead (%s)", got, want)
	}
	if local.Load() != 1 {
		t.Errorf("%d local salts counted, want still 1", local.Load())
	}
	if salt, shared, ok := h.Salt(clock()); !ok || !shared || string(salt[:]) != string(testSalt) {
		t.Errorf("Salt of the 6th: %x shared %v ok %v", salt, shared, ok)
	}
}

func TestHasherConcurrentDayChange(t *testing.T) {
	var day atomic.Int64
	clock := func() time.Time { return time.Date(2024, 4, 5+int(day.Load()), 12, 0, 0, 0, time.UTC) }
	h := testHasher(clock)
	tomorrow := []byte("fedcba9876543210fedcba9876543210")
	if !h.SetSalt(clock().AddDate(0, 0, 1), tomorrow, false) {
		t.Fatal("SetSalt refused tomorrow's salt")
	}
	want := map[int64]string{
		0: hv("ga4", "G-1", "v"),
		1: wantHash(tomorrow, testSecret, "ga4", "G-1", "v"),
	}
	scope := h.Scope("ga4")
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; i < 2000; i++ {
				d := day.Load()
				k := h.Key(scope, []byte("G-1"), nil)
				buf = k.AppendHash(buf[:0], []byte("v"))
				if d == day.Load() && string(buf) != want[d] {
					bad.Add(1)
				}
				if i == 1000 {
					day.Store(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d wrong hashes across the day change", bad.Load())
	}
}

func TestAnonymiseRewriteForward(t *testing.T) {
	for _, c := range []struct {
		name, ep, query, body, ip string
		changed                   bool
		wantQ, wantB              string
		wantErr                   bool
	}{
		{name: "ga4 adds the client ip", ep: "ga4_collect", query: "v=2&cid=1.2&en=x", ip: "198.51.100.7",
			changed: true, wantQ: "v=2&cid=1.2&en=x&_uip=198.51.100.7"},
		{name: "ga4 replaces a browser _uip, query and lines", ep: "ga4_collect", query: "v=2&_uip=6.6.6.6&%5Fuip=6.6.6.7&cid=1", body: "en=a&_uip=1.1.1.1\n\nen=b\r", ip: "2001:db8::1",
			changed: true, wantQ: "v=2&cid=1&_uip=2001%3Adb8%3A%3A1", wantB: "en=a\n\nen=b\r"},
		{name: "ga4 no ip, browser _uip removed", ep: "ga4_collect", query: "_uip=6.6.6.6&en=x", ip: "",
			changed: true, wantQ: "en=x"},
		{name: "ga4 no ip, nothing to do", ep: "ga4_collect", query: "en=x&uid=u", body: "en=y", ip: ""},
		{name: "meta: header only", ep: "meta_tr", query: "id=1&fbp=x", ip: "198.51.100.7"},
		{name: "matomo: header only", ep: "matomo_track", query: "cip=6.6.6.6", ip: "198.51.100.7"},
		{name: "mp sets ip_override first", ep: "ga4_mp", query: "measurement_id=G", body: ` { "client_id" : "c", "ip_override":"6.6.6.6", "events":[{"params":{"ip_override":"n"}}] , "ip\u005foverride":1}`, ip: "198.51.100.7",
			changed: true, wantQ: "measurement_id=G", wantB: `{"ip_override":"198.51.100.7","client_id" : "c","events":[{"params":{"ip_override":"n"}}]}`},
		{name: "mp only field", ep: "ga4_mp", body: `{"ip_override":"6.6.6.6"}`, ip: "", changed: true, wantB: `{}`},
		{name: "mp protobuf spellings", ep: "ga4_mp", body: `{"ipOverride":"6.6.6.6","IP_OVERRIDE":"6.6.6.7","ip_overrides":"x"}`, ip: "198.51.100.7",
			changed: true, wantB: `{"ip_override":"198.51.100.7","ip_overrides":"x"}`},
		{name: "mp empty object", ep: "ga4_mp", body: `{}`, ip: "198.51.100.7", changed: true, wantB: `{"ip_override":"198.51.100.7"}`},
		{name: "mp no ip, nothing to do", ep: "ga4_mp", body: `{"client_id":"c"}`, ip: ""},
		{name: "mp empty body", ep: "ga4_mp", body: "", ip: "198.51.100.7"},
		{name: "mp bad JSON", ep: "ga4_mp", body: `{"client_id":`, ip: "198.51.100.7", wantErr: true},
		{name: "mp not an object", ep: "ga4_mp", body: `["ip_override"]`, ip: "198.51.100.7", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := testAnonymiser(t, c.ep, nil, nil)
			var out Out
			changed, err := a.RewriteForward(&Hit{Query: []byte(c.query), Body: []byte(c.body)}, c.ip, &out)
			if c.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != c.changed {
				t.Fatalf("changed = %v", changed)
			}
			if !changed {
				return
			}
			if string(out.Query) != c.wantQ || string(out.Body) != c.wantB {
				t.Errorf("\n got %q %q\nwant %q %q", out.Query, out.Body, c.wantQ, c.wantB)
			}
		})
	}
}

const (
	benchGA4Query  = "v=2&tid=G-ABC123XYZ9&gtm=45je4a20v9123456789za200&_p=1712345678901&gcs=G111&gcd=13l3l3l3l1l1&npa=0&dma=0&cid=1186384312.1712340000&ul=en-us&sr=1920x1080&uaa=x86&uab=64&uafvl=Chromium%3B122.0.6261.112&uamb=0&uam=&uap=Windows&uapv=15.0.0&uaw=0&are=1&frm=0&pscdl=noapi&_s=1&sid=1712349999&sct=3&seg=0&dl=https%3A%2F%2Fshop.example.com%2Fproducts%2Fshoe%3Futm_source%3Dnewsletter%26gclid%3DCj0KCQjw%23reviews&dr=https%3A%2F%2Fwww.google.com%2F&dt=Running%20shoe&en=page_view&_fv=1&_ss=1&tfd=1234"
	benchMetaQuery = "id=1234567890123456&ev=PageView&dl=https%3A%2F%2Fshop.example.com%2F%3Ffbclid%3DIwAR2xYz&rl=&if=false&ts=1712345678901&sw=1920&sh=1080&v=2.9.156&r=stable&ec=0&o=4126&fbp=fb.1.1712340000000.1122334455&fbc=fb.1.1712345600000.IwAR2xYz&ud%5Bem%5D=a8cfcd74832004951b4408cdb0a5dbcd8c7e52d43f7fe244bf720582e05241da&it=1712345670000&coo=false&rqm=GET"
	benchGA4Lines  = "en=scroll&ep.percent_scrolled=90&_et=5123\nen=purchase&ep.transaction_id=T-99812&epn.value=59.90&cu=EUR&_et=301\nen=user_engagement&_et=10023"
)

func TestAnonymiseAllocs(t *testing.T) {
	for _, c := range []struct {
		ep, query, body string
		max             float64
	}{
		{"ga4_collect", benchGA4Query, "", 0},
		{"meta_tr", benchMetaQuery, "", 0},
		{"ga4_collect", benchGA4Query, benchGA4Lines, 0},
		{"matomo_track", "idsite=3&rec=1", "_id=0123456789abcdef&url=https%3A%2F%2Fa.example%2F&idsite=3", 0},
	} {
		a := testAnonymiser(t, c.ep, nil, nil)
		hit := &Hit{Query: []byte(c.query), Body: []byte(c.body), ContentType: []byte("text/plain")}
		var out Out
		got := testing.AllocsPerRun(200, func() {
			if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
				t.Fatal(err)
			}
		})
		if got > c.max {
			t.Errorf("%s (body %v): %.1f allocs per hit, want <= %.0f", c.ep, c.body != "", got, c.max)
		}
		got = testing.AllocsPerRun(200, func() {
			if _, err := a.RewriteForward(hit, "198.51.100.7", &out); err != nil {
				t.Fatal(err)
			}
		})
		if got > 0 {
			t.Errorf("%s forward: %.1f allocs per hit, want 0", c.ep, got)
		}
	}
}

func benchAnonymise(b *testing.B, ep, query, body string) {
	a := testAnonymiser(b, ep, nil, nil)
	hit := &Hit{Query: []byte(query), Body: []byte(body), ContentType: []byte("text/plain")}
	var out Out
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnonymiseGA4Get(b *testing.B)  { benchAnonymise(b, "ga4_collect", benchGA4Query, "") }
func BenchmarkAnonymiseMetaGet(b *testing.B) { benchAnonymise(b, "meta_tr", benchMetaQuery, "") }
func BenchmarkAnonymiseGA4Lines(b *testing.B) {
	benchAnonymise(b, "ga4_collect", benchGA4Query, benchGA4Lines)
}

func BenchmarkAnonymiseGA4MP(b *testing.B) {
	hits := loadCorpus(b)
	for _, h := range hits {
		if h.Name == "ga4_mp_purchase" {
			benchAnonymise(b, "ga4_mp", h.Query, h.Body)
			return
		}
	}
	b.Fatal("no ga4_mp_purchase in corpus")
}

// BenchmarkAnonymiseGA4Scrub is a GET hit that gives every scrubber work: a title with
// an address and a phone number, a path token, a smuggled click ID, a webmail referrer.
func BenchmarkAnonymiseGA4Scrub(b *testing.B) {
	for _, h := range loadCorpus(b) {
		if h.Name == "ga4_scrub_path_title_utm" {
			benchAnonymise(b, "ga4_collect", h.Query, "")
			return
		}
	}
	b.Fatal("no ga4_scrub_path_title_utm in corpus")
}

// BenchmarkScrubText is the free-text scrubber alone on a typical title.
func BenchmarkScrubText(b *testing.B) {
	title := []byte("Running shoe, size 42 – Order confirmation for jane.doe@example.com | Shop")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(title)))
	for b.Loop() {
		buf, _ = scrubText(buf[:0], title, escNone)
	}
}

func BenchmarkRewriteForwardGA4(b *testing.B) {
	a := testAnonymiser(b, "ga4_collect", nil, nil)
	hit := &Hit{Query: []byte(benchGA4Query)}
	var out Out
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.RewriteForward(hit, "198.51.100.7", &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHasher is what a hit with one hashed ID pays: the hit's key (today's salt,
// vendor, property) and one pseudonym.
func BenchmarkHasher(b *testing.B) {
	h := NewHasher(nil).WithSecret([]byte(testSecret))
	scope, property := h.Scope("ga4"), []byte("G-ABC123XYZ9")
	v := []byte("1186384312.1712340000")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		k := h.Key(scope, property, nil)
		buf = k.AppendHash(buf[:0], v)
	}
}

// BenchmarkHasherAppend is each further hashed ID of the same hit.
func BenchmarkHasherAppend(b *testing.B) {
	h := NewHasher(nil).WithSecret([]byte(testSecret))
	k := h.Key(h.Scope("ga4"), []byte("G-ABC123XYZ9"), nil)
	v := []byte("1186384312.1712340000")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = k.AppendHash(buf[:0], v)
	}
}

// FuzzAnonymise checks on arbitrary hits that the anonymiser never panics and that,
// when it succeeds, the output parses back and holds only names and JSON paths it was
// allowed to emit.
func FuzzAnonymise(f *testing.F) {
	hits, err := corpus.Load(corpusDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, h := range hits {
		for i := range builtin {
			if builtin[i].Name == h.Endpoint {
				f.Add(uint8(i), h.Query, h.Body, h.ContentType)
			}
		}
	}
	f.Add(uint8(0), "a=%zz&%=&&=&;=", "\n\r\n=", "")
	f.Add(uint8(1), "", `{"events":[[[]]],"client_id":{"x":1}}`, "")
	hasher := testHasher(testDay)
	anons := make([]*Anonymiser, len(builtin))
	for i := range builtin {
		a, err := NewAnonymiser(&builtin[i], nil, nil, hasher)
		if err != nil {
			f.Fatal(err)
		}
		anons[i] = a
	}
	f.Fuzz(func(t *testing.T, epi uint8, query, body, ct string) {
		i := int(epi) % len(builtin)
		ep, a := &builtin[i], anons[i]
		hit := &Hit{Query: []byte(query), Body: []byte(body), ContentType: []byte(ct)}
		var out Out
		if changed, err := a.RewriteForward(hit, "198.51.100.7", &out); err == nil && changed && ep.Body == BodyJSON && len(out.Body) > 0 && !json.Valid(out.Body) {
			t.Errorf("forward: invalid JSON %q", out.Body)
		}
		if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
			return
		}
		checkPairs(t, a, ep, string(out.Query), true)
		switch ep.Body {
		case BodyNone:
			if len(out.Body) > 0 {
				t.Errorf("BodyNone kept a body: %q", out.Body)
			}
		case BodyForm:
			checkPairs(t, a, ep, string(out.Body), false)
		case BodyLines:
			for _, line := range strings.Split(string(out.Body), "\n") {
				checkPairs(t, a, ep, line, false)
			}
		case BodyJSON:
			if len(out.Body) == 0 {
				return
			}
			var doc any
			if err := json.Unmarshal(out.Body, &doc); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out.Body)
			}
			checkJSON(t, a, ep, doc, "")
		}
	})
}

func checkPairs(t *testing.T, a *Anonymiser, ep *Endpoint, q string, query bool) {
	t.Helper()
	if q == "" {
		return
	}
	if _, err := url.ParseQuery(q); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, q)
	}
	for _, pair := range strings.Split(q, "&") {
		raw, _, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(raw)
		if err != nil {
			t.Fatalf("name %q: %v", raw, err)
		}
		if a.value([]byte(name)) != nil {
			continue
		}
		if query && (name == ep.IP.Param || setNamed(ep.Set, name)) {
			continue
		}
		t.Errorf("%s: name %q is not allowed:\n%s", ep.Name, name, q)
	}
}

func setNamed(ps []Param, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// checkJSON walks the output and checks every scalar sits at an allowed, set or IP path.
func checkJSON(t *testing.T, a *Anonymiser, ep *Endpoint, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			checkJSON(t, a, ep, c, p)
		}
	case []any:
		for _, c := range x {
			checkJSON(t, a, ep, c, path+"[]")
		}
	default:
		if _, ok := ep.AllowJSON[path]; ok || path == ep.IP.JSONField || setNamed(ep.SetJSON, path) {
			return
		}
		t.Errorf("%s: JSON path %q is not allowed", ep.Name, path)
	}
}

// TestOutRemovedIsPerHit: Removed describes the last rewrite only, so an Out reused
// across hits (the proxy pools them) never reports an earlier hit's removals.
func TestOutRemovedIsPerHit(t *testing.T) {
	a := testAnonymiser(t, "ga4_collect", nil, nil)
	var out Out
	if err := a.Anonymise(&Hit{Query: []byte("cu=euro&sr=x&en=a")}, "", &out); err != nil {
		t.Fatal(err)
	}
	if out.Removed[KindCurrency] != 1 || out.Removed[KindScreen] != 1 {
		t.Fatalf("removed %v", out.Removed)
	}
	if err := a.Anonymise(&Hit{Query: []byte("en=b")}, "", &out); err != nil {
		t.Fatal(err)
	}
	if out.Removed != [NumKinds]uint32{} {
		t.Errorf("second hit: removed %v", out.Removed)
	}
	if err := a.Anonymise(&Hit{Query: []byte("cu=euro")}, "", &out); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RewriteForward(&Hit{Query: []byte("cu=euro")}, "198.51.100.7", &out); err != nil {
		t.Fatal(err)
	}
	if out.Removed != [NumKinds]uint32{} {
		t.Errorf("forward: removed %v", out.Removed)
	}
	if err := a.Anonymise(&Hit{Query: []byte("cu=euro"), Body: []byte("x"), ContentType: []byte("multipart/form-data")}, "", &out); err == nil || out.Removed != [NumKinds]uint32{} {
		t.Errorf("failed rewrite: %v, removed %v", err, out.Removed)
	}
}

// TestAnonymiseCorpusAllocs: every query, form and lines hit of the leak corpus, the
// scrubbed ones included, is anonymised without allocating.
func TestAnonymiseCorpusAllocs(t *testing.T) {
	n := 0
	for _, h := range loadCorpus(t) {
		ep, ok := EndpointByName(h.Endpoint)
		if !ok || ep.Body == BodyJSON {
			continue
		}
		n++
		a := testAnonymiser(t, h.Endpoint, nil, nil)
		hit := &Hit{Query: []byte(h.Query), Body: []byte(h.Body), ContentType: []byte(h.ContentType)}
		var out Out
		if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
			t.Fatal(err)
		}
		if got := testing.AllocsPerRun(100, func() {
			if err := a.Anonymise(hit, "203.0.113.0", &out); err != nil {
				t.Fatal(err)
			}
		}); got != 0 {
			t.Errorf("%s: %.1f allocs per hit, want 0", h.Name, got)
		}
	}
	if n == 0 {
		t.Fatal("no query or form hits in the corpus")
	}
}
