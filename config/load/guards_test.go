package load

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config"
)

// TestLoadWarnGolden loads each testdata/config/warn/*.yaml, copied with the mode its
// .mode file gives (0600 without one: git keeps no read bits), and compares its warnings
// with the .golden file. A warning never stops a load. Run with -update to rewrite.
func TestLoadWarnGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/config/warn/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no warn configs: %v", err)
	}
	for _, path := range files {
		base := strings.TrimSuffix(path, ".yaml")
		t.Run(filepath.Base(base), func(t *testing.T) {
			useEnv(t, nil)
			mode := os.FileMode(0o600)
			if raw, err := os.ReadFile(base + ".mode"); err == nil {
				m, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 8, 32)
				if err != nil {
					t.Fatalf("%s.mode: %v", base, err)
				}
				mode = os.FileMode(m)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(t.TempDir(), filepath.Base(path))
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(tmp, mode); err != nil { // WriteFile's mode is masked by the umask
				t.Fatal(err)
			}
			cfg, err := Load(tmp)
			if err != nil {
				t.Fatalf("a warning config does not load: %v", err)
			}
			var b strings.Builder
			for _, w := range cfg.Warnings {
				b.WriteString(strings.ReplaceAll(w.String(), tmp, path) + "\n")
			}
			got := b.String()
			if strings.Contains(got, secretMarker) {
				t.Errorf("a warning repeats a secret:\n%s", got)
			}
			if *update {
				if err := os.WriteFile(base+".golden", []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(base + ".golden")
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("warnings differ from %s.golden:\n--- got\n%s--- want\n%s", base, got, want)
			}
		})
	}
}

// TestWarningsFromEnvironment: the guards see the config as it runs, environment
// included, and a warning is reported at the variable that set the value.
func TestWarningsFromEnvironment(t *testing.T) {
	useEnv(t, map[string]string{"CONSENTGATE_ADMIN_LISTEN": "0.0.0.0:9090", "CONSENTGATE_TRUSTED_PROXIES": "8.0.0.0/8"})
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.String())
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "$CONSENTGATE_ADMIN_LISTEN: admin_listen: ") ||
		!strings.HasPrefix(got[1], "$CONSENTGATE_TRUSTED_PROXIES: trusted_proxies.0: ") {
		t.Errorf("warnings = %q", got)
	}
	useEnv(t, map[string]string{"CONSENTGATE_TRUSTED_PROXIES": "10.0.0.0/8, 0.0.0.0/0"})
	_, err = Default()
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.HasPrefix(ce.Problems[0].String(),
		`$CONSENTGATE_TRUSTED_PROXIES: trusted_proxies.1: "0.0.0.0/0" covers all or much of the Internet`) {
		t.Errorf("0.0.0.0/0 from the environment: %v", err)
	}
}

// TestLoadedWithDefaultsWarnsNothing: the built-in defaults are safe as they stand.
func TestLoadedWithDefaultsWarnsNothing(t *testing.T) {
	useEnv(t, nil)
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("the defaults warn: %v", cfg.Warnings)
	}
}

func TestPublicWidth(t *testing.T) {
	for _, c := range []struct {
		prefix      string
		whole, wide bool
	}{
		{"0.0.0.0/0", true, true},
		{"128.0.0.0/1", true, true},
		{"8.0.0.0/7", true, true},
		{"8.0.0.0/8", false, true},
		{"44.0.0.0/9", false, true},
		{"104.16.0.0/12", false, true},
		{"104.16.0.0/13", false, false},
		{"203.0.113.7/32", false, false},
		{"10.0.0.0/8", false, false},
		{"172.16.0.0/12", false, false},
		{"100.64.0.0/10", false, false},
		{"127.0.0.0/8", false, false},
		{"::/0", true, true},
		{"2000::/3", true, true},
		{"2001::/15", true, true},
		{"2001::/16", false, true},
		{"2a06:98c0::/28", false, true},
		{"2a06:98c0::/29", false, false},
		{"fc00::/7", false, false},
		{"fe80::/10", false, false},
		{"::1/128", false, false},
		{"::ffff:0.0.0.0/96", true, true},
		{"::ffff:10.0.0.0/104", false, false},
		{"::ffff:8.0.0.0/104", false, true},
	} {
		whole, wide := publicWidth(netip.MustParsePrefix(c.prefix))
		if whole != c.whole || wide != c.wide {
			t.Errorf("publicWidth(%s) = %v, %v; want %v, %v", c.prefix, whole, wide, c.whole, c.wide)
		}
	}
}

func TestLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:9090": true, "127.1.2.3:1": true,
		":9090": false, "0.0.0.0:9090": false, "[::]:9090": false, "10.0.0.5:9090": false, "admin.internal:9090": false,
	} {
		if got := loopbackListen(addr); got != want {
			t.Errorf("loopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}
