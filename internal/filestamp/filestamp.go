package filestamp

import (
	"context"
	"io/fs"
	"os"
	"time"
)

// Stamp is what some files looked like: one entry per path, nil where the file could not
// be stat'ed (missing, unreadable directory).
type Stamp []fs.FileInfo

// Of stats each path, following symlinks.
func Of(paths ...string) Stamp {
	s := make(Stamp, len(paths))
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			s[i] = fi
		}
	}
	return s
}

// Same says whether nothing about the files changed that a rewrite, a rename over them
// or a swapped symlink would change. Stamps of different lengths are never the same; a
// file missing in both is.
func (s Stamp) Same(o Stamp) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		a, b := s[i], o[i]
		switch {
		case a == nil || b == nil:
			if a != b {
				return false
			}
		case !os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size() || a.Mode() != b.Mode():
			return false
		}
	}
	return true
}

// Poll calls check every interval until ctx ends: the loop of a watcher that compares
// Stamps in check. It returns when ctx ends, never while check runs.
func Poll(ctx context.Context, every time.Duration, check func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		check()
	}
}
