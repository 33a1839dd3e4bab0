package proxy

import (
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/redistest"
	"github.com/consentgate/consentgate/rules"
)

// testClock is a clock a test moves by hand: the anonymiser's and the salt sharer's.
type testClock struct{ t atomic.Pointer[time.Time] }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) now() time.Time      { return *c.t.Load() }
func (c *testClock) set(t time.Time)     { c.t.Store(&t) }
func (c *testClock) day() string         { return c.now().UTC().Format(time.DateOnly) }
func (c *testClock) add(d time.Duration) { c.set(c.now().Add(d)) }

// saltProxy starts an instance on the Redis at addrs, on clock c.
func saltProxy(t *testing.T, up *sink, c *testClock, addrs ...string) *testProxy {
	t.Helper()
	cfg, err := testLoader.LoadBytes("test.yaml", []byte(redisConfig(up.URL(), addrs...)))
	if err != nil {
		t.Fatal(err)
	}
	return startProxyWith(t, cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: c.now})
}

// pseudonym sends an anonymised GA4 hit (EEA, no consent) for client ID cid under
// measurement ID tid and returns the cid the vendor received.
func pseudonym(t *testing.T, p *testProxy, up *sink, tid, cid string) string {
	t.Helper()
	if r := p.do("GET", "/g/collect?v=2&tid="+tid+"&en=page_view&cid="+cid, "", "X-Forwarded-For", ipSE); r.Status != 204 {
		t.Fatalf("hit: %d %s", r.Status, r.Body)
	}
	got := query(t, up.one(t).Query).Get("cid")
	if len(got) != 32 || got == cid {
		t.Fatalf("cid %q reached the vendor: want a pseudonym", got)
	}
	return got
}

// redisDo runs a one-key command on whichever node of addrs holds the key (a cluster
// node answers MOVED for the others).
func redisDo(t *testing.T, addrs []string, args ...string) string {
	t.Helper()
	var last error
	for _, a := range addrs {
		v, err := redistest.Do(a, args...)
		if err == nil {
			return v
		}
		last = err
	}
	t.Fatalf("%v: %v", args, last)
	return ""
}

// awaitShared waits until p's hasher holds the shared salt of day: the sync at start
// has a budget, which a loaded machine can miss, and then the sharer retries.
func awaitShared(t *testing.T, p *testProxy, day time.Time) {
	t.Helper()
	eventually(t, 15*time.Second, "the shared salt of "+day.Format(time.DateOnly), func() bool {
		_, shared, ok := p.hasher.Salt(day)
		return ok && shared
	})
}

func fallbacks(t *testing.T, p *testProxy) string {
	t.Helper()
	return grep(p.metricsText(t), "consentgate_anonymise_salt_fallbacks_total")
}

// TestSaltSharedByInstances: two instances on one Redis (single node and Cluster) give
// a visitor the same pseudonym, because they share the day's random salt; the key lives
// under the prefix until 5 minutes after the day; another property gives another one.
func TestSaltSharedByInstances(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t, 3)
	for _, topo := range []struct {
		name  string
		addrs []string
	}{{"single", []string{single.Addr}}, {"cluster", cluster.Addrs}} {
		t.Run(topo.name, func(t *testing.T) {
			up := startSink(t)
			c := newTestClock(fixedNow()) // noon
			a, b := saltProxy(t, up, c, topo.addrs...), saltProxy(t, up, c, topo.addrs...)
			awaitShared(t, a, c.now())
			awaitShared(t, b, c.now())
			pa, pb := pseudonym(t, a, up, "G-TEST123", "1234.5678"), pseudonym(t, b, up, "G-TEST123", "1234.5678")
			if pa != pb {
				t.Errorf("instances disagree on one visitor: %s vs %s", pa, pb)
			}
			if other := pseudonym(t, b, up, "G-OTHER99", "1234.5678"); other == pa {
				t.Error("another property gave the same pseudonym")
			}
			// Another site (the host the hit was sent to), same property and client ID.
			b.do("GET", "/g/collect?v=2&tid=G-TEST123&en=page_view&cid=1234.5678", "", "X-Forwarded-For", ipSE, "Host", "t.other-site.example")
			if other := query(t, up.one(t).Query).Get("cid"); other == pa || other == "" {
				t.Errorf("another site gave pseudonym %q, the first site %q", other, pa)
			}
			key := "consentgate:salt:" + c.day()
			if v := redisDo(t, topo.addrs, "STRLEN", key); v != "32" {
				t.Errorf("%s holds %s bytes, want a 32-byte salt", key, v)
			}
			ttl := redisDo(t, topo.addrs, "PTTL", key)
			want := (12*time.Hour + saltGrace).Milliseconds() // noon to 5 minutes after midnight
			if ms := atoi(t, ttl); ms > want || ms < want-60_000 {
				t.Errorf("%s PTTL %s ms, want just under %d: gone 5 minutes after the day", key, ttl, want)
			}
			for _, p := range []*testProxy{a, b} {
				if m := fallbacks(t, p); !strings.Contains(m, "consentgate_anonymise_salt_fallbacks_total 0") {
					t.Errorf("an instance hashed with a salt of its own:\n%s", m)
				}
			}
			// A reader of Redis has the day's salt, but without anonymise.secret it cannot
			// compute the pseudonym of a client ID it guesses; with it, it can (today only).
			salt := redisDo(t, topo.addrs, "GET", key)
			guess := func(secret string) string {
				h := rules.NewHasher(c.now).WithSecret([]byte(secret))
				if !h.SetSalt(c.now(), []byte(salt), true) {
					t.Fatal("SetSalt refused the salt read from Redis")
				}
				k := h.Key(h.Scope("ga4"), []byte("G-TEST123"), []byte("127.0.0.1"))
				return string(k.AppendHash(nil, []byte("1234.5678")))
			}
			if guess("") == pa {
				t.Error("the salt in Redis alone computes the pseudonyms")
			}
			if guess(testSecret) != pa {
				t.Error("salt, secret, vendor, property and site do not give the pseudonym: the documented derivation is not the one in use")
			}
		})
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = 10*n + int64(c-'0')
	}
	return n
}

