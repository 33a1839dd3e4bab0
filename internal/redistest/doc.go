// Package redistest runs real redis-server processes for tests: a single node, a Redis
// Cluster (with a replica per master if asked), or a master and replica watched by three
// Sentinels, each on free loopback ports in the test's temporary directory, stopped when
// the test ends; and kills masters and waits for their replicas' promotion. Tests never
// talk to a Redis they did not start (the machine's 6379 included), and never mock one.
//
// A missing redis-server or redis-cli fails the test with a message saying what to
// install: a test that skips would pass on a machine where nothing was tested.
package redistest
