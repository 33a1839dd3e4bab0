// URL cleaning: the KeepURL rule. A page URL carries session IDs, user info, click
// IDs and arbitrary query parameters; it keeps scheme, host and path, plus only the
// campaign parameters on the URL allow-list.

package rules

import "bytes"

// appendCleanURL appends u reduced to scheme://host[:port]/path plus the query
// parameters on the URL allow-list. ok is false, and the value must go, when u is not
// an absolute http(s) URL with a plausible host. User info, the fragment and path
// parameters (";jsessionid=...") are dropped: they carry session and person IDs.
func (a *Anonymiser) appendCleanURL(dst, u []byte) ([]byte, bool) {
	u = bytes.TrimSpace(u)
	i := bytes.Index(u, []byte("://"))
	if i < 0 {
		return dst, false
	}
	var scheme string
	switch s := u[:i]; {
	case bytes.EqualFold(s, []byte("https")):
		scheme = "https://"
	case bytes.EqualFold(s, []byte("http")):
		scheme = "http://"
	default:
		return dst, false
	}
	rest := u[i+3:]
	end := len(rest)
	for j, c := range rest {
		if c == '/' || c == '?' || c == '#' || c == '\\' {
			end = j
			break
		}
	}
	host, rest := rest[:end], rest[end:]
	if at := bytes.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if !validHost(host) || len(rest) > 0 && rest[0] == '\\' {
		return dst, false
	}
	end = len(rest)
	for j, c := range rest {
		if c == '?' || c == '#' {
			end = j
			break
		}
	}
	path, rest := rest[:end], rest[end:]
	dst = append(dst, scheme...)
	dst = append(dst, host...)
	for len(path) > 0 { // drop ";params" of each segment
		semi := bytes.IndexByte(path, ';')
		if semi < 0 {
			dst = append(dst, path...)
			break
		}
		dst = append(dst, path[:semi]...)
		path = path[semi:]
		if slash := bytes.IndexByte(path, '/'); slash >= 0 {
			path = path[slash:]
		} else {
			path = nil
		}
	}
	if len(rest) == 0 || rest[0] != '?' {
		return dst, true
	}
	query := rest[1:]
	if h := bytes.IndexByte(query, '#'); h >= 0 {
		query = query[:h]
	}
	sep := byte('?')
	for len(query) > 0 {
		var pair []byte
		if j := bytes.IndexByte(query, '&'); j >= 0 {
			pair, query = query[:j], query[j+1:]
		} else {
			pair, query = query, nil
		}
		rawName := pair
		if j := bytes.IndexByte(pair, '='); j >= 0 {
			rawName = pair[:j]
		}
		var nb [maxNameLen]byte
		name, ok := decodeName(nb[:0], rawName)
		if !ok || len(name) == 0 {
			continue
		}
		if _, keep := a.urlKeep[string(name)]; keep && validEscapes(pair) {
			dst = append(dst, sep)
			dst = append(dst, pair...)
			sep = '&'
		}
	}
	return dst, true
}

// validHost accepts a registered name, IPv4 or bracketed IPv6 host with an optional
// port, and IDN bytes; anything else means the value is not a URL we understand.
func validHost(h []byte) bool {
	if len(h) == 0 || h[0] == ':' {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		case c == '-', c == '.', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
