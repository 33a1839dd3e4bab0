package signals

import (
	"strings"
	"testing"

	"github.com/consentgate/consentgate/consent/tcf"
)

// TestTCFCacheSkipsOversized: a string past tcf.MaxLength is invalid and not cached, so a
// flood of long strings cannot fill the cache with big keys.
func TestTCFCacheSkipsOversized(t *testing.T) {
	c := newTCFCache([]int{755})
	long := []byte(strings.Repeat("C", tcf.MaxLength+1))
	if _, valid := c.allowed(long, 0); valid {
		t.Error("an oversized string was valid")
	}
	if len(c.m) != 0 {
		t.Errorf("an oversized string was cached (%d entries)", len(c.m))
	}
}
