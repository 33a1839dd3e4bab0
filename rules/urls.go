// URL scrubbing: the KindURL values. A page URL carries session IDs, user info, click
// IDs and arbitrary query parameters, and its path carries what the site put there: a
// password-reset token, a numeric user ID, the address a confirmation link was sent to.
// A URL keeps its scheme and host, a path whose segments are scrubbed (placeholders for
// e-mail addresses, UUIDs, digit runs, tokens; the operator's path templates on top),
// and only the campaign parameters on the URL allow-list, with their values scrubbed as
// free text. A referrer from another site keeps only its origin: the path of a webmail
// message or a social profile says who the visitor is, the origin says where they came
// from, which is what referral reports show.

package rules

import (
	"bytes"
	"errors"
	"strings"

	"github.com/consentgate/consentgate/config"
)

// maxCampaignValue bounds a kept utm_* value, in bytes after scrubbing: GA4 keeps 100
// characters of an event parameter value, and a campaign value longer than that is
// carrying something else.
const maxCampaignValue = 100

// campaignScratch is the stack space for one campaign value while it is decoded and
// scrubbed.
const campaignScratch = 512

// maxHostLen is the longest DNS name.
const maxHostLen = 253

// hitState is what one hit's rewrite carries besides the output: what was removed, by
// kind, and the host of the hit's page URL, which a referrer is judged against. It
// lives on Anonymise's stack.
type hitState struct {
	removed [NumKinds]uint32
	// key hashes the hit's IDs: keyed by vendor, property and site (hasher.go); the zero
	// key hashes nothing, so an ID is removed rather than hashed with a known key.
	key *HashKey
	// hit is where the page host is looked up, lazily, for query and form hits; JSON
	// hits set it from the referrer's sibling member instead.
	hit       *Hit
	pageKnown bool
	pageLen   int
	pageHost  [maxHostLen]byte // lower-cased, without port
}

// setPageHost records the host of the page URL u (decoded); a URL without a host
// records none.
func (st *hitState) setPageHost(u []byte) {
	st.pageKnown, st.pageLen = true, 0
	if h, ok := hostOf(u); ok && len(h) <= len(st.pageHost) {
		for i, c := range h {
			st.pageHost[i] = lower(c)
		}
		st.pageLen = len(h)
	}
}

// pageHostOf returns the host of the hit's page URL, looking it up in the query and a
// form or lines body the first time.
func (a *Anonymiser) pageHostOf(st *hitState) []byte {
	if !st.pageKnown {
		st.pageKnown = true
		if st.hit != nil {
			if !a.findPage(st, st.hit.Query) && (a.body == BodyForm || a.body == BodyLines) {
				a.findPage(st, st.hit.Body)
			}
		}
	}
	return st.pageHost[:st.pageLen]
}

// findPage looks for the first page URL parameter in raw pairs ('&' or newline
// separated) and records its host.
func (a *Anonymiser) findPage(st *hitState, src []byte) bool {
	for len(src) > 0 {
		var pair []byte
		if i := bytes.IndexAny(src, "&\n"); i >= 0 {
			pair, src = src[:i], src[i+1:]
		} else {
			pair, src = src, nil
		}
		rawName, rawVal, _ := bytes.Cut(pair, eq)
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok {
			continue
		}
		if v := a.value(name); v == nil || v.Kind != KindURL || v.Role != RolePage {
			continue
		}
		// Only the host is needed: decode the start of the value, leniently.
		var ub [512]byte
		u := ub[:0]
		for i := 0; i < len(rawVal) && len(u) < len(ub); i++ {
			c := rawVal[i]
			switch {
			case c == '+':
				c = ' '
			case c == '%' && i+2 < len(rawVal) && isHex(rawVal[i+1]) && isHex(rawVal[i+2]):
				c = unhex(rawVal[i+1])<<4 | unhex(rawVal[i+2])
				i += 2
			}
			u = append(u, c)
		}
		st.setPageHost(u)
		return true
	}
	return false
}

