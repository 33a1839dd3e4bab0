package rules

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/consent"
)

// TestBuiltinRequired pins the endpoints the product promises, with their routing facts.
func TestBuiltinRequired(t *testing.T) {
	S, M := consent.Statistics, consent.Marketing
	for _, w := range []struct {
		name, vendor, upstream, upPath string
		paths, methods                 []string
		purpose                        consent.Purpose
		body                           BodyKind
		local                          LocalResponse
		consentMode                    bool
		ip                             IPPass
	}{
		{"ga4_collect", "ga4", "https://region1.google-analytics.com", "/g/collect", []string{"/g/collect"}, []string{"GET", "POST"}, S, BodyLines, NoContent, true, IPPass{Param: "_uip"}},
		{"ga4_mp", "ga4", "https://www.google-analytics.com", "/mp/collect", []string{"/mp/collect"}, []string{"POST"}, S, BodyJSON, NoContent, true, IPPass{JSONField: "ip_override"}},
		{"meta_tr", "meta", "https://www.facebook.com", "/tr", []string{"/tr", "/tr/"}, []string{"GET", "POST"}, M, BodyForm, GIF, false, IPPass{Header: "X-Forwarded-For"}},
		{"google_ads_conversion", "google_ads", "https://www.googleadservices.com", "/pagead/conversion/", []string{"/pagead/conversion/*"}, []string{"GET", "POST"}, M, BodyNone, GIF, true, IPPass{Header: "X-Forwarded-For"}},
		{"google_ads_viewthrough", "google_ads", "https://googleads.g.doubleclick.net", "/pagead/viewthroughconversion/", []string{"/pagead/viewthroughconversion/*"}, []string{"GET"}, M, BodyNone, GIF, true, IPPass{Header: "X-Forwarded-For"}},
		{"google_ads_1p_conversion", "google_ads", "https://www.google.com", "/pagead/1p-conversion/", []string{"/pagead/1p-conversion/*"}, []string{"GET"}, M, BodyNone, GIF, true, IPPass{Header: "X-Forwarded-For"}},
		{"google_ads_ccm", "google_ads", "https://www.google.com", "/ccm/collect", []string{"/ccm/collect"}, []string{"GET", "POST"}, M, BodyNone, NoContent, true, IPPass{Header: "X-Forwarded-For"}},
		{"bing_action", "bing", "https://bat.bing.com", "/action/0", []string{"/action/0"}, []string{"GET"}, M, BodyNone, GIF, false, IPPass{Header: "X-Forwarded-For"}},
		{"linkedin_collect", "linkedin", "https://px.ads.linkedin.com", "/collect", []string{"/li/collect"}, []string{"GET", "POST"}, M, BodyNone, GIF, false, IPPass{Header: "X-Forwarded-For"}},
		{"tiktok_pixel", "tiktok", "https://analytics.tiktok.com", "", []string{"/api/v2/pixel", "/api/v2/pixel/track"}, []string{"POST"}, M, BodyJSON, NoContent, false, IPPass{Header: "X-Forwarded-For"}},
		{"matomo_track", "matomo", "https://matomo.example.invalid", "/matomo.php", []string{"/matomo.php"}, []string{"GET", "POST"}, S, BodyForm, GIF, false, IPPass{Header: "X-Forwarded-For"}},
		{"plausible_event", "plausible", "https://plausible.io", "/api/event", []string{"/api/event"}, []string{"POST"}, S, BodyJSON, NoContent, false, IPPass{Header: "X-Forwarded-For"}},
	} {
		ep, ok := EndpointByName(w.name)
		if !ok {
			t.Errorf("missing endpoint %s", w.name)
			continue
		}
		if ep.Vendor != w.vendor || ep.Upstream != w.upstream || ep.UpstreamPath != w.upPath ||
			strings.Join(ep.Paths, " ") != strings.Join(w.paths, " ") || strings.Join(ep.Methods, " ") != strings.Join(w.methods, " ") ||
			len(ep.Purposes) != 1 || ep.Purposes[0] != w.purpose || ep.Body != w.body || ep.Local != w.local ||
			ep.ConsentMode != w.consentMode || ep.IP != w.ip {
			t.Errorf("%s differs from the required shape: %+v", w.name, *ep)
		}
		if strings.HasPrefix(w.vendor, "google") || w.vendor == "ga4" && ep.Body != BodyJSON {
			if !setNamed(ep.Set, "gcs") || !setNamed(ep.Set, "npa") {
				t.Errorf("%s: Google endpoints set gcs and npa when anonymising", w.name)
			}
		}
	}
	// Every prefix claim declares the vendor's path shape; nothing else has one.
	for name, tail := range map[string]string{
		"google_ads_conversion": "{conversion_id:digits}/", "google_ads_viewthrough": "{conversion_id:digits}/",
		"google_ads_1p_conversion": "{conversion_id:digits}/",
	} {
		if ep, _ := EndpointByName(name); ep.PathTail != tail {
			t.Errorf("%s: PathTail %q, want %q", name, ep.PathTail, tail)
		}
	}
	mp, _ := EndpointByName("ga4_mp")
	for _, n := range []string{"consent.ad_user_data", "consent.ad_personalization", "non_personalized_ads"} {
		if !setNamed(mp.SetJSON, n) {
			t.Errorf("ga4_mp: SetJSON lacks %s", n)
		}
	}
}

