package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/internal/certfile"
	"github.com/consentgate/consentgate/telemetry"
)

// The public listener serves TLS when tls.cert_file and tls.key_file are set, for sites
// with no load balancer in front to terminate it. The certificate is served from a
// certfile.Source: swapped atomically when its files change (checked every
// certCheckInterval) or on a reload, so a renewal takes effect on the next handshake
// without a restart, and a bad renewal (half-written, a key that does not match) leaves
// the certificate in force serving.
//
// Layering: the per-address cap counts the TCP connection when it is accepted, before
// any handshake, so a client cannot hold handshakes open past it; the TLS connection
// sits on the TCP one, and publicConn on the TLS one, so that the head-size accounting
// (lineFed) counts the request's own bytes, not ciphertext, and fasthttp's deadlines
// bound the handshake too.

// certCheckInterval is how often the certificate's files are checked for a change when
// Options does not say: a stat of two files every few seconds costs nothing, and a
// renewal is in force within it.
const certCheckInterval = 5 * time.Second

// publicTLS is the public listener's TLS configuration, nil without TLS. Go's defaults
// are the modern ones: ECDHE key exchange with AEAD ciphers (and the post-quantum hybrid
// X25519MLKEM768 key exchange in TLS 1.3), server cipher order, session tickets with
// rotating keys. Only HTTP/1.1 is offered by ALPN: fasthttp serves HTTP/1.x, and a client
// told h2 would speak a protocol the server does not.
func (s *Server) publicTLS(c config.TLSConfig) *tls.Config {
	if s.certs == nil {
		return nil
	}
	min := uint16(tls.VersionTLS12)
	if c.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	return &tls.Config{
		GetCertificate: s.certs.GetCertificate,
		MinVersion:     min,
		NextProtos:     []string{"http/1.1"},
	}
}

// tlsPart loads the certificate and key at start and again on every reload (the files
// may have been replaced, or the config names others). Whether the listener serves TLS,
// and its oldest version, are bound when it opens.
type tlsPart struct {
	s    *Server
	pair *certfile.Pair // loaded by prepare, put in force by commit
}

func (p *tlsPart) prepare(prev, next *runtime) error {
	c := next.Config.TLS
	if prev != nil {
		pc := prev.Config.TLS
		if c.On() != pc.On() || c.On() && c.MinVersion != pc.MinVersion {
			return errors.New("turning TLS on or off and tls.min_version cannot change on reload: restart the process")
		}
	}
	if !c.On() {
		return nil
	}
	pair, err := certfile.Load(certfile.Files{Cert: c.CertFile, Key: c.KeyFile})
	if err != nil {
		p.s.certLoaded(nil, err)
		return fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	p.pair = pair
	return nil
}

// commit puts the pair in force. The source is made once, at start: TLS cannot be turned
// on by a reload, so it is never written while the listener reads it.
func (p *tlsPart) commit(*runtime) {
	if p.pair == nil {
		return
	}
	if p.s.certs == nil {
		p.s.certs = certfile.NewSource(p.pair)
	} else {
		p.s.certs.Use(p.pair)
	}
	p.s.certLoaded(p.pair, nil)
}

func (*tlsPart) abort(*runtime) {}

// certLoaded counts and logs a load of the certificate and key. The log names the files
// and the certificate, never the key: crypto/tls's reasons quote no key material.
func (s *Server) certLoaded(p *certfile.Pair, err error) {
	if err != nil {
		s.metrics.TLSReload(false, time.Time{})
		msg := "TLS certificate and key did not load"
		if s.certs != nil {
			msg += "; the certificate in force keeps serving"
		}
		s.log.Error(msg, "error", err.Error())
		return
	}
	leaf := p.Cert.Leaf
	s.metrics.TLSReload(true, leaf.NotAfter)
	s.log.Info("TLS certificate in force", "cert_file", p.Files.Cert, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// watchCerts reloads the certificate when its files change, until stopCertWatch.
func (s *Server) watchCerts() {
	if s.certs == nil {
		return
	}
	every := s.opts.CertCheckInterval
	if every <= 0 {
		every = certCheckInterval
	}
	s.stopCertWatch = background(func(ctx context.Context) { s.certs.Watch(ctx, every, s.certLoaded) })
}

// wireConn is the TCP connection under a TLS one. It counts the bytes the handshake
// read, to tell a connection that never sent one (a health check, a preconnect) from a
// handshake that failed. Only the goroutine serving the connection reads it.
type wireConn struct {
	net.Conn
	read int64
}

func (w *wireConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.read += int64(n)
	return n, err
}

// plainHTTPAnswer is what a plain-HTTP request to the TLS listener gets, written in the
// clear, so that whoever sent it reads why instead of seeing the connection drop.
var plainHTTPAnswer = []byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 44\r\n\r\nthis port serves HTTPS: send requests to it\n")

// handshake completes the TLS handshake before the connection's first read. Left to
// that read inside fasthttp, a failed handshake would pass unseen: fasthttp takes any
// error on a connection's first byte for a client that went away. Its reads are bounded
// by the deadline fasthttp set for the first request (read_timeout), so a client that
// stalls mid-handshake is cut off like a slow head; its writes by write_timeout.
func (c *publicConn) handshake() error {
	c.shaken = true
	c.wire.SetWriteDeadline(time.Now().Add(c.l.writeTimeout))
	err := c.tls.Handshake()
	if err == nil {
		return nil
	}
	var rh tls.RecordHeaderError
	var ne net.Error
	switch {
	case c.wire.read == 0 && (errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout()):
		// Opened and never used, as over plain HTTP: not a refusal.
	case errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader):
		c.l.s.metrics.Refused(telemetry.RefusedTLSHandshake)
		rh.Conn.Write(plainHTTPAnswer)
		c.linger = true // the rest of the request is still on its way
	default:
		c.l.s.metrics.Refused(telemetry.RefusedTLSHandshake)
	}
	return err
}

// looksLikeHTTP says whether the first five bytes of what should have been a TLS record
// are the start of an HTTP request, as net/http's server asks.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}
