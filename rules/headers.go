// Request headers by allow-list, per action. A hit's headers are never copied wholesale:
// only the headers listed for the hit's action go upstream, each value rebuilt or
// checked by its rule. Anything else the browser, a CDN or an auth proxy in front of the
// site added (identity headers such as X-Forwarded-Email or Remote-User, client
// certificate subjects, CDN client-IP headers, cookies, credentials) is not sent, under
// whatever name it arrives, so no header from the hit can carry a client IP upstream:
// the only IP a vendor gets is the proxy's own pass (IPPass).

package rules

import (
	"bytes"
	"strconv"
	"strings"
)

// HeaderRule is one request header that may go upstream, and how its value is built
// from the browser's.
type HeaderRule struct {
	// Name as fasthttp canonicalises it.
	Name string
	// BodyOnly: sent only when the upstream request has a body (Content-Type describes
	// one, and fasthttp would otherwise describe an empty body).
	BodyOnly bool
	build    func(dst, v []byte) ([]byte, bool)
}

// Build appends to dst the value to send for the browser's value v; ok false means the
// header is not sent. A value over MaxHeaderValue is never sent.
func (r *HeaderRule) Build(dst, v []byte) (out []byte, ok bool) {
	if len(v) == 0 || len(v) > MaxHeaderValue {
		return dst, false
	}
	out, ok = r.build(dst, v)
	if !ok || len(out) == len(dst) {
		return dst, false
	}
	return out, true
}

// MaxHeaderValue bounds a header value that goes upstream. The values vendors use
// (User-Agent, Accept-Language, client hints) are far shorter; a longer one is not a
// browser's.
const MaxHeaderValue = 2048

// forwardHeaders are what vendors use of a consented hit: the browser's own description
// (User-Agent and the Sec-CH-UA client hints, https://wicg.github.io/ua-client-hints/),
// content negotiation, the body's type, and where the hit comes from (Origin, and the
// Referer cut to its origin: a full page URL can hold a reset token or an e-mail
// address, and the hit's own page URL parameters say what the vendor needs).
var forwardHeaders = []HeaderRule{
	{Name: "User-Agent", build: checkedValue},
	{Name: "Accept", build: checkedValue},
	{Name: "Accept-Language", build: checkedValue},
	{Name: "Content-Type", BodyOnly: true, build: forwardContentType},
	{Name: "Origin", build: originValue},
	{Name: "Referer", build: refererOrigin},
	{Name: "Sec-Ch-Ua", build: checkedValue},
	{Name: "Sec-Ch-Ua-Arch", build: checkedValue},
	{Name: "Sec-Ch-Ua-Bitness", build: checkedValue},
	{Name: "Sec-Ch-Ua-Form-Factors", build: checkedValue},
	{Name: "Sec-Ch-Ua-Full-Version", build: checkedValue},
	{Name: "Sec-Ch-Ua-Full-Version-List", build: checkedValue},
	{Name: "Sec-Ch-Ua-Mobile", build: checkedValue},
	{Name: "Sec-Ch-Ua-Model", build: checkedValue},
	{Name: "Sec-Ch-Ua-Platform", build: checkedValue},
	{Name: "Sec-Ch-Ua-Platform-Version", build: checkedValue},
	{Name: "Sec-Ch-Ua-Wow64", build: checkedValue},
}

// anonymiseHeaders are rebuilt from a small vocabulary, never copied: the reduced
// User-Agent, the first language's primary subtag and the body's media type and
// charset. Accept is not needed: an anonymised hit is answered locally, so what the
// vendor would answer in is never read. Origin and Referer are not sent: the allow-listed
// page URL parameters, cleaned, say what the vendor needs, and client hints are
// fingerprinting.
var anonymiseHeaders = []HeaderRule{
	{Name: "User-Agent", build: reducedUserAgent},
	{Name: "Accept-Language", build: primaryLanguage},
	{Name: "Content-Type", BodyOnly: true, build: anonymisedContentType},
}

