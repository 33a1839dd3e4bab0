package rules

import "github.com/consentgate/consentgate/consent"

// builtin is the vendor catalogue: data only. Each endpoint names, in Source, the public
// documentation its hit format comes from; where a vendor does not document its browser
// endpoint, Source says so and names what the shape was cross-checked against.
//
// How to read an allow-list: a parameter not listed is removed when anonymising (a new
// identifier a vendor invents cannot leak), and a listed one declares the kind of its
// value (kinds.go): a value that does not fit is removed too. Identifiers lists every
// parameter known to identify a person or device ("*" = any text, and a JSON path covers
// its subtree), and the cross-day linkers: counters and timestamps that count up per
// visitor (session count, visit count, first-visit flags, local time, first and last
// visit), which would chain yesterday's daily pseudonym to today's. Identifiers are
// removed or, where the vendor needs them to count (client IDs), replaced by a hash with
// a salt that rotates daily (KindID). Custom event parameters, user properties and
// client hints are deliberately absent: they are free-form or fingerprinting, and
// operators who vetted theirs can add names through anonymise.allow.<vendor> (kept as
// scrubbed free text).
//
// Kinds follow the vendors' documentation where there is one (cited per endpoint);
// bounds are the vendor's own limits where documented, and otherwise generous for the
// values the tags send and tight enough that nothing else fits.
//
// SetJSON values are JSON literals (`"DENIED"`, `true`).

