package geo

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The four MaxMind test databases in testdata/geoip at the repository root.
var testDBs = []string{
	"GeoIP2-City-Test",
	"GeoIP2-Country-Test",
	"GeoLite2-City-Test",
	"GeoLite2-Country-Test",
}

// testdataPath returns testdata/geoip/name, failing the test if it is missing.
func testdataPath(tb testing.TB, name string) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("runtime.Caller: no file for the test helper")
	}
	p := filepath.Join(filepath.Dir(file), "..", "testdata", "geoip", name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("test database missing (copy it from ../shared/testdata/geoip, see testdata/geoip/README.md): %v", err)
	}
	return p
}

func openTestDB(tb testing.TB, name string) *DB {
	tb.Helper()
	db, err := OpenDB(testdataPath(tb, name+".mmdb"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func mustAddr(tb testing.TB, s string) netip.Addr {
	tb.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func loc(country, sub string) Location {
	var l Location
	copy(l.Country[:], country)
	copy(l.Subdivision[:], sub)
	return l
}
