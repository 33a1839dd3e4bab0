// Package consentmode parses the Google Consent Mode v2 signals a tracking hit carries
// in-band (the gcd URL parameter, the Measurement Protocol "consent" object, npa and dma)
// and maps them onto consentgate's purposes. Every parser is pure and allocation-free so
// it can run on the hit path; Tighten applies the result and can only ever deny.
//
// The older "gcs" parameter is parsed by consent.ParseGCS.
package consentmode
