package consentmode_test

import (
	"fmt"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/consentmode"
)

// A hit with the stored consent "everything granted" whose gcd says the visitor has
// since rejected ads (ad_storage and ad_user_data 'q': denied by default and by update).
func ExampleTighten() {
	e := consent.FromState(&consent.State{Purposes: consent.Purposes{consent.Granted, consent.Granted, consent.Granted, consent.Granted}})
	var s consentmode.Signals
	if g, err := consentmode.ParseGCD([]byte("13q3r3q3r5l1")); err == nil {
		s.GCD = g
	} // else: count it and carry on without gcd
	s.NPA = consentmode.NPA([]byte("0"))
	consentmode.Tighten(&e, &s)
	fmt.Println(e.Status[consent.Statistics], e.Cause[consent.Statistics])
	fmt.Println(e.Status[consent.Marketing], e.Cause[consent.Marketing])
	// Output:
	// granted store
	// denied consent_mode
}
