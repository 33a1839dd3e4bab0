// Package demo is what `make demo` runs, and what the browser tests drive: a sink that
// stands in for every vendor and shows what reached it, a static demo shop whose banner
// and GA4-style and Meta-style tags go through the proxy, and the consentgate binary
// itself, started with a demo config that points every vendor at the sink.
//
// The shop can use its own banner (consentgate.set) or a stand-in for a consent banner's
// public JavaScript API (Cookiebot, OneTrust, IAB TCF, IAB GPP, Google Consent Mode),
// chosen by ?cmp=, so each bridge of consentgate.js can be seen, and tested, at work.
// Nothing here leaves the machine.
package demo