// Charsets of the tokens below.
const (
	csDigits     = "0-9"
	csAlnum      = "A-Za-z0-9"
	csTagID      = "A-Z0-9-"               // G-ABC123XYZ9, AW-123456789 (capitals only)
	csWord       = "A-Za-z0-9_-"           // conversion labels, secrets, tag-manager markers
	csVersion    = "A-Za-z0-9._-"          // 2.9.156, pixel.js
	csHost       = "A-Za-z0-9._-"          // host names (punycode)
	csHostList   = "A-Za-z0-9.,_-"         // Plausible: comma-separated domains
	csEventName  = "A-Za-z0-9_"            // GA4: letters, digits, underscores
	csCustomName = "A-Za-z0-9_ .-"         // Meta, TikTok custom event names
	csSKU        = "A-Za-z0-9_.:/#+-"      // product IDs (no spaces: "customer 8812734" is not one)
	csContentIDs = "A-Za-z0-9_.:/#+,\"[]-" // Meta cd[content_ids]: ["SKU1","SKU2"] or SKU1,SKU2
	csISOTime    = "0-9TZ:.+-"             // 2024-04-05T12:00:00.000Z
)

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
			// Cross-day linkers: the session count, the hit counter that goes on across
			// midnight, the first-visit, session-start and new-session flags.
			"sct", "_s", "_fv", "_ss", "_nsi",
		},
		// Kinds: the /g/collect reference of d8a-tech/d8a (docs/.../tracking-protocols/
		// ga4-gtag.md, after the thyngster.com cheat sheet): v "2", tid G-XXXXXXXXXX, sr
		// "1920x1080", ul "en-us", seg, _ee and frm flags, _et milliseconds; event names
		// and the 300-character page title limit from support.google.com/analytics/answer/9267744
		// (names: 40 characters of letters, digits, underscores).
		Allow: map[string]Value{
			"v": Enum("2"), "tid": VendorID(csTagID, 20), "tfd": Int(10),
			"frm": Enum("0", "1", "2"),
			"cid": ID, "sid": ID,
			"seg": Enum("0", "1"), "_ee": Enum("1"),
			"en": Name(csEventName, 40), "_et": Int(10),
			"dl": PageURL, "dr": Referrer, "dt": Text(300),
			"ul": Lang, "sr": Screen,
			"cu": Currency, "epn.value": Dec(20),
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
		// Kinds: the Measurement Protocol reference (timestamp_micros a number of
		// microseconds; device.category desktop, mobile, tablet, smart TV; device.language
		// ISO 639-1; device.screen_resolution WIDTHxHEIGHT); event names of 40
		// characters, parameter values of 100 and page_title of 300
		// (support.google.com/analytics/answer/9267744).
		Allow: map[string]Value{
			"measurement_id": VendorID(csTagID, 20), "firebase_app_id": VendorID("A-Za-z0-9:_-", 100),
			"api_secret": VendorID(csWord, 64),
		},
		AllowJSON: map[string]Value{
			"client_id":                             ID,
			"app_instance_id":                       ID,
			"timestamp_micros":                      Int(20),
			"device.category":                       Enum("desktop", "mobile", "tablet", "smart TV"),
			"device.language":                       Lang,
			"device.screen_resolution":              Screen,
			"events[].name":                         Name(csEventName, 40),
			"events[].params.page_location":         PageURL,
			"events[].params.page_referrer":         Referrer,
			"events[].params.page_title":            Text(300),
			"events[].params.engagement_time_msec":  Int(10),
			"events[].params.session_id":            ID,
			"events[].params.currency":              Currency,
			"events[].params.value":                 Dec(20),
			"events[].params.language":              Lang,
			"events[].params.screen_resolution":     Screen,
			"events[].params.items[].item_id":       SKU(csSKU, 100),
			"events[].params.items[].item_name":     Text(100),
			"events[].params.items[].item_category": Text(100),
			"events[].params.items[].price":         Dec(20),
			"events[].params.items[].quantity":      Int(6),
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
		// Kinds: the standard events' object properties per
		// developers.facebook.com/docs/meta-pixel/reference (value a number, currency an
		// ISO 4217 code, content_ids an array of IDs, content_type "product" or
		// "product_group", content_name and content_category text, num_items a count);
		// custom event names up to 50 characters; the short names from fbevents.js
		// traffic (ts and it millisecond timestamps, sw and sh screen size, if and coo
		// booleans, plt page load time).
		Allow: map[string]Value{
			"id": VendorID(csDigits, 20), "ev": Name(csCustomName, 50), "dl": PageURL, "rl": Referrer,
			"if": Enum("true", "false"), "ts": Int(13),
			"sw": Screen, "sh": Screen, "v": Token(csVersion, 20), "r": Token(csWord, 20), "a": Token(csVersion, 64),
			"ec": Int(4), "o": Int(10), "it": Int(13), "coo": Enum("true", "false"), "rqm": Token("A-Z", 8),
			"plt": Dec(12), "noscript": Enum("1"),
			"cd[value]": Dec(20), "cd[currency]": Currency, "cd[content_ids]": SKU(csContentIDs, 500),
			"cd[content_type]": Enum("product", "product_group"),
			"cd[content_name]": Text(200), "cd[content_category]": Text(200), "cd[num_items]": Int(6),
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
			"mid", // page view GUID: it outlives midnight with the page, so it is hashed daily too
		},
		// Kinds: the UET parameters table, learn.microsoft.com/advertising/msa-help
		// hlp_ba_conc_uet_parameters_table (mid a GUID per page, evt pageLoad or custom,
		// rn a random 6-digit number, ec/ea/el advertiser-defined text, ev and gv values,
		// gc the revenue currency, p and r the page and referrer URLs); tl the page
		// title, lg the language, sw/sh the screen, lt the load time from bat.js traffic.
		Allow: map[string]Value{
			"ti": VendorID(csDigits, 20), "Ver": Token(csVersion, 10), "tm": Token(csWord, 20), "mid": GUIDID,
			"rn": Int(10), "vid": ID, "sid": ID,
			"evt": Enum("pageLoad", "custom"), "ea": Text(100), "ec": Text(100), "el": Text(100),
			"ev": Dec(20), "gv": Dec(20), "gc": Currency,
			"p": PageURL, "r": Referrer, "tl": Text(300), "lg": Lang, "sw": Screen, "sh": Screen, "lt": Int(10),
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
		// Kinds: the Insight Tag's documented image pixel (pid the numeric partner ID,
		// conversionId numeric; fmt is a reply parameter); time (milliseconds) and v from insight.min.js
		// traffic.
		Allow: map[string]Value{
			"pid": VendorID(csDigits, 20), "conversionId": VendorID(csDigits, 20),
			"time": Int(13), "v": Token(csVersion, 10), "url": PageURL,
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
		// Kinds: the TikTok parameters (ads.tiktok.com/help/article/about-parameters and
		// the Business API SDK's PixelContent/PixelProperties: content_type "product" or
		// "product_group", currency an ISO 4217 code, value and price numbers, quantity
		// an integer, content_name text); timestamp ISO 8601; event names as Meta's.
		AllowJSON: map[string]Value{
			"event": Name(csCustomName, 50), "timestamp": Token(csISOTime, 40), "is_onsite": Enum("true", "false"),
			"pixel_code":                         VendorID(csAlnum, 32),
			"context.pixel.code":                 VendorID(csAlnum, 32),
			"context.user.anonymous_id":          ID,
			"context.session_id":                 ID,
			"context.page.url":                   PageURL,
			"context.page.referrer":              Referrer,
			"context.library.name":               Token(csVersion, 40),
			"context.library.version":            Token(csVersion, 40),
			"context.device.platform":            Token(csWord, 20),
			"properties.value":                   Dec(20),
			"properties.currency":                Currency,
			"properties.content_type":            Enum("product", "product_group"),
			"properties.content_id":              SKU(csSKU, 100),
			"properties.content_name":            Text(200),
			"properties.contents[].content_id":   SKU(csSKU, 100),
			"properties.contents[].content_type": Enum("product", "product_group"),
			"properties.contents[].content_name": Text(200),
			"properties.contents[].quantity":     Int(6),
			"properties.contents[].price":        Dec(20),
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
			// Cross-day linkers: the visit count and new-visitor flag, the visitor's local
			// time (h, m, s: with the truncated IP a time zone and a clock).
			"_idvc", "_idn", "h", "m", "s",
			"pv_id", // page view ID: it outlives midnight with the page, so it is hashed daily too
		},
		// Kinds: the Tracking HTTP API reference, developer.matomo.org/api-reference/
		// tracking-api (idsite numeric, rec=1, apiv=1, res "1280x1024", lang an
		// Accept-Language value, pv_id six characters, e_v "a float or integer", revenue
		// and ec_* amounts, idgoal numeric, c_t "the URL of a landing page", gt_ms and the
		// pf_* timings in milliseconds; action_name, e_c/e_a/e_n and c_n/c_p/c_i text).
		Allow: map[string]Value{
			"idsite": Int(10), "rec": Enum("1"), "apiv": Enum("1"), "r": Token(csAlnum, 10),
			"send_image": Enum("0", "1"), "ping": Enum("0", "1"), "ca": Enum("0", "1"), "cookie": Enum("0", "1"),
			"res": Screen, "lang": Lang,
			"_id": ID, "pv_id": ShortID(6),
			"url": PageURL, "urlref": Referrer, "link": LinkURL, "download": LinkURL, "action_name": Text(300),
			"e_c": Text(100), "e_a": Text(100), "e_n": Text(300), "e_v": Dec(20),
			"c_n": Text(300), "c_p": Text(300), "c_t": LinkURL, "c_i": Text(100),
			"idgoal": Int(10), "revenue": Dec(20), "ec_st": Dec(20), "ec_tx": Dec(20), "ec_sh": Dec(20), "ec_dt": Dec(20),
			"search_cat": Text(100), "search_count": Int(10),
			"gt_ms": Int(10), "pf_net": Int(10), "pf_srv": Int(10), "pf_tfr": Int(10), "pf_dm1": Int(10), "pf_dm2": Int(10), "pf_onl": Int(10),
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
		// not allowed; URLs are scrubbed.
		Identifiers: nil,
		// Kinds: plausible.io/docs/events-api (name up to 120 characters, url and
		// referrer URLs, domain a comma-separated list of domains, revenue currency an ISO
		// 4217 code and amount a number or numeric string, interactive a boolean); h
		// (hash mode, 1) and w (screen width) from the script's traffic.
		AllowJSON: map[string]Value{
			"name": Text(120), "n": Text(120), "url": PageURL, "u": PageURL,
			"domain": VendorID(csHostList, 253), "d": VendorID(csHostList, 253),
			"referrer": Referrer, "r": Referrer, "h": Enum("0", "1"), "w": Screen,
			"interactive": Enum("true", "false"), "i": Enum("true", "false"),
			"revenue.currency": Currency, "revenue.amount": Dec(20),
		},
		IP:     IPPass{Header: "X-Forwarded-For"},
		Local:  NoContent,
		Source: "Plausible Events API: plausible.io/docs/events-api (name, url, domain, referrer, props, revenue, interactive; the script sends the short forms n, u, d, r, p/m, h)",

		PropertyJSON: []string{"domain", "d"}, // the site as registered in Plausible
	},
}

// googleAdsAllow is shared by the Google Ads endpoints: gtag.js sends them the same
// parameter set. Order IDs and auid (the _gcl_au first-party ID) are identifiers.
//
// Kinds: Google documents only the noscript pixel (label, guid=ON, script=0); the rest
// follows the conversion and remarketing requests AMP builds for the same endpoints
// (ampproject/amphtml extensions/amp-analytics vendors/googleadwords: random, url, ref,
// fst a page view ID, num a counter, u_h/u_w the screen, tiba the
// title, value and currency_code, bg a colour) and gtag.js traffic for the others.
var googleAdsAllow = map[string]Value{
	"random": Int(20), "rnd": Int(20), "cv": Token(csVersion, 20), "fst": Int(20), "num": Int(4),
	"label": VendorID(csWord, 64), "guid": Enum("ON", "OFF"), "script": Enum("0", "1"), "bg": Token("0-9A-Fa-f#", 7),
	"en":  Name(csEventName, 40),
	"tid": VendorID(csTagID, 20), "frm": Enum("0", "1", "2"), "value": Dec(20), "currency_code": Currency,
	"bttype": Name(csWord, 40), "hn": Token(csHost, 253),
	"tiba": Text(300), "u_w": Screen, "u_h": Screen, "navt": Token("a-z", 4), "scrsrc": Token(csHost, 253),
	"url": PageURL, "ref": Referrer, "dl": PageURL, "dr": Referrer,
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
