package proxy

import (
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/fileswap"
	"github.com/consentgate/consentgate/telemetry"
)

// geoProxy is a proxy whose GeoIP database is a file of the test's, checked every
// geoCheckEvery, started from a config file that Reload re-reads. The City and Country
// test databases tell each other apart by ipUSCA: in California (us-ca) by the City one,
// in the US of no known state (other) by the Country one.
type geoProxy struct {
	*testProxy
	dir, db    string // the test's directory, the database file the config names
	configPath string
	logs       *syncBuffer
}

const geoCheckEvery = 20 * time.Millisecond

// secretFile is what a file that is not a database holds in the tests: it must never be
// quoted in a log.
const secretFile = "CONSENTGATE_ANONYMISE_SECRET=Kq7Wm2Zx9Lp4Vr8Tn3Bc6Hd1Jf5Gs0Ya\n"

// startGeoProxy starts one on testConfig with the City test database in dir/GeoIP2.mmdb,
// which geo.database names, or with no database.
func startGeoProxy(t *testing.T, withDB bool) *geoProxy {
	t.Helper()
	gp := &geoProxy{dir: t.TempDir(), logs: &syncBuffer{}}
	gp.db = filepath.Join(gp.dir, "GeoIP2.mmdb")
	gp.install(t, "GeoIP2-City-Test", gp.db)
	gp.configPath = filepath.Join(gp.dir, "consentgate.yaml")
	db := ""
	if withDB {
		db = gp.db
	}
	gp.writeConfig(t, db)
	cfg, err := testLoader.Load(gp.configPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(gp.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gp.testProxy = startProxyWith(t, cfg, Options{ConfigPath: gp.configPath, Logger: logger, Now: fixedNow,
		Build: telemetry.BuildInfo{Version: "test-build"}, GeoCheckInterval: geoCheckEvery})
	return gp
}

// writeConfig writes the config file naming db as geo.database, or no database.
func (gp *geoProxy) writeConfig(t *testing.T, db string) {
	t.Helper()
	geo := `geo:
  database: "../testdata/geoip/GeoIP2-City-Test.mmdb"
`
	repl := ""
	if db != "" {
		repl = "geo:\n  database: \"" + db + "\"\n"
	}
	writeFile(t, gp.configPath, strings.Replace(testConfig(startSink(t).URL(), ""), geo, repl, 1))
}

// install writes test database name at path as geoipupdate does: a temporary file in
// the same directory, renamed over the old one.
func (gp *geoProxy) install(t *testing.T, name, path string) {
	t.Helper()
	fileswap.Rename(t, path, testDB(t, name), 0o644)
}

// testDB is test database name's content.
func testDB(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "geoip", name+".mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jurisdiction is where the proxy places ipUSCA, as a visitor's page sees it.
func (gp *geoProxy) jurisdiction(t *testing.T) string {
	t.Helper()
	return readScriptConfig(t, gp.do("GET", "/consentgate.js", "", "X-Forwarded-For", ipUSCA).Body).Jurisdiction
}

// locatedWithin waits until ipUSCA is placed in want.
func (gp *geoProxy) locatedWithin(t *testing.T, want string) {
	t.Helper()
	start := time.Now()
	eventually(t, 10*time.Second, "ipUSCA located in "+want, func() bool { return gp.jurisdiction(t) == want })
	t.Logf("%s in force %v after the file changed (checked every %v)", want, time.Since(start).Round(time.Millisecond), geoCheckEvery)
}

func (gp *geoProxy) reloadErrors(t *testing.T) float64 {
	t.Helper()
	return gp.metric(t, "consentgate_geoip_reload_errors_total")
}

// inForceLines counts the watcher's log lines for a new database.
func (gp *geoProxy) inForceLines() int {
	return strings.Count(gp.logs.String(), `"msg":"the GeoIP database file changed: new database in force"`)
}

// TestGeoIPWatch: a database renamed over the configured file is in force within the
// check interval, with no signal, and recorded as a reload is (metrics, a log line); one
// that does not load (garbage, a symlink to a file of the proxy's, half-written, a FIFO)
// leaves the database in force serving, is counted as a failed reload and logged, and is
// not tried again until the file changes again; the next good one is taken. No log line
// names the visitor's IP or quotes the file that was not a database.
func TestGeoIPWatch(t *testing.T) {
	gp := startGeoProxy(t, true)
	if got := gp.jurisdiction(t); got != "us-ca" {
		t.Fatalf("ipUSCA in %s with the City database, want us-ca", got)
	}
	inForce := "us-ca"
	swap := func(t *testing.T, name, want string) {
		t.Helper()
		errs, lines := gp.reloadErrors(t), gp.inForceLines()
		before := float64(time.Now().UnixMilli()) / 1000
		gp.install(t, name, gp.db)
		gp.locatedWithin(t, want)
		inForce = want
		if v := gp.metric(t, "consentgate_geoip_last_reload_successful"); v != 1 {
			t.Errorf("consentgate_geoip_last_reload_successful = %v after a good database, want 1", v)
		}
		if at := gp.metric(t, "consentgate_geoip_last_reload_success_timestamp_seconds"); at < before {
			t.Errorf("last successful reload at %v, before the file was replaced (%v)", at, before)
		}
		if e := gp.reloadErrors(t); e != errs {
			t.Errorf("reload errors %v → %v for a good database", errs, e)
		}
		eventually(t, 10*time.Second, "the log line of the new database", func() bool { return gp.inForceLines() == lines+1 })
		if !strings.Contains(gp.logs.String(), `"database":"`+gp.db+`","type":"`+strings.TrimSuffix(name, "-Test")) {
			t.Errorf("the log line does not name the file and the database type:\n%s", grep(gp.logs.String(), "GeoIP"))
		}
	}
	swap(t, "GeoIP2-Country-Test", "other")

	city := testDB(t, "GeoIP2-City-Test")
	for _, bad := range []struct {
		name  string
		write func(t *testing.T)
		why   string
	}{
		{"garbage", func(t *testing.T) { fileswap.Rename(t, gp.db, []byte(secretFile), 0o644) }, "invalid MaxMind DB"},
		{"a symlink to another file", func(t *testing.T) {
			// Whoever can write the database's directory can point it at a file of the
			// proxy's: what it holds must not reach the log.
			other := filepath.Join(gp.dir, "env")
			writeFile(t, other, secretFile)
			fileswap.Symlink(t, other, gp.db)
		}, "invalid MaxMind DB"},
		{"half-written", func(t *testing.T) { fileswap.Rename(t, gp.db, city[:len(city)/2], 0o644) }, "geo: open " + gp.db},
		{"a FIFO", func(t *testing.T) {
			fifo := filepath.Join(gp.dir, "fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(fifo, gp.db); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			errs := gp.reloadErrors(t)
			bad.write(t)
			eventually(t, 10*time.Second, "the failed reload counted", func() bool { return gp.reloadErrors(t) == errs+1 })
			if got := gp.jurisdiction(t); got != inForce {
				t.Errorf("ipUSCA in %s after a bad database, want %s: the database in force keeps serving", got, inForce)
			}
			if v := gp.metric(t, "consentgate_geoip_last_reload_successful"); v != 0 {
				t.Errorf("consentgate_geoip_last_reload_successful = %v after a bad database, want 0", v)
			}
			if !strings.Contains(grep(gp.logs.String(), "did not load"), bad.why) {
				t.Errorf("no error log saying %q:\n%s", bad.why, grep(gp.logs.String(), "GeoIP"))
			}
			// Tried once: the file is read again only when it changes again. Waiting
			// longer can only let a wrong retry show.
			time.Sleep(10 * geoCheckEvery)
			if e := gp.reloadErrors(t); e != errs+1 {
				t.Errorf("reload errors %v, want %v: an unchanged bad file was tried again", e, errs+1)
			}
			next := map[string]string{"us-ca": "GeoIP2-Country-Test", "other": "GeoIP2-City-Test"}[inForce]
			swap(t, next, map[string]string{"us-ca": "other", "other": "us-ca"}[inForce])
		})
	}
	if strings.Contains(gp.logs.String(), ipUSCA) {
		t.Error("the log names a visitor's IP")
	}
	if strings.Contains(gp.logs.String(), "Kq7Wm2Zx9") {
		t.Error("the log quotes a file that was not a database")
	}
}

// TestGeoIPWatchSymlinkSwap: a database on a Kubernetes volume (a ConfigMap, Secret or
// projected volume) is a symlink into ..data, which an update points at a new directory;
// the file's path never changes, and the swap is seen.
func TestGeoIPWatchSymlinkSwap(t *testing.T) {
	gp := startGeoProxy(t, false)
	vol := filepath.Join(gp.dir, "vol")
	version := func(dir, db string) {
		t.Helper()
		fileswap.Volume(t, vol, dir, map[string][]byte{"GeoIP2.mmdb": testDB(t, db)})
	}
	version("..2026_01_01", "GeoIP2-City-Test")
	// Named by a reload: the proxy started without a database, and the watcher starts with
	// the first config that names one.
	gp.writeConfig(t, filepath.Join(vol, "GeoIP2.mmdb"))
	if status, a := gp.reloadAPI(t); status != 200 || !a.Reloaded {
		t.Fatalf("reload naming the database: %d %+v", status, a)
	}
	if got := gp.jurisdiction(t); got != "us-ca" {
		t.Fatalf("ipUSCA in %s with the City database, want us-ca", got)
	}
	version("..2026_02_01", "GeoIP2-Country-Test")
	gp.locatedWithin(t, "other")
	version("..2026_03_01", "GeoIP2-City-Test")
	gp.locatedWithin(t, "us-ca")
}

// TestGeoIPWatchFollowsReload: a reload that names another file puts it in force, and it
// is the one watched from then on: the old file changing changes nothing.
func TestGeoIPWatchFollowsReload(t *testing.T) {
	gp := startGeoProxy(t, true)
	moved := filepath.Join(gp.dir, "moved", "GeoIP2.mmdb")
	if err := os.Mkdir(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	gp.install(t, "GeoIP2-Country-Test", moved)
	gp.writeConfig(t, moved)
	if status, a := gp.reloadAPI(t); status != 200 || !a.Reloaded {
		t.Fatalf("reload naming another file: %d %+v", status, a)
	}
	if got := gp.jurisdiction(t); got != "other" {
		t.Fatalf("ipUSCA in %s right after the reload to the Country database, want other", got)
	}
	lines, errs := gp.inForceLines(), gp.reloadErrors(t)
	fileswap.Rename(t, gp.db, []byte("garbage in the file no longer named"), 0o644)
	time.Sleep(10 * geoCheckEvery) // longer can only let a wrong reload show
	if got, e, l := gp.jurisdiction(t), gp.reloadErrors(t), gp.inForceLines(); got != "other" || e != errs || l != lines {
		t.Errorf("after the old file changed: ipUSCA in %s, reload errors %v → %v, log lines %d → %d; want other and no reload", got, errs, e, lines, l)
	}
	gp.install(t, "GeoIP2-City-Test", moved)
	gp.locatedWithin(t, "us-ca")
}

// TestGeoIPWatchStops: without a database no watcher runs; with one, it runs while the
// server does and is gone when Shutdown returns.
func TestGeoIPWatchStops(t *testing.T) {
	watching := func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:goruntime.Stack(buf, true)]), "proxy.(*Server).watchGeo")
	}
	if watching() {
		t.Fatal("a GeoIP watcher runs before any server does: one of another test was left behind")
	}
	none := startGeoProxy(t, false)
	none.jurisdiction(t)
	if watching() {
		t.Error("a GeoIP watcher runs with no database configured")
	}
	gp := startGeoProxy(t, true)
	eventually(t, 10*time.Second, "the watcher running", watching)
	for _, p := range []*geoProxy{none, gp} {
		if err := p.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	if watching() {
		t.Error("the GeoIP watcher still runs after Shutdown returned")
	}
	// A file that changes after Shutdown is not read.
	gp.install(t, "GeoIP2-Country-Test", gp.db)
	time.Sleep(10 * geoCheckEvery)
	if n := gp.inForceLines(); n != 0 {
		t.Errorf("%d reloads after Shutdown", n)
	}
}
