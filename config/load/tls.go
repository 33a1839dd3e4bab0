package load

import (
	"fmt"
	"os"
	"time"

	"github.com/consentgate/consentgate/internal/certfile"
)

// tlsChecks: the certificate and its key come as a pair, and must load as one now, so
// that `check` and a start refuse what the first handshake would fail on. A reload reads
// them again (proxy), and so does the watcher when they change.
func (d *decoder) tlsChecks() {
	t := d.cfg.TLS
	if !d.valid("tls.cert_file", "tls.key_file") {
		return // a file that could not be opened is reported at its own key
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		d.problemAt("tls.cert_file", "tls.cert_file needs tls.key_file, the certificate's private key: set both to serve TLS, or neither")
	case t.CertFile == "" && t.KeyFile != "":
		d.problemAt("tls.key_file", "tls.key_file needs tls.cert_file, the certificate the key belongs to: set both to serve TLS, or neither")
	case t.CertFile != "":
		p, err := certfile.Load(certfile.Files{Cert: t.CertFile, Key: t.KeyFile})
		if err != nil {
			// crypto/tls's reasons name no key material ("private key does not match
			// public key", "failed to find any PEM data in key input").
			d.problemAtFirst([]string{"tls.cert_file", "tls.key_file"},
				"tls.cert_file, tls.key_file: %s and %s are not a certificate and its key: %v", quote(t.CertFile), quote(t.KeyFile), err)
			return
		}
		d.tlsLeaf = p.Cert.Leaf
	}
}

// tlsWarnings: a certificate out of its dates loads and is served (refusing to start
// would not make it valid, and a renewal may be on its way, which the watcher takes),
// but every browser refuses it. A key file any user can read gives the site's identity
// to anyone on the machine.
func (d *decoder) tlsWarnings() {
	if leaf := d.tlsLeaf; leaf != nil {
		now := time.Now()
		switch {
		case now.After(leaf.NotAfter):
			d.warn("tls.cert_file", "tls.cert_file: the certificate expired at %s: clients refuse it; install a renewed one (it is picked up without a restart)",
				leaf.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			d.warn("tls.cert_file", "tls.cert_file: the certificate is not valid before %s: clients refuse it until then (is the clock right?)",
				leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	if k := d.cfg.TLS.KeyFile; k != "" && d.tlsLeaf != nil {
		if fi, err := os.Stat(k); err == nil && fi.Mode().Perm()&0o004 != 0 {
			d.warn("tls.key_file", "tls.key_file: %s is readable by every user of this machine (mode %04o): anyone on it can impersonate the site; chmod o-r it",
				quote(k), fi.Mode().Perm())
		}
	}
}

// checkTLSVersion: TLS 1.0 and 1.1 are deprecated (RFC 8996) and every current browser
// has dropped them; offering them only helps downgrade attacks.
func checkTLSVersion(s string) error {
	if s != "1.2" && s != "1.3" {
		return fmt.Errorf("want 1.2 or 1.3, got %s: TLS 1.0 and 1.1 are deprecated (RFC 8996) and browsers no longer speak them", quote(s))
	}
	return nil
}
