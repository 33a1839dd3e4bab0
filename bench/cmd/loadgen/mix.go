package main

import (
	"fmt"
	"math/rand/v2"
)

// picker draws an index with probability proportional to its weight. The tables are
// a handful of entries, so a linear scan over cumulative weights beats anything
// cleverer and allocates nothing.
type picker struct {
	cum   []uint64
	total uint64
}

func newPicker(weights []uint64) (picker, error) {
	p := picker{cum: make([]uint64, len(weights))}
	for i, w := range weights {
		p.total += w
		p.cum[i] = p.total
	}
	if p.total == 0 {
		return picker{}, fmt.Errorf("picker: weights %v add up to zero", weights)
	}
	return p, nil
}

func (p *picker) pick(r *rand.Rand) int {
	n := r.Uint64N(p.total)
	for i, c := range p.cum {
		if n < c {
			return i
		}
	}
	return len(p.cum) - 1 // unreachable: n < total == cum[last]
}

// hitTemplate is one kind of tracking hit as a tag would send it. Everything is
// prepared as bytes once, so the workers only copy references.
type hitTemplate struct {
	name        string
	method      string
	pathQuery   string // request target, without scheme and host
	contentType string
	body        []byte
	weight      uint64
}

const ga4Query = "v=2&tid=G-BENCH123&gtm=45je4a20v9&_p=1712345678901&cid=1234567890.1712345678&ul=en-us&sr=1920x1080&sid=1712345678&sct=3&seg=1&dl=https%3A%2F%2Fwww.example.com%2Fpricing%3Fgclid%3DCj0KCQ123%26utm_source%3Dnews&dt=Pricing"

// The GA4 sendBeacon batch: shared parameters in the query, one url-encoded event
// per body line, as gtag.js sends it when several events are queued.
const ga4PostBody = "en=page_view&_et=1234&ep.content_group=pricing\n" +
	"en=scroll&_et=5210&epn.percent_scrolled=90\n" +
	"en=click&_et=812&ep.link_url=https%3A%2F%2Fpartner.example.org%2F%3Futm_source%3Dexample&ep.outbound=true"

const ga4MPBody = `{"client_id":"123.456","user_id":"u-42","events":[{"name":"purchase","params":{"value":12.5,"currency":"EUR","page_location":"https://www.example.com/checkout?fbclid=abc"}}]}`

const tiktokBody = `{"event":"Pageview","message_id":"m-1","timestamp":"2024-04-05T10:00:00Z","context":{"pixel":{"code":"CBENCH"},"page":{"url":"https://www.example.com/?ttclid=xyz"},"user":{"anonymous_id":"anon-1"}}}`

const plausibleBody = `{"n":"pageview","u":"https://www.example.com/?utm_source=x","d":"example.com","r":null}`

// Hits are weighted in per-mille so that the GA4 GET share can be split between
// Consent Mode variants (none, all granted G111, all denied G100) without rounding.
func ga4Templates(get, post, mp uint64) []hitTemplate {
	return []hitTemplate{
		{name: "ga4_get", method: "GET", pathQuery: "/g/collect?" + ga4Query + "&en=page_view&_et=1234", weight: get * 6 / 10},
		{name: "ga4_get_gcs_g111", method: "GET", pathQuery: "/g/collect?" + ga4Query + "&gcs=G111&en=page_view&_et=1234", weight: get * 2 / 10},
		{name: "ga4_get_gcs_g100", method: "GET", pathQuery: "/g/collect?" + ga4Query + "&gcs=G100&en=page_view&_et=1234", weight: get * 2 / 10},
		{name: "ga4_post", method: "POST", pathQuery: "/g/collect?" + ga4Query, contentType: "text/plain;charset=UTF-8", body: []byte(ga4PostBody), weight: post},
		{name: "ga4_mp", method: "POST", pathQuery: "/mp/collect?measurement_id=G-BENCH123&api_secret=s3cr3t", contentType: "application/json", body: []byte(ga4MPBody), weight: mp},
	}
}

// mixSpec is a whole load profile: which hits, and from which visitors.
type mixSpec struct {
	name      string
	templates []hitTemplate
	// juris weighs the classes of jurisdictionMix, consent the consent classes.
	juris      []uint64
	consent    []uint64
	gpcPercent int
}

// mixNames are the mixes -mix accepts, in the order the help lists them.
var mixNames = []string{"realistic", "ga4-only", "all-forward"}

