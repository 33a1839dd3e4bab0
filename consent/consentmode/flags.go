package consentmode

// NPA reports whether an "npa" hit parameter asks for non-personalised ads: exactly "1".
//
// gtag.js and GTM send npa=1 on Google Ads / Floodlight hits when ads personalisation is
// off for the hit: ad_storage or ad_personalization denied, or the site set
// allow_ad_personalization_signals to false. Google then serves and measures the hit as
// non-personalised. It says nothing about statistics. Tighten reads it as a Marketing
// denial, the protective reading of "do not personalise ads for this visitor".
// Any other value ("0", empty, absent) is not an opt-out.
func NPA(v []byte) bool { return len(v) == 1 && v[0] == '1' }

// DMA reports whether a "dma" hit parameter is "1": the tag declares the hit to be in
// scope of the EU Digital Markets Act (the tag judged the visitor to be in the EEA, or
// the site configured it so), in which case Google requires the ad_user_data and
// ad_personalization signals (carried in gcd, with the companion dma_cps parameter) to
// be honoured. dma=1 is a statement about which rules apply, not a consent choice: it grants
// and denies nothing, so Tighten does not take it. Callers may use it to require an
// explicit ad_user_data signal for EEA traffic. "0" or anything else is false.
func DMA(v []byte) bool { return len(v) == 1 && v[0] == '1' }
