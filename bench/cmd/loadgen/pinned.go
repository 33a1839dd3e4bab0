package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// startPinned starts argv on the given CPUs (taskset -c) in a process group of its
// own, with env added to ours. taskset execs the program, so the pid is the
// program's, and the group is everything it forks.
func startPinned(argv, env []string, cpus, logPath string) (*proxyProc, error) {
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return nil, fmt.Errorf("pinning the proxies needs taskset (util-linux): %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	cmd := exec.Command(ts, append([]string{"-c", cpus}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = groupProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proxyProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// killGroup stops whatever is left of the process group: SIGTERM first, then
// SIGKILL to anything still there after grace. It is the last word on every exit
// path, so no peer is ever left running.
func (p *proxyProc) killGroup(grace time.Duration) {
	pgid := p.Pid()
	if _, err := readGroup(pgid); err != nil {
		return // nothing left
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if _, err := readGroup(pgid); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !p.Exited() {
		<-p.exited
	}
}

// waitHTTP waits until something answers HTTP at addr (any status: the peers answer
// 404 to "/"), the process dies, or timeout.
func (p *proxyProc) waitHTTP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("exited before it answered (%v); its output:\n%s", p.waitErr, p.logTail(40))
		}
		if _, _, err := fasthttp.GetTimeout(nil, "http://"+addr+"/", 500*time.Millisecond); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no HTTP answer at %s after %s; its output:\n%s", addr, timeout, p.logTail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pinSelf re-executes the generator under taskset when it is not already on cpus,
// so that every thread of it (and the sink inside it) stays off the proxy's core.
// The Go runtime sizes GOMAXPROCS from the affinity, so it follows.
func pinSelf(cpus string) error {
	want := parseCPUList(cpus)
	if len(want) == 0 {
		return fmt.Errorf("CPU list %q: want e.g. 0, 0-1 or 0,2", cpus)
	}
	if slices.Equal(parseCPUList(cpusAllowed()), want) {
		return nil
	}
	const marker = "CONSENTGATE_LOADGEN_PINNED"
	if os.Getenv(marker) != "" {
		return fmt.Errorf("still on CPUs %q after taskset -c %s", cpusAllowed(), cpus)
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("pinning the generator needs taskset (util-linux): %w", err)
	}
	// The path itself: /proc/self/exe would name taskset once taskset runs it.
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	argv := append([]string{ts, "-c", cpus, self}, os.Args[1:]...)
	return syscall.Exec(ts, argv, append(os.Environ(), marker+"=1"))
}

// redisCommandStats reads INFO commandstats: calls per command since the server
// started.
func redisCommandStats(addr string) (map[string]uint64, error) {
	body, err := redisInfo(addr, "commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandStats(body)
}

// redisInfo reads one INFO section. It speaks RESP itself: one inline command and one
// bulk reply.
func redisInfo(addr, section string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "INFO "+section+"\r\n"); err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	return readInfo(bufio.NewReader(c))
}

func readCommandStats(r *bufio.Reader) (map[string]uint64, error) {
	body, err := readInfo(r)
	if err != nil {
		return nil, err
	}
	return parseCommandStats(body)
}

func readInfo(r *bufio.Reader) (string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") {
		return "", fmt.Errorf("redis INFO: unexpected reply %.80q", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 || n > 1<<20 {
		return "", fmt.Errorf("redis INFO: bad length %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", fmt.Errorf("redis INFO: %w", err)
	}
	return string(body), nil
}

// parseCommandStats reads lines like "cmdstat_get:calls=12,usec=30,...".
func parseCommandStats(text string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("commandstats line %q: no ':'", line)
		}
		found := false
		for _, kv := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("commandstats line %q: %w", line, err)
				}
				out[name] = n
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("commandstats line %q: no calls=", line)
		}
	}
	return out, nil
}

// redisCallsBetween is the number of commands the proxy sent between two readings;
// the INFO commands of the readings themselves are left out.
func redisCallsBetween(before, after map[string]uint64) (uint64, map[string]uint64) {
	by := map[string]uint64{}
	var total uint64
	for k, v := range after {
		if k == "info" {
			continue
		}
		if d := v - before[k]; v > before[k] && d > 0 {
			by[k] = d
			total += d
		}
	}
	return total, by
}

var errNoRedis = errors.New("no redis")
