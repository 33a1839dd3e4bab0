package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/consentgate/consentgate/telemetry"
)

// publicListener wraps the public listener's sockets for two things fasthttp does not do
// the way a tracking proxy needs:
//
//   - a cap on the connections one client address holds at once (max_conns_per_ip).
//     fasthttp's own MaxConnsPerIP counts IPv4 peers only and lets every IPv6 peer
//     through; here an IPv6 client is its /64 (the smallest block a host is given), and
//     peers in trusted_proxies are exempt, since a load balancer's connections carry
//     every visitor;
//   - telling a request line that is too long (414) from headers that are (431): fasthttp
//     reports both as ErrSmallBuffer and forgets the head, so each connection notes where
//     the last line feed it read was (publicConn.lineFed).
//
// With TLS (tls.go) it also makes each accepted connection a TLS one, after counting it.
type publicListener struct {
	net.Listener
	s   *Server
	max int // connections per client address; 0 = no cap
	// tls is the TLS configuration, nil for plain HTTP; writeTimeout bounds what a
	// handshake writes.
	tls          *tls.Config
	writeTimeout time.Duration

	mu    sync.Mutex
	perIP map[netip.Addr]int // open connections by client key (IPv4 address, IPv6 /64)

	// conns and peak count the listener's connections for reclaim; reclaiming is set
	// while a reclaim is scheduled.
	conns, peak atomic.Int64
	reclaiming  atomic.Bool
}

// After a connection storm the process holds on to what the storm cost: each connection
// had a worker goroutine and, while it read a head, a read buffer of max_header_size,
// and both go back to pools and the heap, not to the system. The runtime returns them
// only after two garbage collections (sync.Pool keeps its items through one) and its
// scavenger's pace, and an idle proxy may not collect for minutes:
// BenchmarkConnectionStorm measured 8,000 stalled heads at +104 MB RSS, none of it
// returned 25s after they closed. So when the open connections fall to a quarter of a
// peak at least stormConns above them, the memory is handed back once the workers have
// exited (fasthttp keeps an idle one for up to twice MaxIdleWorkerDuration, 10s).
const (
	stormConns   = 1024
	reclaimDelay = 21 * time.Second
)

func (l *publicListener) opened() {
	n := l.conns.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
}

func (l *publicListener) closed() {
	n := l.conns.Add(-1)
	p := l.peak.Load()
	if p-n < stormConns || n > p/4 || !l.reclaiming.CompareAndSwap(false, true) {
		return
	}
	l.peak.Store(n)
	time.AfterFunc(reclaimDelay, func() {
		defer l.reclaiming.Store(false)
		goruntime.GC() // the first moves pooled buffers to the pools' victim caches
		debug.FreeOSMemory()
		l.s.log.Info("returned memory after a connection storm", "peak_connections", p, "open_connections", l.conns.Load())
	})
}

func newPublicListener(ln net.Listener, s *Server, maxPerIP int, tlsConfig *tls.Config, writeTimeout time.Duration) *publicListener {
	return &publicListener{Listener: ln, s: s, max: maxPerIP, perIP: map[netip.Addr]int{}, tls: tlsConfig, writeTimeout: writeTimeout}
}

// tooManyConns is written to a connection over the cap before it is closed. Nothing of
// the request is read: its head could be anything.
var tooManyConns = []byte("HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 34\r\n\r\ntoo many connections from address\n")

func (l *publicListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, capped := l.key(c)
		if capped && !l.acquire(key) {
			l.s.metrics.Refused(telemetry.RefusedTooManyConnections)
			// Over TLS no answer can be read before a handshake, which is what a flood of
			// connections would make the proxy pay for: the connection is only closed.
			if l.tls == nil {
				// A fresh socket's send buffer is empty, so this write does not wait on
				// the client; the deadline only bounds the impossible case.
				c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				c.Write(tooManyConns)
			}
			c.Close()
			continue
		}
		l.s.metrics.PublicConnOpened()
		l.opened()
		pc := &publicConn{Conn: c, raw: c, l: l, key: key, capped: capped}
		if l.tls != nil {
			pc.wire = &wireConn{Conn: c}
			pc.tls = tls.Server(pc.wire, l.tls)
			pc.Conn = pc.tls
		} else if tc, ok := c.(*net.TCPConn); ok {
			// Read-ahead reads the socket itself: plain TCP only (TLS reads records).
			pc.sys, _ = tc.SyscallConn() // nil on error: plain reads, one syscall more per request
		}
		return pc, nil
	}
}

