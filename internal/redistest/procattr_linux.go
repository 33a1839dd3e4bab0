package redistest

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the server if the test binary dies without running its
// cleanups (a panic, a -timeout), so no redis-server outlives its test.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// freeze stops the process where it is (SIGSTOP), as a stalled machine would, until
// thaw (SIGCONT).
func freeze(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

func thaw(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
