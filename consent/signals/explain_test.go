package signals_test

import (
	"encoding/json"
	"testing"

	"github.com/consentgate/consentgate/consent"
	"github.com/consentgate/consentgate/consent/signals"
)

// tcCMPVersion0 is the proxy tests' tcRejectAll (proxy/signals_test.go: no purpose, no
// vendor, CMP 10 version 2) with CmpVersion set to 0: the field is bits 90..101 of the core
// segment, base64url characters 15 and 16, "AC" there and "AA" here.
const tcCMPVersion0 = "CQtB6GAQtB6GAAKAABENCWEgAAAAAAAAAAYgAAAAAAAA"

// TestExplainTCFShowsZeroFields: explain shows every decoded field of a TC string, zero or
// not (cmp_version is 0 here; purposes and vendors are empty), and none of them for a
// string that does not decode.
func TestExplainTCFShowsZeroFields(t *testing.T) {
	r := reader(t, emptySignals)
	decode := func(tc string) map[string]any {
		t.Helper()
		req := &request{params: map[string]string{"gdpr_consent": tc}}
		h := &signals.Hit{OptIn: true, VendorIndex: vendorGA4}
		var st signals.State
		var eff consent.Effective
		r.Read(req, h, &st, &eff)
		b, err := json.Marshal(r.Explain(req, h, &st).TCF)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	fields := []string{"version", "created", "last_updated", "cmp_id", "cmp_version", "consent_screen",
		"consent_language", "vendor_list_version", "policy_version", "is_service_specific",
		"use_non_standard_texts", "purpose_one_treatment", "publisher_cc", "special_feature_optins",
		"purposes_consent", "purposes_li", "vendor_consents", "vendor_li", "publisher_restrictions"}
	m := decode(tcCMPVersion0)
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			t.Errorf("valid TC string: %s is not shown (%v)", f, m)
		}
	}
	if m["cmp_version"] != float64(0) || m["cmp_id"] != float64(10) {
		t.Errorf("cmp_id, cmp_version = %v, %v, want 10, 0 shown", m["cmp_id"], m["cmp_version"])
	}
	m = decode("CQtB6GAQtB6G") // cut short
	if m["valid"] != false || m["error"] == nil {
		t.Fatalf("truncated TC string: %v", m)
	}
	for _, f := range fields {
		if _, ok := m[f]; ok {
			t.Errorf("invalid TC string shows decoded field %s", f)
		}
	}
}