// key is the client key a connection counts against, and whether it counts at all: not
// without a cap, not from a trusted proxy, not from an address that is not IP.
func (l *publicListener) key(c net.Conn) (netip.Addr, bool) {
	if l.max <= 0 {
		return netip.Addr{}, false
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if l.s.rt.Load().Trusted.Contains(a) {
		return netip.Addr{}, false
	}
	if a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a, true
}

func (l *publicListener) acquire(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[key] >= l.max {
		return false
	}
	l.perIP[key]++
	return true
}

func (l *publicListener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Deleted at zero: the map holds only addresses with open connections, so its size is
	// bounded by the connections themselves.
	if n := l.perIP[key] - 1; n > 0 {
		l.perIP[key] = n
	} else {
		delete(l.perIP, key)
	}
}

// open reports how many connections a client key holds (tests).
func (l *publicListener) open(key netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perIP[key]
}

// publicConn is one public connection. Read is called only by the goroutine serving
// the connection, which is also the one that runs the error handler, so read and
// lastLF need no lock; Close may come from fasthttp's idle-connection sweep too.
type publicConn struct {
	net.Conn          // what requests are read from: raw, or tls over it
	raw      net.Conn // the TCP connection
	l        *publicListener
	key      netip.Addr
	capped   bool
	closed   atomic.Bool

	// With TLS: the TLS connection, the TCP one under it as it reads it, and whether the
	// handshake was done (tls.go).
	tls    *tls.Conn
	wire   *wireConn
	shaken bool

	read   int64 // bytes read so far
	lastLF int64 // offset just past the last line feed read, 0 = none yet
	// linger is set when a request is refused with part of it unread (a head or body over
	// its bound): Close then reads the rest away before closing, so the client sees the
	// answer instead of a reset.
	linger bool

	sys      syscall.RawConn // the socket, for readAhead
	readFn   func(fd uintptr) bool
	ahead    *[readAheadSize]byte
	pending  []byte // read ahead of fasthttp, not yet handed to it (in ahead)
	aheadN   int
	aheadErr error
}

// Lingering is bounded in bytes and time, as net/http bounds it: a client that keeps
// sending past either gets the reset.
const (
	lingerBytes = 1 << 20
	lingerTime  = 500 * time.Millisecond
)

func (c *publicConn) Read(p []byte) (int, error) {
	if c.tls != nil && !c.shaken {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	switch {
	case len(c.pending) > 0:
		n = copy(p, c.pending)
		if c.pending = c.pending[n:]; len(c.pending) == 0 {
			readAheadPool.Put(c.ahead)
			c.ahead, c.pending = nil, nil
		}
	case len(p) == 1 && c.sys != nil:
		n, err = c.readAhead(p)
	default:
		n, err = c.Conn.Read(p)
	}
	if n > 0 {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			c.lastLF = c.read + int64(i) + 1
		}
		c.read += int64(n)
	}
	return n, err
}

// readAheadSize holds a typical hit's head and body (GA4's are 1–3 KB with cookies);
// a larger one is read in two.
const readAheadSize = 16 << 10

var readAheadPool = sync.Pool{New: func() any { return new([readAheadSize]byte) }}

// readAhead answers fasthttp's one-byte read, the way it waits for a keep-alive
// connection's next request without holding a read buffer (ReduceMemoryUsage), with one
// read of the whole request into a pooled buffer: fasthttp's reader then takes the rest
// from it. A request costs one read syscall instead of two, and an idle connection still
// holds no buffer: the pool's buffer is taken only once the socket has bytes, and given
// back when it would wait (EAGAIN) or fasthttp has every byte.
func (c *publicConn) readAhead(p []byte) (int, error) {
	if c.readFn == nil {
		// Made once per connection: a closure made per call would escape to the heap
		// through the RawConn interface, three allocations per request.
		c.readFn = c.readAheadFD
	}
	c.aheadN, c.aheadErr = 0, nil
	err := c.sys.Read(c.readFn)
	n, rerr := c.aheadN, c.aheadErr
	switch {
	case err == nil && rerr == nil && n > 0:
		p[0] = c.ahead[0]
		if n > 1 {
			c.pending = c.ahead[1:n]
		} else {
			readAheadPool.Put(c.ahead)
			c.ahead = nil
		}
		return 1, nil
	case c.ahead != nil:
		readAheadPool.Put(c.ahead)
		c.ahead = nil
	}
	if err != nil { // a deadline passed, or the connection is closed
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	}
	return 0, io.EOF
}

// readAheadFD is readAhead's read on the socket, called by the runtime's poller: false
// means nothing to read yet (wait for the socket), with the buffer given back meanwhile.
func (c *publicConn) readAheadFD(fd uintptr) bool {
	if c.ahead == nil {
		c.ahead = readAheadPool.Get().(*[readAheadSize]byte)
	}
	for {
		c.aheadN, c.aheadErr = syscall.Read(int(fd), c.ahead[:])
		if c.aheadErr != syscall.EINTR {
			break
		}
	}
	if c.aheadErr == syscall.EAGAIN {
		readAheadPool.Put(c.ahead)
		c.ahead = nil
		return false
	}
	return true
}

// lineFed reports whether the last n bytes read hold a line feed. When fasthttp gives
// up on a head, its read buffer of n bytes holds exactly the last n bytes read (they are
// the start of the head it could not finish): without a line feed among them, the
// request line itself did not fit.
func (c *publicConn) lineFed(n int) bool { return c.lastLF > c.read-int64(n) }

// Close closes the connection once. Closing a socket with unread bytes makes the kernel
// send a reset, which can reach the client before the answer it was sent and discard
// it; a refused request's remaining bytes are read away first (linger).
func (c *publicConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.Conn.Close()
	}
	c.l.s.metrics.PublicConnClosed()
	c.l.closed()
	if c.capped {
		c.l.release(c.key)
	}
	if c.linger && c.tls != nil {
		c.tls.CloseWrite() // close_notify, if the handshake completed: the answer is whole
	}
	if tc, ok := c.raw.(*net.TCPConn); ok && c.linger {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, tc, lingerBytes)
	}
	return c.Conn.Close()
}
