package consent

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// newTestID returns a fresh consent ID, shaped like the proxy's.
func newTestID(t testing.TB) string {
	t.Helper()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sameState compares states as a store round trip keeps them: times to the millisecond.
func sameState(a, b State) bool {
	return a.Purposes == b.Purposes && a.Source == b.Source && a.Version == b.Version && a.TCF == b.TCF &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}

// testStoreContract checks what every Store promises, on a fresh store s.
func testStoreContract(t *testing.T, s Store) {
	ctx := context.Background()
	get := func(t *testing.T, id string) (State, bool) {
		t.Helper()
		st, ok, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return st, ok
	}
	history := func(t *testing.T, id string) []Receipt {
		t.Helper()
		rs, err := s.History(ctx, id)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		return rs
	}
	put := func(t *testing.T, id string, st State, r Receipt) {
		t.Helper()
		if err := s.Put(ctx, id, st, time.Hour, r); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	at := clockBase.Add(42 * time.Second)

	t.Run("tcf string kept with state and receipt", func(t *testing.T) {
		id := newTestID(t)
		st := testState(1)
		st.TCF = validTC
		r := testReceipt
		r.Time = at
		put(t, id, st, r)
		if got, ok := get(t, id); !ok || got.TCF != validTC || !sameState(got, st) {
			t.Fatalf("Get = %+v, %v; want the TC string back", got, ok)
		}
		// A later write without one leaves none behind.
		st2 := testState(2)
		put(t, id, st2, r)
		if got, _ := get(t, id); got.TCF != "" {
			t.Fatalf("TC string survived a write without one: %q", got.TCF)
		}
		rs := history(t, id)
		if len(rs) != 2 || rs[0].TCF != validTC || rs[1].TCF != "" {
			t.Fatalf("receipts %+v: want the TC string on the first only", rs)
		}
		if !strings.Contains(string(MarshalReceipts(rs)), `"tcf":"`+validTC+`"`) {
			t.Fatalf("MarshalReceipts drops the TC string: %s", MarshalReceipts(rs))
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		id := newTestID(t)
		if _, ok := get(t, id); ok {
			t.Fatal("Get of a new ID found a state")
		}
		if rs := history(t, id); len(rs) != 0 {
			t.Fatalf("History of a new ID = %v, want none", rs)
		}

		v1 := testState(1)
		r := testReceipt
		r.Time = at
		r.Action, r.Purposes, r.Version = "bogus", Purposes{Marketing: Granted}, 99 // the store overrides these
		put(t, id, v1, r)
		if st, ok := get(t, id); !ok || !sameState(st, v1) {
			t.Fatalf("Get after Put = %+v, %v; want %+v", st, ok, v1)
		}

		// A purpose that becomes unset must not survive from the previous write.
		v2 := testState(2)
		v2.Purposes = Purposes{Necessary: Granted}
		v2.Source = "admin"
		put(t, id, v2, Receipt{Time: at.Add(time.Second)})
		if st, ok := get(t, id); !ok || !sameState(st, v2) {
			t.Fatalf("Get after the second Put = %+v, %v; want %+v", st, ok, v2)
		}

		if ok, err := s.Delete(ctx, id, Receipt{Time: at.Add(2 * time.Second), Source: "api", Version: 2, Purposes: Purposes{Granted}}); err != nil || !ok {
			t.Fatalf("Delete = %v, %v; want true", ok, err)
		}
		if _, ok := get(t, id); ok {
			t.Fatal("Get after Delete found a state")
		}
		if ok, err := s.Delete(ctx, id, Receipt{Time: at.Add(3 * time.Second), Source: "api"}); err != nil || ok {
			t.Fatalf("second Delete = %v, %v; want false", ok, err)
		}

		want := []Receipt{
			{Time: at, Action: ActionConsent, Purposes: v1.Purposes, Source: "api", Version: 1, UAHash: testReceipt.UAHash},
			{Time: at.Add(time.Second), Action: ActionConsent, Purposes: v2.Purposes, Source: "admin", Version: 2},
			{Time: at.Add(2 * time.Second), Action: ActionWithdraw, Source: "api", Version: 2},
			{Time: at.Add(3 * time.Second), Action: ActionWithdraw, Source: "api"},
		}
		got := history(t, id)
		if len(got) != len(want) {
			t.Fatalf("History has %d receipts, want %d:\n%+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !g.Time.Equal(w.Time) || g.Action != w.Action || g.Purposes != w.Purposes ||
				g.Source != w.Source || g.Version != w.Version || g.UAHash != w.UAHash {
				t.Errorf("receipt %d = %+v\nwant %+v", i, g, w)
			}
		}

		if ok, err := s.Erase(ctx, id); err != nil || !ok {
			t.Fatalf("Erase = %v, %v; want true (receipts were there)", ok, err)
		}
		if rs := history(t, id); len(rs) != 0 {
			t.Fatalf("History after Erase = %v, want none", rs)
		}
		if ok, err := s.Erase(ctx, id); err != nil || ok {
			t.Fatalf("second Erase = %v, %v; want false", ok, err)
		}
	})

	t.Run("erase a live state", func(t *testing.T) {
		id := newTestID(t)
		put(t, id, testState(1), testReceipt)
		if ok, err := s.Erase(ctx, id); err != nil || !ok {
			t.Fatalf("Erase = %v, %v; want true", ok, err)
		}
		if _, ok := get(t, id); ok {
			t.Fatal("Get after Erase found a state")
		}
	})

	t.Run("a zero receipt time is now", func(t *testing.T) {
		id := newTestID(t)
		put(t, id, testState(1), Receipt{})
		rs := history(t, id)
		if len(rs) != 1 || rs[0].Time.IsZero() || rs[0].Source != "api" {
			t.Fatalf("History = %+v; want one receipt with a time and st's source", rs)
		}
	})

	t.Run("rejected writes write nothing", func(t *testing.T) {
		id := newTestID(t)
		raw := Receipt{UAHash: "Mozilla/5.0 (X11; Linux x86_64)"}
		if err := s.Put(ctx, id, testState(1), time.Hour, raw); err == nil || !strings.Contains(err.Error(), "UAHash") {
			t.Fatalf("Put with a raw User-Agent: err = %v, want a UAHash error", err)
		}
		if _, err := s.Delete(ctx, id, raw); err == nil {
			t.Fatal("Delete with a raw User-Agent succeeded")
		}
		for _, ttl := range []time.Duration{0, -time.Second} {
			if err := s.Put(ctx, id, testState(1), ttl, testReceipt); err == nil || !strings.Contains(err.Error(), "ttl must be positive") {
				t.Fatalf("Put ttl=%v: err = %v, want ttl must be positive", ttl, err)
			}
		}
		if _, ok := get(t, id); ok {
			t.Fatal("a rejected Put stored a state")
		}
		if rs := history(t, id); len(rs) != 0 {
			t.Fatalf("a rejected write stored receipts: %+v", rs)
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestMemoryStoreContract(t *testing.T) {
	s, _ := newTestStore(t, 100)
	testStoreContract(t, s)
}

func TestCacheContract(t *testing.T) {
	c := NewCache(NewMemoryStore(100), CacheOptions{})
	t.Cleanup(func() { _ = c.Close() })
	testStoreContract(t, c)
}

func TestUAHash(t *testing.T) {
	h := UAHash([]byte("Mozilla/5.0"))
	// The first 16 bytes of sha256("Mozilla/5.0"), as `printf Mozilla/5.0 | sha256sum` shows.
	if want := "1066b48224bb188ceb955605f4fcff98"; h != want {
		t.Fatalf("UAHash = %q, want %q", h, want)
	}
	if UAHash([]byte("Mozilla/5.0")) != h {
		t.Fatal("UAHash is not deterministic")
	}
	if UAHash([]byte("Mozilla/5.1")) == h {
		t.Fatal("different User-Agents hash the same")
	}
	if got := UAHash(nil); got != "" {
		t.Fatalf("UAHash(nil) = %q, want empty", got)
	}
	for _, bad := range []string{"Mozilla/5.0", strings.ToUpper(h), h[:31], h + "0", strings.Repeat("g", 32)} {
		if validUAHash(bad) {
			t.Errorf("validUAHash(%q) = true", bad)
		}
	}
}

func TestMarshalReceipts(t *testing.T) {
	if got := string(MarshalReceipts(nil)); got != "[]" {
		t.Fatalf("MarshalReceipts(nil) = %s, want []", got)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.FixedZone("CET", 3600))
	got := MarshalReceipts([]Receipt{
		{Time: at, Action: ActionConsent, Purposes: Purposes{Necessary: Granted, Marketing: Denied}, Source: "api", Version: 3, UAHash: "0123456789abcdef0123456789abcdef"},
		{Time: at.Add(time.Minute), Action: ActionWithdraw, Source: "admin", Version: 3},
	})
	want := `[{"time":"2026-03-04T04:06:07Z","action":"consent","purposes":{"necessary":"granted","preferences":"unset","statistics":"unset","marketing":"denied"},"source":"api","version":3,"ua_hash":"0123456789abcdef0123456789abcdef"},` +
		`{"time":"2026-03-04T04:07:07Z","action":"withdraw","purposes":{"necessary":"unset","preferences":"unset","statistics":"unset","marketing":"unset"},"source":"admin","version":3,"ua_hash":""}]`
	if string(got) != want {
		t.Fatalf("MarshalReceipts =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("not valid JSON")
	}
}