// UpstreamHeaders lists the request headers that may go upstream for a hit under
// action a, in the order they are written; a dropped hit sends nothing.
func UpstreamHeaders(a Action) []HeaderRule {
	switch a {
	case Forward:
		return forwardHeaders
	case Anonymise:
		return anonymiseHeaders
	}
	return nil
}

// checkedValue passes a value with no control characters (RFC 9110 §5.5: field values
// are visible characters, spaces and tabs; CR, LF and NUL are never valid).
func checkedValue(dst, v []byte) ([]byte, bool) {
	for _, c := range v {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return dst, false
		}
	}
	return append(dst, v...), true
}

func reducedUserAgent(dst, v []byte) ([]byte, bool) {
	return ReduceUserAgent(dst, v), true
}

// primaryLanguage keeps the primary language subtag of the first Accept-Language
// range ("de-CH,de;q=0.9,en;q=0.8" → "de"), lower-cased, when it is a language: an
// ISO 639-1 code, or "fil", the one three-letter code browsers offer with real use
// (Chrome's Filipino). Anything else sends nothing, so the header cannot carry an
// invented code (fetch may set Accept-Language from a page's script). Later ranges are
// not looked at: the list and its order are the fingerprint.
func primaryLanguage(dst, v []byte) ([]byte, bool) {
	v = hdrTrimOWS(v)
	n := 0
	for n < len(v) && hdrAlpha(v[n]) {
		n++
	}
	if n != 2 && n != 3 {
		return dst, false
	}
	if n < len(v) {
		switch v[n] {
		case '-', ',', ';', ' ', '\t':
		default:
			return dst, false
		}
	}
	a, b := v[0]|0x20, v[1]|0x20
	switch {
	case n == 2 && iso6391[a-'a']&(1<<(b-'a')) != 0:
		return append(dst, a, b), true
	case n == 3 && hdrEqualFold(v[:3], "fil"):
		return append(dst, "fil"...), true
	}
	return dst, false
}

// iso6391 is the set of ISO 639-1 codes, a bit per second letter for each first
// letter: the 183 two-letter codes of the Library of Congress ISO 639-2 code list
// (https://www.loc.gov/standards/iso639-2/php/code_list.php), "bh" withdrawn.
var iso6391 = func() (set [26]uint32) {
	const codes = "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu " +
		"cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho " +
		"hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv " +
		"kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr " +
		"nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq " +
		"sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh " +
		"yi yo za zh zu"
	for i := 0; i+1 < len(codes); i += 3 {
		set[codes[i]-'a'] |= 1 << (codes[i+1] - 'a')
	}
	return set
}()

// anonymisedMediaTypes are the body types the anonymiser writes (form, beacon lines as
// text, JSON); the hit's type is sent only if it is one of them, as the constant.
var anonymisedMediaTypes = []string{"application/x-www-form-urlencoded", "text/plain", "application/json"}

// anonymisedContentType re-serialises the media type and, when it is UTF-8 (what
// fetch, sendBeacon and XMLHttpRequest send), the charset; every other parameter is
// left behind (a "text/plain; uid=john@…" keeps nothing of the uid).
func anonymisedContentType(dst, v []byte) ([]byte, bool) {
	ct, ok := parseContentType(v)
	if !ok {
		return dst, false
	}
	for _, mt := range anonymisedMediaTypes {
		if hdrEqualFold(ct.mediaType, mt) {
			dst = append(dst, mt...)
			if hdrEqualFold(ct.charset, "utf-8") {
				dst = append(dst, "; charset=utf-8"...)
			}
			return dst, true
		}
	}
	return dst, false
}

