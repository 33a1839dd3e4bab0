package consent

import (
	"strings"
	"testing"
)

func TestParseGCS(t *testing.T) {
	check := func(t *testing.T, in string, wantAd, wantAn Status, wantOK bool) {
		t.Helper()
		ad, an, ok := ParseGCS([]byte(in))
		if ad != wantAd || an != wantAn || ok != wantOK {
			t.Errorf("ParseGCS(%q) = %v, %v, %v; want %v, %v, %v", in, ad, an, ok, wantAd, wantAn, wantOK)
		}
	}
	for _, tc := range []struct {
		in     string
		ad, an Status
		ok     bool
	}{
		{"G111", Granted, Granted, true},
		{"G100", Denied, Denied, true},
		{"G110", Granted, Denied, true},
		{"G101", Denied, Granted, true},
		{"G10-", Denied, Unset, true},
		{"G1-1", Unset, Granted, true},
		{"G1--", Unset, Unset, true},
		{"", Unset, Unset, false},
		{"G1", Unset, Unset, false},
		{"G11", Unset, Unset, false},
		{"G1111", Unset, Unset, false},
		{"G211", Unset, Unset, false},
		{"g111", Unset, Unset, false},
		{"X111", Unset, Unset, false},
		{"G12-", Unset, Unset, false},
		{"G1-x", Unset, Unset, false},
		{"G1 1", Unset, Unset, false},
		{" G11", Unset, Unset, false},
		{"G1\x001", Unset, Unset, false},
	} {
		t.Run(tc.in, func(t *testing.T) { check(t, tc.in, tc.ad, tc.an, tc.ok) })
	}
}

// eff builds an Effective from one (status, cause) pair per purpose.
func eff(pairs ...any) Effective {
	var e Effective
	for i := 0; i < len(pairs); i += 2 {
		e.Status[i/2] = pairs[i].(Status)
		e.Cause[i/2] = pairs[i+1].(Cause)
	}
	return e
}

func TestApplyGCS(t *testing.T) {
	none := Effective{}
	storedGranted := eff(Granted, CauseStore, Granted, CauseStore, Granted, CauseStore, Granted, CauseStore)
	storedDenied := eff(Denied, CauseStore, Denied, CauseStore, Denied, CauseStore, Denied, CauseStore)
	gpc := Effective{}
	gpc.ApplyGPC()
	check := func(t *testing.T, start Effective, ad, an Status, want Effective) {
		t.Helper()
		got := start
		got.ApplyGCS(ad, an)
		if got != want {
			t.Errorf("ApplyGCS(%v, %v) on %+v = %+v, want %+v", ad, an, start, got, want)
		}
	}
	for _, tc := range []struct {
		name   string
		start  Effective
		ad, an Status
		want   Effective
	}{
		{"granted never upgrades unset", none, Granted, Granted, none},
		{"granted never upgrades denied", storedDenied, Granted, Granted, storedDenied},
		{"unset changes nothing", storedGranted, Unset, Unset, storedGranted},
		{"ad denied denies marketing", storedGranted, Denied, Granted,
			eff(Granted, CauseStore, Granted, CauseStore, Granted, CauseStore, Denied, CauseConsentMode)},
		{"analytics denied denies statistics", storedGranted, Granted, Denied,
			eff(Granted, CauseStore, Granted, CauseStore, Denied, CauseConsentMode, Granted, CauseStore)},
		{"both denied on nothing stored", none, Denied, Denied,
			eff(Unset, CauseNone, Unset, CauseNone, Denied, CauseConsentMode, Denied, CauseConsentMode)},
		{"stored denial keeps its cause", storedDenied, Denied, Denied, storedDenied},
		{"GPC denial keeps its cause", gpc, Denied, Unset, gpc},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.start, tc.ad, tc.an, tc.want) })
	}
}

