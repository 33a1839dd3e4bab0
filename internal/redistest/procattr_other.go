//go:build !linux

package redistest

import (
	"errors"
	"os"
	"os/exec"
)

// setProcAttr: only Linux can tie the server's life to the test binary's.
func setProcAttr(*exec.Cmd) {}

var errNoFreeze = errors.New("redistest: freezing a server needs Linux")

func freeze(*os.Process) error { return errNoFreeze }

func thaw(*os.Process) error { return errNoFreeze }
