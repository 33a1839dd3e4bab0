package geo

import (
	"testing"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

func benchTrusted(tb testing.TB) *Trusted {
	tb.Helper()
	tr, err := ParseTrusted([]string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8", "::1", "127.0.0.1"})
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

var clientIPCases = []struct {
	name string
	peer string
	xff  []string
}{
	{"untrusted", "203.0.113.9", []string{"1.1.1.1"}},
	{"v4x1", "10.0.0.1", []string{"198.51.100.7"}},
	{"v4x2", "10.0.0.1", []string{"198.51.100.7, 10.1.2.3"}},
	{"v4x3", "10.0.0.1", []string{"203.0.113.1, 198.51.100.7, 10.1.2.3"}},
	{"v4x3-ports", "10.0.0.1", []string{"203.0.113.1:1234, 198.51.100.7:443, 10.1.2.3:80"}},
	{"v6x2", "fd00::1", []string{"2001:db8:1234:5678::99, fd00::17"}},
	{"v6-bracket-port", "fd00::1", []string{"[2001:db8:1234:5678::99]:443"}},
	{"two-headers", "10.0.0.1", []string{"203.0.113.1", "198.51.100.7, 10.1.2.3"}},
}

func TestClientIPAllocs(t *testing.T) {
	tr := benchTrusted(t)
	for _, c := range clientIPCases {
		peer := mustAddr(t, c.peer)
		var xff [][]byte
		for _, h := range c.xff {
			xff = append(xff, []byte(h))
		}
		if n := testing.AllocsPerRun(100, func() { tr.ClientIP(peer, xff) }); n != 0 {
			t.Errorf("%s: ClientIP allocates %v times per call", c.name, n)
		}
	}
	for _, c := range truncateCases {
		ip := mustAddr(t, c.in)
		if n := testing.AllocsPerRun(100, func() { Truncate(ip, c.bits) }); n != 0 {
			t.Errorf("%s: Truncate allocates %v times per call", c.name, n)
		}
	}
}

func BenchmarkTruncate(b *testing.B) {
	for _, in := range []string{"81.2.69.142", "2001:db8:abcd:12:1::7", "2002:5102:458e::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"} {
		ip := mustAddr(b, in)
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Truncate(ip, DefaultIPv6Prefix)
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	tr := benchTrusted(b)
	for _, c := range clientIPCases {
		peer := mustAddr(b, c.peer)
		var xff [][]byte
		for _, h := range c.xff {
			xff = append(xff, []byte(h))
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tr.ClientIP(peer, xff)
			}
		})
	}
}

// benchIPs cover a country-only record, city records with one and two subdivisions, IPv6,
// and an address not in the database.
var benchIPs = []string{"89.160.20.112", "81.2.69.142", "214.78.120.1", "2.125.160.216", "2a02:d000::1", "10.0.0.1"}

func TestDBLookupAllocs(t *testing.T) {
	for _, name := range testDBs {
		db := openTestDB(t, name)
		for _, s := range benchIPs {
			ip := mustAddr(t, s)
			if n := testing.AllocsPerRun(100, func() { db.Lookup(ip) }); n != 0 {
				t.Errorf("%s: Lookup(%s) allocates %v times per call", name, s, n)
			}
		}
	}
	l, err := NewLocator(testdataPath(t, "GeoIP2-City-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	ip := mustAddr(t, "81.2.69.142")
	if n := testing.AllocsPerRun(100, func() { l.Lookup(ip) }); n != 0 {
		t.Errorf("Locator.Lookup allocates %v times per call", n)
	}
}

func BenchmarkDBLookup(b *testing.B) {
	for _, name := range []string{"GeoIP2-City-Test", "GeoLite2-Country-Test"} {
		db := openTestDB(b, name)
		for _, s := range []string{"81.2.69.142", "2a02:d000::1", "10.0.0.1"} {
			ip := mustAddr(b, s)
			b.Run(name+"/"+s, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					db.Lookup(ip)
				}
			})
		}
	}
}

// BenchmarkLookupDecoders compares ways to get country and first subdivision from a City
// database, to justify the cursor decoder in DB.Lookup (the "cursor" case).
func BenchmarkLookupDecoders(b *testing.B) {
	path := testdataPath(b, "GeoIP2-City-Test.mmdb")
	ip := mustAddr(b, "81.2.69.142") // GB, ENG

	b.Run("geoip2.City", func(b *testing.B) {
		r, err := geoip2.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.ReportAllocs()
		for b.Loop() {
			c, err := r.City(ip)
			if err != nil || c.Country.ISOCode != "GB" || c.Subdivisions[0].ISOCode != "ENG" {
				b.Fatal(c, err)
			}
		}
	})
	b.Run("geoip2.Country", func(b *testing.B) {
		r, err := geoip2.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.ReportAllocs()
		for b.Loop() {
			c, err := r.Country(ip)
			if err != nil || c.Country.ISOCode != "GB" {
				b.Fatal(c, err)
			}
		}
	})
	b.Run("maxminddb.reflection", func(b *testing.B) {
		r, err := maxminddb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.ReportAllocs()
		for b.Loop() {
			var rec struct {
				Country struct {
					ISOCode string `maxminddb:"iso_code"`
				} `maxminddb:"country"`
				Subdivisions []struct {
					ISOCode string `maxminddb:"iso_code"`
				} `maxminddb:"subdivisions"`
			}
			if err := r.Lookup(ip).Decode(&rec); err != nil || rec.Country.ISOCode != "GB" || rec.Subdivisions[0].ISOCode != "ENG" {
				b.Fatal(rec, err)
			}
		}
	})
	b.Run("maxminddb.DecodePath", func(b *testing.B) {
		r, err := maxminddb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.ReportAllocs()
		for b.Loop() {
			var cc, sub string
			res := r.Lookup(ip)
			if err := res.DecodePath(&cc, "country", "iso_code"); err != nil || cc != "GB" {
				b.Fatal(cc, err)
			}
			if err := res.DecodePath(&sub, "subdivisions", 0, "iso_code"); err != nil || sub != "ENG" {
				b.Fatal(sub, err)
			}
		}
	})
	b.Run("cursor", func(b *testing.B) {
		db := openTestDB(b, "GeoIP2-City-Test")
		b.ReportAllocs()
		for b.Loop() {
			if l := db.Lookup(ip); l != loc("GB", "ENG") {
				b.Fatal(l)
			}
		}
	})
}

func TestResolveAllocs(t *testing.T) {
	tab := builtinTable(t, OptIn)
	for _, l := range []Location{loc("DE", "BY"), loc("US", "CA"), loc("US", "WA"), loc("BT", ""), {}} {
		if n := testing.AllocsPerRun(100, func() { tab.Resolve(l) }); n != 0 {
			t.Errorf("Resolve(%v) allocates %v times per call", l, n)
		}
	}
}

func BenchmarkTableResolve(b *testing.B) {
	tab := builtinTable(b, OptIn)
	for _, c := range []struct {
		name string
		loc  Location
	}{
		{"country", loc("DE", "")},
		{"country-unmatched-sub", loc("DE", "BY")},
		{"subdivision", loc("US", "CA")},
		{"other", loc("BT", "")},
		{"unknown", Location{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Resolve(c.loc)
			}
		})
	}
}

// BenchmarkVisitor is the whole geo part of a hit: client IP, lookup, group.
func BenchmarkVisitor(b *testing.B) {
	tr := benchTrusted(b)
	tab := builtinTable(b, OptIn)
	l, err := NewLocator(testdataPath(b, "GeoIP2-City-Test.mmdb"))
	if err != nil {
		b.Fatal(err)
	}
	peer := mustAddr(b, "10.0.0.1")
	xff := [][]byte{[]byte("214.78.120.1, 10.1.2.3")}
	b.ReportAllocs()
	for b.Loop() {
		if id := tab.Resolve(l.Lookup(tr.ClientIP(peer, xff))); id != 3 {
			b.Fatal(id)
		}
	}
}
