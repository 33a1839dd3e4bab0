package consent

import (
	"context"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// FuzzParseID: parseID accepts exactly what ValidID accepts, and its key is the ID's
// 16 bytes, from which the ID comes back unchanged: two IDs never share a key.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "_____________________w", "AAAAAAAAAAAAAAAAAAAAAB", "", "AAAAAAAAAA\nAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := parseID(s)
		if ok != ValidID([]byte(s)) {
			t.Fatalf("parseID(%q) ok = %v, ValidID says %v", s, ok, !ok)
		}
		if ok && base64.RawURLEncoding.EncodeToString(k[:]) != s {
			t.Fatalf("parseID(%q) = %x, which encodes another ID", s, k)
		}
	})
}

func TestParseIDAllocs(t *testing.T) {
	id := newTestID(t)
	if a := testing.AllocsPerRun(1000, func() { parseID(id) }); a != 0 {
		t.Errorf("parseID allocates %v times, want 0", a)
	}
}

// TestPackState: a state packs when, and only when, it comes back exactly as it was
// (==, so times keep their location and monotonic reading); any other is spilled, so the
// maps hold every state exactly either way.
func TestPackState(t *testing.T) {
	apiNow := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC) // the consent API's s.now().UTC()
	redisTime := time.UnixMilli(apiNow.UnixMilli()).UTC()         // what the Redis store reads back
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	typical := State{Purposes: Purposes{Granted, Denied, Unset, Granted}, Source: "api", Version: 3, Created: redisTime, Updated: redisTime}
	with := func(f func(*State)) State {
		st := typical
		f(&st)
		return st
	}
	for _, tc := range []struct {
		name  string
		st    State
		packs bool
	}{
		{"no record", State{}, true},
		{"from Redis", typical, true},
		{"from the API", with(func(s *State) { s.Created, s.Updated = apiNow, apiNow }), true},
		{"no times", with(func(s *State) { s.Created, s.Updated = time.Time{}, time.Time{} }), true},
		{"updated only", with(func(s *State) { s.Created = time.Time{} }), true},
		{"before 1970", with(func(s *State) { s.Created = time.Date(1960, 1, 1, 0, 0, 0, 1, time.UTC) }), true},
		{"version 0", with(func(s *State) { s.Version = 0 }), true},
		{"version 2^32-1", with(func(s *State) { s.Version = math.MaxUint32 }), true},
		{"all statuses", with(func(s *State) { s.Purposes = Purposes{Unset, Granted, Denied, Denied} }), true},
		{"no source", with(func(s *State) { s.Source = "" }), true},
		{"backend source", with(func(s *State) { s.Source = "crm-sync/v2 ☃" }), true},
		{"TC string", with(func(s *State) { s.TCF = validTC }), false},
		{"version 2^32", with(func(s *State) { s.Version = math.MaxUint32 + 1 }), false},
		{"negative version", with(func(s *State) { s.Version = -1 }), false},
		{"status out of range", with(func(s *State) { s.Purposes[Marketing] = Status(7) }), false},
		{"local time", with(func(s *State) { s.Updated = apiNow.In(paris) }), false},
		{"monotonic reading", with(func(s *State) { s.Updated = time.Now() }), false},
		{"past 2262", with(func(s *State) { s.Updated = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }), false},
		{"the sentinel instant", with(func(s *State) { s.Created = time.Unix(0, noTime).UTC() }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, found := range []bool{true, false} {
				p, packed := newSourceTable().pack(&tc.st, found)
				if packed != tc.packs {
					t.Fatalf("pack(found %v) packed = %v, want %v", found, packed, tc.packs)
				}
				if got := p.flags&packedFound != 0; got != found {
					t.Errorf("found flag %v, want %v", got, found)
				}
				if got := p.flags&packedSpilled != 0; got == packed {
					t.Errorf("spilled flag %v for packed = %v", got, packed)
				}
			}
			st := tc.st
			checkStoreKeeps(t, st)
		})
	}
}