func TestCatalogueInvariants(t *testing.T) {
	names := map[string]bool{}
	claims := map[string]string{} // path → endpoint
	for i := range builtin {
		ep := &builtin[i]
		if ep.Name == "" || names[ep.Name] {
			t.Errorf("endpoint name %q empty or not unique", ep.Name)
		}
		names[ep.Name] = true
		if ep.Vendor == "" {
			t.Errorf("%s: no vendor", ep.Name)
		}
		if len(ep.Paths) == 0 {
			t.Errorf("%s: no paths", ep.Name)
		}
		for _, p := range ep.Paths {
			if !strings.HasPrefix(p, "/") {
				t.Errorf("%s: path %q does not start with /", ep.Name, p)
			}
			if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
				t.Errorf("%s: path %q has * before its end", ep.Name, p)
			}
			if other, dup := claims[p]; dup {
				t.Errorf("path %q claimed by %s and %s", p, other, ep.Name)
			}
			claims[p] = ep.Name
		}
		if len(ep.Methods) == 0 {
			t.Errorf("%s: no methods", ep.Name)
		}
		for _, m := range ep.Methods {
			switch m {
			case "GET", "POST", "HEAD", "PUT", "OPTIONS":
			default:
				t.Errorf("%s: invalid method %q", ep.Name, m)
			}
		}
		u, err := url.Parse(ep.Upstream)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			t.Errorf("%s: upstream %q is not a bare http(s) base URL", ep.Name, ep.Upstream)
		}
		if ep.UpstreamPath != "" && !strings.HasPrefix(ep.UpstreamPath, "/") {
			t.Errorf("%s: upstream path %q", ep.Name, ep.UpstreamPath)
		}
		// What goes on the request line as it stands: unreserved characters and "/" only.
		for _, p := range append([]string{ep.UpstreamPath}, ep.Paths...) {
			if strings.ContainsFunc(strings.TrimSuffix(p, "*"), func(r rune) bool { return r != '/' && (r > 0x7f || shouldEscape(byte(r))) }) {
				t.Errorf("%s: path %q needs escaping on a request line", ep.Name, p)
			}
		}
		if _, err := compileTail(ep); err != nil {
			t.Errorf("%s: %v", ep.Name, err)
		}
		if len(ep.Purposes) == 0 {
			t.Errorf("%s: no purposes", ep.Name)
		}
		for _, p := range ep.Purposes {
			if p >= consent.NumPurposes {
				t.Errorf("%s: bad purpose %d", ep.Name, p)
			}
		}
		if len(ep.Source) < 20 {
			t.Errorf("%s: Source must name the public documentation of the hit format", ep.Name)
		}
		if len(ep.Allow)+len(ep.AllowPrefix)+len(ep.AllowJSON) == 0 {
			t.Errorf("%s: empty allow-list", ep.Name)
		}
		if ep.Body == BodyJSON && len(ep.AllowJSON) == 0 || ep.Body != BodyJSON && len(ep.AllowJSON) > 0 {
			t.Errorf("%s: AllowJSON must be set exactly for JSON bodies", ep.Name)
		}
		if len(ep.SetJSON) > 0 && ep.Body != BodyJSON || ep.IP.JSONField != "" && ep.Body != BodyJSON {
			t.Errorf("%s: JSON rewrites on a non-JSON endpoint", ep.Name)
		}
		if ep.IP == (IPPass{}) {
			t.Errorf("%s: no way to pass the client IP", ep.Name)
		}
		if _, err := NewAnonymiser(ep, nil, nil, NewHasher(nil)); err != nil {
			t.Errorf("%s: %v", ep.Name, err)
		}
	}
	// A prefix claim must not swallow another endpoint's path.
	for p, owner := range claims {
		pre, ok := strings.CutSuffix(p, "*")
		if !ok {
			continue
		}
		for q, other := range claims {
			if other != owner && strings.HasPrefix(strings.TrimSuffix(q, "*"), pre) {
				t.Errorf("prefix %q of %s overlaps %q of %s", p, owner, q, other)
			}
		}
	}
	for _, v := range []string{"ga4", "meta", "google_ads", "bing", "linkedin", "tiktok", "matomo", "plausible"} {
		found := false
		for _, n := range VendorNames() {
			found = found || n == v
		}
		if !found {
			t.Errorf("vendor %s missing", v)
		}
	}
}