// splitURL cuts an absolute http(s) URL into its scheme (written form), host (with port,
// without user info) and the rest (path, query, fragment). ok is false for anything
// else: relative, protocol-relative, other schemes, no or implausible host.
func splitURL(u []byte) (scheme string, host, rest []byte, ok bool) {
	u = bytes.TrimSpace(u)
	i := bytes.Index(u, []byte("://"))
	if i < 0 {
		return "", nil, nil, false
	}
	switch s := u[:i]; {
	case bytes.EqualFold(s, []byte("https")):
		scheme = "https://"
	case bytes.EqualFold(s, []byte("http")):
		scheme = "http://"
	default:
		return "", nil, nil, false
	}
	rest = u[i+3:]
	end := len(rest)
	for j, c := range rest {
		if c == '/' || c == '?' || c == '#' || c == '\\' {
			end = j
			break
		}
	}
	host, rest = rest[:end], rest[end:]
	if at := bytes.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if !validHost(host) || len(rest) > 0 && rest[0] == '\\' {
		return "", nil, nil, false
	}
	return scheme, host, rest, true
}

// appendCleanURL appends u, decoded, scrubbed as spec's role says: scheme://host/path
// with scrubbed segments, plus the URL allow-list's query parameters with scrubbed
// values. User info, the fragment and path parameters (";jsessionid=...") go. A
// cross-site referrer keeps scheme://host/ only, and goes if its host identifies.
// misfit means u is not an absolute http(s) URL with a plausible host.
func (a *Anonymiser) appendCleanURL(dst, u []byte, role URLRole, st *hitState) ([]byte, verdict) {
	if len(bytes.TrimSpace(u)) == 0 {
		return dst, omit // no URL: as good as none
	}
	scheme, host, rest, ok := splitURL(u)
	if !ok {
		return dst, misfit
	}
	bare := stripPort(host)
	site := a.siteHost(bare)
	// A host that names someone ("u48213.mail.example") cannot be kept in part: a host
	// has no placeholder. The site's own hosts are trusted.
	if !site && identifyingHost(bare) {
		return dst, misfit
	}
	// Any other host keeps its registrable domain only: the labels in front of it are
	// free for whoever writes the URL ("jane-doe.shop.example", a personal subdomain),
	// and no scrubber recognises a name. anonymise.site_hosts keeps the site's own.
	if !site {
		reg, ok := registrableDomain(bare)
		if !ok {
			return dst, misfit
		}
		host = reg
	}
	dst = append(dst, scheme...)
	dst = append(dst, host...)
	if role == RoleReferrer && !a.sameSite(bare, st) {
		return append(dst, '/'), keep
	}
	end := len(rest)
	for j, c := range rest {
		if c == '?' || c == '#' {
			end = j
			break
		}
	}
	path, rest := rest[:end], rest[end:]
	dst = a.appendCleanPath(dst, path)
	if len(rest) == 0 || rest[0] != '?' {
		return dst, keep
	}
	query := rest[1:]
	if h := bytes.IndexByte(query, '#'); h >= 0 {
		query = query[:h]
	}
	return a.appendCleanQuery(dst, query), keep
}

// maxTemplateSegs bounds the segments a path template may have and the segments of a
// path templates are matched against.
const maxTemplateSegs = config.MaxTemplateSegs

// appendCleanPath writes each segment of path (which starts with '/' or is empty)
// scrubbed, without its ";params", with the operator's templates applied first.
func (a *Anonymiser) appendCleanPath(dst, path []byte) []byte {
	if len(path) == 0 {
		return dst
	}
	var marks [maxTemplateSegs]uint8 // 1 + index into a.templateNames; 0: no template
	if len(a.templates) > 0 {
		a.matchTemplates(path, &marks)
	}
	segs := path[1:]
	for k := 0; ; k++ {
		seg := segs
		next := -1
		if i := bytes.IndexByte(segs, '/'); i >= 0 {
			seg, next = segs[:i], i+1
		}
		if semi := bytes.IndexByte(seg, ';'); semi >= 0 {
			seg = seg[:semi]
		}
		dst = append(dst, '/')
		switch {
		case k < len(marks) && marks[k] > 0:
			dst = append(dst, a.templateNames[marks[k]-1]...)
		case len(seg) > 0:
			var db [256]byte
			if d, ok := decodeFix(db[:0], seg); ok {
				dst, _ = scrubText(dst, d, escPath)
			} else {
				dst = append(dst, phToken...)
			}
		}
		if next < 0 {
			break
		}
		segs = segs[next:]
	}
	return dst
}

