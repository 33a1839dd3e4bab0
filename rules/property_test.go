package rules

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// pseudonymOf anonymises one hit and returns the value hashed for name, looking in the
// query, form or line body, and for JSON bodies at the dotted path name.
func pseudonymOf(t *testing.T, a *Anonymiser, name, query, body string) (string, error) {
	t.Helper()
	var out Out
	if err := a.Anonymise(&Hit{Query: []byte(query), Body: []byte(body), ContentType: []byte("text/plain")}, "", &out); err != nil {
		return "", err
	}
	if a.body == BodyJSON && len(out.Body) > 0 {
		var doc any
		if err := json.Unmarshal(out.Body, &doc); err != nil {
			t.Fatal(err)
		}
		v, ok := dig(doc, name)
		if !ok {
			t.Fatalf("no %s in %s", name, out.Body)
		}
		return v.(string), nil
	}
	for _, part := range []string{string(out.Query), string(out.Body)} {
		for _, line := range strings.Split(part, "\n") {
			q, err := url.ParseQuery(line)
			if err != nil {
				t.Fatal(err)
			}
			if v := q.Get(name); v != "" {
				return v, nil
			}
		}
	}
	t.Fatalf("no %s in %q %q", name, out.Query, out.Body)
	return "", nil
}

// TestPseudonymsSeparateProperties: one client ID under two properties of a vendor, or
// under two vendors, gives unrelated pseudonyms; under one property, on two endpoints
// of the vendor, the same one. Expected values are computed by wantHash, independently.
func TestPseudonymsSeparateProperties(t *testing.T) {
	ga4, mp := testAnonymiser(t, "ga4_collect", nil, nil), testAnonymiser(t, "ga4_mp", nil, nil)
	matomo, bing := testAnonymiser(t, "matomo_track", nil, nil), testAnonymiser(t, "bing_action", nil, nil)
	tiktok := testAnonymiser(t, "tiktok_pixel", nil, nil)
	const cid = "1186384312.1712340000"
	for _, c := range []struct {
		name           string
		a              *Anonymiser
		field          string
		query, body    string
		vendor, proper string
	}{
		{"ga4 G-1", ga4, "cid", "tid=G-1&cid=" + cid, "", "ga4", "G-1"},
		{"ga4 G-2", ga4, "cid", "tid=G-2&cid=" + cid, "", "ga4", "G-2"},
		{"ga4 property after the ID", ga4, "cid", "cid=" + cid + "&tid=G-2", "", "ga4", "G-2"},
		{"ga4 property encoded", ga4, "cid", "t%69d=G%2D2&cid=" + cid, "", "ga4", "G-2"},
		{"ga4 repeated, equal", ga4, "cid", "tid=G-2&cid=" + cid + "&tid=G%2D2", "", "ga4", "G-2"},
		{"ga4 no property", ga4, "cid", "cid=" + cid, "", "ga4", ""},
		{"ga4 lines: property in the query", ga4, "cid", "tid=G-2", "en=x&cid=" + cid, "ga4", "G-2"},
		{"ga4 mp: measurement_id is the same property as tid", mp, "client_id", "measurement_id=G-1", `{"client_id":"` + cid + `"}`, "ga4", "G-1"},
		{"ga4 mp: an app stream", mp, "client_id", "firebase_app_id=1:2:android:3", `{"client_id":"` + cid + `"}`, "ga4", "1:2:android:3"},
		{"matomo site 1", matomo, "_id", "idsite=1&_id=" + cid, "", "matomo", "1"},
		{"matomo site 2 in a form body", matomo, "_id", "", "_id=" + cid + "&idsite=2", "matomo", "2"},
		{"bing tag", bing, "vid", "ti=5&vid=" + cid, "", "bing", "5"},
		{"bing tag as ga4's property ID", bing, "vid", "ti=G-1&vid=" + cid, "", "bing", "G-1"},
		{"tiktok pixel_code", tiktok, "context.user.anonymous_id", "", `{"pixel_code":"C1","context":{"user":{"anonymous_id":"` + cid + `"}}}`, "tiktok", "C1"},
		{"tiktok context.pixel.code", tiktok, "context.user.anonymous_id", "", `{"context":{"pixel":{"code":"C2"},"user":{"anonymous_id":"` + cid + `"}}}`, "tiktok", "C2"},
		{"tiktok both, equal", tiktok, "context.user.anonymous_id", "", `{"context":{"pixel":{"code":"C2"},"user":{"anonymous_id":"` + cid + `"}},"pixel_code":"C\u0032"}`, "tiktok", "C2"},
		{"tiktok null", tiktok, "context.user.anonymous_id", "", `{"pixel_code":null,"context":{"user":{"anonymous_id":"` + cid + `"}}}`, "tiktok", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := pseudonymOf(t, c.a, c.field, c.query, c.body)
			if err != nil {
				t.Fatal(err)
			}
			if want := hv(c.vendor, c.proper, cid); got != want {
				t.Errorf("%s = %s, want the pseudonym for vendor %s property %q (%s)", c.field, got, c.vendor, c.proper, want)
			}
		})
	}
	one, _ := pseudonymOf(t, ga4, "cid", "tid=G-1&cid="+cid, "")
	two, _ := pseudonymOf(t, ga4, "cid", "tid=G-2&cid="+cid, "")
	viaMP, _ := pseudonymOf(t, mp, "client_id", "measurement_id=G-1", `{"client_id":"`+cid+`"}`)
	if one == two || one != viaMP {
		t.Errorf("G-1 %s, G-2 %s, G-1 by MP %s: want G-1 twice and G-2 apart", one, two, viaMP)
	}
}

