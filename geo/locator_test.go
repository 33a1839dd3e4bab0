package geo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/consentgate/consentgate/internal/fileswap"
)

// installDB copies test database name to path, the way an operator would: with a rename
// (geoipupdate) or by overwriting the file in place (cp).
func installDB(tb testing.TB, name, path string, inPlace bool) {
	tb.Helper()
	b, err := os.ReadFile(testdataPath(tb, name+".mmdb"))
	if err != nil {
		tb.Fatal(err)
	}
	if !inPlace {
		fileswap.Rename(tb, path, b, 0o644)
	} else if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestLocatorReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoIP2.mmdb")
	installDB(t, "GeoLite2-Country-Test", path, false)
	l, err := NewLocator(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	se := mustAddr(t, "89.160.20.112")
	check := func(want Location, wantType string) {
		t.Helper()
		if got := l.Lookup(se); got != want {
			t.Errorf("Lookup = %q/%q, want %q/%q", got.CountryCode(), got.SubdivisionCode(), want.CountryCode(), want.SubdivisionCode())
		}
		info, ok := l.Info()
		if !ok || info.Type != wantType || info.Path != path {
			t.Errorf("Info() = %+v, %v; want type %s", info, ok, wantType)
		}
	}
	check(loc("SE", ""), "GeoLite2-Country")

	// Good reload swaps.
	installDB(t, "GeoLite2-City-Test", path, false)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	check(loc("SE", "E"), "GeoLite2-City")

	// In-place overwrite is safe too: the file is not mapped.
	installDB(t, "GeoIP2-Country-Test", path, true)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	check(loc("SE", ""), "GeoIP2-Country")
	installDB(t, "GeoIP2-City-Test", path, true)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	check(loc("SE", "E"), "GeoIP2-City")

	// Bad reloads keep the current database and say why.
	bad := []struct {
		name  string
		setup func()
	}{
		{"garbage", func() { os.WriteFile(path, []byte("not a database"), 0o644) }},
		{"half written", func() {
			b, _ := os.ReadFile(testdataPath(t, "GeoLite2-City-Test.mmdb"))
			os.WriteFile(path, b[:len(b)/3], 0o644)
		}},
		{"wrong type", func() {
			os.WriteFile(path, mmBuild("GeoLite2-ASN", []any{mmMap{{"autonomous_system_number", uint32(1)}}}), 0o644)
		}},
		{"missing", func() { os.Remove(path) }},
	}
	for _, b := range bad {
		b.setup()
		err := l.Reload()
		if err == nil || !strings.HasPrefix(err.Error(), "geo: open "+path) {
			t.Errorf("%s: Reload() = %v, want a geo: open error", b.name, err)
		}
		check(loc("SE", "E"), "GeoIP2-City")
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Lookup(se); got != (Location{}) {
		t.Errorf("Lookup after Close = %v", got)
	}
	if _, ok := l.Info(); ok {
		t.Error("Info after Close reports a database")
	}
	installDB(t, "GeoIP2-City-Test", path, false)
	if err := l.Reload(); err == nil {
		t.Error("Reload after Close succeeded")
	}
}

func TestLocatorNoDB(t *testing.T) {
	l, err := NewLocator("")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Lookup(mustAddr(t, "89.160.20.112")); got != (Location{}) {
		t.Errorf("Lookup without DB = %v", got)
	}
	if _, ok := l.Info(); ok {
		t.Error("Info without DB reports one")
	}
	if err := l.Reload(); err != nil {
		t.Errorf("Reload without DB: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestNewLocatorError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.mmdb")
	l, err := NewLocator(path)
	if err == nil || l != nil || !strings.HasPrefix(err.Error(), "geo: open "+path+": ") {
		t.Errorf("NewLocator(missing) = %v, %v", l, err)
	}
}

// TestLocatorConcurrentReload runs lookups while databases are swapped (run with -race):
// every lookup must see one whole database, never a torn or closed one.
func TestLocatorConcurrentReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoIP2.mmdb")
	installDB(t, "GeoLite2-City-Test", path, false)
	l, err := NewLocator(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	se, gb := mustAddr(t, "89.160.20.112"), mustAddr(t, "81.2.69.142")
	var stop atomic.Bool
	var lookups atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				a, b := l.Lookup(se), l.Lookup(gb)
				if (a != loc("SE", "E") && a != loc("SE", "")) || (b != loc("GB", "ENG") && b != loc("GB", "")) {
					t.Errorf("lookup during reload: %v %v", a, b)
					return
				}
				if _, ok := l.Info(); !ok {
					t.Error("Info during reload: no database")
					return
				}
				lookups.Add(1)
			}
		}()
	}
	names := []string{"GeoLite2-Country-Test", "GeoIP2-City-Test", "GeoIP2-Country-Test", "GeoLite2-City-Test"}
	for i := range 40 {
		installDB(t, names[i%len(names)], path, i%2 == 0)
		if err := l.Reload(); err != nil {
			t.Error(err)
		}
		if i%10 == 0 { // failed reloads interleaved
			os.WriteFile(path, []byte("broken"), 0o644)
			if err := l.Reload(); err == nil {
				t.Error("Reload of a broken file succeeded")
			}
		}
	}
	// Concurrent reloads serialise and still leave a working database.
	var rwg sync.WaitGroup
	for range 4 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if err := l.Reload(); err != nil {
				t.Error(err)
			}
		}()
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	if lookups.Load() == 0 {
		t.Error("no lookups ran during the reloads")
	}
}

