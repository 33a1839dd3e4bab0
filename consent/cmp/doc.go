// Package cmp reads the consent cookies that consent management platforms (CMPs) set in
// the visitor's browser, so that a hit carrying the cookie can be judged by what the
// visitor chose in the banner. It supports Cookiebot (CookieConsent) and OneTrust
// (OptanonConsent).
//
// The parsers are pure, never panic, and allocate nothing (errors are sentinel values).
// They accept the cookie value as it appears in the Cookie header, percent-encoded or
// not, and return an error for anything they cannot read with certainty; the caller
// must then treat the cookie as absent (no signal) and count the error.
package cmp
