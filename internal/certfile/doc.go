// Package certfile reads a TLS certificate and its private key from PEM files and keeps
// the pair in force current as the files change, so a renewal written by certbot, lego
// or cert-manager takes effect without a restart.
//
// A Source hands the pair in force to crypto/tls (GetCertificate) through an atomic
// pointer, so a handshake never waits on a reload. The pair is replaced only by one that
// loads whole: half-written files, a key that does not match the certificate or garbage
// leave the pair in force serving, and the caller is told why.
//
// Watch polls the files' metadata (internal/filestamp), which sees a renewal renamed over
// them and a Kubernetes Secret volume swap its symlink to a new directory. A change is
// tried once; the files are read again only when they change again.
package certfile
