package geo

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDBLookup(t *testing.T) {
	// Expected values from the .source.json files; "-" marks an address the DB locates
	// nowhere (absent, or present without a country).
	cases := []struct {
		ip                          string
		geoipCity, geoipCountry     string
		geoliteCity, geoliteCountry string
	}{
		{"89.160.20.112", "SE-E", "SE", "SE-E", "SE"},
		{"81.2.69.142", "GB-ENG", "GB", "GB-ENG", "GB"},
		{"::ffff:81.2.69.142", "GB-ENG", "GB", "GB-ENG", "GB"}, // mapped: same as IPv4
		{"214.78.120.1", "US-CA", "US", "-", "-"},              // GeoLite2 has 214.78.0.0/19 instead
		{"214.78.0.1", "-", "-", "US-CA", "US"},
		{"216.160.83.56", "US-WA", "US", "US-WA", "US"},
		{"2a02:d000::1", "CH", "CH", "CH", "CH"},
		{"175.16.199.1", "CN-22", "CN", "CN-22", "-"},
		{"67.43.156.1", "BT", "BT", "BT", "BT"},
		{"2.125.160.216", "GB-ENG", "GB", "GB-ENG", "GB"}, // two subdivisions: the first wins
		{"2a02:d500::1", "-", "-", "-", "-"},              // continent only
		{"10.0.0.1", "-", "-", "-", "-"},
		{"127.0.0.1", "-", "-", "-", "-"},
		{"2001:db8::1", "-", "-", "-", "-"},
	}
	want := func(s string) Location {
		if s == "-" {
			return Location{}
		}
		cc, sub, _ := strings.Cut(s, "-")
		return loc(cc, sub)
	}
	for i, name := range testDBs {
		db := openTestDB(t, name)
		check := func(ip string, w Location) {
			t.Helper()
			if got := db.Lookup(mustAddr(t, ip)); got != w {
				t.Errorf("%s: Lookup(%s) = %q/%q, want %q/%q", name, ip,
					got.CountryCode(), got.SubdivisionCode(), w.CountryCode(), w.SubdivisionCode())
			}
		}
		for _, c := range cases {
			check(c.ip, want([]string{c.geoipCity, c.geoipCountry, c.geoliteCity, c.geoliteCountry}[i]))
		}
		if got := db.Lookup(netip.Addr{}); got != (Location{}) {
			t.Errorf("%s: Lookup(zero Addr) = %v, want unknown", name, got)
		}
	}
}

