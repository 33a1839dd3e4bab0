package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	startTimeout   = 10 * time.Second
	clusterTimeout = 20 * time.Second
	// failoverTimeout bounds a failover: detection, an election (which Sentinels may have
	// to repeat after a split vote, 2 × failover-timeout later), the promotion and the
	// news of it reaching every node.
	failoverTimeout = 30 * time.Second
	// clusterBusOffset is fixed by Redis: a cluster node also listens on port+10000.
	clusterBusOffset = 10000
)

// Server is one redis-server process.
type Server struct {
	Addr string // 127.0.0.1:port

	bin  string
	dir  string
	conf string // a configuration file, given first; "" for none
	port int
	args []string // everything but the file and --port

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start runs a redis-server without persistence on a free 127.0.0.1 port and stops it
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "", nil, false)
}

// start picks ports and starts a server, retrying on another port if one was taken
// between being found free and being bound. conf, if set, is a configuration file the
// server reads first (a Sentinel's, which it rewrites).
func start(t testing.TB, conf string, extra []string, cluster bool) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	dir := t.TempDir()
	s := &Server{
		bin:  bin,
		dir:  dir,
		conf: conf,
		args: append([]string{
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
			"--daemonize", "no",
		}, extra...),
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(cluster); err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if err = s.run(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: starting redis-server: %v", err)
	return nil
}

// Stop kills the server, as an outage would. It is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// running reports whether the server was started and not stopped since.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// signal sends the process freeze or thaw.
func (s *Server) signal(t testing.TB, send func(*os.Process) error) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("redistest: %s is not running", s.Addr)
	}
	if err := send(s.cmd.Process); err != nil {
		t.Fatalf("redistest: signalling %s: %v", s.Addr, err)
	}
}

// Restart starts the server again on the same port, with the same configuration (and,
// since nothing is persisted, no data).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	// Stop waited for the process to exit, so its listener is closed and the port is free,
	// unless another process's free-port probe grabbed it meanwhile: nothing announces
	// when that probe lets go, hence the retries.
	if err := poll(startTimeout, 50*time.Millisecond, nil, s.run); err != nil {
		t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
	}
}

// run starts the process and waits until it answers PING.
func (s *Server) run() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf) // redis-server reads a file only as its first argument
	}
	args = append(append(args, "--port", strconv.Itoa(s.port)), s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	setProcAttr(cmd)
	var out strings.Builder // the log file takes the rest; this catches argument errors
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	// redis-server announces readiness only to systemd (sd_notify, and only when built
	// with it), so PING it until it answers; its exit at start (a taken port) ends the
	// wait at once.
	err := poll(startTimeout, 5*time.Millisecond, exited, func() error {
		reply, err := Do(s.Addr, "PING")
		if err == nil && reply != "PONG" {
			err = fmt.Errorf("PING answered %q", reply)
		}
		return err
	})
	switch {
	case errors.Is(err, errStopped):
		return fmt.Errorf("redis-server on port %d exited at start: %s%s", s.port, out.String(), s.logTail())
	case err != nil:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on port %d did not answer PING within %v (%v)%s", s.port, startTimeout, err, s.logTail())
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// errStopped is poll's answer when its stop channel closed first.
var errStopped = errors.New("stopped")

// poll calls try until it returns nil, every interval, and returns nil; or try's last
// error once timeout has passed; or errStopped as soon as stop is closed (nil: never).
// It serves only the waits for which Redis offers no event to wait on: a server starting
// to listen, a port another process lets go, a cluster's gossip converging.
func poll(timeout, interval time.Duration, stop <-chan struct{}, try func() error) error {
	expired := time.NewTimer(timeout)
	defer expired.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return errStopped
		default:
		}
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-stop:
			return errStopped
		case <-expired.C:
			return err
		case <-tick.C:
		}
	}
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nredis.log (end):\n" + string(b)
}