// TestPseudonymsSeparateSites: the property is the hit's word, written by the vendor's
// tag; the host the hit was sent to is not. The same property ID on two sites gives
// unrelated pseudonyms, so a tag cannot join two sites' visitors by naming one property
// on both. Host names compare as DNS does.
func TestPseudonymsSeparateSites(t *testing.T) {
	a := testAnonymiser(t, "ga4_collect", nil, nil)
	cid := func(site string) (string, error) {
		var out Out
		if err := a.Anonymise(&Hit{Query: []byte("tid=G-1&cid=1.2"), Site: []byte(site)}, "", &out); err != nil {
			return "", err
		}
		q, err := url.ParseQuery(string(out.Query))
		return q.Get("cid"), err
	}
	shopA, _ := cid("t.shop-a.example")
	shopB, _ := cid("t.shop-b.example")
	if shopA == shopB {
		t.Error("one property on two sites: same pseudonym")
	}
	if want := wantSiteHash(testSalt, testSecret, "ga4", "G-1", "t.shop-a.example", "1.2"); shopA != want {
		t.Errorf("cid %s, want %s", shopA, want)
	}
	if same, _ := cid("T.Shop-A.EXAMPLE."); same != shopA {
		t.Error("the host's case or root dot changed the pseudonym")
	}
	if _, err := cid(strings.Repeat("a", maxSiteLen+1)); !errors.Is(err, errSiteLong) {
		t.Errorf("an over-long host: %v, want %v", err, errSiteLong)
	}
}

