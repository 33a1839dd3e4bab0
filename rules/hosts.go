// Hosts in URL values: which are the site's, which identify someone by themselves, and
// the registrable domain every other host is cut to.

package rules

import (
	"bytes"
	"net/netip"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// hostOf returns the host of an absolute URL without its port.
func hostOf(u []byte) ([]byte, bool) {
	_, host, _, ok := splitURL(u)
	if !ok {
		return nil, false
	}
	return stripPort(host), true
}

func stripPort(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// sameSite reports whether host (without port) is the page's host or one of the site's
// hosts (anonymise.site_hosts and the hosts of allowed_origins).
func (a *Anonymiser) sameSite(host []byte, st *hitState) bool {
	if page := a.pageHostOf(st); len(page) > 0 && bytes.EqualFold(page, host) {
		return true
	}
	return a.siteHost(host)
}

// siteHost reports whether host (without port) is one of the site's hosts.
func (a *Anonymiser) siteHost(host []byte) bool {
	if len(a.siteHosts) == 0 || len(host) > maxHostLen {
		return false
	}
	var lb [maxHostLen]byte
	l := lb[:len(host)]
	for i, c := range host {
		l[i] = lower(c)
	}
	_, ok := a.siteHosts[string(l)]
	return ok
}

// registrableDomain is host's registrable domain (eTLD+1, by the public suffix list):
// "www.shop.example.co.uk" → "example.co.uk". A host that is a public suffix itself,
// or has none, has no registrable domain.
func registrableDomain(host []byte) ([]byte, bool) {
	if len(host) == 0 || len(host) > maxHostLen {
		return nil, false
	}
	var lb [maxHostLen]byte
	l := lb[:len(host)]
	for i, c := range host {
		l[i] = lower(c)
	}
	n := registrable.suffixLen(l)
	if n <= 0 {
		return nil, false
	}
	return host[len(host)-n:], true
}

// registrable caches the length of hosts' registrable domains: publicsuffix's lookup
// allocates (it first tries the name as an IP address), and a site's hits name the
// same few hosts over and over. The cache is bounded; when full it starts again, so a
// flood of made-up hosts costs allocations, never memory.
var registrable = &suffixCache{m: map[string]int{}}

const maxSuffixCache = 8192

type suffixCache struct {
	mu sync.RWMutex
	m  map[string]int // lower-cased host → length of its registrable domain; -1: none
}

func (c *suffixCache) suffixLen(host []byte) int {
	c.mu.RLock()
	n, ok := c.m[string(host)]
	c.mu.RUnlock()
	if ok {
		return n
	}
	n = -1
	if d, err := publicsuffix.EffectiveTLDPlusOne(string(host)); err == nil && d != "" {
		n = len(d)
	}
	c.mu.Lock()
	if len(c.m) >= maxSuffixCache {
		clear(c.m)
	}
	c.m[string(host)] = n
	c.mu.Unlock()
	return n
}

// identifyingHost reports a host that names a person or a device by itself: an IP
// literal, or a label holding a long digit run or a token ("u48213.mail.example",
// "3f9a1c2e7b6d5a40.preview.example"). Such a referrer is removed, not cut to its origin.
func identifyingHost(host []byte) bool {
	if len(host) > 0 && host[0] == '[' {
		return true
	}
	ip := true
	for _, c := range host {
		if !isDigitByte(c) && c != '.' {
			ip = false
			break
		}
	}
	if ip {
		return true
	}
	for len(host) > 0 {
		label := host
		if i := bytes.IndexByte(host, '.'); i >= 0 {
			label, host = host[:i], host[i+1:]
		} else {
			host = nil
		}
		run := 0
		for _, c := range label {
			if isDigitByte(c) {
				run++
				if run >= minDigitRun {
					return true
				}
			} else {
				run = 0
			}
		}
		if hexToken(label) || tokenLike(label) {
			return true
		}
	}
	return false
}

// validHost accepts a registered name (IDN bytes included), an IPv4 address or a
// bracketed IPv6 address, with an optional numeric port; anything else means the value
// is not a URL we understand.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	host, port, hasPort := h, []byte(nil), false
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 2 {
			return false
		}
		for _, c := range h[1:end] {
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		// The copy is an allocation, on this rare path only: ParseAddr keeps its
		// argument in its error.
		if ip, err := netip.ParseAddr(string(h[1:end])); err != nil || !ip.Is6() {
			return false
		}
		rest := h[end+1:]
		if len(rest) > 0 && (rest[0] != ':' || !validPort(rest[1:])) {
			return false
		}
		return true
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		host, port, hasPort = h[:i], h[i+1:], true
	}
	if len(host) == 0 || hasPort && !validPort(port) {
		return false
	}
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_':
		case c >= utf8.RuneSelf: // an IDN label: letters, digits and marks only
			r, n := utf8.DecodeRune(host[i:])
			if r == utf8.RuneError && n <= 1 || !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
				return false
			}
			i += n - 1
		default:
			return false
		}
	}
	return true
}

func validPort(p []byte) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	for _, c := range p {
		if !isDigitByte(c) {
			return false
		}
	}
	return true
}
