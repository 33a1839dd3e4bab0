package consentmode

import "github.com/consentgate/consentgate/consent"

// Signals are the Consent Mode signals one hit carried. The zero value is "no signal"
// and makes Tighten a no-op.
type Signals struct {
	// GCD is the parsed gcd parameter (zero if absent or ParseGCD failed).
	GCD GCD
	// AdUserData and AdPersonalization come from a Measurement Protocol body's
	// "consent" object (ParseMPConsent); Unset if absent.
	AdUserData, AdPersonalization consent.Status
	// NPA is NPA(npa parameter).
	NPA bool
}

// Tighten applies Consent Mode signals to e. It only ever denies, with cause
// consent.CauseConsentMode, and never upgrades: the page (or the server sending the MP
// hit) sets these signals itself, so they may make the stored consent stricter but a
// "granted" in them never overrides a stored denial or an unset purpose. A purpose that
// is already denied keeps its first cause (consent.Effective.Deny).
//
// Mapping (current state of each gcd type, i.e. the update if any, else the default):
//
//	ad_storage         denied → Marketing denied
//	ad_user_data       denied → Marketing denied  (gcd or MP consent.ad_user_data)
//	ad_personalization denied → Marketing denied  (gcd or MP consent.ad_personalization)
//	npa=1                     → Marketing denied
//	analytics_storage  denied → Statistics denied
//
// Necessary and Preferences are never touched: Consent Mode has no signal for them
// (functionality_storage / personalization_storage / security_storage are not in gcd).
func Tighten(e *consent.Effective, s *Signals) {
	if s == nil {
		return
	}
	if s.GCD.Current(AdStorage) == consent.Denied ||
		s.GCD.Current(AdUserData) == consent.Denied ||
		s.GCD.Current(AdPersonalization) == consent.Denied ||
		s.AdUserData == consent.Denied ||
		s.AdPersonalization == consent.Denied ||
		s.NPA {
		e.Deny(consent.Marketing, consent.CauseConsentMode)
	}
	if s.GCD.Current(AnalyticsStorage) == consent.Denied {
		e.Deny(consent.Statistics, consent.CauseConsentMode)
	}
}