// forwardContentType re-serialises the media type, lower-cased, with the charset and,
// for multipart bodies (a FormData beacon), the boundary the body needs to be read;
// other parameters are not sent.
func forwardContentType(dst, v []byte) ([]byte, bool) {
	ct, ok := parseContentType(v)
	if !ok {
		return dst, false
	}
	dst = hdrAppendLower(dst, ct.mediaType)
	if len(ct.charset) > 0 {
		dst = append(dst, "; charset="...)
		dst = hdrAppendLower(dst, ct.charset)
	}
	if len(ct.boundary) > 0 && hdrHasPrefixFold(ct.mediaType, "multipart/") {
		dst = append(dst, "; boundary="...)
		dst = hdrAppendParam(dst, ct.boundary)
	}
	return dst, true
}

type contentType struct {
	mediaType []byte // type "/" subtype, as written
	charset   []byte // token, unquoted
	boundary  []byte // RFC 2046 §5.1.1 bchars, unquoted
}

// parseContentType reads a media type and its charset and boundary parameters
// (RFC 9110 §8.3.1: type "/" subtype *( OWS ";" OWS parameter ), a parameter value a
// token or quoted-string). A parameter that does not parse is skipped; a media type
// that does not parse fails. Quoted values are used only when their content
// is plain (no escapes): what is sent is rebuilt, never the quoted bytes.
func parseContentType(v []byte) (ct contentType, ok bool) {
	v = hdrTrimOWS(v)
	typ := hdrTokenLen(v)
	if typ == 0 || typ >= len(v) || v[typ] != '/' {
		return ct, false
	}
	sub := hdrTokenLen(v[typ+1:])
	if sub == 0 {
		return ct, false
	}
	ct.mediaType = v[:typ+1+sub]
	rest := hdrTrimOWS(v[typ+1+sub:])
	if len(rest) > 0 && rest[0] != ';' {
		return ct, false // "text/plain x": not a media type
	}
	for len(rest) > 0 {
		// rest starts at a ';'. A parameter that is not name=value, with the value a
		// token or a plain quoted-string, is skipped up to the next ';'.
		var seg []byte
		seg, rest = nextParam(rest[1:])
		seg = hdrTrimOWS(seg)
		n := hdrTokenLen(seg)
		if n == 0 || n >= len(seg) || seg[n] != '=' {
			continue
		}
		name, val := seg[:n], seg[n+1:]
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
			if bytes.IndexByte(val, '"') >= 0 || bytes.IndexByte(val, '\\') >= 0 {
				continue // escapes: not a value a browser writes
			}
		} else if hdrTokenLen(val) != len(val) {
			continue
		}
		switch {
		case hdrEqualFold(name, "charset"):
			if len(val) > 0 && hdrTokenLen(val) == len(val) && len(val) <= 40 && ct.charset == nil {
				ct.charset = val
			}
		case hdrEqualFold(name, "boundary"):
			if hdrBoundary(val) && ct.boundary == nil {
				ct.boundary = val
			}
		}
	}
	return ct, true
}

// nextParam splits v at the first ';' outside a quoted string; rest keeps the ';'.
func nextParam(v []byte) (seg, rest []byte) {
	quoted := false
	for i, c := range v {
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			quoted = false // an escape: the parameter is skipped anyway; do not let it hide a ';'
		case c == ';' && !quoted:
			return v[:i], v[i:]
		}
	}
	return v, nil
}

// hdrBoundary: 1 to 70 bchars, not ending in a space (RFC 2046 §5.1.1).
func hdrBoundary(b []byte) bool {
	if len(b) == 0 || len(b) > 70 || b[len(b)-1] == ' ' {
		return false
	}
	for _, c := range b {
		if !hdrAlpha(c) && !('0' <= c && c <= '9') && strings.IndexByte("'()+_,-./:=? ", c) < 0 {
			return false
		}
	}
	return true
}