// TestLocatorRefresh: Refresh reloads when the file changed and only then, however it
// was replaced; a change that does not load leaves the database in force and is tried
// once; Reload counts as a look at the file, so a SIGHUP after an update does not make
// the next Refresh read it again.
func TestLocatorRefresh(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "GeoIP2.mmdb")
	installDB(t, "GeoIP2-City-Test", path, false)
	l, err := NewLocator(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ca := mustAddr(t, "214.78.120.5") // US-CA in the City database, US in the Country one
	city, country := loc("US", "CA"), loc("US", "")
	bytesOf := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(testdataPath(t, name+".mmdb"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	renameIn := func(data []byte) { fileswap.Rename(t, path, data, 0o644) }
	for _, step := range []struct {
		name    string
		change  func() // nil: the file is left alone
		wantErr string // "" = reloaded; ErrUnchanged's text when nothing happened
		want    Location
	}{
		{"untouched", nil, ErrUnchanged.Error(), city},
		{"renamed over (geoipupdate)", func() { installDB(t, "GeoIP2-Country-Test", path, false) }, "", country},
		{"untouched after a reload", nil, ErrUnchanged.Error(), country},
		{"rewritten in place (cp)", func() { installDB(t, "GeoIP2-City-Test", path, true) }, "", city},
		{"garbage renamed in", func() { renameIn([]byte("not a database")) }, "geo: open " + path, city},
		{"garbage, not tried again", nil, ErrUnchanged.Error(), city},
		{"half-written", func() { renameIn(bytesOf("GeoIP2-Country-Test")[:1000]) }, "geo: open " + path, city},
		{"repaired", func() { installDB(t, "GeoIP2-Country-Test", path, false) }, "", country},
		{"removed", func() { os.Remove(path) }, "no such file or directory", country},
		{"still removed", nil, ErrUnchanged.Error(), country},
		{"back", func() { installDB(t, "GeoIP2-City-Test", path, false) }, "", city},
		{"a FIFO renamed in: refused unread", func() {
			fifo := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(fifo, path); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file", city},
		{"after the FIFO", func() { installDB(t, "GeoIP2-Country-Test", path, false) }, "", country},
	} {
		if step.change != nil {
			step.change()
		}
		err := l.Refresh()
		switch {
		case step.wantErr == "" && err != nil:
			t.Errorf("%s: Refresh: %v, want a reload", step.name, err)
		case step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)):
			t.Errorf("%s: Refresh: %v, want an error saying %q", step.name, err, step.wantErr)
		}
		if got := l.Lookup(ca); got != step.want {
			t.Errorf("%s: Lookup = %s/%s, want %s/%s", step.name, got.CountryCode(), got.SubdivisionCode(), step.want.CountryCode(), step.want.SubdivisionCode())
		}
	}

	// Reload is a look at the file too.
	installDB(t, "GeoIP2-City-Test", path, false)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(); !errors.Is(err, ErrUnchanged) {
		t.Errorf("Refresh after a Reload of the same file: %v, want ErrUnchanged", err)
	}
	l.Close()
	installDB(t, "GeoIP2-Country-Test", path, false)
	if err := l.Refresh(); err == nil || errors.Is(err, ErrUnchanged) {
		t.Errorf("Refresh after Close: %v, want an error", err)
	}
}

// TestLocatorRefreshSymlinkSwap: a Kubernetes volume (ConfigMap, Secret, projected)
// holds its files as symlinks into ..data, itself a symlink that an update points at a
// new directory; the configured path never changes.
func TestLocatorRefreshSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, db string) {
		t.Helper()
		b, err := os.ReadFile(testdataPath(t, db+".mmdb"))
		if err != nil {
			t.Fatal(err)
		}
		fileswap.Volume(t, dir, name, map[string][]byte{"GeoIP2-City.mmdb": b})
	}
	version("..2026_01_01", "GeoIP2-City-Test")
	l, err := NewLocator(filepath.Join(dir, "GeoIP2-City.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ca := mustAddr(t, "214.78.120.5")
	if got := l.Lookup(ca); got != loc("US", "CA") {
		t.Fatalf("before the swap: %v", got)
	}
	version("..2026_02_01", "GeoIP2-Country-Test")
	if err := l.Refresh(); err != nil {
		t.Fatalf("Refresh after the symlink swap: %v", err)
	}
	if got := l.Lookup(ca); got != loc("US", "") {
		t.Errorf("after the swap: %s/%s, want the Country database's US", got.CountryCode(), got.SubdivisionCode())
	}
	if err := l.Refresh(); !errors.Is(err, ErrUnchanged) {
		t.Errorf("Refresh with nothing changed: %v", err)
	}
}

// TestLocatorRefreshNoDB: without a database there is nothing to watch.
func TestLocatorRefreshNoDB(t *testing.T) {
	l, err := NewLocator("")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(); !errors.Is(err, ErrUnchanged) {
		t.Errorf("Refresh without a database: %v, want ErrUnchanged", err)
	}
}