// checkStoreKeeps stores st in a memory store and behind a cache, and reads it back
// exactly (==) from both.
func checkStoreKeeps(t *testing.T, st State) {
	t.Helper()
	ctx := context.Background()
	mem := NewMemoryStore(100)
	defer mem.Close()
	c := NewCache(mem, CacheOptions{TTL: time.Hour})
	id := tid("keeps")
	if err := mem.Put(ctx, id, st, time.Hour, testReceipt); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Store{mem, c, c} { // the memory store, the cache's fill, its hit
		got, ok, err := s.Get(ctx, id)
		if err != nil || !ok || got != st {
			t.Fatalf("%T.Get = %+v, %v, %v; want %+v", s, got, ok, err, st)
		}
	}
	checkMapInvariants(t, mem.states)
	checkMapInvariants(t, c.entries)
}

// TestSourceTableFull: the table holds 256 sources (the empty one included); a state
// with one more is spilled and still kept exactly.
func TestSourceTableFull(t *testing.T) {
	tbl := newSourceTable()
	st := State{Version: 1}
	for i := 1; i <= math.MaxUint8; i++ {
		st.Source = "src-" + strconv.Itoa(i)
		if _, packed := tbl.pack(&st, true); !packed {
			t.Fatalf("source %d of 255 did not pack", i)
		}
	}
	st.Source = "one-too-many"
	if _, packed := tbl.pack(&st, true); packed {
		t.Fatal("a 257th source packed into a byte")
	}
	st.Source = "src-7"
	if p, packed := tbl.pack(&st, true); !packed || tbl.unpack(p) != st {
		t.Fatal("a known source no longer packs once the table is full")
	}
}

// TestSourceTableCopies: the table keeps its own copy of a source, which may alias
// request memory.
func TestSourceTableCopies(t *testing.T) {
	tbl := newSourceTable()
	buf := []byte("from-request")
	st := State{Source: unsafe.String(&buf[0], len(buf))}
	p, _ := tbl.pack(&st, true)
	copy(buf, "XXXXXXXXXXXX")
	if got := tbl.unpack(p).Source; got != "from-request" {
		t.Fatalf("source %q after the caller's buffer was reused", got)
	}
}

// TestSpillFollowsEntry: a spilled state leaves the spill map with its entry, whichever
// way the entry goes (overwritten by a state that packs, deleted, evicted, expired,
// invalidated, cleared), and the bytes counted follow.
func TestSpillFollowsEntry(t *testing.T) {
	ctx := context.Background()
	s, clk := newTestStore(t, 32)
	spilled := State{TCF: validTC, Version: 1}
	packs := testState(2)
	put := func(id string, st State, ttl time.Duration) {
		t.Helper()
		if err := s.Put(ctx, id, st, ttl, testReceipt); err != nil {
			t.Fatal(err)
		}
		checkMapInvariants(t, s.states)
	}
	put(tid("over"), spilled, time.Hour)
	put(tid("over"), packs, time.Hour)
	put(tid("del"), spilled, time.Hour)
	if _, err := s.Delete(ctx, tid("del"), testReceipt); err != nil {
		t.Fatal(err)
	}
	put(tid("expires"), spilled, time.Minute)
	clk.advance(time.Minute)
	if _, ok, _ := s.Get(ctx, tid("expires")); ok {
		t.Fatal("expired state found")
	}
	checkMapInvariants(t, s.states)
	for i := range 200 { // far past the bound: evictions, spilled or not
		st := packs
		if i%3 == 0 {
			st = spilled
		}
		put(tid("evict-"+strconv.Itoa(i)), st, time.Duration(1+i%5)*time.Minute)
	}
	if n := spillLen(s.states); n == 0 || n > s.Len() {
		t.Fatalf("%d spilled states for %d entries", n, s.Len())
	}

	c := NewCache(s, CacheOptions{TTL: time.Hour})
	for _, id := range []string{tid("a"), tid("b")} {
		put(id, spilled, time.Hour)
		if _, _, err := c.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	c.Invalidate(tid("a"))
	checkMapInvariants(t, c.entries)
	if n := spillLen(c.entries); n != 1 {
		t.Fatalf("%d spilled states in the cache after one of two was invalidated, want 1", n)
	}
	c.Clear()
	if n, b := spillLen(c.entries), c.Bytes(); n != 0 || b != 0 {
		t.Fatalf("a cleared cache holds %d spilled states and %d bytes", n, b)
	}
}

func spillLen[V any](m *ttlMap[V]) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.spill)
		sh.mu.Unlock()
	}
	return n
}

