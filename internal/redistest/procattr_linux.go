package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the server if the test binary dies without running its
// cleanups (a panic, a -timeout), so no redis-server outlives its test.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
