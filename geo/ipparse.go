package geo

import (
	"net/netip"
	"unsafe"
)

// parseHostPort parses one X-Forwarded-For entry: an address, optionally with a port
// ("1.2.3.4:5678", "[2001:db8::1]:443") or in brackets without one ("[2001:db8::1]").
//
// X-Forwarded-For is parsed on every hit, and netip.ParseAddr(string(b)) would copy b
// (the error it may return keeps its input). So b is viewed as a string in place: netip
// keeps nothing of it in a parsed Addr (a zone is interned, which copies), and the error
// that refers to it is dropped right here. The form is picked before parsing so a
// well-formed entry never builds an error either.
func parseHostPort(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	s := unsafe.String(&b[0], len(b))
	if s[0] == '[' {
		if s[len(s)-1] == ']' {
			a, err := netip.ParseAddr(s[1 : len(s)-1])
			if a.Is4() {
				return netip.Addr{}, false // brackets are for IPv6, as in netip.ParseAddrPort
			}
			return parsed(a, err)
		}
		ap, err := netip.ParseAddrPort(s)
		return parsed(ap.Addr(), err)
	}
	colons := 0
	for i := 0; i < len(s) && colons < 2; i++ {
		if s[i] == ':' {
			colons++
		}
	}
	if colons == 1 { // an IPv6 address has at least two colons, so this is IPv4:port
		ap, err := netip.ParseAddrPort(s)
		return parsed(ap.Addr(), err)
	}
	return parsed(netip.ParseAddr(s))
}

// parsed drops the zone: a zone names an interface of the sender's host, nothing a
// visitor's location or a vendor could use.
func parsed(a netip.Addr, err error) (netip.Addr, bool) {
	if err != nil || !a.IsValid() {
		return netip.Addr{}, false
	}
	return a.WithZone(""), true
}