// TestBuiltinNoIdentifierKept is the core privacy invariant, checked directly rather
// than through CheckAllowList: no identifier may be kept as is, and every client ID that
// analytics needs is hashed.
func TestBuiltinNoIdentifierKept(t *testing.T) {
	for i := range builtin {
		ep := &builtin[i]
		for _, id := range ep.Identifiers {
			if id == "" {
				t.Errorf("%s: empty identifier", ep.Name)
			}
			for name, v := range ep.Allow {
				if v.Kind != KindID && identifierCovers(id, name) {
					t.Errorf("%s: identifier %q kept by Allow[%q]", ep.Name, id, name)
				}
			}
			for name, v := range ep.AllowJSON {
				if v.Kind != KindID && identifierCovers(id, name) {
					t.Errorf("%s: identifier %q kept by AllowJSON[%q]", ep.Name, id, name)
				}
			}
			for p := range ep.AllowPrefix {
				if prefixMayMatch(p, id) {
					t.Errorf("%s: identifier %q kept by AllowPrefix[%q]", ep.Name, id, p)
				}
			}
		}
		// Anything hashed is an identifier by definition: list it so config cannot keep it.
		for name, v := range ep.Allow {
			if _, ok := ep.identifies(name); v.Kind == KindID && !ok {
				t.Errorf("%s: %q is hashed but not listed as an identifier", ep.Name, name)
			}
		}
		for name, v := range ep.AllowJSON {
			if _, ok := ep.identifies(name); v.Kind == KindID && !ok {
				t.Errorf("%s: %q is hashed but not listed as an identifier", ep.Name, name)
			}
		}
	}
	hashed := map[string]string{
		"ga4_collect": "cid", "matomo_track": "_id", "bing_action": "vid",
	}
	for epName, p := range hashed {
		ep, _ := EndpointByName(epName)
		if ep.Allow[p].Kind != KindID {
			t.Errorf("%s: %s must be hashed so visitors can be counted", epName, p)
		}
	}
	if ep, _ := EndpointByName("ga4_mp"); ep.AllowJSON["client_id"].Kind != KindID {
		t.Error("ga4_mp: client_id must be hashed")
	}
	// Spot checks of identifiers the brief names: they must be listed.
	for epName, ids := range map[string][]string{
		"ga4_collect":      {"cid", "uid", "_uip", "up.x", "sid"},
		"ga4_mp":           {"client_id", "user_id", "user_data.sha256_email_address", "ip_override", "user_properties.x"},
		"meta_tr":          {"fbp", "fbc", "ud[em]", "ud[ph]", "external_id"},
		"matomo_track":     {"_id", "uid", "cid", "cip", "token_auth"},
		"bing_action":      {"vid", "sid", "msclkid"},
		"linkedin_collect": {"li_fat_id"},
		"tiktok_pixel":     {"context.user.external_id", "context.user.email", "context.user.phone_number", "context.ad.callback"},
		"google_ads_ccm":   {"gclid", "auid"},
	} {
		ep, _ := EndpointByName(epName)
		for _, id := range ids {
			if _, ok := ep.identifies(id); !ok {
				t.Errorf("%s: %q is not listed as an identifier", epName, id)
			}
		}
	}
	// Fingerprinting client hints and free-form parameters stay off the GA4 allow-list.
	ga4, _ := EndpointByName("ga4_collect")
	for _, n := range []string{"uaa", "uab", "uafvl", "uam", "uamb", "uap", "uapv", "uaw", "ep.x", "epn.x", "up.x", "upn.x", "_p", "gcd"} {
		if _, ok := ga4.Allow[n]; ok {
			t.Errorf("ga4_collect: %q must not be allowed", n)
		}
	}
}
