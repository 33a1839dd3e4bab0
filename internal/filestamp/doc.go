// Package filestamp tells whether files changed, by their metadata: what a watcher
// compares between two looks at the files it reads (a TLS certificate and its key, the
// GeoIP database).
//
// A Stamp holds each file's os.Stat (through symlinks): its identity (os.SameFile,
// device and inode), modification time, size and mode. A rename over the file (as
// geoipupdate, certbot and most tools write), a Kubernetes volume pointing its ..data
// symlink at a new directory, and a rewrite in place all change one of them. Polling, not
// inotify: it works alike on every file system and platform, a stat every few seconds
// costs nothing, and there is no watch to lose when a directory is replaced.
package filestamp
