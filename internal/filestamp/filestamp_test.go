package filestamp

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/fileswap"
)

// TestSame: each way a file is replaced changes the stamp, and looking again at files
// nobody touched does not. Where a change could leave the modification time as it was
// (a rename within the file system's time granularity), the test pins it to the old one,
// so only what the case is about differs.
func TestSame(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pinTime := func(t *testing.T, path string, like os.FileInfo) {
		t.Helper()
		if err := os.Chtimes(path, like.ModTime(), like.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		change func(t *testing.T, dir, path string) // nil: nothing happens
		paths  func(path string) []string           // nil: just path
		same   bool
	}{
		{name: "untouched", same: true},
		{name: "missing before and after", paths: func(p string) []string { return []string{p + ".absent"} }, same: true},
		{name: "several files untouched", paths: func(p string) []string { return []string{p, p + ".absent", p} }, same: true},
		{name: "rewritten in place, other size", change: func(t *testing.T, _, p string) { write(t, p, "version two, longer") }},
		{name: "rewritten in place, same size, same time", change: func(t *testing.T, _, p string) {
			// Nothing in the metadata changes: the one rewrite a stamp cannot see.
			fi, _ := os.Stat(p)
			write(t, p, "VERSION ONE")
			pinTime(t, p, fi)
		}, same: true},
		{name: "rewritten in place, same size, new time", change: func(t *testing.T, _, p string) {
			fi, _ := os.Stat(p)
			write(t, p, "VERSION ONE")
			later := fi.ModTime().Add(time.Second)
			if err := os.Chtimes(p, later, later); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "renamed over, same size and time", change: func(t *testing.T, dir, p string) {
			fi, _ := os.Stat(p)
			tmp := filepath.Join(dir, "tmp")
			write(t, tmp, "version one")
			pinTime(t, tmp, fi)
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "mode changed", change: func(t *testing.T, _, p string) {
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "removed", change: func(t *testing.T, _, p string) { os.Remove(p) }},
		{name: "appeared", paths: func(p string) []string { return []string{p + ".new"} }, change: func(t *testing.T, _, p string) {
			write(t, p+".new", "x")
		}},
		{name: "symlink target swapped", paths: func(p string) []string { return []string{filepath.Join(filepath.Dir(p), "link")} },
			change: func(t *testing.T, dir, p string) {
				fi, _ := os.Stat(p)
				other := filepath.Join(dir, "other")
				write(t, other, "version one")
				pinTime(t, other, fi)
				fileswap.Symlink(t, other, filepath.Join(dir, "link"))
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			write(t, path, "version one")
			if err := os.Symlink(path, filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			paths := []string{path}
			if c.paths != nil {
				paths = c.paths(path)
			}
			before := Of(paths...)
			if len(before) != len(paths) {
				t.Fatalf("Of(%d paths) has %d entries", len(paths), len(before))
			}
			if c.change != nil {
				c.change(t, dir, path)
			}
			after := Of(paths...)
			if got := before.Same(after); got != c.same {
				t.Errorf("Same = %v, want %v", got, c.same)
			}
			if got := after.Same(before); got != c.same {
				t.Errorf("Same is not symmetric: %v, want %v", got, c.same)
			}
		})
	}
}

// TestSameLengths: stamps of different files lists never compare the same, nor does a
// missing file to a present one.
func TestSameLengths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		a, b Stamp
		same bool
	}{
		{"none and none", Of(), Of(), true},
		{"one and two", Of(p), Of(p, p), false},
		{"present and missing", Of(p), Of(p + ".absent"), false},
		{"nil entries", Stamp{nil}, Of(p + ".absent"), true},
	} {
		if got := c.a.Same(c.b); got != c.same {
			t.Errorf("%s: Same = %v, want %v", c.name, got, c.same)
		}
	}
}

// TestPoll: check runs on every tick until the context ends, and Poll returns then.
func TestPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	enough := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Poll(ctx, time.Millisecond, func() {
			if calls.Add(1) == 3 {
				close(enough)
			}
		})
	}()
	select {
	case <-enough:
	case <-time.After(10 * time.Second):
		t.Fatalf("check ran %d times in 10s at a 1ms interval", calls.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not return after its context ended")
	}
	n := calls.Load()
	time.Sleep(5 * time.Millisecond)
	if calls.Load() != n {
		t.Error("check ran after Poll returned")
	}
}
