// Package signals reads the consent signals a hit carries in-band: Sec-GPC, Google Consent
// Mode, IAB TCF, GPP and US Privacy strings, and the Cookiebot and OneTrust cookies. For
// each signal one file holds how it is read off a hit, what it decides, and what explain
// shows. The parsers are pure and live in their own packages (consent/tcf, gpp, usp,
// consentmode, cmp); this package is their policy.
//
// Every signal only ever tightens the stored consent, except a CMP cookie standing in for a
// missing state (signals.cmp.use_as_state) and a TC string where TCF decides; the most
// protective signal wins. Reading allocates nothing: the per-hit State is pooled by the
// caller and the TCF verdicts are cached per string.
package signals
