//go:build !race

// The race detector makes sync.Pool drop items at random: allocation counts are checked
// without it (`make test`'s first pass).

package proxy

import (
	"testing"
)

// TestReadAheadAllocatesNothing: the read-ahead of a request allocates nothing (a
// closure made per call would escape through the RawConn interface).
func TestReadAheadAllocatesNothing(t *testing.T) {
	client, _, pc := readAheadPair(t)
	one, rest, req := make([]byte, 1), make([]byte, 64), []byte("GET / HTTP/1.1\r\n\r\n")
	round := func() {
		client.Write(req)
		if n, err := pc.Read(one); n != 1 || err != nil {
			t.Fatalf("first byte: %d, %v", n, err)
		}
		for len(pc.pending) > 0 {
			pc.Read(rest)
		}
	}
	round()
	if got := testing.AllocsPerRun(200, round); got > 0 {
		t.Errorf("%.1f allocations per request read ahead, want 0", got)
	}
}