// TestDBMatchesSourceData checks every network of every test database against the JSON it
// was built from: the first and last address of each network must locate to its country
// and first subdivision (or nowhere when it has no country).
func TestDBMatchesSourceData(t *testing.T) {
	type place struct {
		ISOCode string `json:"iso_code"`
	}
	type record struct {
		Country      *place  `json:"country"`
		Subdivisions []place `json:"subdivisions"`
	}
	for _, name := range testDBs {
		raw, err := os.ReadFile(testdataPath(t, name+".source.json"))
		if err != nil {
			t.Fatal(err)
		}
		var src []map[string]record
		if err := json.Unmarshal(raw, &src); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		type network struct {
			p    netip.Prefix
			want Location
		}
		var nets []network
		for _, m := range src {
			for k, r := range m {
				p, err := netip.ParsePrefix(k)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if strings.HasPrefix(k, "::") && strings.Contains(k, ".") && p.Bits() >= 96 {
					a := p.Addr()
					// "::1.2.3.0/120" is written in the IPv4 subtree of an IPv6 database.
					p = netip.PrefixFrom(netip.AddrFrom4([4]byte(a.AsSlice()[12:])), p.Bits()-96)
				}
				var w Location
				if r.Country != nil {
					w = loc(r.Country.ISOCode, "")
					if len(r.Subdivisions) > 0 {
						copy(w.Subdivision[:], r.Subdivisions[0].ISOCode)
					}
				}
				nets = append(nets, network{p.Masked(), w})
			}
		}
		// The most specific network holding an address decides, as in the search tree.
		expect := func(ip netip.Addr) Location {
			best := -1
			for i, n := range nets {
				if n.p.Contains(ip) && (best < 0 || n.p.Bits() > nets[best].p.Bits()) {
					best = i
				}
			}
			return nets[best].want
		}
		db := openTestDB(t, name)
		checked := 0
		for _, n := range nets {
			for _, ip := range []netip.Addr{n.p.Addr(), lastAddr(n.p)} {
				w := expect(ip)
				if got := db.Lookup(ip); got != w {
					t.Errorf("%s: Lookup(%s) in %s = %q/%q, want %q/%q", name, ip, n.p,
						got.CountryCode(), got.SubdivisionCode(), w.CountryCode(), w.SubdivisionCode())
				}
				checked++
			}
		}
		if checked < 400 {
			t.Errorf("%s: only %d addresses checked", name, checked)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestDBDecodeMatchesReflection compares the cursor decoder with the library's reflection
// decoder on every record of every test database.
func TestDBDecodeMatchesReflection(t *testing.T) {
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		Subdivisions []struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"subdivisions"`
	}
	for _, name := range testDBs {
		db := openTestDB(t, name)
		n := 0
		for res := range db.reader.Networks() {
			rec.Country.ISOCode, rec.Subdivisions = "", nil
			if err := res.Decode(&rec); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var w Location
			if rec.Country.ISOCode != "" {
				w = loc(rec.Country.ISOCode, "")
				if len(rec.Subdivisions) > 0 {
					copy(w.Subdivision[:], rec.Subdivisions[0].ISOCode)
				}
			}
			got, err := db.decode(uint(res.Offset()))
			if err != nil || got != w {
				t.Errorf("%s: %s: decode = %v, %v; reflection says %v", name, res.Prefix(), got, err, w)
			}
			n++
		}
		if n < 100 {
			t.Errorf("%s: only %d networks", name, n)
		}
	}
}

func TestOpenDBInfo(t *testing.T) {
	for _, name := range testDBs {
		path := testdataPath(t, name+".mmdb")
		db := openTestDB(t, name)
		info := db.Info()
		wantType := strings.TrimSuffix(name, "-Test")
		if info.Path != path || info.Type != wantType || !info.BuildTime.Equal(time.Unix(1770245369, 0)) || info.BuildTime.Location() != time.UTC {
			t.Errorf("%s: Info() = %+v", name, info)
		}
	}
}

func TestOpenDBErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := os.ReadFile(testdataPath(t, "GeoLite2-City-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	record := []any{mmMap{{"autonomous_system_number", uint32(64512)}}}
	cases := []struct {
		name string
		path string
		is   error // errors.Is target, nil for any error
	}{
		{"missing", filepath.Join(dir, "nope.mmdb"), fs.ErrNotExist},
		{"empty", write("empty.mmdb", nil), nil},
		{"not a database", write("text.mmdb", []byte("hello, world\n")), nil},
		{"truncated", write("trunc.mmdb", good[:len(good)/2]), nil},
		{"ASN database", write("asn.mmdb", mmBuild("GeoLite2-ASN", record)), errNoCountryData},
		{"ISP database", write("isp.mmdb", mmBuild("GeoIP2-ISP", record)), errNoCountryData},
		{"directory", dir, nil},
	}
	for _, c := range cases {
		db, err := OpenDB(c.path)
		if err == nil {
			db.Close()
			t.Errorf("%s: OpenDB succeeded", c.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "geo: open "+c.path+": ") {
			t.Errorf("%s: error %q does not start with geo: open <path>", c.name, err)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %q is not %v", c.name, err, c.is)
		}
	}
}

// TestDBOddRecords feeds records the public test files do not have: the result must be
// unknown whenever the country cannot be trusted, and never a panic.
func TestDBOddRecords(t *testing.T) {
	country := func(iso any) mmMap { return mmMap{{"country", mmMap{{"iso_code", iso}}}} }
	cases := []struct {
		name   string
		record any
		want   Location
	}{
		{"lower case", mmMap{
			{"country", mmMap{{"geoname_id", uint32(1)}, {"iso_code", "se"}, {"names", mmMap{{"en", "Sweden"}}}}},
			{"subdivisions", []any{mmMap{{"iso_code", "ab"}}, mmMap{{"iso_code", "C"}}}},
		}, loc("SE", "AB")},
		{"keys in any order", mmMap{
			{"subdivisions", []any{mmMap{{"iso_code", "CA"}}}},
			{"location", mmMap{{"time_zone", "America/Los_Angeles"}, {"metro_code", uint16(807)}}},
			{"country", mmMap{{"iso_code", "US"}}},
		}, loc("US", "CA")},
		{"three letters", country("USA"), Location{}},
		{"one letter", country("U"), Location{}},
		{"digits", country("12"), Location{}},
		{"not a string", country(uint16(12)), Location{}},
		{"no iso_code", mmMap{{"country", mmMap{{"names", mmMap{{"en", "X"}}}}}}, Location{}},
		{"country not a map", mmMap{{"country", "DE"}}, Location{}},
		{"subdivision only", mmMap{{"subdivisions", []any{mmMap{{"iso_code", "CA"}}}}}, Location{}},
		{"long subdivision", mmMap{{"country", mmMap{{"iso_code", "DE"}}}, {"subdivisions", []any{mmMap{{"iso_code", "BAYERN"}}}}}, loc("DE", "")},
		{"punctuated subdivision", mmMap{{"country", mmMap{{"iso_code", "DE"}}}, {"subdivisions", []any{mmMap{{"iso_code", "B-Y"}}}}}, loc("DE", "")},
		{"empty subdivisions", mmMap{{"country", mmMap{{"iso_code", "DE"}}}, {"subdivisions", []any{}}}, loc("DE", "")},
		{"subdivisions not a list", mmMap{{"country", mmMap{{"iso_code", "DE"}}}, {"subdivisions", "BY"}}, Location{}},
		{"empty record", mmMap{}, Location{}},
		{"record not a map", "DE", Location{}},
		{"truncated value", mmMap{{"country", mmRaw{0x5f}}}, Location{}}, // string of 31+ bytes, cut off
	}
	records := make([]any, len(cases))
	for i, c := range cases {
		records[i] = c.record
	}
	// mmAddr covers 8 records per database; build as many databases as needed.
	for start := 0; start < len(cases); start += 7 {
		end := min(start+7, len(cases))
		db, err := OpenDB(mmWrite(t, "GeoIP2-City", records[start:end]))
		if err != nil {
			t.Fatal(err)
		}
		for i := start; i < end; i++ {
			if got := db.Lookup(mustAddr(t, mmAddr(i-start))); got != cases[i].want {
				t.Errorf("%s: Lookup = %v, want %v", cases[i].name, got, cases[i].want)
			}
		}
		if got := db.Lookup(mustAddr(t, "255.255.255.255")); got != (Location{}) {
			t.Errorf("address outside every network: %v", got)
		}
		if got := db.Lookup(mustAddr(t, "2001:db8::1")); got != (Location{}) {
			t.Errorf("IPv6 in an IPv4 database: %v", got)
		}
		db.Close()
	}
}

func TestDBClosedOrNil(t *testing.T) {
	db, err := OpenDB(testdataPath(t, "GeoLite2-City-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := db.Lookup(mustAddr(t, "81.2.69.142")); got != (Location{}) {
		t.Errorf("Lookup on a closed DB = %v, want unknown", got)
	}
	var nilDB *DB
	if got := nilDB.Lookup(mustAddr(t, "81.2.69.142")); got != (Location{}) {
		t.Errorf("Lookup on a nil DB = %v, want unknown", got)
	}
}

func TestHasCountryData(t *testing.T) {
	for typ, want := range map[string]bool{
		"GeoIP2-City": true, "GeoIP2-Country": true, "GeoLite2-City": true, "GeoLite2-Country": true,
		"GeoIP2-Enterprise": true, "DBIP-City-Lite": true, "DBIP-Country-Lite": true,
		"GeoLite2-ASN": false, "GeoIP2-ISP": false, "GeoIP2-Anonymous-IP": false,
		"GeoIP2-Connection-Type": false, "GeoIP2-Domain": false, "": false,
	} {
		if got := hasCountryData(typ); got != want {
			t.Errorf("hasCountryData(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestLocationCodes(t *testing.T) {
	check := func(l Location, known bool, cc, sub string) {
		t.Helper()
		if l.Known() != known || l.CountryCode() != cc || l.SubdivisionCode() != sub {
			t.Errorf("%v: Known=%v CountryCode=%q SubdivisionCode=%q, want %v %q %q",
				l, l.Known(), l.CountryCode(), l.SubdivisionCode(), known, cc, sub)
		}
	}
	check(Location{}, false, "", "")
	check(loc("GB", "ENG"), true, "GB", "ENG")
	check(loc("SE", "E"), true, "SE", "E")
	check(loc("CN", "22"), true, "CN", "22")
	check(loc("CH", ""), true, "CH", "")
}
