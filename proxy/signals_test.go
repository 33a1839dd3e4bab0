package proxy

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TC strings encoded field by field with consent/tcf's test encoder (encode_test.go):
// created/updated 2026-11-01T12:00Z, CMP 10 v2, vendor list 150, policy version 4
// (TCF v2.2), service-specific, publisher DE.
const (
	// tcAcceptAll: purposes 1-11 consented, special feature 1, vendors 755 (Google),
	// 804 (LinkedIn) and 1126 (Microsoft) consented (bit field).
	tcAcceptAll = "CQtB6GAQtB6GAAKACBENCWEoAP_gAAAAAAYgIzAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAAAA"
	// tcRejectAll: no purpose, no vendor.
	tcRejectAll = "CQtB6GAQtB6GAAKACBENCWEgAAAAAAAAAAYgAAAAAAAA"
	// tcStatsOnly: purposes 1 and 8, vendor 755 (range encoding).
	tcStatsOnly = "CQtB6GAQtB6GAAKACBENCWEgAIEAAAAAAAYgF5wAQF5gABAAAA"
	// tcLinkedInOnly: purposes 1-11, vendor 804 only (range encoding).
	tcLinkedInOnly = "CQtB6GAQtB6GAAKACBENCWEgAP_gAAAAAAYgGSQAQGSAABAAAA"
	// tcTruncated: a core segment cut short.
	tcTruncated = "CQtB6GAQtB6G"
)

// GPP strings encoded with consent/gpp's test encoder (encode_test.go) from the IAB GPP
// specification's layouts.
const (
	gppUSNatOptOutGPC = "DBABL~BWSaGGGkYY.Y" // usnat v1: sale opt-out, GPC sub-section = 1
	gppUSNatNoOptOut  = "DBABL~CVVqqlUAkhqA" // usnat v2: no opt-out
	gppUSPv1OptOut    = "DBABT~1YYN"         // uspv1 section: opted out of sale
)

// cookiebotAll is Cookiebot's CookieConsent as its script writes it, every category on.
const cookiebotAll = "{stamp:%27abc%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:true%2Cmarketing:true%2Cmethod:%27explicit%27%2Cver:1%2Cutc:1700000000000%2Cregion:%27se%27}"

const cookiebotNoMarketing = "{stamp:%27abc%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:true%2Cmarketing:false%2Cmethod:%27explicit%27%2Cver:1}"

func oneTrust(groups string) string {
	return "OptanonConsent=isGpcEnabled=0&datestamp=Mon+Nov+20+2023&version=202310.1.0&groups=" + groups + "&AwaitingReconsent=false"
}

