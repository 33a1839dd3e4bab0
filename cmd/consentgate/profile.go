//go:build profile

package main

// A build with -tags profile (make profile) writes CPU and allocation profiles of a
// window that the benchmark chooses by signals, so that the profile covers the
// measured load and not the start-up, the warm-up or the drain. The release build
// has none of this: no signal handler, no file written, nothing to expose.
//
//	CONSENTGATE_PROFILE_DIR=DIR  where the profiles go; unset: profiling off
//	SIGUSR1                      write allocs-start.pprof, start cpu.pprof
//	SIGUSR2                      stop cpu.pprof, write allocs.pprof, then profile.done
//
// allocs.pprof counts from the process start; `go tool pprof -base
// allocs-start.pprof` leaves only the window's allocations.

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
)

func init() {
	dir := os.Getenv("CONSENTGATE_PROFILE_DIR")
	if dir == "" {
		return
	}
	// One sample per 64 KiB allocated instead of 512 KiB: the hit path allocates
	// little, and the default would miss most of it.
	runtime.MemProfileRate = 64 << 10
	if v, err := strconv.Atoi(os.Getenv("CONSENTGATE_MEMPROFILERATE")); err == nil && v > 0 {
		runtime.MemProfileRate = v
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var cpu *os.File
		for s := range sig {
			var err error
			if s == syscall.SIGUSR1 && cpu == nil {
				cpu, err = startCPUProfile(dir)
			} else if s == syscall.SIGUSR2 && cpu != nil {
				err = stopProfiles(dir, cpu)
				cpu = nil
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "consentgate profile:", err)
			}
		}
	}()
}

func startCPUProfile(dir string) (*os.File, error) {
	_ = os.Remove(filepath.Join(dir, "profile.done"))
	if err := writeProfile(dir, "allocs-start.pprof"); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, fmt.Errorf("create cpu.pprof: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return f, nil
}

func stopProfiles(dir string, cpu *os.File) error {
	pprof.StopCPUProfile()
	if err := cpu.Close(); err != nil {
		return fmt.Errorf("close cpu.pprof: %w", err)
	}
	if err := writeProfile(dir, "allocs.pprof"); err != nil {
		return err
	}
	// Last: the benchmark waits for this file before it reads the others.
	return os.WriteFile(filepath.Join(dir, "profile.done"), nil, 0o644)
}

func writeProfile(dir, name string) error {
	// The allocation profile is as of the last completed GC; a hit path that
	// allocates little may see none in the window, so one is run here, at both ends.
	runtime.GC()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}
