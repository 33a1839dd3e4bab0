package rules

import "github.com/consentgate/consentgate/consent"

// builtin is the vendor catalogue: data only. Each endpoint names, in Source, the public
// documentation its hit format comes from; where a vendor does not document its browser
// endpoint, Source says so and names what the shape was cross-checked against.
//
// How to read an allow-list: a parameter not listed is removed when anonymising (a new
// identifier a vendor invents cannot leak). Identifiers lists every parameter known to
// identify a person or device ("*" = any text, and a JSON path covers its subtree); they
// are removed or, where the vendor needs them to count (client IDs), hashed with a salt
// that rotates daily. Custom event parameters, user properties and client hints are
// deliberately absent: they are free-form or fingerprinting, and operators who vetted
// theirs can add names through anonymise.allow.<vendor>.
//
// SetJSON values are JSON literals (`"DENIED"`, `true`).
var builtin = []Endpoint{
	{
		Name:         "ga4_collect",
		Vendor:       "ga4",
		Paths:        []string{"/g/collect"},
		Methods:      []string{"GET", "POST"},
		Upstream:     "https://region1.google-analytics.com",
		UpstreamPath: "/g/collect",
		Purposes:     []consent.Purpose{consent.Statistics},
		Body:         BodyLines,
		ConsentMode:  true,
		Identifiers: []string{
			"cid",           // client ID (_ga cookie)
			"uid",           // user ID set by the site
			"sid",           // session ID (_ga_<container> cookie)
			"_uip",          // IP override
			"em",            // user-provided data (hashed email/phone, "tv.1~em.…")
			"up.*", "upn.*", // user properties
			"ep.user_id", "ep.email", "ep.transaction_id",
		},
		Allow: map[string]Rule{
			"v": Keep, "tid": Keep, "gtm": Keep, "tfd": Keep, "frm": Keep,
			"cid": Hash, "sid": Hash,
			"sct": Keep, "seg": Keep, "_s": Keep, "_fv": Keep, "_ss": Keep, "_nsi": Keep, "_ee": Keep,
			"en": Keep, "_et": Keep,
			"dl": KeepURL, "dr": KeepURL, "dt": Keep,
			"ul": Keep, "sr": Keep,
			"cu": Keep, "epn.value": Keep,
		},
		Set: []Param{{Name: "gcs", Value: "G100"}, {Name: "npa", Value: "1"}},
		// richsstsse asks for the answer as a server-sent event stream whose events tell
		// the browser which further requests to fire (Google's ad and measurement
		// endpoints, with their cookies); gtag.js sends it bare ("&richsstsse"), as
		// public GA4 hit decoders and sGTM clients show.
		ReplyParams: []string{"richsstsse"},
		IP:          IPPass{Param: "_uip"},
		Local:       NoContent,
		Source:      "GA4 gtag.js collection (v=2). Google does not document /g/collect; parameter meanings from the third-party GA4 hit cheat sheet (thyngster.com/ga4-measurement-protocol-cheatsheet) checked against gtag.js traffic; sendBeacon POST carries shared parameters in the query and one event per body line. Consent parameters gcs/gcd/npa: developers.google.com/tag-platform/security/concepts/consent-mode",

		Property: []string{"tid"}, // measurement ID, G-XXXXXXXXXX
	},
	{
		Name:         "ga4_mp",
		Vendor:       "ga4",
		Paths:        []string{"/mp/collect"},
		Methods:      []string{"POST"},
		Upstream:     "https://www.google-analytics.com",
		UpstreamPath: "/mp/collect",
		Purposes:     []consent.Purpose{consent.Statistics},
		Body:         BodyJSON,
		ConsentMode:  true,
		Identifiers: []string{
			"client_id", "app_instance_id", "user_id", "user_properties", "user_data",
			"ip_override", "user_location",
			"events[].params.session_id", "events[].params.user_id", "events[].params.transaction_id",
		},
		Allow: map[string]Rule{"measurement_id": Keep, "firebase_app_id": Keep, "api_secret": Keep},
		AllowJSON: map[string]Rule{
			"client_id":                             Hash,
			"app_instance_id":                       Hash,
			"timestamp_micros":                      Keep,
			"device.category":                       Keep,
			"device.language":                       Keep,
			"device.screen_resolution":              Keep,
			"events[].name":                         Keep,
			"events[].params.page_location":         KeepURL,
			"events[].params.page_referrer":         KeepURL,
			"events[].params.page_title":            Keep,
			"events[].params.engagement_time_msec":  Keep,
			"events[].params.session_id":            Hash,
			"events[].params.currency":              Keep,
			"events[].params.value":                 Keep,
			"events[].params.language":              Keep,
			"events[].params.screen_resolution":     Keep,
			"events[].params.items[].item_id":       Keep,
			"events[].params.items[].item_name":     Keep,
			"events[].params.items[].item_category": Keep,
			"events[].params.items[].price":         Keep,
			"events[].params.items[].quantity":      Keep,
		},
		SetJSON: []Param{
			{Name: "consent.ad_user_data", Value: `"DENIED"`},
			{Name: "consent.ad_personalization", Value: `"DENIED"`},
			{Name: "non_personalized_ads", Value: `true`},
		},
		IP: IPPass{JSONField: "ip_override"},
		// Measurement Protocol reference, "user_location" (city, region_id ISO 3166-2,
		// country_id ISO 3166-1 alpha-2, subcontinent_id, continent_id) and "ip_override".
		Visitor: VisitorFields{IP: "ip_override", Location: "user_location", Country: "country_id", Region: "region_id"},
		Local:   NoContent,
		Source:  "GA4 Measurement Protocol: developers.google.com/analytics/devguides/collection/protocol/ga4/reference (query measurement_id/firebase_app_id + api_secret; JSON client_id, user_id, timestamp_micros, user_properties, user_data, consent, non_personalized_ads, ip_override, user_location, device, events[{name, params}]) and .../protocol/ga4/sending-events",

		// A web stream's measurement_id (the same G- ID as ga4_collect's tid, so a web
		// visitor's pseudonym is the same on both endpoints) or an app stream's firebase_app_id.
		Property: []string{"measurement_id", "firebase_app_id"},
	},
	{
		Name:         "meta_tr",
		Vendor:       "meta",
		Paths:        []string{"/tr", "/tr/"},
		Methods:      []string{"GET", "POST"},
		Upstream:     "https://www.facebook.com",
		UpstreamPath: "/tr",
		Purposes:     []consent.Purpose{consent.Marketing},
		Body:         BodyForm,
		Identifiers: []string{
			"fbp", "fbc", // _fbp browser ID, _fbc click ID (fbclid)
			"ud[*]", "udff[*]", // advanced matching user data (hashed or plain)
			"external_id",
			"eid",          // event ID: joins the pixel event to a Conversions API event that carries user data
			"cd[order_id]", // links to the purchaser in the shop
			"cd[external_id]",
		},
		Allow: map[string]Rule{
			"id": Keep, "ev": Keep, "dl": KeepURL, "rl": KeepURL, "if": Keep, "ts": Keep,
			"sw": Keep, "sh": Keep, "v": Keep, "r": Keep, "a": Keep, "ec": Keep, "o": Keep,
			"it": Keep, "coo": Keep, "rqm": Keep, "plt": Keep, "noscript": Keep,
			"cd[value]": Keep, "cd[currency]": Keep, "cd[content_ids]": Keep, "cd[content_type]": Keep,
			"cd[content_name]": Keep, "cd[content_category]": Keep, "cd[num_items]": Keep,
		},
		IP:     IPPass{Header: "X-Forwarded-For"},
		Local:  GIF,
		Source: "Meta Pixel image/beacon hits: developers.facebook.com/docs/meta-pixel/advanced/ (facebook.com/tr?id=&ev=&cd[...]&noscript=1), advanced matching ud[...]: developers.facebook.com/docs/meta-pixel/advanced/advanced-matching, fbp/fbc: developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc; remaining short names (dl, rl, if, ts, sw, sh, v, r, ec, o, it, coo, rqm, plt) from fbevents.js traffic",

		Property: []string{"id"}, // pixel ID
	},
	// The three Google Ads pings put the advertiser's numeric conversion ID in the path
	// and end it with "/": the Google Ads Help noscript snippets
	// ("…googleadservices.com/pagead/conversion/CONVERSION_ID/?label=…&guid=ON&script=0",
	// "…googleads.g.doubleclick.net/pagead/viewthroughconversion/CONVERSION_ID/?guid=ON&script=0"),
	// the legacy conversion.js snippet's numeric `var google_conversion_id = 1057574418;`,
	// gtag.js's send_to "AW-<digits>/<label>", and the gtag.js traffic
	// "www.google.com/pagead/1p-conversion/11160642801/?random=…". Nothing else goes there.
	googleAds("google_ads_conversion", "/pagead/conversion/*", "{conversion_id:digits}/", []string{"GET", "POST"}, "https://www.googleadservices.com", "/pagead/conversion/", GIF,
		"Google Ads conversion tag: Google Ads Help \"Set up conversion tracking for your website\" (noscript <img src=\"https://www.googleadservices.com/pagead/conversion/CONVERSION_ID/?label=...&guid=ON&script=0\">); gtag.js parameter names from its traffic"),
	googleAds("google_ads_viewthrough", "/pagead/viewthroughconversion/*", "{conversion_id:digits}/", []string{"GET"}, "https://googleads.g.doubleclick.net", "/pagead/viewthroughconversion/", GIF,
		"Google Ads remarketing tag: Google Ads Help \"Set up your Google tag for remarketing\" (noscript <img src=\"//googleads.g.doubleclick.net/pagead/viewthroughconversion/CONVERSION_ID/?guid=ON&script=0\">); gtag.js parameter names from its traffic"),
	googleAds("google_ads_1p_conversion", "/pagead/1p-conversion/*", "{conversion_id:digits}/", []string{"GET"}, "https://www.google.com", "/pagead/1p-conversion/", GIF,
		"Google Ads first-party conversion ping sent by gtag.js next to /pagead/conversion (not separately documented; same parameters as the conversion tag, Google Ads Help \"Set up conversion tracking for your website\")"),
	googleAds("google_ads_ccm", "/ccm/collect", "", []string{"GET", "POST"}, "https://www.google.com", "/ccm/collect", NoContent,
		"Google tag consent/conversion-modelling ping (www.google.com/ccm/collect) sent by gtag.js; Google does not document it: shape from gtag.js traffic, consent parameters per developers.google.com/tag-platform/security/concepts/consent-mode"),
	{
		Name:         "bing_action",
		Vendor:       "bing",
		Paths:        []string{"/action/0"},
		Methods:      []string{"GET"},
		Upstream:     "https://bat.bing.com",
		UpstreamPath: "/action/0",
		Purposes:     []consent.Purpose{consent.Marketing},
		Identifiers: []string{
			"vid",     // UET visitor ID (_uetvid)
			"sid",     // UET session ID (_uetsid)
			"msclkid", // click ID
			"pid",     // enhanced conversions: hashed email/phone
			"uid",
		},
		Allow: map[string]Rule{
			"ti": Keep, "Ver": Keep, "tm": Keep, "mid": Keep, "rn": Keep,
			"vid": Hash, "sid": Hash,
			"evt": Keep, "ea": Keep, "ec": Keep, "el": Keep, "ev": Keep, "gv": Keep, "gc": Keep,
			"p": KeepURL, "r": KeepURL, "tl": Keep, "lg": Keep, "sw": Keep, "sh": Keep, "lt": Keep,
		},
		IP:     IPPass{Header: "X-Forwarded-For"},
		Local:  GIF,
		Source: "Microsoft Advertising UET: help.ads.microsoft.com \"How do I create a UET tag\" (noscript <img src=\"//bat.bing.com/action/0?ti=TAG_ID&Ver=2\">), custom events ea/ec/el/ev/gv/gc per \"Set up custom events\"; enhanced conversions (pid): help.ads.microsoft.com enhanced conversions; the other short names from bat.js traffic",

		Property: []string{"ti"}, // UET tag ID
	},
	{
		Name:         "linkedin_collect",
		Vendor:       "linkedin",
		Paths:        []string{"/li/collect"},
		Methods:      []string{"GET", "POST"},
		Upstream:     "https://px.ads.linkedin.com",
		UpstreamPath: "/collect",
		Purposes:     []consent.Purpose{consent.Marketing},
		Identifiers: []string{
			"li_fat_id", // first-party ad click ID
			"li_giant",  // LinkedIn ID sync
			"li_adsId",  // first-party ads ID cookie
		},
		Allow: map[string]Rule{
			"pid": Keep, "conversionId": Keep, "time": Keep, "v": Keep, "url": KeepURL,
		},
		// fmt picks the answer: "gif" (the documented image pixel) or "js" (a script the
		// Insight Tag runs). An anonymised hit is the image pixel, whatever it asked for.
		Set:         []Param{{Name: "fmt", Value: "gif"}},
		ReplyParams: []string{"fmt"},
		IP:          IPPass{Header: "X-Forwarded-For"},
		Local:       GIF,
		Source:      "LinkedIn Insight Tag: linkedin.com/help/lms \"Add the LinkedIn Insight Tag to your website\" (noscript <img src=\"https://px.ads.linkedin.com/collect/?pid=PARTNER_ID&fmt=gif\">, conversions &conversionId=), li_fat_id per the LinkedIn first-party cookie help page. The proxy path is /li/collect, not /collect: /collect is the legacy Universal Analytics path, so LinkedIn takes a prefix and UpstreamPath restores /collect",

		Property: []string{"pid"}, // partner ID
	},
	{
		Name:     "tiktok_pixel",
		Vendor:   "tiktok",
		Paths:    []string{"/api/v2/pixel", "/api/v2/pixel/track"},
		Methods:  []string{"POST"},
		Upstream: "https://analytics.tiktok.com",
		Purposes: []consent.Purpose{consent.Marketing},
		Body:     BodyJSON,
		Identifiers: []string{
			"context.user",        // anonymous_id/ttp (_ttp cookie), external_id, email, phone_number
			"context.ad.callback", // ttclid
			"context.ip", "context.user_agent", "context.userAgent",
			"context.session_id", "context.pageview_id",
			"event_id", "message_id", "properties.order_id",
		},
		AllowJSON: map[string]Rule{
			"event": Keep, "timestamp": Keep, "is_onsite": Keep, "pixel_code": Keep,
			"context.pixel.code":                 Keep,
			"context.user.anonymous_id":          Hash,
			"context.session_id":                 Hash,
			"context.page.url":                   KeepURL,
			"context.page.referrer":              KeepURL,
			"context.library.name":               Keep,
			"context.library.version":            Keep,
			"context.device.platform":            Keep,
			"properties.value":                   Keep,
			"properties.currency":                Keep,
			"properties.content_type":            Keep,
			"properties.content_id":              Keep,
			"properties.content_name":            Keep,
			"properties.contents[].content_id":   Keep,
			"properties.contents[].content_type": Keep,
			"properties.contents[].content_name": Keep,
			"properties.contents[].quantity":     Keep,
			"properties.contents[].price":        Keep,
		},
		IP:     IPPass{Header: "X-Forwarded-For"},
		Local:  NoContent,
		Source: "TikTok Pixel (events.js) JSON beacon to analytics.tiktok.com/api/v2/pixel[/track]; the browser endpoint is not documented: field meanings from the TikTok Events API 1.0 web payload (business-api.tiktok.com/portal/docs, \"pixel/track\": pixel_code, event, event_id, timestamp, context{ad{callback=ttclid}, page{url, referrer}, user{external_id, email, phone_number, ttp}, ip, user_agent}, properties{contents[], value, currency})",

		PropertyJSON: []string{"pixel_code", "context.pixel.code"},
	},
	{
		Name:         "matomo_track",
		Vendor:       "matomo",
		Paths:        []string{"/matomo.php"},
		Methods:      []string{"GET", "POST"},
		Upstream:     "https://matomo.example.invalid", // self-hosted: no useful default, the operator sets upstreams.matomo
		UpstreamPath: "/matomo.php",
		Purposes:     []consent.Purpose{consent.Statistics},
		Body:         BodyForm,
		Identifiers: []string{
			"_id",          // visitor ID (_pk_id cookie)
			"uid",          // user ID
			"cid",          // forced visitor ID
			"cip",          // IP override
			"token_auth",   // lets a hit override IP, time and visitor
			"ua", "uadata", // user agent override, client hints
			"_idts", "_viewts", // first/last visit timestamps: per-visitor, near-unique
			"ec_id", // order ID
		},
		Allow: map[string]Rule{
			"idsite": Keep, "rec": Keep, "apiv": Keep, "r": Keep, "h": Keep, "m": Keep, "s": Keep,
			"send_image": Keep, "ping": Keep, "ca": Keep, "cookie": Keep, "res": Keep, "lang": Keep,
			"_id": Hash, "_idn": Keep, "_idvc": Keep, "pv_id": Keep,
			"url": KeepURL, "urlref": KeepURL, "link": KeepURL, "download": KeepURL, "action_name": Keep,
			"e_c": Keep, "e_a": Keep, "e_n": Keep, "e_v": Keep,
			"c_n": Keep, "c_p": Keep, "c_t": Keep, "c_i": Keep,
			"idgoal": Keep, "revenue": Keep, "ec_st": Keep, "ec_tx": Keep, "ec_sh": Keep, "ec_dt": Keep,
			"search_cat": Keep, "search_count": Keep,
			"gt_ms": Keep, "pf_net": Keep, "pf_srv": Keep, "pf_tfr": Keep, "pf_dm1": Keep, "pf_dm2": Keep, "pf_onl": Keep,
		},
		IP:     IPPass{Header: "X-Forwarded-For"},
		Local:  GIF,
		Source: "Matomo HTTP Tracking API: developer.matomo.org/api-reference/tracking-api (GET or form POST to /matomo.php; bulk JSON requests are not form-encoded and are dropped when anonymising)",

		Property: []string{"idsite"},
	},
	{
		Name:         "plausible_event",
		Vendor:       "plausible",
		Paths:        []string{"/api/event"},
		Methods:      []string{"POST"},
		Upstream:     "https://plausible.io",
		UpstreamPath: "/api/event",
		Purposes:     []consent.Purpose{consent.Statistics},
		Body:         BodyJSON,
		// Plausible keeps no client ID: it derives a daily visitor hash from IP and user
		// agent, which the proxy passes by header. Props (p, m, props) are free-form and
		// not allowed; URLs lose click IDs through KeepURL.
		Identifiers: nil,
		AllowJSON: map[string]Rule{
			"name": Keep, "n": Keep, "url": KeepURL, "u": KeepURL, "domain": Keep, "d": Keep,
			"referrer": KeepURL, "r": KeepURL, "h": Keep, "w": Keep, "interactive": Keep, "i": Keep,
			"revenue.currency": Keep, "revenue.amount": Keep,
		},
		IP:     IPPass{Header: "X-Forwarded-For"},
		Local:  NoContent,
		Source: "Plausible Events API: plausible.io/docs/events-api (name, url, domain, referrer, props, revenue, interactive; the script sends the short forms n, u, d, r, p/m, h)",

		PropertyJSON: []string{"domain", "d"}, // the site as registered in Plausible
	},
}

