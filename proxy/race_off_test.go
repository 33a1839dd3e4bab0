//go:build !race

package proxy

// raceEnabled: the test binary runs with the race detector.
const raceEnabled = false
