package load

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/internal/certtest"
)

// TestLoadTLS: the certificate and key load as a pair, from the file or the environment,
// each at its position; TLS stays off without them.
func TestLoadTLS(t *testing.T) {
	c := certtest.Write(t, t.TempDir(), certtest.Options{})
	t.Run("file", func(t *testing.T) {
		useEnv(t, nil)
		cfg, err := LoadBytes("t.yaml", []byte("tls:\n  cert_file: "+c.CertFile+"\n  key_file: "+c.KeyFile+"\n  min_version: \"1.3\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if want := (config.TLSConfig{CertFile: c.CertFile, KeyFile: c.KeyFile, MinVersion: "1.3"}); cfg.TLS != want || !cfg.TLS.On() {
			t.Errorf("TLS = %+v, want %+v, on", cfg.TLS, want)
		}
		checkPos(t, cfg, map[string]string{"tls.cert_file": "t.yaml:2:14", "tls.key_file": "t.yaml:3:13"})
		if len(cfg.Warnings) != 0 {
			t.Errorf("warnings: %v", cfg.Warnings)
		}
	})
	t.Run("environment", func(t *testing.T) {
		useEnv(t, map[string]string{"CONSENTGATE_TLS_CERT_FILE": c.CertFile, "CONSENTGATE_TLS_KEY_FILE": c.KeyFile})
		cfg, err := Default()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TLS.CertFile != c.CertFile || cfg.TLS.KeyFile != c.KeyFile || cfg.TLS.MinVersion != "1.2" {
			t.Errorf("TLS = %+v", cfg.TLS)
		}
		checkPos(t, cfg, map[string]string{"tls.cert_file": "$CONSENTGATE_TLS_CERT_FILE"})
	})
	t.Run("off", func(t *testing.T) {
		useEnv(t, nil)
		cfg, err := LoadBytes("t.yaml", []byte("tls:\n  cert_file: \"\"\n  key_file: \"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TLS.On() {
			t.Errorf("TLS on with empty files: %+v", cfg.TLS)
		}
	})
}

// TestLoadTLSBad: a certificate without its key (or the other way round), a file that
// cannot be opened, and a pair that does not load are each refused at their position,
// with the file system's or crypto/tls's reason; nothing of a key is ever quoted.
func TestLoadTLSBad(t *testing.T) {
	dir := t.TempDir()
	a := certtest.Write(t, dir, certtest.Options{})
	b := certtest.New(t, certtest.Options{})
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherKey := write("other-key.pem", b.KeyPEM)
	garbage := write("garbage.pem", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"))
	halfKey := write("half-key.pem", a.KeyPEM[:len(a.KeyPEM)/2])
	missing := filepath.Join(dir, "none.pem")
	yaml := func(cert, key string) string {
		var s strings.Builder
		s.WriteString("log_level: info\ntls:\n")
		if cert != "" {
			s.WriteString("  cert_file: " + cert + "\n")
		}
		if key != "" {
			s.WriteString("  key_file: " + key + "\n")
		}
		return s.String()
	}
	notPair := func(cert, key, why string) string {
		return `t.yaml:3:14: tls.cert_file, tls.key_file: ` + quote(cert) + ` and ` + quote(key) + ` are not a certificate and its key: ` + why
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		yaml string
		want []string
	}{
		{"certificate without key", nil, yaml(a.CertFile, ""), []string{
			`t.yaml:3:14: tls.cert_file needs tls.key_file, the certificate's private key: set both to serve TLS, or neither`}},
		{"key without certificate", nil, yaml("", a.KeyFile), []string{
			`t.yaml:3:13: tls.key_file needs tls.cert_file, the certificate the key belongs to: set both to serve TLS, or neither`}},
		{"missing certificate file", nil, yaml(missing, a.KeyFile), []string{
			`t.yaml:3:14: tls.cert_file: open ` + missing + `: no such file or directory`}},
		{"missing key file", nil, yaml(a.CertFile, missing), []string{
			`t.yaml:4:13: tls.key_file: open ` + missing + `: no such file or directory`}},
		{"a directory", nil, yaml(dir, a.KeyFile), []string{
			`t.yaml:3:14: tls.cert_file: ` + quote(dir) + ` is not a regular file`}},
		{"key of another certificate", nil, yaml(a.CertFile, otherKey), []string{
			notPair(a.CertFile, otherKey, "tls: private key does not match public key")}},
		{"garbage certificate", nil, yaml(garbage, a.KeyFile), []string{
			notPair(garbage, a.KeyFile, "x509: malformed certificate")}},
		{"half-written key", nil, yaml(a.CertFile, halfKey), []string{
			notPair(a.CertFile, halfKey, "tls: failed to find any PEM data in key input")}},
		{"certificate and key swapped", nil, yaml(a.KeyFile, a.CertFile), []string{
			notPair(a.KeyFile, a.CertFile, "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched")}},
		{"key from the environment, certificate nowhere", map[string]string{"CONSENTGATE_TLS_KEY_FILE": a.KeyFile}, "", []string{
			`$CONSENTGATE_TLS_KEY_FILE: tls.key_file needs tls.cert_file, the certificate the key belongs to: set both to serve TLS, or neither`}},
		{"environment key against the file's certificate", map[string]string{"CONSENTGATE_TLS_KEY_FILE": otherKey}, yaml(a.CertFile, a.KeyFile), []string{
			notPair(a.CertFile, otherKey, "tls: private key does not match public key")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			useEnv(t, c.env)
			cfg, err := LoadBytes("t.yaml", []byte(c.yaml))
			var ce *config.Error
			if !errors.As(err, &ce) || cfg != nil {
				t.Fatalf("want *Error, got cfg=%v err=%v", cfg != nil, err)
			}
			checkSorted(t, ce)
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, c.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, c.want)
			}
			for _, pem := range [][]byte{a.KeyPEM, b.KeyPEM} {
				if strings.Contains(err.Error(), string(pem[28:60])) {
					t.Errorf("a message quotes key material: %v", err)
				}
			}
		})
	}
}

// TestLoadTLSWarnings: a certificate out of its dates, and a key file every user can
// read, load with a warning each: the first because a renewal may be on its way (the
// watcher takes it without a restart), the second because containers mount Secrets so.
func TestLoadTLSWarnings(t *testing.T) {
	useEnv(t, nil)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		opts certtest.Options
		mode os.FileMode
		want []string
	}{
		{"valid, key private", certtest.Options{}, 0o600, nil},
		{"expired", certtest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, 0o600,
			[]string{"t.yaml:2:14: tls.cert_file: the certificate expired at "}},
		{"not valid yet", certtest.Options{NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(48 * time.Hour)}, 0o600,
			[]string{"t.yaml:2:14: tls.cert_file: the certificate is not valid before "}},
		{"key readable by everyone", certtest.Options{}, 0o644,
			[]string{"t.yaml:3:13: tls.key_file: "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if err := os.Mkdir(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			cert := certtest.Write(t, sub, c.opts)
			if err := os.Chmod(cert.KeyFile, c.mode); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadBytes("t.yaml", []byte("tls:\n  cert_file: "+cert.CertFile+"\n  key_file: "+cert.KeyFile+"\n"))
			if err != nil {
				t.Fatalf("a warning stopped the load: %v", err)
			}
			if len(cfg.Warnings) != len(c.want) {
				t.Fatalf("warnings %v, want %d", cfg.Warnings, len(c.want))
			}
			for i, w := range cfg.Warnings {
				if !strings.HasPrefix(w.String(), c.want[i]) {
					t.Errorf("warning %q, want it to start %q", w, c.want[i])
				}
			}
		})
	}
}
