package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/certtest"
)

// TestServeTLSAndSIGHUP drives the binary: check refuses a certificate with another's
// key at the file's line and column; serve with a good pair says it listens with TLS and
// presents the certificate; SIGHUP after the config names other files presents theirs,
// without a restart; SIGTERM still drains and exits 0.
func TestServeTLSAndSIGHUP(t *testing.T) {
	// Each in a directory of its own, so the reload names other files.
	a := certtest.Write(t, t.TempDir(), certtest.Options{CommonName: "a"})
	b := certtest.Write(t, t.TempDir(), certtest.Options{CommonName: "b"})
	config := func(cert, key string) string {
		return "log_level: info\ntls:\n  cert_file: " + cert + "\n  key_file: " + key + "\n"
	}

	mismatched := writeFile(t, "mismatched.yaml", config(a.CertFile, b.KeyFile))
	out, code := runCmd(t, nil, "check", "--config", mismatched)
	if want := mismatched + ":3:14: tls.cert_file, tls.key_file: "; code != 1 || !strings.Contains(out, want) ||
		!strings.Contains(out, "tls: private key does not match public key") {
		t.Errorf("check on a mismatched pair: exit %d, want 1 and %q:\n%s", code, want, out)
	}

	path := writeFile(t, "tls.yaml", config(a.CertFile, a.KeyFile))
	p, seen := startServe(t, "--config", path, "--drain-delay", "0s")
	for _, m := range seen {
		if m["msg"] == "listening" && m["listener"] == "public" && m["tls"] != true {
			t.Errorf("the public listener's line does not say TLS: %v", m)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(a.Leaf)
	roots.AddCert(b.Leaf)
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", p.public, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "a" {
		t.Fatalf("serving %q, want a", got)
	}

	if err := os.WriteFile(path, []byte(config(b.CertFile, b.KeyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, p.lines, "reloaded")
	if got := served(); got != "b" {
		t.Errorf("serving %q after SIGHUP, want b", got)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit within 30s of SIGTERM")
	}
}
