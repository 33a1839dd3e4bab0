package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Trusted is the compiled trusted_proxies list: the peers whose X-Forwarded-For is believed.
// A nil *Trusted trusts no one.
type Trusted struct {
	// Split by family so a lookup only scans prefixes that can match; lists are short
	// (a load balancer or two, a CDN's ranges), so a scan beats anything cleverer.
	v4, v6 []netip.Prefix
}

// ParseTrusted compiles CIDRs ("10.0.0.0/8", "::1/128") and bare addresses ("127.0.0.1" is
// a /32). Host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8). An IPv4-mapped IPv6 prefix
// ("::ffff:10.0.0.0/104") is stored as the IPv4 prefix it denotes, since peers are unmapped
// before they are checked. Beware 0.0.0.0/0 and ::/0: trusting every peer makes the
// left-most X-Forwarded-For entry, which the client writes, the visitor's address.
func ParseTrusted(cidrs []string) (*Trusted, error) {
	t := &Trusted{}
	for _, raw := range cidrs {
		p, err := parseTrustedEntry(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("geo: trusted proxy %q: %w", raw, err)
		}
		if p.Addr().Is4() {
			t.v4 = append(t.v4, p)
		} else {
			t.v6 = append(t.v6, p)
		}
	}
	return t, nil
}

func parseTrustedEntry(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("zones are not supported")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Contains reports whether ip is a trusted proxy. IPv4-mapped addresses match IPv4 prefixes.
func (t *Trusted) Contains(ip netip.Addr) bool {
	if t == nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	list := t.v6
	if ip.Is4() {
		list = t.v4
	}
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ClientIP returns the visitor's address. An untrusted peer is the visitor, and its
// X-Forwarded-For is ignored entirely: anything in it is the client's word. A trusted peer
// appended the address it saw to xff, so the walk goes right to left over the entries (all
// header values in order, comma-separated) and returns the first one that is not itself
// a trusted proxy. If all are trusted, the left-most is returned.
//
// An entry that is not an address (garbage, "unknown", an empty field) ends the walk and the
// last trusted hop to its right is returned (the peer when it is the right-most entry):
// nothing left of it can be attributed to a trusted proxy, and a proxy's address locates to
// no jurisdiction, so it resolves to the strict "unknown" group rather than a spoofed one.
// A header value that is empty or only spaces carries no entries and is skipped.
//
// Returned addresses are unmapped (::ffff:1.2.3.4 is 1.2.3.4) and carry no zone.
func (t *Trusted) ClientIP(peer netip.Addr, xff [][]byte) netip.Addr {
	peer = peer.Unmap().WithZone("")
	if !t.Contains(peer) {
		return peer
	}
	last := peer
	for h := len(xff) - 1; h >= 0; h-- {
		v := trimOWS(xff[h])
		if len(v) == 0 {
			continue
		}
		for end := len(v); end >= 0; {
			start := end - 1
			for start >= 0 && v[start] != ',' {
				start--
			}
			ip, ok := parseHostPort(trimOWS(v[start+1 : end]))
			if !ok {
				return last
			}
			ip = ip.Unmap()
			if !t.Contains(ip) {
				return ip
			}
			last = ip
			end = start // the comma; -1 ends the loop
		}
	}
	return last
}

// trimOWS trims the optional whitespace HTTP allows around list elements.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Truncation limits: DefaultIPv6Prefix is what anonymise.ipv6_prefix defaults to, and
// native IPv6 addresses never keep more than MaxIPv6Prefix bits (the network part of a
// global unicast address, RFC 4291 §2.5.4: the rest identifies an interface).
const (
	DefaultIPv6Prefix = 48
	MinIPv6Prefix     = 32
	MaxIPv6Prefix     = 64
)

// Truncate clears the host bits of ip for an anonymised hit: an IPv4 address keeps its
// /24, a native IPv6 address its first v6Bits bits (clamped to 0..MaxIPv6Prefix).
//
// An IPv6 address that carries an IPv4 address in fixed bits is unwrapped first and
// truncated as that IPv4 address, since a /48 of it can hold the whole IPv4 address:
//   - IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2);
//   - IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated but still parsed), except
//     ::/104, which holds no usable IPv4 address and includes :: and ::1;
//   - 6to4 2002:V4ADDR::/48 (RFC 3056 §2): the site's IPv4 address in bits 16..47;
//   - Teredo 2001:0::/32 (RFC 4380 §4): the client's public IPv4 address in bits
//     96..127, with every bit inverted ("obfuscated");
//   - NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 §2.1): the IPv4 address in bits
//     96..127.
//
// The NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215) may embed an IPv4 address after
// any of the RFC 6052 §2.2 prefix lengths, which an address does not tell: it keeps at
// most its /48, which holds none of it. Zones are dropped; the zero Addr stays zero.
// Nothing allocates.
func Truncate(ip netip.Addr, v6Bits int) netip.Addr {
	switch {
	case !ip.IsValid():
		return ip
	case ip.Is4():
		return truncate4(ip.As4())
	}
	a := ip.As16()
	switch {
	case ip.Is4In6():
		return truncate4([4]byte(a[12:]))
	case isZero(a[:12]) && a[12] != 0:
		return truncate4([4]byte(a[12:]))
	case a[0] == 0x20 && a[1] == 0x02:
		return truncate4([4]byte(a[2:6]))
	case a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0:
		return truncate4([4]byte{^a[12], ^a[13], ^a[14], ^a[15]})
	case a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b:
		if isZero(a[4:12]) {
			return truncate4([4]byte(a[12:]))
		}
		if a[4] == 0 && a[5] == 1 {
			v6Bits = min(v6Bits, 48)
		}
	}
	v6Bits = max(0, min(v6Bits, MaxIPv6Prefix))
	p, _ := ip.WithZone("").Prefix(v6Bits) // cannot fail: 0..64 fits an IPv6 address
	return p.Addr()
}

func truncate4(a [4]byte) netip.Addr {
	a[3] = 0
	return netip.AddrFrom4(a)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
