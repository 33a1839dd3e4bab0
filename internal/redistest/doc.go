// Package redistest runs real redis-server processes for tests: a single node or a
// Redis Cluster, each on free loopback ports in the test's temporary directory, stopped
// when the test ends. Tests never talk to a Redis they did not start (the machine's
// 6379 included), and never mock one.
//
// A missing redis-server or redis-cli fails the test with a message saying what to
// install: a test that skips would pass on a machine where nothing was tested.
package redistest
