package rules

import (
	"fmt"
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

// TestIPv6PrefixAgrees: config/load bounds anonymise.ipv6_prefix without importing geo,
// so its default and range must be geo.Truncate's.
func TestIPv6PrefixAgrees(t *testing.T) {
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	def, err := ld.Default()
	if err != nil {
		t.Fatal(err)
	}
	if def.Anonymise.IPv6Prefix != geo.DefaultIPv6Prefix {
		t.Errorf("default ipv6_prefix %d, geo says %d", def.Anonymise.IPv6Prefix, geo.DefaultIPv6Prefix)
	}
	for bits := geo.MinIPv6Prefix - 1; bits <= geo.MaxIPv6Prefix+1; bits++ {
		_, err := ld.LoadBytes("t.yaml", fmt.Appendf(nil, "anonymise:\n  ipv6_prefix: %d\n", bits))
		if want := bits >= geo.MinIPv6Prefix && bits <= geo.MaxIPv6Prefix; (err == nil) != want {
			t.Errorf("ipv6_prefix %d: load error %v, want accepted=%v", bits, err, want)
		}
	}
}

// TestCompileKeepsSaltsAcrossReloads: a reload compiles on the process's hasher, so its
// pseudonyms stay the same unless the secret changed.
func TestCompileKeepsSaltsAcrossReloads(t *testing.T) {
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	base := NewHasher(nil)
	compile := func(yaml string) *Snapshot {
		t.Helper()
		cfg, err := ld.LoadBytes("t.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Compile(cfg, CompileOptions{Hasher: base})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pseudonym := func(s *Snapshot) string {
		var out Out
		if err := s.Endpoints[0].Anon.Anonymise(&Hit{Query: []byte("tid=G-1&cid=1.2")}, "", &out); err != nil {
			t.Fatal(err)
		}
		return string(out.Query)
	}
	const one, two = "anonymise:\n  secret: \"Jx8vQ2mL7pRz4kWn-one\"\n", "anonymise:\n  secret: \"Jx8vQ2mL7pRz4kWn-two\"\n"
	a := compile(one)
	b := compile(one + "max_body_size: 2048\n")
	if pseudonym(a) != pseudonym(b) {
		t.Error("same secret: a reload changed the pseudonyms")
	}
	if c := compile(two); pseudonym(c) == pseudonym(b) {
		t.Error("new secret: the pseudonyms did not change")
	}
	if a.Version == b.Version {
		t.Error("the version did not change with max_body_size")
	}
	cfg, err := ld.LoadBytes("t.yaml", []byte(one))
	if err != nil {
		t.Fatal(err)
	}
	own, err := Compile(cfg, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pseudonym(own) == pseudonym(a) {
		t.Error("a compile without the process's hasher hashed alike: its salt is not its own")
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
