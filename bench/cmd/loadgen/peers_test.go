package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeerConfigsAreValid writes both peers' configs and has the peers themselves
// check them (nginx -t, haproxy -c). The harness cannot run without the peers, so
// a machine without them fails here, or, as root, installs them as the harness does.
func TestPeerConfigsAreValid(t *testing.T) {
	bins, err := ensurePeers([]string{"nginx", "haproxy"}, true, t.Logf)
	if err != nil {
		t.Fatalf("the peers are needed to check their configs: %v", err)
	}
	for _, name := range []string{"nginx", "haproxy"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := newPeerConfig(dir, "127.0.0.1:18081", "127.0.0.1:19999")
			_, check, err := writePeerConfig(name, bins[name], c)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(check[0], check[1:]...).CombinedOutput()
			if err != nil {
				text, _ := os.ReadFile(filepath.Join(dir, name+".conf"))
				t.Fatalf("%s: %v\n%s\nconfig:\n%s", strings.Join(check, " "), err, out, text)
			}
			text, err := os.ReadFile(filepath.Join(dir, name+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			// Every catalogue route, the sink and the listener are in the config.
			for _, want := range append(append([]string{"127.0.0.1:18081", "127.0.0.1:19999"}, peerExactPaths...), peerPrefixPaths...) {
				if !strings.Contains(string(text), want) {
					t.Errorf("%s config lacks %q", name, want)
				}
			}
		})
	}
}

func TestEnsurePeersWithoutInstallNamesTheCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing found in PATH; /usr/sbin is still looked at
	peerPackages["no-such-peer"] = "no-such-package"
	defer delete(peerPackages, "no-such-peer")
	_, err := ensurePeers([]string{"no-such-peer"}, false, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y no-such-package") {
		t.Fatalf("error %v, want the apt-get command", err)
	}
}