func TestParseGPC(t *testing.T) {
	check := func(t *testing.T, in string, want bool) {
		t.Helper()
		if got := ParseGPC([]byte(in)); got != want {
			t.Errorf("ParseGPC(%q) = %v, want %v", in, got, want)
		}
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"1", true},
		{" 1", true},
		{"1 ", true},
		{" \t1\t ", true},
		{"", false},
		{"0", false},
		{"   ", false},
		{"11", false},
		{"1 1", false},
		{"true", false},
		{"1,1", false},
		{"\n1", false},
	} {
		t.Run(tc.in, func(t *testing.T) { check(t, tc.in, tc.want) })
	}
}

func TestApplyGPC(t *testing.T) {
	check := func(t *testing.T, start, want Effective) {
		t.Helper()
		got := start
		got.ApplyGPC()
		if got != want {
			t.Errorf("ApplyGPC on %+v = %+v, want %+v", start, got, want)
		}
	}
	for _, tc := range []struct {
		name        string
		start, want Effective
	}{
		{"nothing known", Effective{},
			eff(Unset, CauseNone, Unset, CauseNone, Unset, CauseNone, Denied, CauseGPC)},
		{"overrides stored grant",
			eff(Granted, CauseStore, Granted, CauseStore, Granted, CauseStore, Granted, CauseStore),
			eff(Granted, CauseStore, Granted, CauseStore, Granted, CauseStore, Denied, CauseGPC)},
		{"stored denial keeps its cause",
			eff(Unset, CauseNone, Unset, CauseNone, Unset, CauseNone, Denied, CauseStore),
			eff(Unset, CauseNone, Unset, CauseNone, Unset, CauseNone, Denied, CauseStore)},
		{"consent mode denial keeps its cause",
			eff(Unset, CauseNone, Unset, CauseNone, Unset, CauseNone, Denied, CauseConsentMode),
			eff(Unset, CauseNone, Unset, CauseNone, Unset, CauseNone, Denied, CauseConsentMode)},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.start, tc.want) })
	}
}

func TestSignalsAllocs(t *testing.T) {
	gcs, gpc := []byte("G10-"), []byte(" 1 ")
	var e Effective
	if a := testing.AllocsPerRun(1000, func() {
		ad, an, _ := ParseGCS(gcs)
		e.ApplyGCS(ad, an)
		if ParseGPC(gpc) {
			e.ApplyGPC()
		}
	}); a != 0 {
		t.Errorf("signal parsing allocates %v times, want 0", a)
	}
}

func FuzzParseGCS(f *testing.F) {
	for _, s := range []string{"G111", "G100", "G10-", "G1--", "G1", "G1111", "g111", "G12-", ""} {
		f.Add([]byte(s))
	}
	valid := func(c byte) bool { return c == '0' || c == '1' || c == '-' }
	f.Fuzz(func(t *testing.T, v []byte) {
		ad, an, ok := ParseGCS(v)
		want := len(v) == 4 && v[0] == 'G' && v[1] == '1' && valid(v[2]) && valid(v[3])
		if ok != want {
			t.Fatalf("ParseGCS(%q) ok = %v, want %v", v, ok, want)
		}
		if !ok && (ad != Unset || an != Unset) {
			t.Fatalf("ParseGCS(%q) failed but returned %v, %v", v, ad, an)
		}
		if ok {
			// Round trip: the statuses re-encode to the input.
			enc := [...]byte{Unset: '-', Granted: '1', Denied: '0'}
			if got := string([]byte{'G', '1', enc[ad], enc[an]}); got != string(v) {
				t.Fatalf("ParseGCS(%q) = %v, %v, which encodes as %q", v, ad, an, got)
			}
		}
	})
}

func FuzzParseGPC(f *testing.F) {
	for _, s := range []string{"1", " 1 ", "0", "", "11"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		trimmed := strings.Trim(string(v), " \t")
		if got, want := ParseGPC(v), trimmed == "1"; got != want {
			t.Fatalf("ParseGPC(%q) = %v, want %v", v, got, want)
		}
	})
}

func BenchmarkParseGCS(b *testing.B) {
	v := []byte("G10-")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := ParseGCS(v); !ok {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkParseGPC(b *testing.B) {
	v := []byte(" 1")
	b.ReportAllocs()
	for b.Loop() {
		if !ParseGPC(v) {
			b.Fatal("rejected")
		}
	}
}