// Cluster is a Redis Cluster: masters, and with StartReplicatedCluster a replica each.
type Cluster struct {
	Addrs   []string // every node's, replicas' included
	Servers []*Server
	// masterOf maps each replica to its master; empty without replicas.
	masterOf map[*Server]*Server
}

// StartCluster runs masters (at least 3, as redis-cli requires) cluster-enabled servers,
// joins them with redis-cli --cluster create, and waits until every node reports
// cluster_state:ok. The servers are stopped when the test ends.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	return startCluster(t, masters, 0, 5*time.Second)
}

// startCluster starts masters × (1 + replicas) nodes and lets redis-cli make replicas
// of the last ones.
func startCluster(t testing.TB, masters, replicas int, nodeTimeout time.Duration) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: StartCluster(%d): a Redis Cluster needs at least 3 masters", masters)
	}
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	for range masters * (1 + replicas) {
		s := start(t, "", append([]string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
		}, noSyncDelay...), true)
		c.Servers = append(c.Servers, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	// Nodes reach cluster_state:ok through gossip, which no command waits for or reports.
	deadline := time.Now().Add(clusterTimeout)
	for _, s := range c.Servers {
		if err := poll(time.Until(deadline), 20*time.Millisecond, nil, func() error { return clusterStateOK(s.Addr) }); err != nil {
			t.Fatalf("redistest: node %s not cluster_state:ok within %v: %v", s.Addr, clusterTimeout, err)
		}
	}
	return c
}

// clusterStateOK is nil when the node at addr reports cluster_state:ok.
func clusterStateOK(addr string) error {
	info, err := Do(addr, "CLUSTER", "INFO")
	if err == nil && !strings.Contains(info, "cluster_state:ok") {
		err = fmt.Errorf("cluster_state is not ok:\n%s", info)
	}
	return err
}

// lookPath finds a Redis binary or fails the test saying what to install.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %s not found on PATH (%v). These tests need a real Redis 7: "+
			"install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis). "+
			"They never skip.", name, err)
	}
	return p
}

// freePort returns a loopback port nothing listens on. For a cluster node the bus port
// (port+10000) must be free too.
func freePort(cluster bool) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !cluster {
			_ = l.Close()
			return port, nil
		}
		if port+clusterBusOffset > 65535 {
			_ = l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+clusterBusOffset)))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// Monitor streams the commands the server at addr runs (Redis MONITOR), one line each
// without the leading '+', such as
//
//	1700000000.123456 [0 127.0.0.1:50000] "ping"
//
// from the moment it returns until the test ends. A test can so wait for a command a
// client sends (a health-check PING, say) instead of guessing how long it takes.
// Nothing is dropped: a test that stops reading holds the stream back.
func Monitor(t testing.TB, addr string) <-chan string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("redistest: MONITOR %s: %v", addr, err)
	}
	rd := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err = io.WriteString(conn, "*1\r\n$7\r\nMONITOR\r\n"); err == nil {
		var line string
		if line, err = rd.ReadString('\n'); err == nil && line != "+OK\r\n" {
			err = fmt.Errorf("reply %q", line)
		}
	}
	if err != nil {
		_ = conn.Close()
		t.Fatalf("redistest: MONITOR %s: %v", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	lines := make(chan string)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case lines <- strings.TrimSuffix(strings.TrimPrefix(line, "+"), "\r\n"):
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		_ = conn.Close()
		<-stopped
	})
	return lines
}

// Do sends one command to addr on a fresh connection and returns the reply: a simple or
// bulk string, an integer in decimal, or an array's elements so read, one a line (nested
// arrays flattened); a Redis error reply is returned as an error.
// It is deliberately tiny, so the harness does not depend on the client under test.
func Do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply as Do returns it.
func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("nil or bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("nil or bad array reply %q", line)
		}
		elems := make([]string, n)
		for i := range elems {
			if elems[i], err = readReply(rd); err != nil {
				return "", err
			}
		}
		return strings.Join(elems, "\n"), nil
	}
	return "", fmt.Errorf("unsupported reply %q", line)
}
