package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// compareOptions are the flags of `loadgen compare` (and the presets of `profile`).
type compareOptions struct {
	binary      string
	baseline    string // a second consentgate binary, peer "baseline": A/B of a change
	peers       []string
	mixes       []string
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	connections int
	rate        float64
	out         string // base path: .json and .svg are added
	geoip       string
	proxyCPU    string
	loadCPU     string
	gomaxprocs  int
	install     bool
	seed        uint64
	granted     int
	denied      int
	timeout     time.Duration
	keep        bool
	command     string
	// profileDir, when set, has the consentgate build made with -tags profile write
	// its CPU and allocation profiles of the measured windows there (make profile).
	profileDir string
}

var knownPeers = []string{"consentgate", "nginx", "haproxy"}

// baselinePeer is a second consentgate build (-baseline) run in the same interleaved
// rounds as the first, with the same config: on a shared, noisy machine a change's
// effect is only readable side by side.
const baselinePeer = "baseline"

// isConsentgate says whether a peer is a consentgate build (the one under test or the
// baseline): started with the generated config, its decisions read from its metrics.
func isConsentgate(peer string) bool { return peer == "consentgate" || peer == baselinePeer }

// sinkPeer is the sink itself, no proxy in between: the latency baseline against
// which a proxy's added latency is read. It has no CPU figure of its own (it runs
// inside the generator), and it is not in the default -peers.
const sinkPeer = "sink"

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (o *compareOptions) register(fs *flag.FlagSet) {
	o.peers = slices.Clone(knownPeers)
	o.mixes = []string{"realistic", "all-forward"}
	fs.StringVar(&o.binary, "binary", "bin/consentgate", "consentgate binary to start")
	fs.StringVar(&o.baseline, "baseline", "", "a second consentgate binary, run as peer \"baseline\" right after consentgate in every round (A/B of a change)")
	fs.Func("peers", "proxies to compare, in the order of each round (default consentgate,nginx,haproxy); add sink for the latency of the sink alone, the baseline of a proxy's added latency", func(s string) error {
		o.peers = splitList(s)
		return nil
	})
	fs.Func("mixes", "mixes to run, each with its own fresh proxies (default realistic,all-forward; also ga4-only)", func(s string) error {
		o.mixes = splitList(s)
		return nil
	})
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds (A B C A B C ...); the figures are the medians")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per proxy per round")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measured window (connections, caches)")
	fs.IntVar(&o.connections, "connections", 32, "concurrent keep-alive connections")
	fs.Float64Var(&o.rate, "rate", 0, "offered load in req/s (open loop, latency from when each hit was due); 0 = closed loop: each connection sends when answered, which saturates the proxy")
	fs.StringVar(&o.out, "out", "", "base path of the results, .json and .svg are added (default bench/results/compare-<UTC time>)")
	fs.StringVar(&o.geoip, "geoip", "", "GeoIP City test database (default: testdata/geoip/GeoIP2-City-Test.mmdb)")
	fs.StringVar(&o.proxyCPU, "proxy-cpu", "1", "CPU list (taskset -c) of the proxy under test")
	fs.StringVar(&o.loadCPU, "load-cpu", "0", "CPU list of the generator, the sink and Redis")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 1, "GOMAXPROCS of consentgate (nginx and HAProxy run one worker)")
	fs.BoolVar(&o.install, "install", true, "install missing peers with apt-get when root")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: in a round every proxy gets the same sequence of hits")
	fs.IntVar(&o.granted, "visitors-granted", 70, "visitors with stored consent (statistics+marketing), created through consentgate's consent API")
	fs.IntVar(&o.denied, "visitors-denied", 30, "visitors who granted statistics but denied marketing")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.BoolVar(&o.keep, "keep", false, "keep the generated configs and logs, and print where")
}

func (o *compareOptions) validate() error {
	if len(o.peers) == 0 {
		return fmt.Errorf("-peers: none")
	}
	seen := map[string]bool{}
	for _, p := range o.peers {
		if !slices.Contains(knownPeers, p) && p != sinkPeer && p != baselinePeer {
			return fmt.Errorf("-peers: unknown %q, want some of %v, %s and %s", p, knownPeers, sinkPeer, baselinePeer)
		}
		if seen[p] {
			return fmt.Errorf("-peers: %q twice", p)
		}
		seen[p] = true
	}
	if o.baseline != "" && !seen[baselinePeer] {
		at := slices.Index(o.peers, "consentgate") + 1
		o.peers = slices.Insert(o.peers, at, baselinePeer)
	}
	if seen[baselinePeer] && o.baseline == "" {
		return fmt.Errorf("-peers: %s needs -baseline BINARY", baselinePeer)
	}
	if len(o.mixes) == 0 {
		return fmt.Errorf("-mixes: none")
	}
	for _, m := range o.mixes {
		if _, err := mixByName(m); err != nil {
			return fmt.Errorf("-mixes: %w", err)
		}
	}
	// Bounded, whatever the flags: at most about two hours.
	if o.rounds < 1 || o.rounds > 50 {
		return fmt.Errorf("-rounds %d: want 1..50", o.rounds)
	}
	if o.duration <= 0 || o.duration > 5*time.Minute {
		return fmt.Errorf("-duration %s: want up to 5m", o.duration)
	}
	if o.warmup < 0 || o.warmup > time.Minute {
		return fmt.Errorf("-warmup %s: want up to 1m", o.warmup)
	}
	total := time.Duration(o.rounds*len(o.peers)*len(o.mixes)) * (o.duration + o.warmup)
	if total > 2*time.Hour {
		return fmt.Errorf("rounds × peers × mixes × (duration + warm-up) = %s: want at most 2h", total)
	}
	if o.connections < 1 || o.connections > 4096 {
		return fmt.Errorf("-connections %d: want 1..4096", o.connections)
	}
	if o.rate < 0 || o.rate > 1e6 {
		return fmt.Errorf("-rate %v: want 0..1e6", o.rate)
	}
	if o.gomaxprocs < 1 || o.gomaxprocs > 256 {
		return fmt.Errorf("-gomaxprocs %d: want 1..256", o.gomaxprocs)
	}
	if o.granted < 0 || o.denied < 0 || o.granted+o.denied > 100000 {
		return fmt.Errorf("-visitors-granted/-visitors-denied: want 0..100000 in total")
	}
	if o.proxyCPU == o.loadCPU {
		return fmt.Errorf("-proxy-cpu and -load-cpu are both %q: the proxy needs a core of its own", o.proxyCPU)
	}
	return nil
}
