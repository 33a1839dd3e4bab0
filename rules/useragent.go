// The User-Agent reducer of anonymised hits. A full User-Agent string is one of the
// strongest passive fingerprints a request carries (OS build, device model, minor
// versions, in-app browser tokens), so an anonymised hit carries only what the browsers
// themselves reduced theirs to: browser and major version, OS family and whether the
// device is a phone or a tablet, written in the browser's own reduced shape so that
// vendors' parsers read it as before. Nothing of the input is copied: the output is
// built from the constant pieces below and the parsed major numbers.
//
// The shapes follow each browser's own reduction:
//   - Chromium (Chrome, Edge, Opera, Samsung Internet): Chrome's "User-Agent Reduction",
//     https://www.chromium.org/updates/ua-reduction/ ("Reduced User Agent String
//     Reference": Mozilla/5.0 (<unifiedPlatform>) AppleWebKit/537.36 (KHTML, like Gecko)
//     Chrome/<majorVersion>.0.0.0 <deviceCompat>Safari/537.36), with the unifiedPlatform
//     values of Chromium's components/embedder_support/user_agent_utils.cc
//     ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7",
//     "X11; Linux x86_64", "X11; CrOS x86_64 14541.0.0") and, since Phase 6 (M110),
//     "Linux; Android 10; K" on Android with deviceCompat "Mobile " on phones only.
//   - Firefox: MDN "Firefox user agent string reference" (Mozilla/5.0 (platform;
//     rv:geckoversion) Gecko/geckotrail Firefox/firefoxversion, geckotrail 20100101 on
//     desktop and the version on Android).
//   - Safari: macOS Safari already freezes "Intel Mac OS X 10_15_7" and the WebKit
//     tokens; Safari 26 on iOS/iPadOS freezes the OS as "18_6" (WebKit, "WebKit Features
//     in Safari 26.0", September 2025), which this reducer uses for every iOS browser.

package rules

import (
	"strconv"
	"strings"
	"unsafe"
)

// MaxUserAgent is the longest User-Agent the reducer reads. Real browsers' strings are
// under 512 bytes even with in-app tokens; anything longer is not a browser and is not
// sent rather than scanned.
const MaxUserAgent = 1024

// MaxReducedUserAgent bounds what ReduceUserAgent appends, so a caller can size dst once.
const MaxReducedUserAgent = 192

type uaBrowser uint8

const (
	uaUnknown uaBrowser = iota
	uaChrome
	uaEdge
	uaOpera
	uaSamsung
	uaFirefox
	uaSafari
)

type uaOS uint8

const (
	osUnknown uaOS = iota
	osWindows
	osMac
	osLinux
	osChromeOS
	osAndroid
	osIPhone // and iPod touch
	osIPad   // only when the iPad asks for the mobile site; by default it says Macintosh
)

// uaBots are crawlers named as such: vendors filter them out by name, so the reduced
// string keeps the name (and only the name). Checked before the browsers, because
// several (Googlebot smartphone, bingbot) carry a full Chrome string too.
var uaBots = []string{
	"Googlebot", "AdsBot-Google", "Mediapartners-Google", "Google-InspectionTool", "APIs-Google",
	"bingbot", "BingPreview", "DuckDuckBot", "Baiduspider", "YandexBot", "Applebot", "Slurp",
	"facebookexternalhit", "meta-externalagent", "Twitterbot", "LinkedInBot", "Pinterestbot",
	"AhrefsBot", "SemrushBot", "MJ12bot", "DotBot", "PetalBot", "Bytespider", "GPTBot",
	"ClaudeBot", "CCBot", "Amazonbot", "PerplexityBot",
}

// uaGenericBot marks automated clients without a listed name; they all become
// genericBotUA, which itself carries the last marker, so reducing is idempotent.
var uaGenericBot = []string{
	"bot/", "Bot/", "bot;", "Bot;", "crawler", "Crawler", "spider", "Spider",
	"HeadlessChrome", "Lighthouse", "PhantomJS", "+http", "curl/", "Wget/",
	"python-requests", "Python-urllib", "aiohttp", "Go-http-client", "okhttp/", "Java/",
	"axios/", "node-fetch", "undici", "PostmanRuntime", "libwww-perl", "(compatible; bot)",
}

const genericBotUA = "Mozilla/5.0 (compatible; bot)"

type uaMarker struct {
	s   string
	bot int // index in uaBots; -1 for a generic marker
}

// uaMarkers indexes the crawler markers by first byte, so that finding them is one
// pass over the string rather than a search per marker.
var uaMarkers = func() *[256][]uaMarker {
	var t [256][]uaMarker
	for i, b := range uaBots {
		t[b[0]] = append(t[b[0]], uaMarker{b, i})
	}
	for _, m := range uaGenericBot {
		t[m[0]] = append(t[m[0]], uaMarker{m, -1})
	}
	return &t
}()

