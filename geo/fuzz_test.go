package geo

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// refClientIP is ClientIP written the obvious way, on strings and the standard parsers,
// as an oracle for the byte-level code.
func refClientIP(t *Trusted, peer netip.Addr, xff [][]byte) netip.Addr {
	peer = peer.Unmap().WithZone("")
	if !t.Contains(peer) {
		return peer
	}
	var entries []string
	for _, h := range xff {
		v := strings.Trim(string(h), " \t")
		if v != "" {
			entries = append(entries, strings.Split(v, ",")...)
		}
	}
	last := peer
	for i := len(entries) - 1; i >= 0; i-- {
		ip, ok := refParseEntry(strings.Trim(entries[i], " \t"))
		if !ok {
			return last
		}
		if !t.Contains(ip) {
			return ip
		}
		last = ip
	}
	return last
}

func refParseEntry(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		if !ok || err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return a.Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// FuzzClientIP checks that ClientIP never panics, returns the peer or an address written
// in the header, ignores the header of an untrusted peer, and agrees with refClientIP.
// Each line of header is one X-Forwarded-For header value.
func FuzzClientIP(f *testing.F) {
	tr, err := ParseTrusted([]string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8", "::1", "127.0.0.1"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ peer, header string }{
		{"10.0.0.1", "1.2.3.4"},
		{"203.0.113.1", "1.2.3.4"},
		{"10.0.0.1", "1.2.3.4, 10.0.0.2, 192.168.1.1"},
		{"10.0.0.1", "10.0.0.3, 10.0.0.2"},
		{"10.0.0.1", "1.1.1.1\n2.2.2.2, 10.0.0.9"},
		{"::1", "[2001:db8::1]:443, fd00::7"},
		{"::ffff:10.0.0.1", "::ffff:1.2.3.4:80"},
		{"127.0.0.1", "1.2.3.4:5678, unknown, 10.1.1.1"},
		{"10.0.0.1", ",,,"},
		{"10.0.0.1", ""},
		{"10.0.0.1", "fe80::1%eth0, [fe80::1%25eth0]:1"},
		{"10.0.0.1", "1:2:3:4:5:6:1.2.3.4"},
		{"fd00::1", "\t 1.2.3.4 \t,\t"},
	} {
		f.Add(s.peer, s.header)
	}
	f.Fuzz(func(t *testing.T, peerText, header string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			peer = netip.AddrFrom4([4]byte{10, 0, 0, 1})
		}
		var xff [][]byte
		for _, line := range strings.Split(header, "\n") {
			xff = append(xff, []byte(line))
		}
		got := tr.ClientIP(peer, xff)
		want := refClientIP(tr, peer, xff)
		if got != want {
			t.Fatalf("ClientIP(%s, %q) = %s, reference says %s", peer, header, got, want)
		}
		norm := peer.Unmap().WithZone("")
		if !tr.Contains(peer) && got != norm {
			t.Fatalf("untrusted peer %s: ClientIP = %s, want the peer", peer, got)
		}
		if got != norm && !inHeader(got, xff) {
			t.Fatalf("ClientIP(%s, %q) = %s: neither the peer nor in the header", peer, header, got)
		}
	})
}

func inHeader(ip netip.Addr, xff [][]byte) bool {
	for _, h := range xff {
		for _, e := range bytes.Split(h, []byte(",")) {
			if a, ok := refParseEntry(strings.Trim(string(e), " \t")); ok && a == ip {
				return true
			}
		}
	}
	return false
}

// embeddings are where an IPv6 address can carry an IPv4 address in fixed bits: the
// range, the bit offset of the IPv4 address and whether it is stored inverted. Written
// from the RFCs as prefixes, apart from Truncate's byte tests, to serve as its oracle.
var embeddings = []struct {
	name   string
	prefix netip.Prefix
	offset int
	invert bool
}{
	{"mapped", netip.MustParsePrefix("::ffff:0:0/96"), 96, false},           // RFC 4291 §2.5.5.2
	{"compatible", netip.MustParsePrefix("::/96"), 96, false},               // RFC 4291 §2.5.5.1
	{"6to4", netip.MustParsePrefix("2002::/16"), 16, false},                 // RFC 3056 §2
	{"teredo", netip.MustParsePrefix("2001::/32"), 96, true},                // RFC 4380 §4
	{"nat64", netip.MustParsePrefix("64:ff9b::/96"), 96, false},             // RFC 6052 §2.1
	{"nat64 local /48", netip.MustParsePrefix("64:ff9b:1::/48"), 48, false}, // RFC 8215, RFC 6052 §2.2 with a /48
	{"nat64 local /56", netip.MustParsePrefix("64:ff9b:1::/48"), 56, false}, // the same with a /56 (bits 64..71 are u; kept bits only matter here)
	{"nat64 local /64", netip.MustParsePrefix("64:ff9b:1::/48"), 72, false}, // and with a /64
	{"nat64 local /96", netip.MustParsePrefix("64:ff9b:1::/48"), 96, false}, // and with a /96
}

