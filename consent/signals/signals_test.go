package signals_test

import (
	"slices"
	"testing"

	"github.com/consentgate/consentgate/config"
	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/signals"
)

// request is a hit's parameters, cookies, headers and body.
type request struct {
	params, cookies, headers map[string]string
	body                     string
}

func (r *request) Param(n string) []byte  { return bytesOf(r.params[n]) }
func (r *request) Cookie(n string) []byte { return bytesOf(r.cookies[n]) }
func (r *request) Header(n string) []byte { return bytesOf(r.headers[n]) }
func (r *request) Body() []byte           { return bytesOf(r.body) }

func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

const (
	vendorGA4  = 0 // index of ga4 in the vendors given to Compile
	vendorMeta = 1
)

// cookiebot is a CookieConsent cookie as Cookiebot writes it (consent/cmp's test vector):
// necessary, preferences and statistics granted, marketing refused.
const cookiebot = "{stamp:'K1Tq0u6zOqU5fbWzjvGwQ0bHrYxXH3f/2pTtW5nRzS7oVf+1Lm4Ydw==',necessary:true,preferences:true,statistics:true,marketing:false,method:'explicit',ver:1,utc:1700475132451,region:'de'}"

var emptySignals config.SignalsConfig

func reader(t *testing.T, cfg config.SignalsConfig) *signals.Reader {
	t.Helper()
	gvl := map[string]int{"ga4": 755}
	return signals.Compile(&cfg, []string{"ga4", "meta"}, func(v string) int { return gvl[v] })
}

// TestRead: what each signal decides, read alone, as the hit journey would meet it.
func TestRead(t *testing.T) {
	granted := &consent.State{Purposes: consent.Purposes{consent.Necessary: consent.Granted, consent.Preferences: consent.Granted, consent.Statistics: consent.Granted, consent.Marketing: consent.Granted}}
	tests := []struct {
		name   string
		cfg    config.SignalsConfig
		req    request
		hit    signals.Hit
		stored *consent.State
		want   map[consent.Purpose]consent.Status
		cause  map[consent.Purpose]consent.Cause
		errs   []signals.Kind
	}{
		{
			name:  "Sec-GPC honoured denies marketing",
			req:   request{headers: map[string]string{"Sec-GPC": "1"}},
			hit:   signals.Hit{GPC: true},
			want:  map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied},
			cause: map[consent.Purpose]consent.Cause{consent.Marketing: consent.CauseGPC},
		},
		{
			name: "Sec-GPC where it is not honoured changes nothing",
			req:  request{headers: map[string]string{"Sec-GPC": "1"}},
			want: map[consent.Purpose]consent.Status{consent.Marketing: consent.Unset},
		},
		{
			name:  "US Privacy opt-out denies marketing",
			req:   request{params: map[string]string{"us_privacy": "1YYN"}},
			want:  map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied},
			cause: map[consent.Purpose]consent.Cause{consent.Marketing: consent.CauseUSP},
		},
		{
			name:  "unreadable US Privacy fails closed and is counted",
			req:   request{cookies: map[string]string{"usprivacy": "2YYN"}},
			want:  map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied},
			cause: map[consent.Purpose]consent.Cause{consent.Marketing: consent.CauseUSPInvalid},
			errs:  []signals.Kind{signals.KindUSP},
		},
		{
			name:   "gcs denied tightens on a Consent Mode endpoint",
			req:    request{params: map[string]string{"gcs": "G100"}},
			hit:    signals.Hit{ConsentMode: true},
			stored: granted,
			want:   map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied, consent.Statistics: consent.Denied, consent.Preferences: consent.Granted},
		},
		{
			name:   "gcs is not read where the endpoint has no Consent Mode",
			req:    request{params: map[string]string{"gcs": "G100"}},
			stored: granted,
			want:   map[consent.Purpose]consent.Status{consent.Marketing: consent.Granted},
		},
		{
			name: "malformed gcs is counted and is no signal",
			req:  request{params: map[string]string{"gcs": "G1x"}},
			hit:  signals.Hit{ConsentMode: true},
			want: map[consent.Purpose]consent.Status{consent.Marketing: consent.Unset},
			errs: []signals.Kind{signals.KindGCS},
		},
		{
			name: "Cookiebot refusal denies; its grant does not stand in by default",
			req:  request{cookies: map[string]string{"CookieConsent": cookiebot}},
			want: map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied, consent.Statistics: consent.Unset},
		},
		{
			name: "Cookiebot grant stands in for a missing state with use_as_state",
			cfg:  config.SignalsConfig{CMP: config.CMPConfig{UseAsState: true}},
			req:  request{cookies: map[string]string{"CookieConsent": cookiebot}},
			want: map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied, consent.Statistics: consent.Granted},
		},
		{
			name:   "unreadable TC string leaves no consent where TCF decides",
			req:    request{params: map[string]string{"gdpr_consent": "not-a-tc-string"}},
			hit:    signals.Hit{OptIn: true, VendorIndex: vendorGA4},
			stored: granted,
			want:   map[consent.Purpose]consent.Status{consent.Statistics: consent.Unset, consent.Marketing: consent.Unset, consent.Necessary: consent.Granted},
			cause:  map[consent.Purpose]consent.Cause{consent.Statistics: consent.CauseTCFInvalid},
			errs:   []signals.Kind{signals.KindTCF},
		},
		{
			name:   "a TC string does not decide for a vendor off the GVL",
			req:    request{params: map[string]string{"gdpr_consent": "not-a-tc-string"}},
			hit:    signals.Hit{OptIn: true, VendorIndex: vendorMeta},
			stored: granted,
			want:   map[consent.Purpose]consent.Status{consent.Marketing: consent.Granted},
		},
		{
			name:   "a TC string does not decide outside opt_in",
			req:    request{params: map[string]string{"gdpr_consent": "not-a-tc-string"}},
			hit:    signals.Hit{VendorIndex: vendorGA4},
			stored: granted,
			want:   map[consent.Purpose]consent.Status{consent.Marketing: consent.Granted},
		},
		{
			name:  "unreadable GPP fails closed for marketing",
			req:   request{params: map[string]string{"gpp": "!!"}},
			want:  map[consent.Purpose]consent.Status{consent.Marketing: consent.Denied},
			cause: map[consent.Purpose]consent.Cause{consent.Marketing: consent.CauseGPPInvalid},
			errs:  []signals.Kind{signals.KindGPP},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reader(t, tt.cfg)
			var eff consent.Effective
			if tt.stored != nil {
				eff = consent.FromState(tt.stored)
				tt.hit.Stored = tt.stored
			}
			var st signals.State
			r.Read(&tt.req, &tt.hit, &st, &eff)
			for p, want := range tt.want {
				if got := eff.Status[p]; got != want {
					t.Errorf("%s = %s, want %s", p, got, want)
				}
			}
			for p, want := range tt.cause {
				if got := eff.Cause[p]; got != want {
					t.Errorf("%s cause = %s, want %s", p, got, want)
				}
			}
			for _, k := range tt.errs {
				if !st.Errors.Has(k) {
					t.Errorf("error %s not recorded", k)
				}
			}
			for k := range signals.NumKinds {
				if st.Errors.Has(k) && !slices.Contains(tt.errs, k) {
					t.Errorf("unexpected error %s", k)
				}
			}
		})
	}
}