// uaBotOf finds the first named crawler in s (bot, an index in uaBots; -1 if none) and
// whether any generic marker is there.
func uaBotOf(s string) (bot int, generic bool) {
	for i := 0; i < len(s); i++ {
		for _, m := range uaMarkers[s[i]] {
			if strings.HasPrefix(s[i:], m.s) {
				if m.bot >= 0 {
					return m.bot, true
				}
				generic = true
			}
		}
	}
	return -1, generic
}

// ReduceUserAgent appends the reduced form of ua to dst (at most MaxReducedUserAgent
// bytes) and returns it. A string that is not a recognisable browser or crawler (empty,
// garbage, over MaxUserAgent bytes, with control characters) appends nothing: the
// header is then not sent. It allocates nothing when dst has room, and it is
// idempotent: a reduced string reduces to itself.
func ReduceUserAgent(dst, ua []byte) []byte {
	if len(ua) == 0 || len(ua) > MaxUserAgent {
		return dst
	}
	for _, c := range ua {
		if c < 0x20 || c == 0x7f {
			return dst
		}
	}
	s := unsafe.String(unsafe.SliceData(ua), len(ua))
	switch bot, generic := uaBotOf(s); {
	case bot >= 0:
		dst = append(dst, "Mozilla/5.0 (compatible; "...)
		dst = append(dst, uaBots[bot]...)
		return append(dst, ')')
	case generic:
		return append(dst, genericBotUA...)
	}
	plat := uaOSOf(s)
	if plat == osUnknown {
		return dst
	}
	phone := plat == osIPhone || plat == osAndroid && strings.Contains(s, "Mobile")
	browser, major, chrome := uaBrowserOf(s, plat)
	if browser == uaUnknown {
		return dst
	}
	switch {
	case plat == osIPhone || plat == osIPad:
		return appendIOS(dst, plat, browser, major)
	case browser == uaFirefox:
		return appendFirefox(dst, plat, phone, major)
	case browser == uaSafari:
		if plat != osMac {
			return dst // Safari runs on Apple systems only; anything else is lying
		}
		dst = append(dst, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/"...)
		dst = strconv.AppendUint(dst, uint64(major), 10)
		return append(dst, ".0 Safari/605.1.15"...)
	}
	return appendChromium(dst, plat, phone, browser, major, chrome)
}

// uaOSOf finds the OS family. Order matters: iOS strings say "like Mac OS X", Android
// ones "Linux", ChromeOS ones "X11".
func uaOSOf(s string) uaOS {
	switch {
	case strings.Contains(s, "iPhone") || strings.Contains(s, "iPod"):
		return osIPhone
	case strings.Contains(s, "iPad"):
		return osIPad
	case strings.Contains(s, "Android"):
		return osAndroid
	case strings.Contains(s, "CrOS"):
		return osChromeOS
	case strings.Contains(s, "Windows"):
		return osWindows
	case strings.Contains(s, "Macintosh") || strings.Contains(s, "Mac OS X"):
		return osMac
	case strings.Contains(s, "Linux") || strings.Contains(s, "X11"):
		return osLinux
	}
	return osUnknown
}

type uaBrand struct {
	tok string
	b   uaBrowser
}

// iosBrands are the iOS shells' tokens; Safari's own is Version/.
var iosBrands = []uaBrand{{"CriOS/", uaChrome}, {"FxiOS/", uaFirefox}, {"EdgiOS/", uaEdge}, {"Version/", uaSafari}}

// chromiumBrands are the Chromium browsers that keep their own token in the reduced
// string; any other Chromium browser (Brave, Vivaldi, web views) reads as Chrome.
var chromiumBrands = []uaBrand{{"Edg/", uaEdge}, {"EdgA/", uaEdge}, {"OPR/", uaOpera}, {"SamsungBrowser/", uaSamsung}}

// uaBrowserOf finds the browser and its major version; chrome is the Chromium major
// that Edge, Opera and Samsung Internet also carry. Tokens are checked most specific
// first: every Chromium browser also says "Chrome/" and "Safari/".
func uaBrowserOf(s string, plat uaOS) (b uaBrowser, major, chrome uint16) {
	if plat == osIPhone || plat == osIPad {
		// Every iOS browser is WebKit; the brand token says whose shell it is.
		for _, t := range iosBrands {
			if v, ok := uaVersion(s, t.tok); ok {
				return t.b, v, 0
			}
		}
		// In-app web views (no brand, no Version/) run the system WebKit, whose major
		// is the iOS major.
		if v, ok := uaVersion(s, " OS "); ok {
			return uaSafari, v, 0
		}
		return uaUnknown, 0, 0
	}
	chrome, hasChrome := uaVersion(s, "Chrome/")
	for _, t := range chromiumBrands {
		if v, ok := uaVersion(s, t.tok); ok {
			if !hasChrome {
				return uaUnknown, 0, 0
			}
			return t.b, v, chrome
		}
	}
	if v, ok := uaVersion(s, "Firefox/"); ok {
		return uaFirefox, v, 0
	}
	if hasChrome {
		return uaChrome, chrome, chrome
	}
	if v, ok := uaVersion(s, "Version/"); ok && strings.Contains(s, "Safari/") {
		return uaSafari, v, 0
	}
	return uaUnknown, 0, 0
}

// uaVersion reads the major version that follows the first tok in s: 1 to 3 digits,
// not 0, followed by '.', '_', ' ', ';', ')' or the end. Anything else is not a version
// a browser sends.
func uaVersion(s, tok string) (uint16, bool) {
	i := strings.Index(s, tok)
	if i < 0 {
		return 0, false
	}
	s = s[i+len(tok):]
	var v uint16
	n := 0
	for n < len(s) && n < 4 && '0' <= s[n] && s[n] <= '9' {
		v = v*10 + uint16(s[n]-'0')
		n++
	}
	if n == 0 || n > 3 || v == 0 {
		return 0, false
	}
	if n < len(s) {
		switch s[n] {
		case '.', '_', ' ', ';', ')':
		default:
			return 0, false
		}
	}
	return v, true
}

// Chromium's unifiedPlatform values (see the file comment).
var chromiumPlatform = [...]string{
	osWindows:  "Windows NT 10.0; Win64; x64",
	osMac:      "Macintosh; Intel Mac OS X 10_15_7",
	osLinux:    "X11; Linux x86_64",
	osChromeOS: "X11; CrOS x86_64 14541.0.0",
	osAndroid:  "Linux; Android 10; K",
}

func appendChromium(dst []byte, plat uaOS, phone bool, b uaBrowser, major, chrome uint16) []byte {
	dst = append(dst, "Mozilla/5.0 ("...)
	dst = append(dst, chromiumPlatform[plat]...)
	dst = append(dst, ") AppleWebKit/537.36 (KHTML, like Gecko) "...)
	if b == uaSamsung {
		dst = append(dst, "SamsungBrowser/"...)
		dst = strconv.AppendUint(dst, uint64(major), 10)
		dst = append(dst, ".0 "...)
	}
	dst = append(dst, "Chrome/"...)
	dst = strconv.AppendUint(dst, uint64(chrome), 10)
	dst = append(dst, ".0.0.0 "...)
	if phone {
		dst = append(dst, "Mobile "...)
	}
	dst = append(dst, "Safari/537.36"...)
	switch b {
	case uaEdge:
		if plat == osAndroid {
			dst = append(dst, " EdgA/"...)
		} else {
			dst = append(dst, " Edg/"...)
		}
	case uaOpera:
		dst = append(dst, " OPR/"...)
	default:
		return dst
	}
	dst = strconv.AppendUint(dst, uint64(major), 10)
	return append(dst, ".0.0.0"...)
}

func appendFirefox(dst []byte, plat uaOS, phone bool, major uint16) []byte {
	dst = append(dst, "Mozilla/5.0 ("...)
	switch plat {
	case osWindows:
		dst = append(dst, "Windows NT 10.0; Win64; x64"...)
	case osMac:
		dst = append(dst, "Macintosh; Intel Mac OS X 10.15"...)
	case osAndroid:
		if phone {
			dst = append(dst, "Android 10; Mobile"...)
		} else {
			dst = append(dst, "Android 10; Tablet"...)
		}
	default: // Linux, and ChromeOS (where Firefox runs in the Linux container)
		dst = append(dst, "X11; Linux x86_64"...)
	}
	dst = append(dst, "; rv:"...)
	dst = strconv.AppendUint(dst, uint64(major), 10)
	if plat == osAndroid {
		dst = append(dst, ".0) Gecko/"...)
		dst = strconv.AppendUint(dst, uint64(major), 10)
		dst = append(dst, ".0 Firefox/"...)
	} else {
		dst = append(dst, ".0) Gecko/20100101 Firefox/"...)
	}
	dst = strconv.AppendUint(dst, uint64(major), 10)
	return append(dst, ".0"...)
}

func appendIOS(dst []byte, plat uaOS, b uaBrowser, major uint16) []byte {
	if plat == osIPad {
		dst = append(dst, "Mozilla/5.0 (iPad; CPU OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "...)
	} else {
		dst = append(dst, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "...)
	}
	suffix := ".0.0.0"
	switch b {
	case uaChrome:
		dst = append(dst, "CriOS/"...)
	case uaEdge:
		dst = append(dst, "EdgiOS/"...)
	case uaFirefox:
		dst, suffix = append(dst, "FxiOS/"...), ".0"
	default:
		dst, suffix = append(dst, "Version/"...), ".0"
	}
	dst = strconv.AppendUint(dst, uint64(major), 10)
	dst = append(dst, suffix...)
	return append(dst, " Mobile/15E148 Safari/604.1"...)
}