// TestSaltPastDayUnrecoverable: once a day is over and its key has expired, no one can
// recompute that day's pseudonyms: not the instance that made them (its salt has moved
// on, even with the clock set back), and not a new instance with the very same config
// (the salt is random, not derived from anonymise.secret).
func TestSaltPastDayUnrecoverable(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	c := newTestClock(fixedNow())
	dayD := c.day()
	a := saltProxy(t, up, c, rs.Addr)
	awaitShared(t, a, c.now())
	past := pseudonym(t, a, up, "G-TEST123", "1234.5678")
	key := "consentgate:salt:" + dayD
	oldSalt := redisDo(t, []string{rs.Addr}, "GET", key)

	// The day ends; 5 minutes later Redis expires the key (its PTTL says so:
	// TestSaltSharedByInstances); here it is removed as the expiry would.
	c.add(12*time.Hour + saltGrace + time.Minute)
	if n := redisDo(t, []string{rs.Addr}, "DEL", key); n != "1" {
		t.Fatalf("DEL %s: %s", key, n)
	}
	if next := pseudonym(t, a, up, "G-TEST123", "1234.5678"); next == past {
		t.Error("the next day's pseudonym is the past day's")
	}
	c.set(fixedNow()) // back to day D
	if again := pseudonym(t, a, up, "G-TEST123", "1234.5678"); again == past {
		t.Error("the instance recomputed the past day's pseudonym with its clock set back")
	}
	fresh := saltProxy(t, up, c, rs.Addr) // same config, same secret, clock on day D
	awaitShared(t, fresh, c.now())
	if got := pseudonym(t, fresh, up, "G-TEST123", "1234.5678"); got == past {
		t.Error("a new instance with the same config recomputed the past day's pseudonym")
	}
	if newSalt := redisDo(t, []string{rs.Addr}, "GET", key); newSalt == oldSalt {
		t.Error("day D's salt came back: it is derived, not random")
	}
}

// TestSaltAcrossMidnight: shortly before midnight each instance fetches the next day's
// salt, so the first hits of the new day find it shared: the instances agree, and none
// makes a salt of its own.
func TestSaltAcrossMidnight(t *testing.T) {
	rs := redistest.Start(t)
	up := startSink(t)
	c := newTestClock(time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC))
	a, b := saltProxy(t, up, c, rs.Addr), saltProxy(t, up, c, rs.Addr)
	for _, p := range []*testProxy{a, b} {
		awaitShared(t, p, c.now())
		awaitShared(t, p, c.now().Add(time.Hour))
	}
	before := pseudonym(t, a, up, "G-TEST123", "1234.5678")
	for _, day := range []string{"2026-11-22", "2026-11-23"} {
		if n := redisDo(t, []string{rs.Addr}, "EXISTS", "consentgate:salt:"+day); n != "1" {
			t.Errorf("no salt stored for %s at 23:59", day)
		}
	}
	c.add(90 * time.Second)
	pa, pb := pseudonym(t, a, up, "G-TEST123", "1234.5678"), pseudonym(t, b, up, "G-TEST123", "1234.5678")
	if pa != pb || pa == before {
		t.Errorf("after midnight: %s and %s, before %s: want the instances to agree on a new pseudonym", pa, pb, before)
	}
	for _, p := range []*testProxy{a, b} {
		if m := fallbacks(t, p); !strings.Contains(m, "consentgate_anonymise_salt_fallbacks_total 0") {
			t.Errorf("an instance made a salt of its own at midnight:\n%s", m)
		}
	}
}

// TestSaltRedisDown: with Redis down, an instance still anonymises, with a salt of its
// own, and counts it; once Redis answers, its salt becomes the shared one (no instance
// had stored one), so its pseudonyms do not change and a new instance agrees.
func TestSaltRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	rs.Stop()
	up := startSink(t)
	c := newTestClock(fixedNow())
	a := saltProxy(t, up, c, rs.Addr)
	local := pseudonym(t, a, up, "G-TEST123", "1234.5678")
	if m := fallbacks(t, a); !strings.Contains(m, "consentgate_anonymise_salt_fallbacks_total 1") {
		t.Errorf("the local salt was not counted:\n%s", m)
	}
	rs.Restart(t)
	awaitShared(t, a, c.now())
	if got := pseudonym(t, a, up, "G-TEST123", "1234.5678"); got != local {
		t.Errorf("pseudonym changed when Redis came back: %s, was %s", got, local)
	}
	b := saltProxy(t, up, c, rs.Addr)
	awaitShared(t, b, c.now())
	if got := pseudonym(t, b, up, "G-TEST123", "1234.5678"); got != local {
		t.Errorf("a new instance disagrees: %s vs %s", got, local)
	}
}
