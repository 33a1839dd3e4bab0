package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// profileMain is `loadgen profile` (make profile): one consentgate-only round of the
// compare harness, with the proxy built with -tags profile so that it writes a CPU
// and an allocation profile of the measured window, then the top entries of each.
func profileMain(args []string, w io.Writer) int {
	var o compareOptions
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	o.register(fs)
	top := fs.Int("top", 30, "entries of `go tool pprof -top` to print")
	// Other defaults than compare's: one long round of consentgate alone.
	_ = fs.Set("binary", "bin/consentgate-profile")
	_ = fs.Set("peers", "consentgate")
	_ = fs.Set("mixes", "realistic")
	_ = fs.Set("rounds", "1")
	_ = fs.Set("duration", "20s")
	_ = fs.Set("warmup", "3s")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(o.peers) != 1 || o.peers[0] != "consentgate" || len(o.mixes) != 1 || o.rounds != 1 {
		fmt.Fprintln(os.Stderr, "loadgen profile: profiles one round of one mix of consentgate alone (-peers consentgate -rounds 1, one -mixes)")
		return 2
	}
	if o.out == "" {
		o.out = filepath.Join("bench", "out", "profile-"+time.Now().UTC().Format("2006-01-02T150405Z"))
	}
	dir, err := filepath.Abs(o.out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen profile:", err)
		return 1
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen profile:", err)
		return 1
	}
	if err := requireProfileBuild(o.binary); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen profile:", err)
		return 1
	}
	o.profileDir = dir
	o.out = filepath.Join(dir, "run")
	o.command = "loadgen profile " + strings.Join(args, " ")
	if code := runCompareMain(&o, w); code != 0 {
		return code
	}
	bin, err := filepath.Abs(o.binary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen profile:", err)
		return 1
	}
	// The profiler's own allocations (writing the CPU profile) are in the window too;
	// -ignore leaves them out.
	reports := []struct {
		file, title string
		args        []string
	}{
		{"cpu-top.txt", "CPU, measured window", []string{"-top", fmt.Sprintf("-nodecount=%d", *top), bin, filepath.Join(dir, "cpu.pprof")}},
		{"alloc-space-top.txt", "allocated bytes, measured window", []string{"-top", fmt.Sprintf("-nodecount=%d", *top), "-sample_index=alloc_space",
			"-ignore=runtime/pprof", "-base", filepath.Join(dir, "allocs-start.pprof"), bin, filepath.Join(dir, "allocs.pprof")}},
		{"alloc-objects-top.txt", "allocated objects, measured window", []string{"-top", fmt.Sprintf("-nodecount=%d", *top), "-sample_index=alloc_objects",
			"-ignore=runtime/pprof", "-base", filepath.Join(dir, "allocs-start.pprof"), bin, filepath.Join(dir, "allocs.pprof")}},
	}
	for _, r := range reports {
		out, err := exec.Command(goTool(), append([]string{"tool", "pprof"}, r.args...)...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen profile: go tool pprof %s: %v\n%s", strings.Join(r.args, " "), err, out)
			return 1
		}
		if err := os.WriteFile(filepath.Join(dir, r.file), out, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen profile:", err)
			return 1
		}
		fmt.Fprintf(w, "\n== %s (%s)\n%s", r.title, filepath.Join(dir, r.file), out)
	}
	fmt.Fprintf(w, "\nprofiles in %s; browse with: go tool pprof -http 127.0.0.1:8080 %s %s\n", dir, bin, filepath.Join(dir, "cpu.pprof"))
	return 0
}

// requireProfileBuild checks that the binary was built with -tags profile: any other
// build would take the SIGUSR1 that starts the profile as a signal to exit.
func requireProfileBuild(bin string) error {
	out, err := exec.Command(goTool(), "version", "-m", bin).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go version -m %s: %v: %s", bin, err, strings.TrimSpace(string(out)))
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "-tags=") {
			for _, t := range strings.Split(strings.TrimPrefix(f[1], "-tags="), ",") {
				if t == "profile" {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%s is not a build with -tags profile (make profile builds bin/consentgate-profile)", bin)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// finishProfile asks the profiling build to stop and write its profiles, and waits
// until it has.
func finishProfile(p *proxyProc, dir string) error {
	if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		return fmt.Errorf("stop profile: %w", err)
	}
	done := filepath.Join(dir, "profile.done")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(done); err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("the proxy exited before writing its profiles: %s", p.logTail(10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after 30s; the proxy's output:\n%s", done, p.logTail(10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
