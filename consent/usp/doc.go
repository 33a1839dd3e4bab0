// Package usp parses IAB CCPA "US Privacy" strings (the us_privacy / USPrivacy value,
// e.g. "1YNN"): version 1, then one character each for explicit notice given, opted out
// of sale, and covered by the LSPA, each 'Y', 'N' or '-' (not applicable). Lowercase
// 'y'/'n' are accepted, as several CMPs emit them. Only version 1 is defined: any other
// version is an error that names it (errors.Is ErrVersion). Parse allocates nothing,
// failing included.
//
// An opt-out of sale denies marketing; see Signal.OptedOut.
package usp
