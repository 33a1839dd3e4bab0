package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// childProcAttr makes the kernel SIGTERM the proxy if the generator dies first, so
// an interrupted benchmark never leaves a proxy holding its ports.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// groupProcAttr also puts the child in a process group of its own, so that a peer
// that forks (nginx's workers) is measured and stopped as one group.
func groupProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}

// procCPU is the user+system CPU time a process has used so far. The ratio of CPU
// time to wall time tells how much of the two cores the proxy took.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read proxy CPU: %w", err)
	}
	s, err := parseProcStat(b)
	if err != nil {
		return 0, fmt.Errorf("read proxy CPU: %w", err)
	}
	return ticks(s.utime + s.stime), nil
}

// procRSS is the resident set size of a process in bytes.
func procRSS(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read proxy RSS: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseUint(string(f[0]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read proxy RSS: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("read proxy RSS: no VmRSS")
}

// selfCPU is the generator's own CPU time, sink included: the share of the machine
// the measurement itself took away from the proxy.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