// bit reports bit i (0 = most significant) of a.
func bit(a [16]byte, i int) bool { return a[i/8]>>(7-i%8)&1 == 1 }

// FuzzTruncate checks, on any address and any prefix setting in the configurable range,
// that Truncate's output holds at most 24 bits of any IPv4 address embedded in the input
// and, for a native IPv6 address, nothing beyond the configured prefix: an IPv4 output
// is the /24 of the input's IPv4 address or of one it embeds; an IPv6 output is the
// input cut at the setting (or shorter), with no embedded IPv4 bit past the 24th kept.
func FuzzTruncate(f *testing.F) {
	for _, c := range truncateCases {
		a := netip.MustParseAddr(c.in)
		f.Add(a.AsSlice(), c.bits)
	}
	f.Fuzz(func(t *testing.T, raw []byte, bits int) {
		in, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		span := MaxIPv6Prefix - MinIPv6Prefix + 1
		bits = MinIPv6Prefix + ((bits%span)+span)%span
		out := Truncate(in, bits)
		if in.Is4() {
			a := in.As4()
			if want := netip.AddrFrom4([4]byte{a[0], a[1], a[2], 0}); out != want {
				t.Fatalf("Truncate(%s) = %s, want %s", in, out, want)
			}
			return
		}
		a16 := in.As16()
		// The IPv4 addresses the input may embed, by where they sit.
		var cands []netip.Addr
		for _, e := range embeddings {
			if !e.prefix.Contains(in) || e.offset+32 > 128 {
				continue
			}
			var v4 [4]byte
			for i := range 32 {
				if bit(a16, e.offset+i) != e.invert {
					v4[i/8] |= 1 << (7 - i%8)
				}
			}
			cands = append(cands, netip.AddrFrom4(v4))
		}
		if out.Is4() {
			if out.As4()[3] != 0 {
				t.Fatalf("Truncate(%s) = %s: more than 24 bits", in, out)
			}
			found := false
			for _, c := range cands {
				c4, o4 := c.As4(), out.As4()
				found = found || c4[0] == o4[0] && c4[1] == o4[1] && c4[2] == o4[2]
			}
			if !found {
				t.Fatalf("Truncate(%s) = %s: not the /24 of an address it embeds (%v)", in, out, cands)
			}
			return
		}
		if !out.Is6() || out.Zone() != "" {
			t.Fatalf("Truncate(%s) = %s: want an IPv6 address without zone", in, out)
		}
		for _, e := range embeddings[:5] { // fixed-position formats: always unwrapped
			if e.prefix.Contains(in) && (e.name != "compatible" || a16[12] != 0) {
				t.Fatalf("Truncate(%s) = %s: %s address not unwrapped", in, out, e.name)
			}
		}
		o16 := out.As16()
		kept := 0 // the length of the prefix the output keeps
		for i := range 128 {
			if bit(o16, i) {
				kept = i + 1
			}
			if i >= bits && bit(o16, i) {
				t.Fatalf("Truncate(%s, %d) = %s: bit %d past the prefix", in, bits, out, i)
			}
			if i < bits && bit(o16, i) && !bit(a16, i) {
				t.Fatalf("Truncate(%s, %d) = %s: bit %d not from the input", in, bits, out, i)
			}
		}
		if w := in.WithZone(""); out != netip.PrefixFrom(w, kept).Masked().Addr() {
			t.Fatalf("Truncate(%s, %d) = %s: not a prefix of the input", in, bits, out)
		}
		if embeddings[5].prefix.Contains(in) && kept > 48 {
			t.Fatalf("Truncate(%s, %d) = %s: NAT64 local-use address kept more than /48", in, bits, out)
		}
		// Counted conservatively: every embedded bit before the setting, whether the
		// output shows it or a zero in its place.
		for _, e := range embeddings {
			if n := max(0, min(bits, 128, e.offset+32)-e.offset); e.prefix.Contains(in) && n > 24 {
				t.Fatalf("Truncate(%s, %d) = %s may keep %d bits of the %s IPv4 address", in, bits, out, n, e.name)
			}
		}
	})
}
