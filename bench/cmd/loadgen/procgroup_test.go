package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       procStat
		bad        bool
	}{
		{name: "plain", line: "4242 (nginx) S 1 4240 4240 0 -1 4194560 100 0 0 0 150 70 3 4 20 0 1 0 100 1000 200 18446744073709551615",
			want: procStat{pid: 4242, state: 'S', pgrp: 4240, utime: 150, stime: 70, cutime: 3, cstime: 4}},
		// A process may name itself anything, spaces and parentheses included; the
		// fields are counted from the last ')'.
		{name: "odd comm", line: "17 (a) b (c) S 1 17 17 0 -1 0 0 0 0 0 9 8 7 6 20 0 1 0 1 1 1",
			want: procStat{pid: 17, state: 'S', pgrp: 17, utime: 9, stime: 8, cutime: 7, cstime: 6}},
		{name: "short", line: "17 (x) S 1 17 17 0", bad: true},
		{name: "no comm", line: "17 x S 1 17", bad: true},
		{name: "bad number", line: "17 (x) S 1 17 17 0 -1 0 0 0 0 0 nine 8 7 6 20", bad: true},
		{name: "empty", line: "", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.line))
			if tc.bad {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (nginx) S 1 4240 4240 0 -1 4194560 100 0 0 0 150 70 3 4 20 0"))
	f.Add([]byte("1 ()) S 1 1 1 0 -1 0 0 0 0 0 1 1 1 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseProcStat(b) // never a panic
	})
}

// writeFakeProc lays out a /proc with the given stat lines and memory figures.
func writeFakeProc(t *testing.T, procs map[int][2]string) string {
	t.Helper()
	dir := t.TempDir()
	for pid, files := range procs {
		d := filepath.Join(dir, fmt.Sprint(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(files[0]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "status"), []byte(files[1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Entries that are not processes are ignored.
	if err := os.MkdirAll(filepath.Join(dir, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadGroupSumsEveryProcessOfTheGroup(t *testing.T) {
	status := func(rss, hwm int) string {
		return fmt.Sprintf("Name:\tx\nVmHWM:\t  %d kB\nVmRSS:\t  %d kB\nThreads:\t1\n", hwm, rss)
	}
	proc := writeFakeProc(t, map[int][2]string{
		// nginx master (group leader, reaped an old worker: cutime/cstime) and worker
		100: {"100 (nginx) S 1 100 100 0 -1 0 0 0 0 0 10 5 30 20 20 0 1 0 1 1 1", status(4000, 5000)},
		101: {"101 (nginx) S 100 100 100 0 -1 0 0 0 0 0 200 100 0 0 20 0 1 0 1 1 1", status(8000, 9000)},
		// another group
		200: {"200 (other) S 1 200 200 0 -1 0 0 0 0 0 9999 9999 0 0 20 0 1 0 1 1 1", status(1, 1)},
	})
	zombie := writeFakeProc(t, map[int][2]string{102: {"102 (nginx) Z 100 100 100 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 1 1 1", ""}})
	if err := os.Rename(filepath.Join(zombie, "102"), filepath.Join(proc, "102")); err != nil {
		t.Fatal(err)
	}
	g, err := readGroupIn(proc, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := ticks(10 + 5 + 30 + 20 + 200 + 100); g.CPU != want {
		t.Errorf("CPU = %v, want %v (live members plus reaped children, no zombie)", g.CPU, want)
	}
	if g.Procs != 2 || g.RSS != 12000*1024 || g.HWM != 14000*1024 {
		t.Errorf("procs %d RSS %d HWM %d, want 2, %d, %d", g.Procs, g.RSS, g.HWM, 12000*1024, 14000*1024)
	}
	if _, err := readGroupIn(proc, 300); err == nil {
		t.Error("an empty group: want an error")
	}
}

func TestParseCPUTimes(t *testing.T) {
	text := "cpu  100 0 50 1000 5 1 2 0 0 0\ncpu0 60 0 30 500 3 1 1 0 7 0\ncpu1 40 0 20 500 2 0 1 0 0 0\nintr 12345\nctxt 999\n"
	got, err := parseCPUTimes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d CPUs, want 2 (the aggregate line is not a CPU)", len(got))
	}
	if c := got[0]; c.Busy != 90 || c.SoftIRQ != 2 || c.Total != 595 {
		t.Errorf("cpu0 = %+v, want busy 90, softirq 2, total 595 (guest is inside user)", c)
	}
	if _, err := parseCPUTimes([]byte("intr 1\n")); err == nil {
		t.Error("no CPU lines: want an error")
	}
}

func TestCoreShareSubtractsTheProxy(t *testing.T) {
	before := map[int]cpuTimes{1: {Busy: 1000, SoftIRQ: 10, Total: 2000}}
	after := map[int]cpuTimes{1: {Busy: 1080, SoftIRQ: 15, Total: 2100}} // 100 ticks, 80 busy
	other, irq := coreShare(before, after, "1", ticks(60))
	if math.Abs(other-0.2) > 1e-9 || math.Abs(irq-0.05) > 1e-9 {
		t.Errorf("other %v irq %v, want 0.2 and 0.05", other, irq)
	}
	// A proxy charged more than the core was busy (tick rounding): never negative.
	if other, _ := coreShare(before, after, "1", ticks(95)); other != 0 {
		t.Errorf("other = %v, want 0", other)
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]string{"1": "[1]", "0,2": "[0 2]", "0-3": "[0 1 2 3]", "1,x,3-2": "[1]", "": "[]"} {
		if got := fmt.Sprint(parseCPUList(in)); got != want {
			t.Errorf("parseCPUList(%q) = %s, want %s", in, got, want)
		}
	}
}