// checkMapInvariants checks every shard: a spilled state for each entry that says so
// and for no other key, and the bytes counted equal to what the entries weigh.
func checkMapInvariants[V any](t testing.TB, m *ttlMap[V]) {
	t.Helper()
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		w := 0
		used := map[uint32]bool{}
		for k, at := range sh.m {
			if used[at] {
				t.Errorf("shard %d: two keys share slot %d", i, at)
			}
			used[at] = true
			e := sh.slots[at]
			w += sh.weightLocked(k, e.v)
			_, inSpill := sh.spill[k]
			if p, ok := any(e.v).(packedState); ok && (p.flags&packedSpilled != 0) != inSpill {
				t.Errorf("shard %d: entry flagged spilled %v, in the spill map %v", i, p.flags&packedSpilled != 0, inSpill)
			}
		}
		for _, at := range sh.free {
			if used[at] {
				t.Errorf("shard %d: slot %d is both used and free", i, at)
			}
			used[at] = true
		}
		if len(used) != len(sh.slots) {
			t.Errorf("shard %d: %d slots, %d used or free", i, len(sh.slots), len(used))
		}
		for k := range sh.spill {
			if _, ok := sh.m[k]; !ok {
				t.Errorf("shard %d: a spilled state outlived its entry", i)
			}
		}
		if w != sh.bytes {
			t.Errorf("shard %d counts %d bytes, its entries weigh %d", i, sh.bytes, w)
		}
		sh.mu.Unlock()
	}
}

// TestPackReceipt: a receipt packs when it comes back exactly (==); any other is kept
// whole. The memory store's History gives every one back as it was appended.
func TestPackReceipt(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	typical := Receipt{Time: now, Action: ActionConsent, Purposes: Purposes{Granted, Denied, Unset, Granted},
		Source: "api", Version: 4, UAHash: UAHash([]byte("Mozilla/5.0"))}
	with := func(f func(*Receipt)) Receipt {
		r := typical
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name  string
		r     Receipt
		packs bool
	}{
		{"from the API", typical, true},
		{"withdrawal", with(func(r *Receipt) { r.Action, r.Purposes = ActionWithdraw, Purposes{} }), true},
		{"no UA", with(func(r *Receipt) { r.UAHash = "" }), true},
		{"TC string", with(func(r *Receipt) { r.TCF = validTC }), true},
		{"no time", with(func(r *Receipt) { r.Time = time.Time{} }), true},
		{"big version", with(func(r *Receipt) { r.Version = math.MaxInt64 }), true},
		{"local time", with(func(r *Receipt) { r.Time = now.In(paris) }), false},
		{"monotonic reading", with(func(r *Receipt) { r.Time = time.Now() }), false},
		{"upper-case UA hash", with(func(r *Receipt) { r.UAHash = strings.ToUpper(r.UAHash) }), false},
		{"other action", with(func(r *Receipt) { r.Action = "import" }), false},
		{"status out of range", with(func(r *Receipt) { r.Purposes[Necessary] = Status(9) }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := newSourceTable()
			r := tc.r
			p := tbl.packReceipt(&r)
			if packed := p.full == nil; packed != tc.packs {
				t.Fatalf("packed = %v, want %v", packed, tc.packs)
			}
			if got := tbl.unpackReceipt(&p); got != tc.r {
				t.Fatalf("unpacked %+v, want %+v", got, tc.r)
			}
			if int(p.size) != ReceiptSize(&tc.r) {
				t.Fatalf("size %d, ReceiptSize %d", p.size, ReceiptSize(&tc.r))
			}
		})
	}
	// Through the store: Put and Delete complete the receipt (Action, Purposes, Version)
	// and History returns it as completed.
	s, _ := newTestStore(t, 10)
	ctx := context.Background()
	id := tid("receipts")
	st := State{Purposes: typical.Purposes, Source: "api", Version: typical.Version}
	if err := s.Put(ctx, id, st, time.Hour, typical); err != nil {
		t.Fatal(err)
	}
	local := with(func(r *Receipt) { r.Time = now.In(paris) })
	if _, err := s.Delete(ctx, id, local); err != nil {
		t.Fatal(err)
	}
	rs, err := s.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wantWithdraw := local
	wantWithdraw.Action, wantWithdraw.Purposes, wantWithdraw.TCF = ActionWithdraw, Purposes{}, ""
	if len(rs) != 2 || rs[0] != typical || rs[1] != wantWithdraw {
		t.Fatalf("History = %+v\nwant %+v and %+v", rs, typical, wantWithdraw)
	}
	checkMapInvariants(t, s.receipts)
}
