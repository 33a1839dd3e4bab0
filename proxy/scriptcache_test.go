package proxy

import (
	"fmt"
	"testing"
)

func entryOf(n int) *scriptEntry { return &scriptEntry{status: 200, body: make([]byte, n)} }

// TestScriptCacheBounds: the cache holds to max_entries and max_bytes whatever is put,
// keeps what is used over what is not, never keeps an entry larger than itself, and
// shrinks when a reload lowers its bounds.
func TestScriptCacheBounds(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		c := newScriptCache(1<<30, 10)
		for i := range 100 {
			c.put(fmt.Sprint("k", i), entryOf(10), int64(i))
			if n, _ := c.stats(); n > 10 {
				t.Fatalf("%d entries after %d puts", n, i+1)
			}
		}
	})
	t.Run("bytes", func(t *testing.T) {
		c := newScriptCache(1000, 1000)
		for i := range 100 {
			c.put(fmt.Sprint("k", i), entryOf(95), int64(i))
			if _, b := c.stats(); b > 1000 {
				t.Fatalf("%d bytes after %d puts", b, i+1)
			}
		}
		if n, _ := c.stats(); n != 10 { // 10 × (3 bytes of key + 95): 980
			t.Errorf("%d entries, want 10", n)
		}
	})
	t.Run("recently used survive", func(t *testing.T) {
		c := newScriptCache(1<<30, 8)
		for i := range 8 {
			c.put(fmt.Sprint("old", i), entryOf(1), int64(i))
		}
		// "hot" is used after every put: a sampled LRU never picks it while older
		// entries are in its sample, and the sample covers all 8.
		c.put("hot", entryOf(1), 100)
		for i := range 50 {
			c.get([]byte("hot")).used.Store(int64(200 + 2*i))
			c.put(fmt.Sprint("new", i), entryOf(1), int64(201+2*i))
			if c.get([]byte("hot")) == nil {
				t.Fatalf("the entry in use was evicted after %d puts", i+1)
			}
		}
	})
	t.Run("too large for the cache", func(t *testing.T) {
		c := newScriptCache(100, 10)
		c.put("small", entryOf(10), 1)
		c.put("big", entryOf(200), 2)
		if c.get([]byte("big")) != nil || c.get([]byte("small")) == nil {
			t.Error("an entry larger than the cache was kept, or evicted the others")
		}
		c.put("small", entryOf(200), 3) // replaced by one too large: gone, and its bytes with it
		if n, b := c.stats(); n != 0 || b != 0 {
			t.Errorf("%d entries, %d bytes", n, b)
		}
	})
	t.Run("replace keeps the count right", func(t *testing.T) {
		c := newScriptCache(1<<20, 10)
		for i := range 5 {
			c.put("k", entryOf(100*(i+1)), int64(i))
		}
		if n, b := c.stats(); n != 1 || b != 501 {
			t.Errorf("%d entries, %d bytes, want 1, 501", n, b)
		}
	})
	t.Run("shrink", func(t *testing.T) {
		c := newScriptCache(1<<20, 100)
		for i := range 100 {
			c.put(fmt.Sprint("k", i), entryOf(100), int64(i))
		}
		c.setLimits(1000, 100)
		if _, b := c.stats(); b > 1000 {
			t.Errorf("%d bytes after shrinking to 1000", b)
		}
		c.setLimits(1<<20, 3)
		if n, _ := c.stats(); n > 3 {
			t.Errorf("%d entries after shrinking to 3", n)
		}
	})
}
