//go:build !linux

package redistest

import "os/exec"

// setProcAttr: only Linux can tie the server's life to the test binary's.
func setProcAttr(*exec.Cmd) {}
