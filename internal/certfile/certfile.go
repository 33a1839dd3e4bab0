package certfile

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentgate/consentgate/internal/filestamp"
)

// Files names a certificate (the leaf first, then its intermediates) and its private
// key, both PEM. They may be one file.
type Files struct{ Cert, Key string }

// maxFileSize bounds what is read of either file: a chain of a few certificates is a
// few kilobytes, and a path pointed at a huge file by mistake must not be read whole.
const maxFileSize = 1 << 20

// Pair is a certificate and key read from their files and checked to match.
type Pair struct {
	Files Files
	Cert  *tls.Certificate // Leaf is set
	stamp filestamp.Stamp  // the files as they were read
}

// Load reads and checks a pair. The error is crypto/tls's or the file system's, wrapped
// with the file it is about where crypto/tls does not say.
func Load(f Files) (*Pair, error) {
	certPEM, certInfo, err := readFile(f.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, keyInfo, err := readFile(f.Key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil { // with GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Cert, err)
		}
	}
	return &Pair{Files: f, Cert: &cert, stamp: filestamp.Stamp{certInfo, keyInfo}}, nil
}

// readFile reads a regular file of at most maxFileSize bytes and returns its metadata
// from the same open file. A FIFO or a device is refused before it is opened: opening a
// FIFO blocks until someone writes.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes: not a certificate or key", path, maxFileSize)
	}
	return b, fi, nil
}

// Source is the pair in force. Its methods are safe for concurrent use.
type Source struct {
	cur atomic.Pointer[tls.Certificate]

	mu    sync.Mutex // serialises Refresh and Use
	files Files
	seen  filestamp.Stamp // the files when last read, or last tried
}

// NewSource puts p in force.
func NewSource(p *Pair) *Source {
	s := &Source{}
	s.Use(p)
	return s
}

// Use puts p in force and watches its files from now on (a reload that names other
// files, or read the same ones again).
func (s *Source) Use(p *Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files, s.seen = p.Files, p.stamp
	s.cur.Store(p.Cert)
}

// GetCertificate is tls.Config.GetCertificate: the pair in force, whatever the client
// asked for (one certificate serves every name on the listener).
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// Certificate is the pair in force.
func (s *Source) Certificate() *tls.Certificate { return s.cur.Load() }

// Files are the files the pair in force was read from.
func (s *Source) Files() Files {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files
}

// ErrUnchanged is Refresh's answer when the files are as they were last read or tried.
var ErrUnchanged = errors.New("certfile: files unchanged")

// Refresh reads the files again if they changed since they were last read or tried, and
// puts the new pair in force if it loads. It returns the pair now in force, or why the
// change was not taken (the pair in force stays), or ErrUnchanged.
func (s *Source) Refresh() (*Pair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Stat'ed before reading: a change made while the files are read is seen by the next
	// Refresh, never lost.
	now := filestamp.Of(s.files.Cert, s.files.Key)
	if now.Same(s.seen) {
		return nil, ErrUnchanged
	}
	s.seen = now
	p, err := Load(s.files)
	if err != nil {
		return nil, err
	}
	s.cur.Store(p.Cert)
	return p, nil
}

// Watch calls Refresh every interval until ctx ends, and report after each change it
// saw, with the pair now in force or the error that kept the old one.
func (s *Source) Watch(ctx context.Context, every time.Duration, report func(*Pair, error)) {
	filestamp.Poll(ctx, every, func() {
		if p, err := s.Refresh(); !errors.Is(err, ErrUnchanged) {
			report(p, err)
		}
	})
}