// TestSignalsEndToEnd: real hits carrying each kind of signal, from opt_in (SE) and
// opt_out (US-CA) locations, through the real proxy; the decision is read back from
// /metrics and the sink (README "Consent signals").
func TestSignalsEndToEnd(t *testing.T) {
	const (
		ga4       = "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view"
		meta      = "/tr?id=1&ev=PageView"
		ads       = "/pagead/conversion/123/?label=abc"
		linkedin  = "/li/collect?pid=1&fmt=gif"
		mpBody    = `{"client_id":"1.2","ip_override":"` + ipUSCA + `","consent":{"ad_user_data":"DENIED"},"events":[{"name":"x"}]}`
		mpSender  = "server_side:\n  trusted_senders: [\"" + ipUSCA + "\"]\n"
		stateCMP  = "signals:\n  cmp:\n    use_as_state: true\n"
		customOT  = "signals:\n  cmp:\n    onetrust_groups:\n      C0001: necessary\n      C0005: marketing\n"
		deniedSta = `{"statistics":false}`
		granted   = `{"statistics":true,"marketing":true,"preferences":true}`
		grantHits = "signals:\n  tcf:\n    grant_from: hits\n"
	)
	type tc struct {
		name, config         string
		stored               string // purposes posted to /consent first; "" = none
		storedTCF            string // a "tcf" written with the consent API
		method, target, body string
		ip                   string
		headers              []string
		vendor, action       string
		reason, jurisdiction string
	}
	cases := []tc{
		// IAB TCF decides for a GVL vendor where consent is opt-in.
		{name: "tcf param accept ga4 se", config: grantHits, target: ga4 + "&gdpr=1&gdpr_consent=" + tcAcceptAll, ip: ipSE, vendor: "ga4", action: "forward", reason: "tcf_granted", jurisdiction: "eea"},
		{name: "tcf grant on a hit ignored by default", target: ga4 + "&gdpr_consent=" + tcAcceptAll, ip: ipSE, vendor: "ga4", action: "anonymise", reason: "consent_missing", jurisdiction: "eea"},
		{name: "tcf grant in a cookie ignored by default", target: meta, ip: ipSE, headers: []string{"Cookie", "euconsent-v2=" + tcAcceptAll}, vendor: "meta", action: "drop", reason: "consent_missing", jurisdiction: "eea"},
		{name: "tcf refusal on a hit counts by default", stored: granted, target: ga4 + "&gdpr_consent=" + tcRejectAll, ip: ipSE, vendor: "ga4", action: "drop", reason: "tcf_denied", jurisdiction: "eea"},
		{name: "tcf cookie reject ga4 se", target: ga4, ip: ipSE, headers: []string{"Cookie", "euconsent-v2=" + tcRejectAll}, vendor: "ga4", action: "drop", reason: "tcf_denied", jurisdiction: "eea"},
		{name: "tcf stats only ga4 se", config: grantHits, target: ga4 + "&gdpr_consent=" + tcStatsOnly, ip: ipSE, vendor: "ga4", action: "forward", reason: "tcf_granted", jurisdiction: "eea"},
		{name: "tcf stats only google ads se", target: ads + "&gdpr_consent=" + tcStatsOnly, ip: ipSE, vendor: "google_ads", action: "drop", reason: "tcf_denied", jurisdiction: "eea"},
		{name: "tcf linkedin vendor se", config: grantHits, target: linkedin + "&gdpr_consent=" + tcLinkedInOnly, ip: ipSE, vendor: "linkedin", action: "forward", reason: "tcf_granted", jurisdiction: "eea"},
		{name: "tcf other vendor only ga4 se", target: ga4 + "&gdpr_consent=" + tcLinkedInOnly, ip: ipSE, vendor: "ga4", action: "drop", reason: "tcf_denied", jurisdiction: "eea"},
		{name: "tcf invalid ga4 se", target: ga4 + "&gdpr_consent=" + tcTruncated, ip: ipSE, vendor: "ga4", action: "anonymise", reason: "tcf_invalid", jurisdiction: "eea"},
		{name: "tcf bad base64 meta-gvl se", config: "signals:\n  tcf:\n    vendors:\n      meta: 89\n", target: meta + "&gdpr_consent=%%%", ip: ipSE, vendor: "meta", action: "drop", reason: "tcf_invalid", jurisdiction: "eea"},
		{name: "tcf ignored in opt_out", target: ga4 + "&gdpr_consent=" + tcRejectAll, ip: ipUSCA, vendor: "ga4", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},
		{name: "tcf says nothing of a non-gvl vendor", target: meta + "&gdpr_consent=" + tcAcceptAll, ip: ipSE, vendor: "meta", action: "drop", reason: "consent_missing", jurisdiction: "eea"},
		{name: "tcf cannot overrule a stored denial", stored: deniedSta, target: ga4 + "&gdpr_consent=" + tcAcceptAll, ip: ipSE, vendor: "ga4", action: "drop", reason: "consent_denied", jurisdiction: "eea"},
		{name: "tcf reject beats stored grant", stored: granted, target: ga4 + "&gdpr_consent=" + tcRejectAll, ip: ipSE, vendor: "ga4", action: "drop", reason: "tcf_denied", jurisdiction: "eea"},
		{name: "tcf written via consent api", storedTCF: tcAcceptAll, target: ga4, ip: ipSE, vendor: "ga4", action: "forward", reason: "tcf_granted", jurisdiction: "eea"},
		{name: "tcf in gpp tcfeuv2 section", config: grantHits, target: ga4 + "&gpp=DBABMA~" + tcAcceptAll + "&gpp_sid=2", ip: ipSE, vendor: "ga4", action: "forward", reason: "tcf_granted", jurisdiction: "eea"},
		{name: "tcf in gpp section not applicable", target: ga4 + "&gpp=DBABMA~" + tcAcceptAll + "&gpp_sid=7", ip: ipSE, vendor: "ga4", action: "anonymise", reason: "consent_missing", jurisdiction: "eea"},
		{name: "tcf in gpp with unreadable sid applies", config: grantHits, target: ga4 + "&gpp=DBABMA~" + tcAcceptAll + "&gpp_sid=x", ip: ipSE, vendor: "ga4", action: "forward", reason: "tcf_granted", jurisdiction: "eea"},
		{name: "tcf one of two strings rejects", target: ga4 + "&gdpr_consent=" + tcAcceptAll, ip: ipSE, headers: []string{"Cookie", "euconsent-v2=" + tcRejectAll}, vendor: "ga4", action: "drop", reason: "tcf_denied", jurisdiction: "eea"},

		// IAB GPP: US opt-outs refuse marketing wherever the visitor is.
		{name: "gpp usnat opt-out meta usca", target: meta + "&gpp=" + gppUSNatOptOutGPC + "&gpp_sid=7", ip: ipUSCA, vendor: "meta", action: "drop", reason: "gpp_opt_out", jurisdiction: "us-ca"},
		{name: "gpp usnat no opt-out meta usca", target: meta + "&gpp=" + gppUSNatNoOptOut + "&gpp_sid=7", ip: ipUSCA, vendor: "meta", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},
		{name: "gpp cookie uspv1 opt-out meta usca", target: meta, ip: ipUSCA, headers: []string{"Cookie", "__gpp=" + gppUSPv1OptOut + "; __gpp_sid=6"}, vendor: "meta", action: "drop", reason: "gpp_opt_out", jurisdiction: "us-ca"},
		{name: "gpp section not applicable", target: meta + "&gpp=" + gppUSNatOptOutGPC + "&gpp_sid=8", ip: ipUSCA, vendor: "meta", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},
		{name: "gpp malformed meta usca", target: meta + "&gpp=DBABL~!!!", ip: ipUSCA, vendor: "meta", action: "drop", reason: "gpp_invalid", jurisdiction: "us-ca"},
		{name: "gpp opt-out beats stored grant se", stored: granted, target: meta + "&gpp=" + gppUSNatOptOutGPC, ip: ipSE, vendor: "meta", action: "drop", reason: "gpp_opt_out", jurisdiction: "eea"},
		{name: "gpp opt-out leaves statistics", target: ga4 + "&gpp=" + gppUSNatOptOutGPC, ip: ipUSCA, vendor: "ga4", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},

		// IAB US Privacy.
		{name: "usp param opt-out meta usca", target: meta + "&us_privacy=1YYN", ip: ipUSCA, vendor: "meta", action: "drop", reason: "usp_opt_out", jurisdiction: "us-ca"},
		{name: "usp cookie no opt-out meta usca", target: meta, ip: ipUSCA, headers: []string{"Cookie", "usprivacy=1YNN"}, vendor: "meta", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},
		{name: "usp cookie opt-out bing usca", target: "/action/0?ti=1&evt=pageLoad", ip: ipUSCA, headers: []string{"Cookie", "usprivacy=1YYN"}, vendor: "bing", action: "drop", reason: "usp_opt_out", jurisdiction: "us-ca"},
		{name: "usp malformed meta usca", target: meta + "&us_privacy=2YYN", ip: ipUSCA, vendor: "meta", action: "drop", reason: "usp_invalid", jurisdiction: "us-ca"},
		{name: "usp opt-out beats stored grant se", stored: granted, target: meta + "&us_privacy=1YYN", ip: ipSE, vendor: "meta", action: "drop", reason: "usp_opt_out", jurisdiction: "eea"},

		// Google Consent Mode v2 only tightens.
		{name: "gcd ad_storage denied google ads usca", target: ads + "&gcd=13q3t3t3t5", ip: ipUSCA, vendor: "google_ads", action: "drop", reason: "consent_mode_denied", jurisdiction: "us-ca"},
		{name: "gcd ad_user_data denied by update", target: ads + "&gcd=13v3v3u3v5", ip: ipUSCA, vendor: "google_ads", action: "drop", reason: "consent_mode_denied", jurisdiction: "us-ca"},
		{name: "gcd analytics denied ga4 usca", target: ga4 + "&gcd=13t3p3t3t5", ip: ipUSCA, vendor: "ga4", action: "anonymise", reason: "consent_mode_denied", jurisdiction: "us-ca"},
		{name: "gcd all granted cannot grant in se", target: ga4 + "&gcd=13v3v3v3v5", ip: ipSE, vendor: "ga4", action: "anonymise", reason: "consent_missing", jurisdiction: "eea"},
		{name: "gcd malformed is no signal", target: ads + "&gcd=zz", ip: ipUSCA, vendor: "google_ads", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},
		{name: "npa google ads usca", target: ads + "&npa=1", ip: ipUSCA, vendor: "google_ads", action: "drop", reason: "consent_mode_denied", jurisdiction: "us-ca"},
		{name: "npa beats stored grant se", stored: granted, target: ads + "&npa=1", ip: ipSE, vendor: "google_ads", action: "drop", reason: "consent_mode_denied", jurisdiction: "eea"},
		{name: "mp consent denies marketing only", config: mpSender, method: "POST", target: "/mp/collect?measurement_id=G-1&api_secret=s", body: mpBody, headers: []string{"Content-Type", "application/json"}, ip: ipUSCA, vendor: "ga4", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},

		// CMP cookies: refusals always count; grants only stand in for a missing state.
		{name: "cookiebot as state se", config: stateCMP, target: meta, ip: ipSE, headers: []string{"Cookie", "CookieConsent=" + cookiebotAll}, vendor: "meta", action: "forward", reason: "cmp_granted", jurisdiction: "eea"},
		{name: "cookiebot grant ignored without use_as_state", target: meta, ip: ipSE, headers: []string{"Cookie", "CookieConsent=" + cookiebotAll}, vendor: "meta", action: "drop", reason: "consent_missing", jurisdiction: "eea"},
		{name: "cookiebot refusal usca", target: meta, ip: ipUSCA, headers: []string{"Cookie", "CookieConsent=" + cookiebotNoMarketing}, vendor: "meta", action: "drop", reason: "cmp_denied", jurisdiction: "us-ca"},
		{name: "cookiebot -1 is no consent in se", config: stateCMP, target: meta, ip: ipSE, headers: []string{"Cookie", "CookieConsent=-1"}, vendor: "meta", action: "drop", reason: "consent_missing", jurisdiction: "eea"},
		{name: "cookiebot state loses to stored state", config: stateCMP, stored: deniedSta, target: ga4, ip: ipSE, headers: []string{"Cookie", "CookieConsent=" + cookiebotAll}, vendor: "ga4", action: "drop", reason: "consent_denied", jurisdiction: "eea"},
		{name: "onetrust statistics refused usca", target: ga4, ip: ipUSCA, headers: []string{"Cookie", oneTrust("C0001%3A1%2CC0002%3A0%2CC0003%3A1%2CC0004%3A1")}, vendor: "ga4", action: "anonymise", reason: "cmp_denied", jurisdiction: "us-ca"},
		{name: "onetrust as state se", config: stateCMP, target: ga4, ip: ipSE, headers: []string{"Cookie", oneTrust("C0001%3A1%2CC0002%3A1%2CC0003%3A0%2CC0004%3A0")}, vendor: "ga4", action: "forward", reason: "cmp_granted", jurisdiction: "eea"},
		{name: "onetrust custom group map", config: customOT, target: meta, ip: ipUSCA, headers: []string{"Cookie", oneTrust("C0001%3A1%2CC0005%3A0")}, vendor: "meta", action: "drop", reason: "cmp_denied", jurisdiction: "us-ca"},
		{name: "onetrust malformed is no signal", target: meta, ip: ipUSCA, headers: []string{"Cookie", "OptanonConsent=groups=C0004%3Ax"}, vendor: "meta", action: "forward", reason: "not_opted_out", jurisdiction: "us-ca"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := startSink(t)
			p := startProxy(t, testConfig(up.URL(), c.config))
			headers := append([]string{"X-Forwarded-For", c.ip}, c.headers...)
			if c.stored != "" || c.storedTCF != "" {
				body := `{"purposes":` + c.stored + `}`
				switch {
				case c.stored == "":
					body = `{"tcf":"` + c.storedTCF + `"}`
				case c.storedTCF != "":
					body = `{"purposes":` + c.stored + `,"tcf":"` + c.storedTCF + `"}`
				}
				r := p.do("POST", "/consent", body, "Content-Type", "application/json")
				if r.Status != 200 {
					t.Fatalf("POST /consent: %d %s", r.Status, r.Body)
				}
				cookie := ""
				for _, sc := range r.Header.Values("Set-Cookie") {
					if v, ok := strings.CutPrefix(sc, "cg_id="); ok {
						cookie, _, _ = strings.Cut(v, ";")
					}
				}
				headers = addCookie(headers, "cg_id="+cookie)
			}
			method := c.method
			if method == "" {
				method = "GET"
			}
			r := p.do(method, c.target, c.body, headers...)
			if r.Status >= 500 {
				t.Fatalf("status %d", r.Status)
			}
			if n := p.hits(t, c.vendor, c.action, c.reason, c.jurisdiction); n != 1 {
				t.Fatalf("hits{%s,%s,%s,%s} = %d, want 1; /metrics:\n%s", c.vendor, c.action, c.reason, c.jurisdiction, n,
					grep(p.metricsText(t), "consentgate_hits_total{"))
			}
			if c.action == "drop" {
				up.none(t)
				return
			}
			got := up.one(t)
			if c.action == "anonymise" {
				if strings.Contains(got.Query, "cid=1.2") {
					t.Errorf("anonymised hit kept the client ID: %s", got.Query)
				}
				// A TC string carries its creation time to the decisecond: next to the
				// other signals it is a quasi-identifier, so none of them survives anonymising.
				q := query(t, got.Query)
				for _, k := range []string{"gdpr_consent", "gdpr", "gpp", "gpp_sid", "us_privacy", "gcd"} {
					if q.Has(k) {
						t.Errorf("anonymised hit kept %s: %s", k, got.Query)
					}
				}
			}
			// Consent strings are the visitor's choices, not for the vendor to keep when
			// the hit is anonymised; cookies never go upstream at all.
			if got.Header.Get("Cookie") != "" {
				t.Errorf("a cookie went upstream: %q", got.Header.Get("Cookie"))
			}
		})
	}
}

