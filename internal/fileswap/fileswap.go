// Package fileswap replaces files the ways updaters do (geoipupdate, certbot, a
// Kubernetes volume), for the tests of the watchers that must notice: each replacement
// is atomic, so a watcher sees the old file or the new one, never half of it.
package fileswap

import (
	"os"
	"path/filepath"
	"testing"
)

// Rename writes data to a temporary file beside path and renames it over path, as
// geoipupdate and most renewal tools do: path is a new file (another inode).
func Rename(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	tmp := path + ".fileswap-tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		t.Fatalf("fileswap: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("fileswap: %v", err)
	}
}

// Symlink points link at target, replacing whatever link was by a rename.
func Symlink(t testing.TB, target, link string) {
	t.Helper()
	tmp := link + ".fileswap-tmp"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatalf("fileswap: %v", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatalf("fileswap: %v", err)
	}
}

// Volume lays files out in dir as the kubelet does in a ConfigMap, Secret or projected
// volume, and updates them as it does: each file name is a symlink to ..data/name, and
// ..data a symlink to a directory of the version's, which an update replaces by pointing
// ..data at a new one. The paths of the files never change.
func Volume(t testing.TB, dir, version string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatalf("fileswap: %v", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, version, name), data, 0o644); err != nil {
			t.Fatalf("fileswap: %v", err)
		}
	}
	Symlink(t, version, filepath.Join(dir, "..data"))
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			Symlink(t, filepath.Join("..data", name), filepath.Join(dir, name))
		}
	}
}
