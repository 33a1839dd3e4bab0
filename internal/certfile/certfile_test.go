package certfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/certtest"
	"github.com/consentgate/consentgate/internal/fileswap"
)

// TestLoadRefuses: every way a pair can be unusable is refused with crypto/tls's or the
// file system's reason, and no message carries key material.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	a := certtest.Write(t, dir, certtest.Options{})
	b := certtest.New(t, certtest.Options{})
	file := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		cert, key string
		want      string
		notExist  bool
	}{
		{"missing certificate", filepath.Join(dir, "none.pem"), a.KeyFile, "no such file or directory", true},
		{"missing key", a.CertFile, filepath.Join(dir, "none.pem"), "no such file or directory", true},
		{"key of another certificate", a.CertFile, file("other-key.pem", b.KeyPEM), "private key does not match public key", false},
		{"garbage certificate", file("garbage.pem", []byte("not a certificate\n")), a.KeyFile, "failed to find any PEM data in certificate input", false},
		{"half-written certificate", file("half.pem", a.CertPEM[:len(a.CertPEM)/2]), a.KeyFile, "failed to find any PEM data in certificate input", false},
		{"half-written key", a.CertFile, file("half-key.pem", a.KeyPEM[:len(a.KeyPEM)/2]), "failed to find any PEM data in key input", false},
		{"files switched", a.KeyFile, a.CertFile, "PEM inputs may have been switched", false},
		{"empty key", a.CertFile, file("empty.pem", nil), "failed to find any PEM data in key input", false},
		{"a directory", dir, a.KeyFile, "is not a regular file", false},
		{"a FIFO", a.CertFile, fifo, "is not a regular file", false},
		{"larger than 1 MiB", file("huge.pem", []byte(strings.Repeat("x", maxFileSize+1))), a.KeyFile, "larger than 1048576 bytes", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Load(Files{c.cert, c.key})
			if err == nil || p != nil {
				t.Fatalf("Load = %v, %v; want an error", p, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
			if errors.Is(err, fs.ErrNotExist) != c.notExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, !c.notExist, c.notExist)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(a.KeyPEM[30:60])) {
				t.Errorf("error repeats key material: %q", err)
			}
		})
	}
}

// TestRefresh: a source reads its files again only when they changed; a good new pair
// goes into force, a bad one leaves the old pair serving and is not tried again until
// the files change again; a rename over the files and a Kubernetes-style symlink swap
// are both seen.
func TestRefresh(t *testing.T) {
	dir := t.TempDir()
	first := certtest.Write(t, dir, certtest.Options{CommonName: "first"})
	files := Files{first.CertFile, first.KeyFile}
	p, err := Load(files)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSource(p)
	serving := func() string {
		t.Helper()
		c, err := s.GetCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("GetCertificate: %v, %v", c, err)
		}
		return c.Leaf.Subject.CommonName
	}
	refresh := func(wantErr string) {
		t.Helper()
		p, err := s.Refresh()
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("Refresh: %v, want the new pair", err)
		case wantErr == "" && p.Cert != s.Certificate():
			t.Fatal("Refresh returned a pair that is not in force")
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Fatalf("Refresh: %v, want an error saying %q", err, wantErr)
		}
	}
	// The stamps compare modification times; a rewrite within the file system's time
	// granularity must still differ in something, so each step below changes the size
	// or the file itself, as real rotations do.
	refresh(ErrUnchanged.Error())

	second := certtest.New(t, certtest.Options{CommonName: "second"})
	second.Install(t, files.Cert, files.Key)
	refresh("")
	if got := serving(); got != "second" {
		t.Fatalf("serving %q after a rotation, want second", got)
	}
	refresh(ErrUnchanged.Error())

	// Half-written: the certificate rewritten in place, cut short.
	third := certtest.New(t, certtest.Options{CommonName: "third"})
	if err := os.WriteFile(files.Cert, third.CertPEM[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	refresh("failed to find any PEM data")
	if got := serving(); got != "second" {
		t.Fatalf("serving %q after a half-written certificate, want second still", got)
	}
	refresh(ErrUnchanged.Error()) // tried once, not again until it changes
	// Finished, but the key is still second's.
	if err := os.WriteFile(files.Cert, third.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	refresh("private key does not match public key")
	if got := serving(); got != "second" {
		t.Fatalf("serving %q with a mismatched key, want second still", got)
	}
	third.Install(t, files.Cert, files.Key)
	refresh("")
	if got := serving(); got != "third" {
		t.Fatalf("serving %q, want third", got)
	}

	// A key file deleted: an error once, then nothing until it is back.
	if err := os.Remove(files.Key); err != nil {
		t.Fatal(err)
	}
	refresh("no such file or directory")
	refresh(ErrUnchanged.Error())
	fourth := certtest.New(t, certtest.Options{CommonName: "fourth"})
	fourth.Install(t, files.Cert, files.Key)
	refresh("")
	if got := serving(); got != "fourth" {
		t.Fatalf("serving %q, want fourth", got)
	}
}

// TestRefreshSymlinkSwap: Kubernetes mounts a Secret as symlinks into a directory
// (tls.crt → ..data/tls.crt, ..data → ..2026_01_01_…) and updates it by pointing ..data at
// a new directory; the files' paths never change.
func TestRefreshSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name string, cn string) {
		t.Helper()
		c := certtest.New(t, certtest.Options{CommonName: cn})
		fileswap.Volume(t, dir, name, map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM})
	}
	version("..v1", "v1")
	p, err := Load(Files{filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSource(p)
	version("..v2", "v2")
	if p, err := s.Refresh(); err != nil || p.Cert.Leaf.Subject.CommonName != "v2" {
		t.Fatalf("after the symlink swap: %v, %v; want v2 in force", p, err)
	}
}

// TestWatch: the watcher reports a rotation it saw, and stops with its context.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	first := certtest.Write(t, dir, certtest.Options{CommonName: "first"})
	p, err := Load(Files{first.CertFile, first.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSource(p)
	ctx, cancel := context.WithCancel(context.Background())
	type report struct {
		p   *Pair
		err error
	}
	reports := make(chan report, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, 20*time.Millisecond, func(p *Pair, err error) { reports <- report{p, err} })
	}()
	certtest.New(t, certtest.Options{CommonName: "second"}).Install(t, first.CertFile, first.KeyFile)
	start := time.Now()
	select {
	case r := <-reports:
		if r.err != nil || r.p.Cert.Leaf.Subject.CommonName != "second" || s.Certificate() != r.p.Cert {
			t.Errorf("report %+v, want second in force", r)
		}
		t.Logf("rotation seen after %v", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10s of a rotation")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
	select {
	case r := <-reports:
		t.Errorf("a report without a change: %+v", r)
	default:
	}
}
