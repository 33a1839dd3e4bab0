package rules

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/geo"
)

// TestTrustedProxiesAgree: config/load checks trusted_proxies without importing geo, so
// its check and geo.ParseTrusted, which Compile uses, must accept the same entries; a
// config that loads must never fail to compile on them.
func TestTrustedProxiesAgree(t *testing.T) {
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	for _, entry := range []string{"10.0.0.0/8", "10.0.0.1", " 10.0.0.1 ", "::1", "fe80::1%eth0", "::ffff:10.0.0.0/104",
		"2001:db8::/32", "10.0.0.0/33", "10.0.0.256", "localhost", "", "10.0.0.0/8/8", "fe80::/10%eth0"} {
		_, loadErr := ld.LoadBytes("t.yaml", []byte("trusted_proxies: [\""+entry+"\"]\n"))
		_, geoErr := geo.ParseTrusted([]string{entry})
		if (loadErr == nil) != (geoErr == nil) {
			t.Errorf("%q: load says %v, geo says %v", entry, loadErr, geoErr)
		}
		if loadErr != nil && !strings.Contains(loadErr.Error(), "t.yaml:1:") {
			t.Errorf("%q: error without a position: %v", entry, loadErr)
		}
	}
}

// TestCompileKeepsHasherAcrossReloads: a reload keeps the hasher (hashed IDs stay stable)
// unless the secret changed.
func TestCompileKeepsHasherAcrossReloads(t *testing.T) {
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	compile := func(yaml string, prev *Snapshot) *Snapshot {
		t.Helper()
		cfg, err := ld.LoadBytes("t.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Compile(cfg, CompileOptions{Prev: prev})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := compile("anonymise:\n  secret: \"0123456789abcdef-one\"\n", nil)
	b := compile("anonymise:\n  secret: \"0123456789abcdef-one\"\nmax_body_size: 2048\n", a)
	if b.Hasher != a.Hasher {
		t.Error("same secret: the hasher was replaced")
	}
	c := compile("anonymise:\n  secret: \"0123456789abcdef-two\"\n", b)
	if c.Hasher == b.Hasher {
		t.Error("new secret: the hasher was kept")
	}
	if a.Version == b.Version {
		t.Error("the version did not change with max_body_size")
	}
}

// TestGoodConfigsCompile: the configs config/load's tests call good also compile, so a
// check that only Compile makes (routes against the catalogue's path shapes) cannot leave
// a "good" example that `consentgate check` refuses.
func TestGoodConfigsCompile(t *testing.T) {
	t.Chdir("../config/load") // the configs name files relative to their package
	files, err := filepath.Glob("testdata/config/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good configs: %v", err)
	}
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	for _, f := range files {
		cfg, err := ld.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, err := Compile(cfg, CompileOptions{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
