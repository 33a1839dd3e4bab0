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

// userHZ is the unit of /proc/PID/stat times; it is 100 on every Linux ABI.
const userHZ = 100

// procCPU is the user+system CPU time a process has used so far. The ratio of CPU
// time to wall time tells how much of the two cores the proxy took.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read proxy CPU: %w", err)
	}
	// The command name may contain spaces; the fields after its ')' are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("read proxy CPU: malformed /proc stat")
	}
	f := bytes.Fields(b[i+1:])
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
	if len(f) < 13 {
		return 0, fmt.Errorf("read proxy CPU: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read proxy CPU: bad utime/stime")
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
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
