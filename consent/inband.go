package consent

// The signals a hit carries in-band. The parsers run on every hit, so they are pure and
// allocate nothing; a malformed signal reports ok=false and the caller counts it.

// ParseGCS parses a Google Consent Mode "gcs" value: "G1" then one character for
// ad_storage and one for analytics_storage, each '1' granted, '0' denied, '-' not set
// (e.g. "G111", "G100", "G10-", "G1--"). Anything else is ok=false.
func ParseGCS(v []byte) (adStorage, analyticsStorage Status, ok bool) {
	if len(v) != 4 || v[0] != 'G' || v[1] != '1' {
		return Unset, Unset, false
	}
	ad, okAd := gcsStatus(v[2])
	an, okAn := gcsStatus(v[3])
	if !okAd || !okAn {
		return Unset, Unset, false
	}
	return ad, an, true
}

func gcsStatus(c byte) (Status, bool) {
	switch c {
	case '1':
		return Granted, true
	case '0':
		return Denied, true
	case '-':
		return Unset, true
	}
	return Unset, false
}

// ApplyGCS tightens e with Consent Mode: ad_storage denied denies Marketing, and
// analytics_storage denied denies Statistics. Granted never upgrades anything: the page
// sets gcs itself, so it may only ever make the stored consent stricter.
func (e *Effective) ApplyGCS(adStorage, analyticsStorage Status) {
	if adStorage == Denied {
		e.Deny(Marketing, CauseConsentMode)
	}
	if analyticsStorage == Denied {
		e.Deny(Statistics, CauseConsentMode)
	}
}

// ParseGPC reports whether a Sec-GPC header value is an opt-out: exactly "1" once
// surrounding spaces and tabs (HTTP optional whitespace) are trimmed.
func ParseGPC(v []byte) bool {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return len(v) == 1 && v[0] == '1'
}

// ApplyGPC applies a Global Privacy Control opt-out: Marketing is denied. Whether the
// visitor's jurisdiction honours GPC is the caller's decision.
func (e *Effective) ApplyGPC() {
	e.Deny(Marketing, CauseGPC)
}