// TestPropertyConflicts: a hit that names two different properties, or one that cannot
// be a property ID, is not anonymised: the vendor could count it under either.
func TestPropertyConflicts(t *testing.T) {
	for _, c := range []struct {
		name, ep, query, body string
		want                  error
	}{
		{"ga4 two tids", "ga4_collect", "tid=G-1&cid=1&tid=G-2", "", errPropertyConflict},
		{"ga4 tid encoded as another name", "ga4_collect", "tid=G-1&t%69d=G-2&cid=1", "", errPropertyConflict},
		{"ga4 lines: a line names another property", "ga4_collect", "tid=G-1&cid=1", "en=x\nen=y&tid=G-2", errPropertyConflict},
		{"ga4 mp: web and app stream", "ga4_mp", "measurement_id=G-1&firebase_app_id=1:2:web:3", `{"client_id":"1"}`, errPropertyConflict},
		{"matomo: query and form body disagree", "matomo_track", "idsite=1", "idsite=2&_id=1", errPropertyConflict},
		{"tiktok: the two places disagree", "tiktok_pixel", "", `{"pixel_code":"C1","context":{"pixel":{"code":"C2"}}}`, errPropertyConflict},
		{"tiktok: repeated member", "tiktok_pixel", "", `{"pixel_code":"C1","pixel_code":"C2"}`, errPropertyConflict},
		{"tiktok: an object", "tiktok_pixel", "", `{"pixel_code":{"a":1}}`, errPropertyKind},
		{"ga4 too long", "ga4_collect", "cid=1&tid=" + strings.Repeat("G", maxPropertyLen+1), "", errPropertyLong},
		{"tiktok too long", "tiktok_pixel", "", `{"pixel_code":"` + strings.Repeat("C", maxPropertyLen+1) + `"}`, errPropertyLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := testAnonymiser(t, c.ep, nil, nil)
			out := Out{Query: []byte("stale"), Body: []byte("stale")}
			err := a.Anonymise(&Hit{Query: []byte(c.query), Body: []byte(c.body), ContentType: []byte("text/plain")}, "", &out)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), "rules: anonymise "+c.ep) {
				t.Errorf("error lacks context: %v", err)
			}
			if len(out.Query)+len(out.Body) != 0 {
				t.Errorf("output left: %q %q", out.Query, out.Body)
			}
		})
	}
	// An endpoint that hashes nothing does not read the property: Meta's pixel ID may
	// repeat without consequence (nothing could be joined under it).
	a := testAnonymiser(t, "meta_tr", nil, nil)
	var out Out
	if err := a.Anonymise(&Hit{Query: []byte("id=1&id=2&ev=PageView")}, "", &out); err != nil {
		t.Errorf("meta: %v", err)
	}
}

// keptAsIs says whether a value of kind k that fits is sent byte for byte: a property
// rewritten (a URL scrubbed, a language cut) would no longer name the property hashed.
func keptAsIs(k Kind) bool { return k == KindEnum || k == KindNumber || k == KindToken }

// TestHashingEndpointsNameAProperty: every endpoint that hashes an identifier names
// where its hits say their property, kept as is (the vendor must see which property a
// pseudonym belongs to) and never an identifier.
func TestHashingEndpointsNameAProperty(t *testing.T) {
	for i := range builtin {
		ep := &builtin[i]
		hashes := false
		for _, values := range []map[string]Value{ep.Allow, ep.AllowPrefix, ep.AllowJSON} {
			for _, v := range values {
				hashes = hashes || v.Kind == KindID
			}
		}
		if hashes && len(ep.Property)+len(ep.PropertyJSON) == 0 {
			t.Errorf("%s hashes identifiers but names no property", ep.Name)
		}
		for _, p := range ep.Property {
			if v, ok := ep.Allow[p]; !ok || !keptAsIs(v.Kind) {
				t.Errorf("%s: property %q is not kept as is", ep.Name, p)
			}
		}
		for _, p := range ep.PropertyJSON {
			if v, ok := ep.AllowJSON[p]; !ok || !keptAsIs(v.Kind) {
				t.Errorf("%s: property %q is not kept as is", ep.Name, p)
			}
		}
		for _, p := range append(append([]string(nil), ep.Property...), ep.PropertyJSON...) {
			if id, ok := ep.identifies(p); ok {
				t.Errorf("%s: property %q is identifier %q", ep.Name, p, id)
			}
		}
	}
	bad := &Endpoint{Name: "bad", Vendor: "x", Body: BodyJSON, PropertyJSON: []string{"a[].b"}}
	if _, err := NewAnonymiser(bad, nil, nil, testHasher(testDay)); err == nil {
		t.Error("a property JSON path through an array: want error")
	}
}