// addCookie appends a cookie to the Cookie header in headers (name, value pairs).
func addCookie(headers []string, cookie string) []string {
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Cookie" {
			headers[i+1] += "; " + cookie
			return headers
		}
	}
	return append(headers, "Cookie", cookie)
}

// TestUnreadableSignalsAreCounted: every signal that cannot be read is counted by
// signal in consentgate_signal_errors_total, on live hits only (explain counts nothing).
func TestUnreadableSignalsAreCounted(t *testing.T) {
	up := startSink(t)
	up.discard = true
	p := startProxy(t, testConfig(up.URL(), ""))
	const ga4 = "/g/collect?v=2&tid=G-1&cid=1.2"
	sends := []struct {
		signal, method, target, body string
		headers                      []string
	}{
		{"tcf", "GET", ga4 + "&gdpr_consent=" + tcTruncated, "", nil},
		{"gpp", "GET", "/tr?id=1&gpp=DBABL~!!!", "", nil},
		{"gpp_sid", "GET", "/tr?id=1&gpp=" + gppUSNatNoOptOut + "&gpp_sid=seven", "", nil},
		{"usp", "GET", "/tr?id=1", "", []string{"Cookie", "usprivacy=1XYZ"}},
		{"gcs", "GET", ga4 + "&gcs=G9", "", nil},
		{"gcd", "GET", ga4 + "&gcd=zz", "", nil},
		{"mp_consent", "POST", "/mp/collect?measurement_id=G-1&api_secret=s", `{"client_id":"1.2","consent":"yes"}`, []string{"Content-Type", "application/json"}},
		{"cookiebot", "GET", "/tr?id=1", "", []string{"Cookie", "CookieConsent={necessary:maybe}"}},
		{"onetrust", "GET", "/tr?id=1", "", []string{"Cookie", "OptanonConsent=groups=C0004%3Ax"}},
	}
	auth := []string{"Authorization", "Bearer " + testToken}
	for _, s := range sends {
		r := p.do(s.method, s.target, s.body, append([]string{"X-Forwarded-For", ipSE}, s.headers...)...)
		if r.Status >= 500 {
			t.Fatalf("%s: status %d", s.signal, r.Status)
		}
		hdr, _ := json.Marshal(map[string]string{"X-Forwarded-For": ipSE})
		explain := `{"method":"` + s.method + `","url":"` + s.target + `","headers":` + string(hdr) + `}`
		if len(s.headers) > 0 && s.headers[0] == "Cookie" {
			explain = `{"method":"GET","url":"` + s.target + `","headers":{"X-Forwarded-For":"` + ipSE + `","Cookie":` + strconv.Quote(s.headers[1]) + `}}`
		}
		if r := p.adminDo("POST", "/admin/explain", explain, auth...); r.Status != 200 {
			t.Fatalf("%s: explain %d %s", s.signal, r.Status, r.Body)
		}
	}
	text := p.metricsText(t)
	for _, s := range sends {
		want := `consentgate_signal_errors_total{signal="` + s.signal + `"} 1`
		if !strings.Contains(text, want) {
			t.Errorf("want %s; got:\n%s", want, grep(text, "consentgate_signal_errors_total"))
		}
	}
}
