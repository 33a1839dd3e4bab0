// Package geo owns where a visitor is: the client IP (socket peer or trusted
// X-Forwarded-For), the GeoIP lookup, and the mapping country → jurisdiction group → regime.
// It knows nothing of vendors or consent.
package geo
