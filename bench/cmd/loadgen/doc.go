// Command loadgen measures consentgate as a whole process: it starts the real
// binary against an in-process sink that stands in for every vendor, sends a
// weighted mix of tracking hits from visitors in several jurisdictions and consent
// states, and reports throughput, latency, status codes and what the proxy decided.
// Subcommands: compare (beside nginx and HAProxy), profile, scale, and soak (two
// instances on one Redis for minutes, with reloads, GeoIP swaps, a Redis restart and
// a consent-write stream, checked for 5xx, lost writes and leaks).
//
// All traffic stays on loopback. See bench/README.md.
package main