// googleAdsAllow is shared by the Google Ads endpoints: gtag.js sends them the same
// parameter set. Order IDs and auid (the _gcl_au first-party ID) are identifiers.
var googleAdsAllow = map[string]Rule{
	"random": Keep, "rnd": Keep, "cv": Keep, "fst": Keep, "num": Keep, "label": Keep,
	"guid": Keep, "script": Keep, "bg": Keep, "en": Keep, "gtm": Keep,
	"tid": Keep, "frm": Keep, "value": Keep, "currency_code": Keep, "bttype": Keep, "hn": Keep,
	"tiba": Keep, "u_w": Keep, "u_h": Keep, "navt": Keep, "scrsrc": Keep,
	"url": KeepURL, "ref": KeepURL, "dl": KeepURL, "dr": KeepURL,
}

// googleAdsReplyParams choose the answer's format (fmt, rfmt: an image, a script, or a
// redirect on to www.google.com/pagead/1p-conversion that carries Google's cookies;
// async: a script answer). The documented pixel, <img src=".../pagead/conversion/
// CONVERSION_ID/?label=...&guid=ON&script=0">, carries none of them, so a conversion
// counts without them.
var googleAdsReplyParams = []string{"fmt", "rfmt", "async"}

var googleAdsIdentifiers = []string{
	"gclid", "dclid", "gbraid", "wbraid", "gclaw", "gclgb", "gclgs", "gac", // click IDs
	"auid",                         // _gcl_au first-party ID
	"em",                           // enhanced conversions: hashed email/phone
	"oid", "transaction_id", "uid", // order and user IDs
	"data", // remarketing custom parameters
}

func googleAds(name, path, tail string, methods []string, upstream, upstreamPath string, local LocalResponse, source string) Endpoint {
	return Endpoint{
		Name:         name,
		Vendor:       "google_ads",
		Paths:        []string{path},
		PathTail:     tail,
		Methods:      methods,
		Upstream:     upstream,
		UpstreamPath: upstreamPath,
		Purposes:     []consent.Purpose{consent.Marketing},
		Body:         BodyNone,
		ConsentMode:  true,
		Identifiers:  googleAdsIdentifiers,
		Allow:        googleAdsAllow,
		Set:          []Param{{Name: "gcs", Value: "G100"}, {Name: "npa", Value: "1"}},
		ReplyParams:  googleAdsReplyParams,
		IP:           IPPass{Header: "X-Forwarded-For"},
		Local:        local,
		Source:       source,

		// No Property: nothing is hashed, and the conversion ID is a path segment
		// (/pagead/conversion/<ID>/), which the anonymiser does not see.
	}
}
