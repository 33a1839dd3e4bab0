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
