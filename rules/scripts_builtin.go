package rules

// ScriptSpec is one tag script of the built-in catalogue: where the site loads it on the
// proxy, where the proxy fetches it, and the only query parameters that go with it.
type ScriptSpec struct {
	Name string // unique; labels metrics and names the scripts.<name> config entry
	// Vendor is the catalogue vendor whose script it is. A script without an Upstream
	// takes its host from upstreams.<vendor> (self-hosted Matomo), and is off while that
	// is the catalogue's placeholder.
	Vendor string
	Path   string // first-party path, after scripts.prefix
	// Upstream is the script's URL at the vendor; empty: upstreams.<vendor> and
	// UpstreamPath.
	Upstream     string
	UpstreamPath string
	// Params are the query parameters passed on to the vendor, each a token
	// (config.IsScriptToken); Required must be present. Nothing else of the request
	// goes upstream.
	Params   []string
	Required []string
	// Variants are extensions the vendor combines into one file name: the script at
	// "<Path without .js>.<a>.<b>.js" is fetched from "<upstream without .js>.<a>.<b>.js",
	// each extension one of these, at most once, in the order of this list whatever the
	// order asked for.
	Variants []string
	Source   string // the vendor documentation the URL and parameters come from
}

// builtinScripts are served unless the config disables them (scripts.<name>.disabled).
var builtinScripts = []ScriptSpec{
	{
		Name: "gtag", Vendor: "ga4", Path: "/gtag/js",
		Upstream: "https://www.googletagmanager.com/gtag/js",
		Params:   []string{"id", "l"}, Required: []string{"id"},
		Source: "Google tag: developers.google.com/tag-platform/gtagjs/install " +
			"(<script async src=\"https://www.googletagmanager.com/gtag/js?id=TAG_ID\">); " +
			"l names a data layer other than dataLayer",
	},
	{
		Name: "gtm", Vendor: "ga4", Path: "/gtm.js",
		Upstream: "https://www.googletagmanager.com/gtm.js",
		// gtm_auth, gtm_preview and gtm_cookies_win select a Tag Manager environment
		// (the environment's snippet adds them); they name the container's version, not
		// the visitor.
		Params:   []string{"id", "l", "gtm_auth", "gtm_preview", "gtm_cookies_win"},
		Required: []string{"id"},
		Source: "Google Tag Manager install snippet: support.google.com/tagmanager/answer/6103696 " +
			"(j.src='https://www.googletagmanager.com/gtm.js?id='+i+dl, dl = '&l='+l for a data layer " +
			"other than dataLayer); an environment's snippet adds '&gtm_auth=…&gtm_preview=env-N&gtm_cookies_win=x' " +
			"(Tag Manager Admin → Environments)",
	},
	{
		Name: "matomo", Vendor: "matomo", Path: "/matomo.js",
		UpstreamPath: "/matomo.js",
		Source: "Matomo JavaScript tracking code: developer.matomo.org/guides/tracking-javascript-guide " +
			"(g.src=u+'matomo.js', _paq.push(['setTrackerUrl', u+'matomo.php']) on the site's own Matomo host)",
	},
	{
		Name: "plausible", Vendor: "plausible", Path: "/js/script.js",
		Upstream: "https://plausible.io/js/script.js",
		// Sorted: a variant is fetched with its extensions in this order, which is how
		// Plausible's server sorts them (any order names the same file).
		Variants: []string{"compat", "exclusions", "file-downloads", "hash", "local", "manual",
			"outbound-links", "pageleave", "pageview-props", "revenue", "tagged-events"},
		Source: "Plausible: plausible.io/docs/plausible-script and plausible.io/docs/script-extensions " +
			"(script.js, extensions combined as script.<ext>.<ext>.js); the server's tracker plug " +
			"(github.com/plausible/analytics lib/plausible_web/plugs/tracker.ex) takes the extensions " +
			"in any order and sorts them; the script posts to /api/event on the origin it was loaded " +
			"from unless data-api says otherwise",
	},
	{
		Name: "fbevents", Vendor: "meta", Path: "/en_US/fbevents.js",
		Upstream: "https://connect.facebook.net/en_US/fbevents.js",
		Source: "Meta Pixel base code: developers.facebook.com/docs/meta-pixel/get-started " +
			"(t.src='https://connect.facebook.net/en_US/fbevents.js'); the script itself then loads " +
			"connect.facebook.net/signals/config/<pixel ID> and sends to www.facebook.com/tr, which no " +
			"setting of the pixel changes (docs/INTEGRATION.md)",
	},
}

// BuiltinScripts returns the built-in tag scripts. The slice is shared: callers must not
// modify it.
func BuiltinScripts() []ScriptSpec { return builtinScripts }

// ScriptNames lists the built-in scripts' names, in catalogue order.
func ScriptNames() []string {
	names := make([]string, len(builtinScripts))
	for i, s := range builtinScripts {
		names[i] = s.Name
	}
	return names
}
