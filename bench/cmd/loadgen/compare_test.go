package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{2, 2, 100, 2, 1}, 2},
	} {
		in := fmt.Sprint(tc.xs)
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
		if fmt.Sprint(tc.xs) != in {
			t.Errorf("median reordered its input: %v", tc.xs)
		}
	}
}

func fakeRounds(cpu ...float64) []roundResult {
	var rs []roundResult
	for i, c := range cpu {
		rs = append(rs, roundResult{Round: i + 1, Requests: 1000, RequestsPerSec: 1e6 / c, CPUPerHitUs: c, P99Ms: c / 10, HWMBytes: uint64(i+1) << 20})
	}
	return rs
}

func TestSummariseAndRatios(t *testing.T) {
	mr := mixReport{Mix: "realistic", Proxies: []proxyReport{
		summarise("consentgate", "v", fakeRounds(40, 35, 36)),
		summarise("nginx", "v", fakeRounds(30, 31, 29, 100)), // one disturbed round
	}}
	addRatios(&mr)
	cg, ng := mr.Proxies[0], mr.Proxies[1]
	if cg.Median["cpu_us_per_hit"] != 36 || ng.Median["cpu_us_per_hit"] != 30.5 {
		t.Fatalf("medians %v / %v, want 36 and 30.5 (the outlier does not move a median much)", cg.Median["cpu_us_per_hit"], ng.Median["cpu_us_per_hit"])
	}
	if cg.Min["cpu_us_per_hit"] != 35 || cg.Max["cpu_us_per_hit"] != 40 {
		t.Errorf("extremes %v..%v, want 35..40", cg.Min["cpu_us_per_hit"], cg.Max["cpu_us_per_hit"])
	}
	if r := cg.RatioToNginx["cpu_us_per_hit"]; math.Abs(r-36/30.5) > 1e-9 {
		t.Errorf("ratio %v, want %v", r, 36/30.5)
	}
	if ng.RatioToNginx["cpu_us_per_hit"] != 1 {
		t.Errorf("nginx's own ratio %v, want 1", ng.RatioToNginx["cpu_us_per_hit"])
	}
	if cg.PeakRSSBytes != 3<<20 || cg.RatioToNginx["peak_rss"] != 0.75 {
		t.Errorf("peak RSS %d ratio %v, want the highest round's HWM (3 MiB) and 0.75", cg.PeakRSSBytes, cg.RatioToNginx["peak_rss"])
	}
	// Without nginx there is no ratio, rather than a ratio to something else.
	alone := mixReport{Proxies: []proxyReport{summarise("haproxy", "v", fakeRounds(1))}}
	addRatios(&alone)
	if alone.Proxies[0].RatioToNginx != nil {
		t.Errorf("ratio without nginx: %v", alone.Proxies[0].RatioToNginx)
	}
	// No rounds: zeros, not NaN (which JSON cannot carry).
	empty := summarise("nginx", "v", nil)
	if _, err := json.Marshal(empty); err != nil {
		t.Errorf("summary of no rounds does not encode: %v", err)
	}
}

func TestRoundProblems(t *testing.T) {
	ok := roundResult{Requests: 100, SinkReceived: 100}
	for _, tc := range []struct {
		name, proxy, mix string
		r                roundResult
		want             string // "" = no problem
	}{
		{"peer ok", "nginx", "realistic", ok, ""},
		{"peer lost hits", "nginx", "realistic", roundResult{Requests: 100, SinkReceived: 90}, "sink received 90"},
		{"errors", "haproxy", "realistic", roundResult{Requests: 100, SinkReceived: 100, NotOK: 3, Status5xx: 2, Errors: map[string]uint64{"timeout": 1}}, "3 responses not 2xx/3xx"},
		{"leak", "consentgate", "realistic", roundResult{Requests: 10, SinkReceived: 5, LeakedCookie: 1, Actions: map[string]float64{"forward": 5, "drop": 5}}, "consent cookie"},
		{"cg ok", "consentgate", "realistic", roundResult{Requests: 10, SinkReceived: 7, Actions: map[string]float64{"forward": 5, "anonymise": 2, "drop": 3}}, ""},
		{"cg sink mismatch", "consentgate", "realistic", roundResult{Requests: 10, SinkReceived: 6, Actions: map[string]float64{"forward": 5, "anonymise": 2, "drop": 3}}, "sink received 6"},
		{"all-forward refused", "consentgate", "all-forward", roundResult{Requests: 10, SinkReceived: 10, Actions: map[string]float64{"forward": 9, "anonymise": 1}}, "not every hit was forwarded"},
		{"nothing", "nginx", "realistic", roundResult{}, "no request completed"},
		{"the sink alone sees the cookie it was sent", sinkPeer, "realistic", roundResult{Requests: 10, SinkReceived: 10, LeakedCookie: 10}, ""},
		{"a peer that passes the cookie on", "nginx", "realistic", roundResult{Requests: 10, SinkReceived: 10, LeakedCookie: 10}, "consent cookie"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.problem(tc.proxy, tc.mix)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("problem = %q, want %q", got, tc.want)
			}
		})
	}
}

