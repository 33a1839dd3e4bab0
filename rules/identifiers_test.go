package rules

import (
	"strings"
	"testing"

	"github.com/consentgate/consentgate/config/load"
)

func TestIdentifierName(t *testing.T) {
	for _, c := range []struct {
		name string
		bad  bool
	}{
		// The list, and names that contain its words.
		{"srsltid", true}, {"rdt_cid", true}, {"ScCid", true}, {"qclid", true}, {"ef_id", true},
		{"s_kwcid", true}, {"_hsenc", true}, {"_hsmi", true}, {"mc_eid", true}, {"oly_enc_id", true},
		{"oly_anon_id", true}, {"gclid", true}, {"GCLID", true}, {"fbclid", true}, {"msclkid", true},
		{"email", true}, {"ep.customer_email", true}, {"token", true}, {"reset_token", true},
		{"uid", true}, {"ep.uid", true}, {"userId", true}, {"user", true}, {"session", true},
		{"sessionKey", true}, {"phone", true}, {"address", true}, {"ref", true}, {"visitor_id", true},
		{"first_name", true}, {"iban", true}, {"password", true}, {"_ga", true}, {"_gl", true},
		// Names that do not identify.
		{"lang", false}, {"utm_source", false}, {"page", false}, {"category", false},
		{"fluid", false}, {"product_id", false}, {"color", false}, {"variant", false}, {"q", false},
		{"hl", false}, {"currency", false},
	} {
		why := IdentifierName(c.name)
		if (why != "") != c.bad {
			t.Errorf("IdentifierName(%q) = %q, want refused=%v", c.name, why, c.bad)
		}
	}
}

// TestCompileRefusesIdentifierNames: a config that would keep an identifying name is
// refused at the position of that name, with the reason.
func TestCompileRefusesIdentifierNames(t *testing.T) {
	ld := &load.Loader{Vocabulary: Vocabulary(), Getenv: func(string) string { return "" }}
	cfg, err := ld.LoadBytes("t.yaml", []byte("anonymise:\n  url_params: [lang, srsltid]\n  allow:\n    meta: [\"cd[customer_email]\", \"cd[color]\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(cfg, CompileOptions{})
	if err == nil {
		t.Fatal("Compile kept identifying names")
	}
	for _, want := range []string{
		`t.yaml:2:22: anonymise.url_params: "srsltid" is never kept: it is a click or visitor ID`,
		`t.yaml:4:12: anonymise.allow.meta: "cd[customer_email]" is never kept`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "cd[color]") || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want exactly the two bad names:\n%v", err)
	}
}
