// Package rules compiles a config into one immutable Snapshot: the vendor catalogue,
// routes, decision tables, anonymisers (typed allow-lists, URL and text scrubbers), the
// jurisdiction table, trusted proxies, signal settings and the tag scripts served
// first-party (scripts_builtin.go, scripts.go). It does no I/O: everything is
// compiled at load into tables that a hit only looks up. Vocabulary lists the names a
// config may use.
package rules