func realisticTemplates() []hitTemplate {
	return append(ga4Templates(400, 100, 50),
		hitTemplate{name: "meta", method: "GET", weight: 150,
			pathQuery: "/tr?id=1234567890&ev=PageView&dl=https%3A%2F%2Fwww.example.com%2F&rl=&if=false&ts=1712345678901&sw=1920&sh=1080&v=2.9.150&r=stable&ec=0&o=4126&fbp=fb.1.1712345678901.1234567890&it=1712345678000&coo=false&rqm=GET"},
		hitTemplate{name: "google_ads", method: "GET", weight: 80,
			pathQuery: "/pagead/viewthroughconversion/123456789/?random=1712345678&cv=11&fst=1712345678901&label=AbCdEf&gcs=G111&url=https%3A%2F%2Fwww.example.com%2Fthanks%3Fgclid%3DCj0KCQ"},
		hitTemplate{name: "bing", method: "GET", weight: 50,
			pathQuery: "/action/0?ti=12345678&Ver=2&mid=1b2c3d4e-aaaa-bbbb-cccc-1234567890ab&sid=abcd1234&vid=ef567890&evt=pageLoad&p=https%3A%2F%2Fwww.example.com%2F&msclkid=abc123"},
		hitTemplate{name: "linkedin", method: "GET", weight: 40,
			pathQuery: "/li/collect?pid=123456&fmt=gif&url=https%3A%2F%2Fwww.example.com%2F&time=1712345678901&li_fat_id=abc-123"},
		hitTemplate{name: "tiktok", method: "POST", weight: 40, pathQuery: "/api/v2/pixel",
			contentType: "application/json", body: []byte(tiktokBody)},
		hitTemplate{name: "matomo", method: "GET", weight: 50,
			pathQuery: "/matomo.php?idsite=1&rec=1&action_name=Home&url=https%3A%2F%2Fwww.example.com%2F&_id=0123456789abcdef&rand=123&apiv=1"},
		hitTemplate{name: "plausible", method: "POST", weight: 40, pathQuery: "/api/event",
			contentType: "application/json", body: []byte(plausibleBody)},
	)
}

func defaultJurisWeights() []uint64 {
	w := make([]uint64, len(jurisdictionMix))
	for i, jc := range jurisdictionMix {
		w[i] = jc.weight
	}
	return w
}

func mixByName(name string) (mixSpec, error) {
	spec := mixSpec{name: name, juris: defaultJurisWeights(), consent: append([]uint64(nil), consentWeights...), gpcPercent: gpcPercent}
	switch name {
	case "realistic":
		spec.templates = realisticTemplates()
	case "ga4-only":
		spec.templates = ga4Templates(800, 150, 50)
	case "all-forward":
		// The same hits, but nothing the proxy may refuse: every visitor in a
		// regime-none location (the "other" class), no cookie, no Sec-GPC, and the
		// Consent Mode share that said "denied" says "granted" instead. Measurement
		// Protocol hits are left out: they come from a server, so their location is
		// read from the body, which has none, and an unknown location is anonymised.
		// A plain reverse proxy forwards every hit; so must consentgate, which makes
		// the CPU per hit of the two directly comparable.
		for _, t := range realisticTemplates() {
			switch t.name {
			case "ga4_get_gcs_g100", "ga4_mp":
				continue
			case "ga4_get_gcs_g111":
				t.weight *= 2
			case "ga4_post":
				t.weight += 50 // the Measurement Protocol's share
			}
			spec.templates = append(spec.templates, t)
		}
		for i, jc := range jurisdictionMix {
			spec.juris[i] = 0
			if jc.name == "other" {
				spec.juris[i] = 1
			}
		}
		spec.consent = []uint64{0, 0, 1, 0}
		spec.gpcPercent = 0
	default:
		return mixSpec{}, fmt.Errorf("unknown -mix %q: want one of %v", name, mixNames)
	}
	return spec, nil
}

// jurisdictionClass is a group of visitor IPs that the MaxMind City test database
// places in the same jurisdiction group. The generator sets them in X-Forwarded-For;
// the proxy trusts 127.0.0.1, so they become the client IP. No packet goes to them.
type jurisdictionClass struct {
	name   string
	ips    []string
	weight uint64
}

var jurisdictionMix = []jurisdictionClass{
	{name: "eea", ips: []string{"89.160.20.112", "89.160.20.130", "2a02:d180::1"}, weight: 40},
	{name: "uk", ips: []string{"81.2.69.142", "81.2.69.160"}, weight: 10},
	{name: "us-ca", ips: []string{"214.78.120.5"}, weight: 15},
	{name: "other", ips: []string{"216.160.83.57", "67.43.156.7"}, weight: 25},
	{name: "unknown", ips: []string{"10.1.2.3"}, weight: 10},
}

// Consent classes: a cookie for a visitor who granted statistics and marketing, a
// cookie for one who granted statistics but denied marketing, no cookie at all, or the
// current cookie of a visitor of loadgen soak's consent stream (whose choice changes).
const (
	consentGranted = iota
	consentDeniedMarketing
	consentNone
	consentFromStream
	numConsentClasses
)

var consentWeights = []uint64{35, 10, 55, 0}

var consentNames = []string{"granted", "denied_marketing", "none", "stream"}

// gpcPercent of hits carry Sec-GPC: 1 in the realistic mix, independently of the
// cookie, as a browser with the setting on would send it everywhere.
const gpcPercent = 10