func sampleReport(shared bool) *compareReport {
	rep := &compareReport{Tool: "loadgen compare", Time: "2026-12-04T23:00:00Z", Command: `loadgen compare -out "a<b>&c"`,
		Machine:  machineInfo{Cores: 2, LoadAvgStart: "3.1 2 1", LoadAvgEnd: "3 2 1", Shared: shared, ProxyCPU: "1", LoadCPU: "0"},
		Settings: compareSettings{Rounds: 3, DurationSeconds: 5, WarmupSeconds: 1, Connections: 32},
		Versions: map[string]string{"nginx": "nginx version: nginx/1.22.1", "consentgate": "consentgate <dev>"}}
	for _, mix := range []string{"realistic", "all-forward"} {
		mr := mixReport{Mix: mix, Proxies: []proxyReport{
			summarise("consentgate", "v", fakeRounds(40, 35, 36)),
			summarise("nginx", "v", fakeRounds(30, 31, 29)),
			summarise("haproxy", "v", nil), // a proxy with no figures must not break the chart
		}}
		addRatios(&mr)
		rep.Mixes = append(rep.Mixes, mr)
	}
	return rep
}

func TestCompareSVGIsWellFormed(t *testing.T) {
	for _, shared := range []bool{true, false} {
		svg := compareSVG(sampleReport(shared))
		dec := xml.NewDecoder(bytes.NewReader(svg))
		var root string
		bars, texts := 0, 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
			}
			if se, ok := tok.(xml.StartElement); ok {
				if root == "" {
					root = se.Name.Local
					if se.Name.Space != "http://www.w3.org/2000/svg" {
						t.Errorf("root namespace %q", se.Name.Space)
					}
				}
				switch se.Name.Local {
				case "rect":
					for _, a := range se.Attr {
						if a.Name.Local == "fill" && a.Value != "#ffffff" {
							bars++
						}
					}
				case "text":
					texts++
				}
			}
		}
		if root != "svg" {
			t.Errorf("root element %q, want svg", root)
		}
		// 2 mixes × 2 panels × 3 proxies
		if bars != 12 {
			t.Errorf("%d bars, want 12", bars)
		}
		for _, bad := range []string{"NaN", "Inf", "<b>"} {
			if bytes.Contains(svg, []byte(bad)) {
				t.Errorf("SVG contains %q", bad)
			}
		}
		for _, want := range []string{"mix: realistic", "mix: all-forward", "1.20× nginx", "loadgen compare -out"} {
			if !bytes.Contains(svg, []byte(want)) {
				t.Errorf("SVG lacks %q", want)
			}
		}
		if got := bytes.Contains(svg, []byte("Shared, loaded machine")); got != shared {
			t.Errorf("shared-machine warning shown = %v, want %v", got, shared)
		}
	}
}

