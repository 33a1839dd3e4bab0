package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc/PID/stat times; it is 100 on every Linux ABI.
const userHZ = 100

// procStat is what one /proc/PID/stat line says of a process's CPU: times in
// clock ticks (userHZ per second).
type procStat struct {
	pid, pgrp                    int
	state                        byte // R, S, D, Z (zombie), ...
	utime, stime, cutime, cstime uint64
}

// parseProcStat reads a /proc/PID/stat line. The command name is in parentheses
// and may itself contain spaces and parentheses, so the fields are counted from
// its last ')'.
func parseProcStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return procStat{}, fmt.Errorf("malformed /proc stat: no (comm)")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: pid: %w", err)
	}
	// After the name: state(3) ppid(4) pgrp(5) session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15) cutime(16) cstime(17).
	f := bytes.Fields(b[closing+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("malformed /proc stat: %d fields after the name, want at least 15", len(f))
	}
	s := procStat{pid: pid, state: f[0][0]}
	if s.pgrp, err = strconv.Atoi(string(f[2])); err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: pgrp: %w", err)
	}
	for i, dst := range []*uint64{&s.utime, &s.stime, &s.cutime, &s.cstime} {
		if *dst, err = strconv.ParseUint(string(f[11+i]), 10, 64); err != nil {
			return procStat{}, fmt.Errorf("malformed /proc stat: field %d: %w", 14+i, err)
		}
	}
	return s, nil
}

// statusKB reads a "Key:   123 kB" line of /proc/PID/status, in bytes.
func statusKB(b []byte, key string) (uint64, bool) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			return 0, false
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}

// groupUsage is the CPU and memory of every process of one proxy (nginx: master and
// workers), found by the process group it was started in.
type groupUsage struct {
	// CPU is user+system time of the live members plus what they collected from
	// children they reaped, so a worker that exited mid-run is still counted.
	CPU   time.Duration
	Procs int
	RSS   uint64 // VmRSS summed
	HWM   uint64 // VmHWM summed: each process's peak, an upper bound of the group's peak
}

// readGroup sums /proc over the processes whose process group is pgid. It reads all
// of /proc, so it belongs between measured phases, not inside them.
func readGroup(pgid int) (groupUsage, error) {
	return readGroupIn("/proc", pgid)
}

func readGroupIn(procDir string, pgid int) (groupUsage, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return groupUsage{}, fmt.Errorf("read %s: %w", procDir, err)
	}
	var g groupUsage
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // exited since the listing
		}
		s, err := parseProcStat(b)
		// A zombie has ended: it holds no memory, and its parent collects its CPU
		// time when it reaps it (if the parent is ours; an orphan's goes to init).
		if err != nil || s.pgrp != pgid || s.state == 'Z' || s.state == 'X' {
			continue
		}
		g.Procs++
		g.CPU += ticks(s.utime + s.stime + s.cutime + s.cstime)
		if st, err := os.ReadFile(filepath.Join(procDir, e.Name(), "status")); err == nil {
			rss, _ := statusKB(st, "VmRSS")
			hwm, _ := statusKB(st, "VmHWM")
			g.RSS += rss
			g.HWM += hwm
		}
	}
	if g.Procs == 0 {
		return g, fmt.Errorf("no process in group %d", pgid)
	}
	return g, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// cpuTimes is one CPU's line of /proc/stat, in ticks.
type cpuTimes struct {
	Busy    uint64 // user + nice + system: time spent running processes
	SoftIRQ uint64 // irq + softirq: loopback packet processing lands here, charged to no process
	Total   uint64
}

// parseCPUTimes reads the per-CPU lines ("cpu0 ...") of /proc/stat.
func parseCPUTimes(b []byte) (map[int]cpuTimes, error) {
	out := map[int]cpuTimes{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var v [10]uint64
		for i := 1; i < len(f) && i <= len(v); i++ {
			if v[i-1], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				return nil, fmt.Errorf("/proc/stat %s: %w", f[0], err)
			}
		}
		// user nice system idle iowait irq softirq steal guest guest_nice; guest time
		// is already inside user, so it is not added to the total again.
		t := cpuTimes{Busy: v[0] + v[1] + v[2], SoftIRQ: v[5] + v[6]}
		t.Total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
		out[n] = t
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no per-CPU lines")
	}
	return out, nil
}

func readCPUTimes() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseCPUTimes(b)
}

// loadAvg is the 1, 5 and 15 minute load averages, as uptime prints them.
func loadAvg() (string, float64) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown", 0
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown", 0
	}
	one, _ := strconv.ParseFloat(f[0], 64)
	return strings.Join(f[:3], " "), one
}

// cpusAllowed is this process's CPU affinity list as the kernel prints it ("0", "0-1").
func cpusAllowed() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// coreShare is how busy the proxy's CPUs were with anything but the proxy (other
// processes: the machine's noise), and with interrupts (loopback packet processing
// is charged to no process), as shares of the CPUs' time over the window.
func coreShare(before, after map[int]cpuTimes, cpuList string, proxyCPU time.Duration) (other, softirq float64) {
	cpus := parseCPUList(cpuList)
	var busy, irq, total uint64
	for _, c := range cpus {
		a, b := after[c], before[c]
		busy += a.Busy - b.Busy
		irq += a.SoftIRQ - b.SoftIRQ
		total += a.Total - b.Total
	}
	if total == 0 {
		return 0, 0
	}
	o := float64(busy)/float64(total) - proxyCPU.Seconds()*userHZ/float64(total)
	return max(o, 0), float64(irq) / float64(total)
}

// parseCPUList reads a taskset CPU list: "1", "0,2", "0-3".
func parseCPUList(s string) []int {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		var a, b int
		if _, err := fmt.Sscanf(lo, "%d", &a); err != nil {
			continue
		}
		b = a
		if isRange {
			if _, err := fmt.Sscanf(hi, "%d", &b); err != nil {
				continue
			}
		}
		for c := a; c <= b && c-a < 1024; c++ {
			out = append(out, c)
		}
	}
	return out
}