// hdrAppendParam writes v as a token, or quoted when it has characters a token may
// not (a boundary may hold spaces, parentheses, ...; never a quote or backslash).
func hdrAppendParam(dst, v []byte) []byte {
	if hdrTokenLen(v) == len(v) {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	dst = append(dst, v...)
	return append(dst, '"')
}

// originValue re-serialises an Origin header (RFC 6454 §7: "null" or
// scheme "://" host [ ":" port ]); "null" (sandboxed frames, file pages) is not sent.
func originValue(dst, v []byte) ([]byte, bool) {
	return appendOrigin(dst, v, false)
}

// refererOrigin keeps only the origin of the Referer, with the "/" path browsers send
// under the strict-origin policies (https://www.w3.org/TR/referrer-policy/#strict-origin):
// "https://shop.example/reset?token=…" → "https://shop.example/".
func refererOrigin(dst, v []byte) ([]byte, bool) {
	return appendOrigin(dst, v, true)
}

// appendOrigin parses an absolute http(s) URL far enough to rebuild its origin:
// scheme and host lower-cased, user info dropped, a default port dropped, a host of
// letters, digits, '-', '.' and '_' or a bracketed IPv6 literal. Anything else sends
// nothing.
func appendOrigin(dst, v []byte, slash bool) ([]byte, bool) {
	var scheme string
	switch {
	case hdrHasPrefixFold(v, "https://"):
		scheme, v = "https", v[len("https://"):]
	case hdrHasPrefixFold(v, "http://"):
		scheme, v = "http", v[len("http://"):]
	default:
		return dst, false
	}
	end := len(v)
	for i, c := range v {
		if c == '/' || c == '?' || c == '#' || c == '\\' {
			end = i
			break
		}
	}
	auth := v[:end]
	if i := bytes.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	host, port := auth, []byte(nil)
	if len(auth) > 0 && auth[0] == '[' {
		j := bytes.IndexByte(auth, ']')
		if j < 0 {
			return dst, false
		}
		host, auth = auth[:j+1], auth[j+1:]
		for _, c := range host[1 : len(host)-1] {
			if !hdrHex(c) && c != ':' && c != '.' {
				return dst, false
			}
		}
		if len(host) < 4 {
			return dst, false
		}
		if len(auth) > 0 {
			if auth[0] != ':' {
				return dst, false
			}
			port = auth[1:]
		}
	} else {
		if i := bytes.IndexByte(auth, ':'); i >= 0 {
			host, port = auth[:i], auth[i+1:]
		}
		if len(host) == 0 || len(host) > 253 {
			return dst, false
		}
		for _, c := range host {
			if !hdrAlpha(c) && !('0' <= c && c <= '9') && c != '-' && c != '.' && c != '_' {
				return dst, false
			}
		}
	}
	if len(port) > 5 {
		return dst, false
	}
	p := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return dst, false
		}
		p = p*10 + int(c-'0')
	}
	if len(port) > 0 && (p == 0 || p > 65535) {
		return dst, false
	}
	dst = append(dst, scheme...)
	dst = append(dst, "://"...)
	dst = hdrAppendLower(dst, host)
	if len(port) > 0 && !(scheme == "https" && p == 443 || scheme == "http" && p == 80) {
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(p), 10)
	}
	if slash {
		dst = append(dst, '/')
	}
	return dst, true
}

func hdrHasPrefixFold(v []byte, prefix string) bool {
	return len(v) >= len(prefix) && hdrEqualFold(v[:len(prefix)], prefix)
}

// hdrEqualFold compares ASCII case-insensitively, without converting s (a conversion of
// a longer string to []byte would allocate).
func hdrEqualFold(v []byte, s string) bool {
	if len(v) != len(s) {
		return false
	}
	for i := range len(v) {
		a, b := v[i], s[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func hdrAppendLower(dst, v []byte) []byte {
	for _, c := range v {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// hdrTokenLen is the length of the RFC 9110 token at the start of v.
func hdrTokenLen(v []byte) int {
	for i, c := range v {
		if !hdrTokenChar(c) {
			return i
		}
	}
	return len(v)
}

func hdrTokenChar(c byte) bool {
	if hdrAlpha(c) || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func hdrAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func hdrHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }

func hdrTrimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}
