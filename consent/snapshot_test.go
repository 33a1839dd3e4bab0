package consent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testSnapKey  = "Kx7Qm2Vz9Lw4Rb8Tn3Hc6Pj1"
	testSnapKey2 = "Wd5Fs8Ng2Yk7Xq3Mz9Bv4Ct6"
	testSnapID   = "QaK_CsvhwGbB47ETgjx25A"
)

var snapNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func mustKeys(t testing.TB, secrets ...string) *SnapshotKeys {
	t.Helper()
	k, err := NewSnapshotKeys(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSnapshotRoundTrip(t *testing.T) {
	k := mustKeys(t, testSnapKey)
	for _, s := range []Snapshot{
		{},
		{Purposes: Purposes{Granted, Denied, Unset, Granted}, Version: 7, Issued: snapNow, TCF: true},
		{Purposes: Purposes{Denied, Denied, Denied, Denied}, Version: 1 << 40, Issued: snapNow.Add(-time.Hour)},
	} {
		enc := k.Append(nil, testSnapID, s)
		if len(enc) != SnapshotLen {
			t.Fatalf("length %d, want %d", len(enc), SnapshotLen)
		}
		got, err := k.Verify([]byte(testSnapID), enc, snapNow, 395*24*time.Hour)
		if s.Issued.IsZero() {
			// The zero time is before 1970: issued at 0, long expired.
			if !errors.Is(err, ErrSnapshotExpired) {
				t.Errorf("zero issue time: %v, want expired", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		want := s
		want.Version = min(s.Version, 1<<32-1)
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	cookie := k.Cookie(testSnapID, Snapshot{Issued: snapNow})
	id, snap, ok := SplitCookie([]byte(cookie))
	if !ok || string(id) != testSnapID || len(cookie) != CookieLen || len(snap) != SnapshotLen {
		t.Fatalf("cookie %q split into %q %q %v", cookie, id, snap, ok)
	}
}

// TestSnapshotRejects: what an attacker can do to a cookie, each rejected with its reason.
func TestSnapshotRejects(t *testing.T) {
	k := mustKeys(t, testSnapKey)
	const ttl = 395 * 24 * time.Hour
	good := string(k.Append(nil, testSnapID, Snapshot{Purposes: Purposes{Marketing: Denied}, Version: 3, Issued: snapNow}))
	other := mustKeys(t, testSnapKey2)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name, id, snap string
		now            time.Time
		want           error
	}{
		{"empty", testSnapID, "", snapNow, ErrSnapshotMalformed},
		{"short", testSnapID, good[:SnapshotLen-1], snapNow, ErrSnapshotMalformed},
		{"long", testSnapID, good + "A", snapNow, ErrSnapshotMalformed},
		{"not base64", testSnapID, strings.Repeat("*", SnapshotLen), snapNow, ErrSnapshotMalformed},
		{"padding", testSnapID, good[:SnapshotLen-2] + "==", snapNow, ErrSnapshotMalformed},
		{"format version", testSnapID, flip(0), snapNow, ErrSnapshotMalformed},
		{"key ID", testSnapID, flip(3), snapNow, ErrSnapshotUnknownKey},
		{"purposes: grant marketing", testSnapID, flip(6), snapNow, ErrSnapshotForged},
		{"version", testSnapID, flip(10), snapNow, ErrSnapshotForged},
		{"issued", testSnapID, flip(16), snapNow, ErrSnapshotForged},
		{"mac", testSnapID, flip(30), snapNow, ErrSnapshotForged},
		{"last character", testSnapID, flip(39), snapNow, ErrSnapshotForged},
		{"moved to another ID", "AAAAAAAAAAAAAAAAAAAAAA", good, snapNow, ErrSnapshotForged},
		{"other key", testSnapID, string(other.Append(nil, testSnapID, Snapshot{Issued: snapNow})), snapNow, ErrSnapshotUnknownKey},
		{"expired", testSnapID, good, snapNow.Add(ttl + time.Second), ErrSnapshotExpired},
		{"future", testSnapID, good, snapNow.Add(-snapshotSkew - time.Second), ErrSnapshotFuture},
	}
	for _, c := range cases {
		if _, err := k.Verify([]byte(c.id), []byte(c.snap), c.now, ttl); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// At the edges: exactly ttl old and exactly the skew ahead still verify.
	for _, now := range []time.Time{snapNow.Add(ttl), snapNow.Add(-snapshotSkew)} {
		if _, err := k.Verify([]byte(testSnapID), []byte(good), now, ttl); err != nil {
			t.Errorf("at %v: %v", now, err)
		}
	}
}

// TestSnapshotRotation: the first key signs, every key verifies; dropping a key makes its
// snapshots unknown.
func TestSnapshotRotation(t *testing.T) {
	old := mustKeys(t, testSnapKey)
	rotated := mustKeys(t, testSnapKey2, testSnapKey)
	s := Snapshot{Purposes: Purposes{Statistics: Granted}, Version: 2, Issued: snapNow}
	byOld := old.Append(nil, testSnapID, s)
	byNew := rotated.Append(nil, testSnapID, s)
	if string(byOld) == string(byNew) {
		t.Fatal("the rotated keys sign with the old key")
	}
	for name, enc := range map[string][]byte{"old": byOld, "new": byNew} {
		if got, err := rotated.Verify([]byte(testSnapID), enc, snapNow, time.Hour); err != nil || got != s {
			t.Errorf("%s snapshot under the rotated keys: %+v %v", name, got, err)
		}
	}
	if _, err := mustKeys(t, testSnapKey2).Verify([]byte(testSnapID), byOld, snapNow, time.Hour); err != ErrSnapshotUnknownKey {
		t.Errorf("old key dropped: %v", err)
	}
	if _, err := NewSnapshotKeys([]string{testSnapKey, testSnapKey}); err == nil {
		t.Error("the same key twice was accepted")
	}
	if _, err := NewSnapshotKeys(nil); err == nil {
		t.Error("no keys were accepted")
	}
	r1, _ := RandomSnapshotKeys()
	r2, _ := RandomSnapshotKeys()
	if _, err := r2.Verify([]byte(testSnapID), r1.Append(nil, testSnapID, s), snapNow, time.Hour); err != ErrSnapshotUnknownKey {
		t.Errorf("two random keys verify each other: %v", err)
	}
}

func TestSplitCookie(t *testing.T) {
	for _, c := range []struct {
		in, id, snap string
		ok           bool
	}{
		{testSnapID, testSnapID, "", true},
		{testSnapID + ".abc", testSnapID, "abc", true},
		{testSnapID + ".", testSnapID, "", true},
		{testSnapID + "x", "", "", false},
		{testSnapID[:21], "", "", false},
		{"", "", "", false},
	} {
		id, snap, ok := SplitCookie([]byte(c.in))
		if string(id) != c.id || string(snap) != c.snap || ok != c.ok {
			t.Errorf("SplitCookie(%q) = %q, %q, %v", c.in, id, snap, ok)
		}
	}
}

func TestSnapshotVerifyAllocatesNothing(t *testing.T) {
	k := mustKeys(t, testSnapKey2, testSnapKey)
	id := []byte(testSnapID)
	enc := k.Append(nil, testSnapID, Snapshot{Issued: snapNow, Version: 9})
	if n := testing.AllocsPerRun(100, func() {
		if _, err := k.Verify(id, enc, snapNow, time.Hour); err != nil {
			t.Fatal(err)
		}
		SplitCookie(id)
	}); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}

func BenchmarkSnapshotVerify(b *testing.B) {
	k := mustKeys(b, testSnapKey)
	id := []byte(testSnapID)
	enc := k.Append(nil, testSnapID, Snapshot{Purposes: Purposes{Marketing: Denied}, Issued: snapNow, Version: 9})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(id, enc, snapNow, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotAppend(b *testing.B) {
	k := mustKeys(b, testSnapKey)
	buf := make([]byte, 0, CookieLen)
	s := Snapshot{Purposes: Purposes{Marketing: Denied}, Issued: snapNow, Version: 9}
	b.ReportAllocs()
	for b.Loop() {
		buf = k.Append(buf[:0], testSnapID, s)
	}
}

// FuzzSnapshotCookie: the cookie parser and the verifier never panic on any cookie
// value; what verifies re-encodes to the same bytes (one encoding per snapshot), and a
// signed cookie with any byte changed does not verify as something else.
func FuzzSnapshotCookie(f *testing.F) {
	k := mustKeys(f, testSnapKey, testSnapKey2)
	f.Add(k.Cookie(testSnapID, Snapshot{Purposes: Purposes{Marketing: Denied}, Version: 3, Issued: snapNow}), 0)
	f.Add(k.Cookie(testSnapID, Snapshot{Issued: snapNow, TCF: true}), 25)
	f.Add(testSnapID, 0)
	f.Add(testSnapID+".", 5)
	f.Add(testSnapID+"."+strings.Repeat("A", SnapshotLen), 30)
	f.Add("garbage", 1)
	f.Fuzz(func(t *testing.T, v string, flip int) {
		id, snap, ok := SplitCookie([]byte(v))
		if !ok {
			return
		}
		s, err := k.Verify(id, snap, snapNow, 400*24*time.Hour)
		if err != nil {
			return
		}
		if again := k.Append(nil, string(id), s); string(again) != string(snap) {
			t.Fatalf("%q verifies as %+v, which encodes as %q", snap, s, again)
		}
		b := []byte(snap)
		i := (flip%len(b) + len(b)) % len(b)
		b[i] ^= 1
		if s2, err := k.Verify(id, b, snapNow, 400*24*time.Hour); err == nil && s2 != s {
			t.Fatalf("changing byte %d of %q verifies as %+v", i, snap, s2)
		}
	})
}

// TestNewerThan: a snapshot is newer than a stored state when its version is higher and
// it was issued no earlier than the second the state was updated in. Within that second
// the order is unknown and the snapshot counts as newer, so that a refusal made within a
// second of the consent it replaces survives a failover that lost it.
func TestNewerThan(t *testing.T) {
	k := mustKeys(t, testSnapKey)
	enc := k.Append(nil, testSnapID, Snapshot{Purposes: Purposes{Marketing: Denied}, Version: 2, Issued: snapNow})
	for _, tc := range []struct {
		name    string
		version int64
		updated time.Time
		want    bool
	}{
		{"older version, updated before", 1, snapNow.Add(-time.Hour), true},
		{"older version, updated in the same second, earlier", 1, snapNow, true},
		{"older version, updated in the same second, later", 1, snapNow.Add(900 * time.Millisecond), true},
		{"older version, no update time", 1, time.Time{}, true},
		{"older version, updated the next second", 1, snapNow.Add(time.Second), false},
		{"the same version", 2, snapNow.Add(-time.Hour), false},
		{"a later version", 3, snapNow.Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := State{Version: tc.version, Updated: tc.updated}
			if got := NewerThan(enc, &st); got != tc.want {
				t.Fatalf("NewerThan = %v, want %v", got, tc.want)
			}
		})
	}
	if NewerThan(enc[:len(enc)-1], &State{}) || NewerThan([]byte(strings.Repeat("!", SnapshotLen)), &State{}) {
		t.Error("a malformed snapshot counted as newer")
	}
}
