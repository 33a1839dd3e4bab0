package fileswap

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplacements: after each replacement the path reads the new content and is
// another file than before; a volume's file paths stay symlinks through ..data.
func TestReplacements(t *testing.T) {
	dir := t.TempDir()
	read := func(p string) (string, os.FileInfo) {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), fi
	}
	p := filepath.Join(dir, "db")
	Rename(t, p, []byte("one"), 0o644)
	_, before := read(p)
	Rename(t, p, []byte("two"), 0o644)
	if got, after := read(p); got != "two" || os.SameFile(before, after) {
		t.Errorf("after Rename: %q, same file %v; want two in a new file", got, os.SameFile(before, after))
	}

	vol := filepath.Join(dir, "vol")
	Volume(t, vol, "..v1", map[string][]byte{"a": []byte("a1"), "b": []byte("b1")})
	_, a1 := read(filepath.Join(vol, "a"))
	Volume(t, vol, "..v2", map[string][]byte{"a": []byte("a2"), "b": []byte("b2")})
	for name, want := range map[string]string{"a": "a2", "b": "b2"} {
		path := filepath.Join(vol, name)
		if got, _ := read(path); got != want {
			t.Errorf("%s after the update: %q, want %q", name, got, want)
		}
		if target, err := os.Readlink(path); err != nil || target != filepath.Join("..data", name) {
			t.Errorf("%s: a symlink to %q (%v), want ..data/%s", name, target, err, name)
		}
	}
	if _, a2 := read(filepath.Join(vol, "a")); os.SameFile(a1, a2) {
		t.Error("the volume's update left the same file")
	}
	for _, pattern := range []string{"*.fileswap-tmp", "*/*.fileswap-tmp"} {
		if matches, _ := filepath.Glob(filepath.Join(dir, pattern)); len(matches) > 0 {
			t.Errorf("temporary files left: %v", matches)
		}
	}
}
