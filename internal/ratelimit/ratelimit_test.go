package ratelimit

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func key(s string) Key { return IPKey(netip.MustParseAddr(s)) }

func TestBucket(t *testing.T) {
	l := New(60, 3, 1024) // one a second, three at once
	a, b := key("192.0.2.1"), key("192.0.2.2")
	for i := range 3 {
		if ok, _ := l.Allow(a, t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow(a, t0)
	if ok || retry != time.Second {
		t.Fatalf("past the burst: %v, retry after %v; want refused for 1s", ok, retry)
	}
	if ok, _ := l.Allow(b, t0); !ok {
		t.Error("another client was refused")
	}
	if ok, _ := l.Allow(a, t0.Add(999*time.Millisecond)); ok {
		t.Error("a token came back early")
	}
	if ok, _ := l.Allow(a, t0.Add(time.Second)); !ok {
		t.Error("no token after an interval")
	}
	// A quiet spell refills the bucket to its burst, never beyond.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow(a, later); !ok {
			t.Fatalf("after an hour, request %d refused", i)
		}
	}
	if ok, _ := l.Allow(a, later); ok {
		t.Error("the bucket refilled past its burst")
	}
}

func TestNetKey(t *testing.T) {
	same := [][2]string{
		{"198.51.100.7", "198.51.100.250"},
		{"::ffff:198.51.100.7", "198.51.100.9"},
		{"2001:db8:1::1", "2001:db8:1:ffff::2"},
	}
	for _, p := range same {
		if NetKey(netip.MustParseAddr(p[0])) != NetKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s are in different networks", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"198.51.100.7", "198.51.101.7"},
		{"2001:db8:1::1", "2001:db8:2::1"},
		{"0.0.0.0", "::"},
	}
	for _, p := range differ {
		if NetKey(netip.MustParseAddr(p[0])) == NetKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s share a network", p[0], p[1])
		}
	}
	if IPKey(netip.MustParseAddr("::ffff:198.51.100.7")) != key("198.51.100.7") {
		t.Error("an IPv4-mapped address is another client than its IPv4 address")
	}
}

// TestFloodKeepsDebtors: a flood of a million new clients neither grows the table nor
// frees a client that is over its limit: the ones in debt are the last forgotten.
func TestFloodKeepsDebtors(t *testing.T) {
	l := New(60, 10, 4096)
	size := l.Clients()
	attacker := key("203.0.113.5")
	for range 10 {
		l.Allow(attacker, t0)
	}
	if ok, _ := l.Allow(attacker, t0); ok {
		t.Fatal("the attacker was not limited")
	}
	var k Key
	k[0] = 0x20
	for i := range 1_000_000 {
		k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16)
		l.Allow(k, t0)
	}
	if ok, _ := l.Allow(attacker, t0); ok {
		t.Error("a flood of new clients freed the attacker's bucket")
	}
	if l.Clients() != size {
		t.Errorf("the table grew from %d to %d", size, l.Clients())
	}
	if size < 4096 || size > 2*4096+64*minSets*ways {
		t.Errorf("%d slots for 4096 clients", size)
	}
}

func TestConcurrent(t *testing.T) {
	l := New(60, 100, 1024)
	k := key("192.0.2.77")
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 100 {
				if ok, _ := l.Allow(k, t0); ok {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 100 {
		t.Errorf("%d of 800 concurrent requests allowed at one instant, want the burst of 100", allowed)
	}
}

func TestAllowAllocatesNothing(t *testing.T) {
	l := New(60, 10, 1024)
	k := key("192.0.2.1")
	if n := testing.AllocsPerRun(1000, func() { l.Allow(k, t0) }); n != 0 {
		t.Errorf("Allow allocates %v times", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(600, 200, 65536)
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = IPKey(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i&1023], now)
		i++
	}
}
