//go:build !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

var errNoProc = errors.New("process CPU and memory figures need Linux /proc")

func childProcAttr() *syscall.SysProcAttr { return nil }

func groupProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func procCPU(int) (time.Duration, error) { return 0, errNoProc }

func procRSS(int) (uint64, error) { return 0, errNoProc }

func selfCPU() time.Duration { return 0 }