func TestWriteCompareOutputs(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sub", "compare-x")
	paths, err := writeCompareOutputs(base, sampleReport(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("paths %v", paths)
	}
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var back compareReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Mixes) != 2 || back.Mixes[0].Proxies[0].Median["cpu_us_per_hit"] != 36 || !back.Machine.Shared {
		t.Errorf("JSON round trip lost figures: %+v", back.Mixes)
	}
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_get:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setname:calls=3,usec=1\r\ncmdstat_info:calls=7,usec=100\r\n"
	resp := fmt.Sprintf("$%d\r\n%s\r\n", len(info), info)
	got, err := readCommandStats(bufio.NewReader(strings.NewReader(resp)))
	if err != nil {
		t.Fatal(err)
	}
	if got["get"] != 12 || got["client|setname"] != 3 || got["info"] != 7 {
		t.Errorf("got %v", got)
	}
	total, by := redisCallsBetween(map[string]uint64{"get": 2, "info": 1}, got)
	if total != 13 || by["get"] != 10 || by["info"] != 0 {
		t.Errorf("calls between = %d %v, want 13 without the INFO readings", total, by)
	}
	for _, bad := range []string{"-ERR nope\r\n", "$x\r\n", "$10\r\nshort", "$20\r\ncmdstat_get:usec=1\r\n\r\n\r\n"} {
		if _, err := readCommandStats(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestRedisCommandStatsLive reads a real redis-server's counters before and after
// commands sent to it.
func TestRedisCommandStatsLive(t *testing.T) {
	rs, err := startRedis(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.stop()
	before, err := redisCommandStats(rs.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := redisCommandStats(rs.Addr); err != nil { // INFO: left out
			t.Fatal(err)
		}
	}
	after, err := redisCommandStats(rs.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if total, by := redisCallsBetween(before, after); total != 0 {
		t.Errorf("INFO readings counted as calls: %v", by)
	}
	// The reads of a pass's readings (commandstats, then stats, at each end) are left
	// out; a command sent between them is counted.
	reads := func() uint64 {
		t.Helper()
		if _, err := redisCommandStats(rs.Addr); err != nil {
			t.Fatal(err)
		}
		n, err := redisReads(rs.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	r0 := reads()
	r1 := reads()
	if got := readsBetween(r0, r1); got != 0 {
		t.Errorf("%d reads between two readings with nothing sent, want 0", got)
	}
	if _, err := redisInfo(rs.Addr, "server"); err != nil { // a command on a connection of its own
		t.Fatal(err)
	}
	if got := readsBetween(r1, reads()); got != 2 { // the command, and its connection's close
		t.Errorf("%d reads with one command on its own connection, want 2", got)
	}
}

func TestAllForwardMixRefusesNothing(t *testing.T) {
	spec, err := mixByName("all-forward")
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, tpl := range spec.templates {
		total += tpl.weight
		if strings.Contains(tpl.pathQuery, "gcs=G100") || tpl.name == "ga4_mp" {
			t.Errorf("template %s would be refused or anonymised", tpl.name)
		}
	}
	if total != 1000 {
		t.Errorf("weights add up to %d, want 1000", total)
	}
	for i, jc := range jurisdictionMix {
		if (spec.juris[i] > 0) != (jc.name == "other") {
			t.Errorf("jurisdiction %s weight %d: only regime-none visitors belong in the mix", jc.name, spec.juris[i])
		}
	}
	if spec.consent[consentGranted] != 0 || spec.consent[consentDeniedMarketing] != 0 || spec.gpcPercent != 0 {
		t.Errorf("consent weights %v, GPC %d%%: want no cookie, no GPC", spec.consent, spec.gpcPercent)
	}
}

func TestCompareOptionsValidate(t *testing.T) {
	base := func() compareOptions {
		return compareOptions{peers: []string{"consentgate", "nginx"}, mixes: []string{"realistic"}, rounds: 5,
			duration: 10 * time.Second, warmup: 2 * time.Second, connections: 32, gomaxprocs: 1, proxyCPU: "1", loadCPU: "0", granted: 70, denied: 30}
	}
	if o := base(); o.validate() != nil {
		t.Fatalf("defaults refused: %v", o.validate())
	}
	for name, mut := range map[string]func(*compareOptions){
		"unknown peer":                     func(o *compareOptions) { o.peers = []string{"envoy"} },
		"peer twice":                       func(o *compareOptions) { o.peers = []string{"nginx", "nginx"} },
		"no peers":                         func(o *compareOptions) { o.peers = nil },
		"unknown mix":                      func(o *compareOptions) { o.mixes = []string{"nope"} },
		"same CPU":                         func(o *compareOptions) { o.loadCPU = "1" },
		"zero rounds":                      func(o *compareOptions) { o.rounds = 0 },
		"unbounded":                        func(o *compareOptions) { o.rounds, o.duration = 50, 5*time.Minute },
		"negative rate":                    func(o *compareOptions) { o.rate = -1 },
		"baseline peer without its binary": func(o *compareOptions) { o.peers = []string{"consentgate", baselinePeer} },
	} {
		o := base()
		mut(&o)
		if err := o.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCompareBaselinePeer: -baseline puts the second build right after consentgate in
// every round, so the two are measured side by side under the same noise.
func TestCompareBaselinePeer(t *testing.T) {
	o := compareOptions{peers: []string{"nginx", "consentgate", "haproxy"}, mixes: []string{"realistic"}, rounds: 5,
		duration: 10 * time.Second, warmup: 2 * time.Second, connections: 32, gomaxprocs: 1, proxyCPU: "1", loadCPU: "0",
		baseline: "bin/consentgate-old"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"nginx", "consentgate", baselinePeer, "haproxy"}; !slices.Equal(o.peers, want) {
		t.Errorf("peers %v, want %v", o.peers, want)
	}
	if err := o.validate(); err != nil || len(o.peers) != 4 {
		t.Errorf("validated twice: %v, peers %v", err, o.peers)
	}
	if !isConsentgate(baselinePeer) || isConsentgate("nginx") {
		t.Error("isConsentgate")
	}
}

// TestKillGroupLeavesNothing starts a process that forks, as nginx does, and checks
// that stopping the group leaves none of them running.
func TestKillGroupLeavesNothing(t *testing.T) {
	p, err := startPinned([]string{"sh", "-c", "sleep 60 & sleep 60 & trap '' TERM; sleep 60"}, nil, "0", filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the children to exist.
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, err := readGroup(p.Pid())
		if err == nil && g.Procs >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group never had 3 processes: %+v %v", g, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.killGroup(200 * time.Millisecond) // the shell ignores SIGTERM: SIGKILL ends it
	// A killed process takes a moment to leave /proc on a loaded machine: wait for that
	// (the deadline guards a hang, it is not a timing).
	deadline = time.Now().Add(10 * time.Second)
	for {
		g, err := readGroup(p.Pid())
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of the group still running", g.Procs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCompareWithPeers runs the whole harness for a fraction of a second with
// nginx and HAProxy (consentgate needs a built binary: make bench-compare covers it):
// configs, pinning, rounds, the sink's counts, the outputs, and that no peer is left.
func TestCompareWithPeers(t *testing.T) {
	o := &compareOptions{peers: []string{"nginx", "haproxy", sinkPeer}, mixes: []string{"realistic"}, rounds: 2,
		duration: 300 * time.Millisecond, warmup: 100 * time.Millisecond, connections: 4, gomaxprocs: 1,
		proxyCPU: "1", loadCPU: "0", install: true, seed: 1, timeout: 2 * time.Second, command: "test"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, code, err := runCompare(context.Background(), o, &out)
	if err != nil || code != 0 {
		t.Fatalf("runCompare = %d, %v; output:\n%s", code, err, out.String())
	}
	if len(rep.Mixes) != 1 || len(rep.Mixes[0].Proxies) != 3 {
		t.Fatalf("report %+v", rep.Mixes)
	}
	if s := rep.Mixes[0].Proxies[2]; s.Name != sinkPeer || s.Median["cpu_us_per_hit"] != 0 || s.RatioToNginx["cpu_us_per_hit"] != 0 {
		t.Errorf("the sink alone: %+v, want no CPU figure and no CPU ratio", s)
	}
	if !strings.Contains(out.String(), "latency added over the sink alone: nginx p50") {
		t.Errorf("no added latency line:\n%s", out.String())
	}
	for _, p := range rep.Mixes[0].Proxies {
		if len(p.Rounds) != 2 {
			t.Errorf("%s: %d rounds, want 2", p.Name, len(p.Rounds))
		}
		for _, r := range p.Rounds {
			if r.Requests == 0 || r.SinkReceived != r.Requests || r.NotOK != 0 || r.CPUSeconds < 0 {
				t.Errorf("%s round %d: %+v", p.Name, r.Round, r)
			}
		}
		if p.PeakRSSBytes == 0 && p.Name != sinkPeer {
			t.Errorf("%s: no peak RSS", p.Name)
		}
	}
	if nginx := rep.Mixes[0].Proxies[0]; nginx.Rounds[0].Procs != 2 {
		t.Errorf("nginx measured as %d processes, want master and worker", nginx.Rounds[0].Procs)
	}
	if _, err := writeCompareOutputs(filepath.Join(t.TempDir(), "c"), rep); err != nil {
		t.Fatal(err)
	}
	// Nothing left: no process still names the run's directory on its command line.
	if rep.tempDir == "" {
		t.Fatal("the report does not say where the run kept its files")
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(rep.tempDir)) {
			t.Errorf("process %s still running: %q", e.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	if strings.Contains(out.String(), "!!!") {
		t.Errorf("problems reported:\n%s", out.String())
	}
}
