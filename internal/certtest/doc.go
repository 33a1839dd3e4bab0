// Package certtest makes TLS certificates for tests: a fresh ECDSA P-256 key and a
// self-signed certificate for localhost, 127.0.0.1 and ::1 per call, written as PEM files
// into the test's temporary directory. Nothing is kept in the repository: no private key
// is ever committed, and no certificate in a test expires.
package certtest
