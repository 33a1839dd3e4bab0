package proxy

import (
	"bufio"
	"bytes"
	"net"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"
)

// BenchmarkConnectionStorm measures what a storm of connections costs in resident
// memory and how much of it the process gives back once they are gone. Each iteration
// opens CONSENTGATE_STORM_CONNS connections (default 8000: client and server ends share
// this process's descriptors, so 10,000 needs `ulimit -n` above 20,000) to the public
// listener, from one address as a load balancer would (trusted, so uncapped):
//
//   - slowloris: each sends the start of a head and stalls (read_timeout is raised to
//     30s here, so the storm holds while it is measured; by default they are cut off
//     with 408 after 5s);
//   - idle: each sends one hit, reads the answer and stays open (keep-alive).
//
// Reported, in MB of RSS: before the storm, at its peak, once every connection is
// closed and the listener has let go of it ("closed"), 25s later with nothing forced
// from outside ("settled": what the process gives back on its own), and after
// debug.FreeOSMemory ("freed": the floor). Run with -benchtime=1x; the figures are the point, not
// ns/op.
func BenchmarkConnectionStorm(b *testing.B) {
	n := 8000
	if v := os.Getenv("CONSENTGATE_STORM_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	for _, kind := range []string{"slowloris", "idle"} {
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			up := benchSink()
			p := startProxy(&testing.T{}, testConfig(up.URL(), "read_timeout: 30s\nidle_timeout: 5m\n"))
			for range b.N {
				storm(b, p, kind, n)
			}
		})
	}
}

func storm(b *testing.B, p *testProxy, kind string, n int) {
	b.Helper()
	settle()
	before := rssMB()
	conns := make([]net.Conn, 0, n)
	head := []byte("GET /g/collect?v=2&tid=G-1&cid=1.2 HTTP/1.1\r\nHost: t.example.com\r\nX-Forwarded-For: " + ipUSCA + "\r\nUser-Agent: storm\r\n")
	buf := make([]byte, 4096)
	for range n {
		c, err := net.Dial("tcp", p.PublicAddr())
		if err != nil {
			b.Fatalf("dial after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		switch kind {
		case "slowloris":
			c.Write(head)
		case "idle":
			c.Write(append(head, "\r\n"...))
			br := bufio.NewReader(c)
			if _, err := br.Read(buf); err != nil {
				b.Fatalf("idle connection %d: no answer: %v", len(conns), err)
			}
		}
	}
	// The slowloris heads are read by the server's workers asynchronously: wait until
	// every connection is accepted, then give the reads a moment.
	waitGauge(b, p, int64(n))
	time.Sleep(time.Second)
	peak := rssMB()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitGauge(b, p, 0)
	closed := rssMB()
	// What the process gives back on its own, with no GC forced from outside: fasthttp
	// keeps an idle worker goroutine (and its stack) for up to twice
	// MaxIdleWorkerDuration (10s) after its connection ends.
	time.Sleep(25 * time.Second)
	settled := rssMB()
	debug.FreeOSMemory()
	freed := rssMB()
	b.ReportMetric(before, "MB-before")
	b.ReportMetric(peak, "MB-peak")
	b.ReportMetric(closed, "MB-closed")
	b.ReportMetric(settled, "MB-settled")
	b.ReportMetric(freed, "MB-freed")
	b.ReportMetric((peak-before)*1024/float64(n), "KB-per-conn")
}

func waitGauge(b *testing.B, p *testProxy, want int64) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for p.metrics.OpenPublicConns() != want {
		if time.Now().After(deadline) {
			b.Fatalf("open public connections: %d, want %d", p.metrics.OpenPublicConns(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func settle() {
	goruntime.GC()
	debug.FreeOSMemory()
}

// rssMB is this process's resident set size in MB, from /proc/self/status.
// rssMB is this process's resident set size in MB, from /proc/self/status.
func memDebug(stage string) {
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	println(stage, "goroutines", goruntime.NumGoroutine(), "heapInuse", m.HeapInuse>>20, "heapIdle", m.HeapIdle>>20, "released", m.HeapReleased>>20, "stackInuse", m.StackInuse>>20, "sys", m.Sys>>20, "rss", int(rssMB()))
}

func rssMB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, _ := strconv.Atoi(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))))
			return float64(kb) / 1024
		}
	}
	return -1
}