// pathTemplate is one compiled anonymise.path_templates entry: segments that must
// match (lower-cased literals, or "" for "*") and the placeholder of each "{name}".
type pathTemplate struct {
	lits  []string
	names []uint8 // per segment: 1 + index into templateNames, or 0
}

// matchTemplates marks, for every template matching a prefix of path, the segments its
// placeholders replace. Segments are compared decoded and case-insensitively, so
// "/Users/%34%32" is "/users/42" to "/users/{id}".
func (a *Anonymiser) matchTemplates(path []byte, marks *[maxTemplateSegs]uint8) {
	for t := range a.templates {
		tp := &a.templates[t]
		segs, k := path[1:], 0
		for ; k < len(tp.lits) && segs != nil; k++ {
			seg := segs
			if i := bytes.IndexByte(segs, '/'); i >= 0 {
				seg, segs = segs[:i], segs[i+1:]
			} else {
				segs = nil
			}
			if semi := bytes.IndexByte(seg, ';'); semi >= 0 {
				seg = seg[:semi]
			}
			if lit := tp.lits[k]; lit != "" {
				var db [256]byte
				// Compared as the scrubber will write it: decoded, without the
				// white space it trims.
				if d, _ := decodeFix(db[:0], seg); !bytes.EqualFold(bytes.TrimSpace(d), []byte(lit)) {
					break
				}
			} else if len(seg) == 0 {
				break // a placeholder stands for a segment, not for nothing
			}
		}
		if k < len(tp.lits) {
			continue
		}
		for k, n := range tp.names {
			if n > 0 && marks[k] == 0 {
				marks[k] = n
			}
		}
	}
}

// appendCleanQuery writes the query parameters on the URL allow-list, each value
// decoded, cut at the first ';' or '&' it hides (a value must not smuggle a second
// parameter), scrubbed as free text and re-encoded. Under anonymise.free_text: drop a
// value the scrubber would change is removed instead.
func (a *Anonymiser) appendCleanQuery(dst, query []byte) []byte {
	sep := byte('?')
	for len(query) > 0 {
		var pair []byte
		if j := bytes.IndexAny(query, "&;"); j >= 0 {
			pair, query = query[:j], query[j+1:]
		} else {
			pair, query = query, nil
		}
		rawName, rawVal, _ := bytes.Cut(pair, eq)
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok || len(name) == 0 {
			continue
		}
		if _, keep := a.urlKeep[string(name)]; !keep {
			continue
		}
		// A longer value spills to the heap, for this hit only.
		var vb, db, sb [campaignScratch]byte
		v, ok := appendUnescape(vb[:0], rawVal)
		if !ok {
			continue
		}
		if v, ok = decodeFix(db[:0], v); !ok {
			continue
		}
		if i := bytes.IndexAny(v, ";&"); i >= 0 {
			v = v[:i]
		}
		clean, changed := scrubCut(sb[:0], v, maxCampaignValue)
		if len(clean) == 0 || changed && a.dropText {
			continue
		}
		dst = append(dst, sep)
		sep = '&'
		dst = appendQueryEscapeBytes(dst, name)
		dst = append(dst, '=')
		w := textWriter{esc: escQuery}
		dst = w.bytes(dst, clean)
	}
	return dst
}

// compileTemplates compiles anonymise.path_templates ("/users/{id}/orders/*").
func compileTemplates(specs []string) ([]pathTemplate, []string, error) {
	var out []pathTemplate
	var names []string
	index := map[string]uint8{}
	for _, s := range specs {
		segs, err := config.ParsePathTemplate(s)
		if err != nil {
			return nil, nil, err
		}
		var t pathTemplate
		for _, seg := range segs {
			switch {
			case seg == "*":
				t.lits = append(t.lits, "")
				t.names = append(t.names, 0)
			case strings.HasPrefix(seg, "{"):
				ph := ":" + seg[1:len(seg)-1]
				n, ok := index[ph]
				if !ok {
					if len(names) >= 255 {
						return nil, nil, errors.New("path_templates: more than 255 placeholder names")
					}
					names = append(names, ph)
					n = uint8(len(names))
					index[ph] = n
				}
				t.lits = append(t.lits, "")
				t.names = append(t.names, n)
			default:
				t.lits = append(t.lits, strings.ToLower(seg))
				t.names = append(t.names, 0)
			}
		}
		out = append(out, t)
	}
	return out, names, nil
}
