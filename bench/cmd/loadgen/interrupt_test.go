package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as loadgen itself, so that a test can run the
// harness as a separate process and interrupt it.
func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_TEST_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	if consentgateBuild.dir != "" {
		os.RemoveAll(consentgateBuild.dir)
	}
	os.Exit(code)
}

// TestInterruptedCompareLeavesNothing interrupts a running `loadgen compare` (Ctrl-C,
// an orchestrator's SIGTERM, and SIGKILL, which leaves no chance to clean up) and
// checks that no peer, worker or Redis it started is still running.
func TestInterruptedCompareLeavesNothing(t *testing.T) {
	if _, err := ensurePeers([]string{"nginx", "haproxy"}, true, t.Logf); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "compare", "-peers", "nginx,haproxy", "-mixes", "realistic",
				"-rounds", "50", "-duration", "2s", "-warmup", "0s", "-connections", "2",
				"-out", filepath.Join(t.TempDir(), "c"))
			cmd.Env = append(os.Environ(), "LOADGEN_TEST_MAIN=1")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			// Every process it starts says its pid; by the first round all are running.
			var groups, pids []int
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				var name string
				var pid int
				if _, err := fmt.Sscanf(line, "started %s pid %d", &name, &pid); err == nil {
					groups = append(groups, pid)
				}
				if _, err := fmt.Sscanf(line, "redis-server: pid %d", &pid); err == nil {
					pids = append(pids, pid)
				}
				if strings.HasPrefix(line, "round 1/") {
					break
				}
			}
			// Whatever the outcome, nothing of this test outlives it.
			t.Cleanup(func() {
				for _, g := range groups {
					_ = syscall.Kill(-g, syscall.SIGKILL)
				}
				for _, p := range pids {
					if leftovers(nil, []int{p}) != "" {
						_ = syscall.Kill(p, syscall.SIGKILL)
					}
				}
			})
			if len(groups) != 2 || len(pids) != 1 {
				t.Fatalf("the harness never got to a round with two peers and Redis (groups %v, redis %v); stderr:\n%s", groups, pids, stderr.String())
			}
			if g, err := readGroup(groups[0]); err != nil || g.Procs != 2 {
				t.Fatalf("nginx's group: %+v %v, want master and worker", g, err)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the harness did not exit within 30s of %s", sig)
			}
			// After SIGKILL the kernel's parent-death signal and the peers' own
			// shutdown do the cleanup: allow them a moment.
			deadline := time.Now().Add(10 * time.Second)
			for {
				left := leftovers(groups, pids)
				if left == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after %s, still running: %s", sig, left)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// leftovers names the live processes of the groups, and the pids still alive.
func leftovers(groups, pids []int) string {
	var left []string
	for _, g := range groups {
		if u, err := readGroup(g); err == nil {
			left = append(left, fmt.Sprintf("%d processes of group %d", u.Procs, g))
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		if s, err := parseProcStat(b); err == nil && s.state != 'Z' && bytes.Contains(b, []byte("(redis-server)")) {
			left = append(left, fmt.Sprintf("redis-server %d", p))
		}
	}
	return strings.Join(left, ", ")
}
