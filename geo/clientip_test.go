package geo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrusted(t *testing.T) {
	tr, err := ParseTrusted([]string{
		"10.0.0.0/8", " 192.168.1.7 ", "::1/128", "fd00::/8", "172.16.5.4/12", "::ffff:100.64.0.0/106", "::ffff:198.51.100.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(ip string, want bool) {
		t.Helper()
		if got := tr.Contains(mustAddr(t, ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	check("10.1.2.3", true)
	check("::ffff:10.1.2.3", true) // mapped peer, IPv4 prefix
	check("11.0.0.1", false)
	check("192.168.1.7", true) // bare address is a /32
	check("192.168.1.8", false)
	check("::1", true)
	check("::2", false)
	check("fd12:3456::1", true)
	check("fe80::1%eth0", false)
	check("fd00::1%eth0", true)   // zone ignored
	check("172.31.255.255", true) // host bits of 172.16.5.4/12 cleared
	check("172.32.0.0", false)
	check("100.127.255.255", true) // mapped prefix stored as 100.64.0.0/10
	check("198.51.100.9", true)    // mapped bare address stored as IPv4
	check("1.2.3.4", false)
	if tr.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}

	var nilT *Trusted
	if nilT.Contains(mustAddr(t, "10.0.0.1")) {
		t.Error("nil Trusted contains 10.0.0.1")
	}
	empty, err := ParseTrusted(nil)
	if err != nil || empty.Contains(mustAddr(t, "10.0.0.1")) {
		t.Errorf("ParseTrusted(nil) = %v, %v", empty, err)
	}
}

func TestParseTrustedErrors(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "10.0.0/8", "banana", "fe80::1%eth0", "10.0.0.1/", "/8", "::1/129", "1.2.3.4:80"} {
		_, err := ParseTrusted([]string{"10.0.0.0/8", bad})
		if err == nil {
			t.Errorf("ParseTrusted(%q) succeeded", bad)
			continue
		}
		if want := `geo: trusted proxy "` + bad + `": `; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseTrusted(%q) error %q, want prefix %q", bad, err, want)
		}
	}
}

func TestClientIP(t *testing.T) {
	tr, err := ParseTrusted([]string{"10.0.0.0/8", "192.168.0.0/16", "2001:db8:ffff::/48", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		// Untrusted peer: the header is the client's word, ignored entirely.
		{"untrusted peer, spoofed xff", "203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer, trusted-looking xff", "203.0.113.9", []string{"10.0.0.1, 10.0.0.2"}, "203.0.113.9"},
		{"untrusted peer, no xff", "203.0.113.9", nil, "203.0.113.9"},
		{"untrusted mapped peer", "::ffff:203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9"},
		{"untrusted IPv6 peer", "2001:db8:1::5", []string{"1.1.1.1"}, "2001:db8:1::5"},

		// Trusted peer.
		{"one entry", "10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"right-most untrusted wins", "10.0.0.1", []string{"1.1.1.1, 198.51.100.7"}, "198.51.100.7"},
		{"trusted hops skipped", "10.0.0.1", []string{"1.1.1.1, 198.51.100.7, 192.168.3.4, 10.9.9.9"}, "198.51.100.7"},
		{"no spaces", "10.0.0.1", []string{"1.1.1.1,198.51.100.7,10.9.9.9"}, "198.51.100.7"},
		{"tabs and spaces", "10.0.0.1", []string{" \t1.1.1.1 ,\t198.51.100.7 \t"}, "198.51.100.7"},
		{"all trusted: left-most", "10.0.0.1", []string{"10.0.0.7, 192.168.0.1, 10.0.0.3"}, "10.0.0.7"},
		{"no header", "10.0.0.1", nil, "10.0.0.1"},
		{"empty header", "10.0.0.1", []string{""}, "10.0.0.1"},
		{"blank header", "10.0.0.1", []string{"  "}, "10.0.0.1"},
		{"mapped trusted peer", "::ffff:10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},

		// Several header lines form one list, first line left-most.
		{"two headers", "10.0.0.1", []string{"1.1.1.1, 2.2.2.2", "198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		{"two headers, last all trusted", "10.0.0.1", []string{"1.1.1.1, 2.2.2.2", "10.0.0.3, 10.0.0.2"}, "2.2.2.2"},
		{"two headers, empty last", "10.0.0.1", []string{"198.51.100.7", ""}, "198.51.100.7"},
		{"three headers", "10.0.0.1", []string{"3.3.3.3", "10.1.1.1", "192.168.1.1"}, "3.3.3.3"},

		// IPv6.
		{"IPv6 peer and entries", "2001:db8:ffff::1", []string{"2001:db8:1::99, 2001:db8:ffff::2"}, "2001:db8:1::99"},
		{"IPv6 loopback peer", "::1", []string{"2001:db8:1::99"}, "2001:db8:1::99"},
		{"mixed families", "::1", []string{"198.51.100.7, 2001:db8:ffff::9"}, "198.51.100.7"},
		{"mapped entry", "10.0.0.1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"mapped trusted entry", "10.0.0.1", []string{"1.1.1.1, ::ffff:10.0.0.9"}, "1.1.1.1"},
		{"zone dropped", "10.0.0.1", []string{"fe80::1%eth0"}, "fe80::1"},

		// Ports.
		{"IPv4 with port", "10.0.0.1", []string{"198.51.100.7:5678"}, "198.51.100.7"},
		{"IPv6 with port", "10.0.0.1", []string{"[2001:db8:1::99]:443"}, "2001:db8:1::99"},
		{"IPv6 in brackets", "10.0.0.1", []string{"[2001:db8:1::99]"}, "2001:db8:1::99"},
		{"trusted hop with port", "10.0.0.1", []string{"198.51.100.7, 10.0.0.5:80"}, "198.51.100.7"},

		// Garbage stops the walk at the last trusted hop.
		{"garbage right-most", "10.0.0.1", []string{"1.1.1.1, unknown"}, "10.0.0.1"},
		{"garbage behind trusted hop", "10.0.0.1", []string{"1.1.1.1, garbage, 10.0.0.5"}, "10.0.0.5"},
		{"empty field", "10.0.0.1", []string{"1.1.1.1,,10.0.0.5"}, "10.0.0.5"},
		{"trailing comma", "10.0.0.1", []string{"1.1.1.1,"}, "10.0.0.1"},
		{"leading comma", "10.0.0.1", []string{",198.51.100.7"}, "198.51.100.7"},
		{"bad port", "10.0.0.1", []string{"198.51.100.7:99999"}, "10.0.0.1"},
		{"IPv6 without brackets but port", "10.0.0.1", []string{"[2001:db8::1]:"}, "10.0.0.1"},
		{"IPv4 in brackets", "10.0.0.1", []string{"[198.51.100.7]"}, "10.0.0.1"},
		{"leading zeros", "10.0.0.1", []string{"198.051.100.7"}, "10.0.0.1"},
		{"octet too big", "10.0.0.1", []string{"198.51.100.256"}, "10.0.0.1"},
		{"hostname", "10.0.0.1", []string{"example.com"}, "10.0.0.1"},
		{"obfuscated (RFC 7239 style)", "10.0.0.1", []string{"_hidden"}, "10.0.0.1"},
		{"garbage in earlier header", "10.0.0.1", []string{"junk", "198.51.100.7"}, "198.51.100.7"},
		{"garbage in later header", "10.0.0.1", []string{"198.51.100.7", "junk"}, "10.0.0.1"},
	}
	for _, c := range cases {
		var xff [][]byte
		for _, h := range c.xff {
			xff = append(xff, []byte(h))
		}
		peer := mustAddr(t, c.peer)
		if got := tr.ClientIP(peer, xff); got != mustAddr(t, c.want) {
			t.Errorf("%s: ClientIP(%s, %q) = %s, want %s", c.name, c.peer, c.xff, got, c.want)
		}
		// The reference implementation of the fuzz test agrees on every case.
		if got := refClientIP(tr, peer, xff); got != mustAddr(t, c.want) {
			t.Errorf("%s: refClientIP = %s, want %s", c.name, got, c.want)
		}
	}

	// No trusted proxies: always the peer.
	var none *Trusted
	if got := none.ClientIP(mustAddr(t, "10.0.0.1"), [][]byte{[]byte("1.1.1.1")}); got != mustAddr(t, "10.0.0.1") {
		t.Errorf("nil Trusted: ClientIP = %s", got)
	}
	// A zero peer (no socket address) stays zero: it is unknown, not spoofable.
	if got := tr.ClientIP(netip.Addr{}, [][]byte{[]byte("1.1.1.1")}); got.IsValid() {
		t.Errorf("zero peer: ClientIP = %s", got)
	}
}

// truncateCases are Truncate's table: input, configured IPv6 prefix, output. The
// embedded-IPv4 rows take their addresses from the RFCs that define the formats.
var truncateCases = []struct {
	name, in string
	bits     int
	want     string
}{
	{"v4", "198.51.100.77", 48, "198.51.100.0"},
	{"v4 already /24", "198.51.100.0", 48, "198.51.100.0"},
	{"v4 broadcast", "255.255.255.255", 48, "255.255.255.0"},
	{"v4 ignores the v6 prefix", "198.51.100.77", 64, "198.51.100.0"},
	{"v6 /48", "2001:db8:abcd:12:1::7", 48, "2001:db8:abcd::"},
	{"v6 /48 all ones", "2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", 48, "2001:db8:abcd::"},
	{"v6 /32", "2001:db8:abcd:12:1::7", 32, "2001:db8::"},
	{"v6 /64", "2001:db8:abcd:12:1::7", 64, "2001:db8:abcd:12::"},
	{"v6 /56", "2001:db8:abcd:12ff:1::7", 56, "2001:db8:abcd:1200::"},
	{"v6 prefix above 64 clamps to 64", "2001:db8:abcd:12:1::7", 128, "2001:db8:abcd:12::"},
	{"v6 negative prefix clamps to 0", "2001:db8:abcd:12:1::7", -1, "::"},
	{"v6 zone dropped", "fe80::1%eth0", 48, "fe80::"},
	{"loopback is not IPv4-compatible", "::1", 48, "::"},
	{"unspecified", "::", 48, "::"},
	// RFC 4291 §2.5.5.2 IPv4-mapped, its own example ::ffff:129.144.52.38.
	{"mapped", "::ffff:198.51.100.77", 48, "198.51.100.0"},
	{"mapped RFC 4291", "::ffff:129.144.52.38", 64, "129.144.52.0"},
	// RFC 4291 §2.5.5.1 IPv4-compatible (deprecated), its example ::13.1.68.3.
	{"compatible RFC 4291", "::13.1.68.3", 48, "13.1.68.0"},
	// RFC 3056 §2: 2002:V4ADDR::/48; its figure's site 192.1.2.3 has 2002:c001:0203::/48
	// and 9.254.253.252 has 2002:09fe:fdfc::/48.
	{"6to4 RFC 3056 site A", "2002:c001:0203::1", 48, "192.1.2.0"},
	{"6to4 RFC 3056 site B", "2002:09fe:fdfc:1:2:3:4:5", 64, "9.254.253.0"},
	{"6to4 of the review", "2002:5102:458e::1", 48, "81.2.69.0"},
	{"6to4 with a /32 setting", "2002:5102:458e::1", 32, "81.2.69.0"},
	// RFC 4380 §4: 2001:0::/32, server IPv4 in bits 32..63, flags, obfuscated port,
	// obfuscated (inverted) client IPv4 in bits 96..127. The usual worked example
	// (Wikipedia "Teredo tunneling"): server 65.54.227.120, client 192.0.2.45 port 40000.
	{"Teredo", "2001:0000:4136:e378:8000:63bf:3fff:fdd2", 48, "192.0.2.0"},
	{"Teredo /64 would keep the server", "2001:0:4136:e378:8000:63bf:3fff:fdd2", 64, "192.0.2.0"},
	{"Teredo client 81.2.69.142", "2001:0:4136:e378::aefd:ba71", 48, "81.2.69.0"},
	// RFC 6052 §2.4: 192.0.2.33 under the well-known prefix is 64:ff9b::192.0.2.33.
	{"NAT64 RFC 6052", "64:ff9b::192.0.2.33", 48, "192.0.2.0"},
	{"NAT64 RFC 6052 hex", "64:ff9b::c000:221", 64, "192.0.2.0"},
	// RFC 8215 local-use 64:ff9b:1::/48: the IPv4 position is not in the address.
	{"NAT64 local-use keeps /48 at most", "64:ff9b:1:c000:2:2100::", 64, "64:ff9b:1::"},
	{"NAT64 local-use /32 setting", "64:ff9b:1:c000:2:2100::", 32, "64:ff9b::"},
	{"64:ff9b::/32 outside both is native", "64:ff9b:2:3:4::1", 48, "64:ff9b:2::"},
	// Neighbours of the special ranges are native IPv6.
	{"2001:1::/32 is not Teredo", "2001:1:4136:e378:8000:63bf:3fff:fdd2", 48, "2001:1:4136::"},
	{"2003::/16 is not 6to4", "2003:5102:458e::1", 48, "2003:5102:458e::"},
	{"IPv4-translated ::ffff:0:0/96", "::ffff:0:c000:221", 64, "::"},
}

func TestTruncate(t *testing.T) {
	for _, c := range truncateCases {
		t.Run(c.name, func(t *testing.T) {
			if got := Truncate(mustAddr(t, c.in), c.bits); got != mustAddr(t, c.want) {
				t.Errorf("Truncate(%s, %d) = %s, want %s", c.in, c.bits, got, c.want)
			}
		})
	}
	if got := Truncate(netip.Addr{}, 48); got.IsValid() {
		t.Errorf("Truncate(zero) = %s, want zero", got)
	}
}

func TestParseHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4":               "1.2.3.4",
		"1.2.3.4:0":             "1.2.3.4",
		"1.2.3.4:65535":         "1.2.3.4",
		"1.2.3.4:000080":        "1.2.3.4",
		"::1":                   "::1",
		"[::1]":                 "::1",
		"[::1]:443":             "::1",
		"[fe80::1%eth0]:443":    "fe80::1",
		"[::ffff:1.2.3.4]:80":   "::ffff:1.2.3.4",
		"1::2:80":               "1::2:80", // unbracketed: all of it is the address
		"1.2.3.4:65536":         "",
		"1.2.3.4:":              "",
		"1.2.3.4:x":             "",
		"[1.2.3.4]:80":          "",
		"[::1":                  "",
		"[::1]x":                "",
		"[::1]:":                "",
		"::1]:80":               "",
		"":                      "",
		"1.2.3":                 "",
		"%eth0":                 "",
		"fe80::1%":              "",
		"1:2:3:4:5:6:7:8:9":     "",
		"1:2:3:4:5:6:1.2.3.4":   "1:2:3:4:5:6:102:304",
		"1:2:3:4:5:6:7:1.2.3.4": "",
		"1:2:3:1.2.3.4":         "",
		"1::1.2.3.4":            "1::102:304",
	} {
		got, ok := parseHostPort([]byte(in))
		if want == "" {
			if ok {
				t.Errorf("parseHostPort(%q) = %s, want failure", in, got)
			}
			continue
		}
		if !ok || got != mustAddr(t, want) {
			t.Errorf("parseHostPort(%q) = %s, %v, want %s", in, got, ok, want)
		}
	}
}
