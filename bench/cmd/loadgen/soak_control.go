package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// What the soak does to the instances besides the load: reloads, GeoIP swaps, the
// Redis restart, and the resource samples that show whether any of it leaks.

// controlCounts are the operations done and how they went.
type controlCounts struct {
	reloadsAPI, reloadsSignal int
	reloadsOK, reloadsFailed  int
	geoSwaps, geoSwapsFailed  int
	redisRestarts             int
}

type reloadMethod int

const (
	reloadByAPI reloadMethod = iota
	reloadBySignal
)

func (m reloadMethod) String() string { return [...]string{"POST /admin/reload", "SIGHUP"}[m] }

// soakRouteEndpoint serves the route each config adds: a harmless change (one more
// path for Matomo hits) that shows in config_version and in what the instance serves.
const soakRouteEndpoint = "matomo_track"

func soakRoute(k int) string { return "/soak/r" + strconv.Itoa(k) }

// writeConfig writes config number k over the shared config file, atomically.
func (r *soakRun) writeConfig(k int) error {
	c := r.base
	c.Routes = [][2]string{{soakRoute(k), soakRouteEndpoint}}
	return writeAtomic(r.cfgPath, c.yaml())
}

// control reloads one instance every -reload-every and swaps the GeoIP database every
// -geo-swap-every, one operation at a time, until ctx ends.
func (r *soakRun) control(ctx context.Context) {
	o := r.o
	nextReload, nextSwap := r.start.Add(o.reloadEvery), r.start.Add(o.geoSwapEvery)
	k := 0 // reloads so far: instance k%2, method (k/2)%2, so each instance gets both
	content, swaps := 0, 0
	for {
		next := nextReload
		if nextSwap.Before(next) {
			next = nextSwap
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		if !nextSwap.After(time.Now()) {
			nextSwap = nextSwap.Add(o.geoSwapEvery)
			content++
			r.geoSwap(ctx, swaps, content)
			swaps++
			continue
		}
		nextReload = nextReload.Add(o.reloadEvery)
		content++
		if err := r.writeConfig(content); err != nil {
			r.problem("reload: %v", err)
			continue
		}
		r.reload(ctx, r.inst[k%2], reloadMethod((k/2)%2), content)
		k++
	}
}

// reload has inst reload config number k (already written) by method, and checks that
// the new config is in force: a new config_version, the new route served, the old one
// gone.
func (r *soakRun) reload(ctx context.Context, inst *soakInstance, m reloadMethod, k int) bool {
	r.operation()
	err := r.reloadAndCheck(ctx, inst, m, k)
	if err != nil && ctx.Err() != nil {
		return false // cut short by the end of the run: neither outcome
	}
	r.mu.Lock()
	if m == reloadByAPI {
		r.ctl.reloadsAPI++
	} else {
		r.ctl.reloadsSignal++
	}
	if err == nil {
		r.ctl.reloadsOK++
	} else {
		r.ctl.reloadsFailed++
	}
	r.mu.Unlock()
	if err != nil {
		r.problem("reload of %s by %s (config %d): %v", inst.name, m, k, err)
		return false
	}
	return true
}

func (r *soakRun) reloadAndCheck(ctx context.Context, inst *soakInstance, m reloadMethod, k int) error {
	prev := inst.version
	var version string
	switch m {
	case reloadByAPI:
		var a struct {
			Reloaded      bool     `json:"reloaded"`
			ConfigVersion string   `json:"config_version"`
			Errors        []string `json:"errors"`
		}
		code, body, err := r.adminCall(inst, fasthttp.MethodPost, "/admin/reload", nil)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(body, &a); err != nil || code != fasthttp.StatusOK || !a.Reloaded {
			return fmt.Errorf("status %d, %s", code, oneLine(body))
		}
		if version = a.ConfigVersion; version == prev {
			return fmt.Errorf("config_version stayed %s", prev)
		}
		if v, err := configVersion(inst); err != nil || v != version {
			return fmt.Errorf("the reload answered config_version %s, /api/stats says %q (%v)", version, v, err)
		}
	case reloadBySignal:
		if err := inst.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			return fmt.Errorf("SIGHUP: %w", err)
		}
		// The reload runs in the background: its outcome shows as a new version.
		deadline := time.Now().Add(15 * time.Second)
		for {
			v, err := configVersion(inst)
			if err == nil && v != prev {
				version = v
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("config_version still %s 15s after SIGHUP (last error %v); the instance's log:\n%s", prev, err, inst.proc.logTail(10))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, err := r.publicGet(inst, soakRoute(k)); err != nil || code/100 != 2 {
		return fmt.Errorf("the new route %s: status %d, %v", soakRoute(k), code, err)
	}
	if old := soakRoute(inst.route); inst.route != k {
		if code, err := r.publicGet(inst, old); err != nil || code != fasthttp.StatusNotFound {
			return fmt.Errorf("the old route %s: status %d (want 404), %v", old, code, err)
		}
	}
	r.logf("reload of %s by %s: config %d in force (version %s → %s)", inst.name, m, k, prev, version)
	inst.version, inst.route = version, k
	return nil
}

// geoSwap renames the other test database over the configured path, reloads both
// instances, and checks that each now locates as that database does: the City
// database knows US-CA's subdivision, the Country database does not.
func (r *soakRun) geoSwap(ctx context.Context, n, content int) {
	r.operation()
	db := r.dbs[(n+1)%2]
	failed := func(format string, a ...any) {
		r.mu.Lock()
		r.ctl.geoSwapsFailed++
		r.mu.Unlock()
		r.problem("GeoIP swap %d: "+format, append([]any{n + 1}, a...)...)
	}
	if err := swapFile(db, r.geoPath); err != nil {
		failed("%v", err)
		return
	}
	if err := r.writeConfig(content); err != nil {
		failed("%v", err)
		return
	}
	wantCA := (n+1)%2 == 0
	for i, inst := range r.inst {
		if !r.reload(ctx, inst, reloadMethod((n+i)%2), content) {
			if ctx.Err() == nil {
				failed("instance %s did not reload", inst.name)
			}
			return
		}
		d, err := r.explain(inst, "", ipUSCA)
		switch {
		case err != nil:
			failed("explain on %s: %v", inst.name, err)
			return
		case wantCA != (d.Subdivision != nil && *d.Subdivision == "CA"):
			failed("%s located %s in subdivision %v after the swap to %s", inst.name, ipUSCA, d.Subdivision, db)
			return
		}
	}
	r.mu.Lock()
	r.ctl.geoSwaps++
	r.mu.Unlock()
	r.logf("GeoIP swap %d: %s in force on both instances", n+1, db)
}

// ipUSCA is the US-CA visitor of the realistic mix.
const ipUSCA = "214.78.120.5"

// restartRedis kills Redis at -restart-at with SIGKILL, as a crash or the OOM killer
// would, and starts it again on its port -redis-down later. Nothing is persisted, so
// the new server is empty: every consent record is lost.
func (r *soakRun) restartRedis(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(r.start.Add(r.o.restartAt))):
	}
	r.operation()
	r.redis.stop()
	r.mu.Lock()
	r.gone = time.Now()
	r.mu.Unlock()
	r.logf("Redis: killed (SIGKILL), down for %s", r.o.redisDown)
	// Not cut short by the end of the run: the checks at the end need Redis back.
	time.Sleep(r.o.redisDown)
	if err := r.redis.launch(); err != nil {
		r.problem("Redis restart: %v", err)
		return
	}
	r.operation()
	r.mu.Lock()
	r.back = time.Now()
	r.ctl.redisRestarts++
	r.mu.Unlock()
	r.logf("Redis: back, empty, on %s", r.redis.Addr)
}

// resourceSample is what one instance's /metrics said at one time of the run.
type resourceSample struct {
	at         time.Duration
	goroutines float64
	rss        uint64
}

// sampleResources reads each instance's goroutines and RSS every -sample-every.
func (r *soakRun) sampleResources(ctx context.Context) {
	t := time.NewTicker(r.o.sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, inst := range r.inst {
			m, err := scrapeSeries(inst.admin)
			if err != nil {
				if ctx.Err() == nil && !inst.proc.Exited() {
					r.problem("metrics of %s: %v", inst.name, err)
				}
				continue
			}
			s := resourceSample{at: time.Since(r.start), goroutines: m.sum("go_goroutines"), rss: uint64(m.sum("process_resident_memory_bytes"))}
			r.mu.Lock()
			r.resources[i] = append(r.resources[i], s)
			r.mu.Unlock()
		}
	}
}

// finalMetrics sums, over both instances, the counters the summary quotes.
func (r *soakRun) finalMetrics() series {
	total := series{}
	for _, inst := range r.inst {
		m, err := scrapeSeries(inst.admin)
		if err != nil {
			r.problem("final metrics of %s: %v", inst.name, err)
			continue
		}
		for k, v := range m {
			total[k] += v
		}
	}
	return total
}

// series are the samples of a /metrics page, by series (name and labels as written).
type series map[string]float64

func scrapeSeries(adminAddr string) (series, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+adminAddr+"/metrics", 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	if status != fasthttp.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: status %d", status)
	}
	return parseSeries(body)
}

func parseSeries(text []byte) (series, error) {
	out := series{}
	for lineNo, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the labels (a label value may
		// hold spaces); a timestamp, which this exporter does not write, is refused.
		end := bytes.LastIndexByte(line, '}')
		sp := bytes.IndexByte(line[end+1:], ' ')
		if sp < 0 {
			return nil, fmt.Errorf("metrics line %d: no value", lineNo+1)
		}
		key, val := line[:end+1+sp], bytes.TrimSpace(line[end+1+sp:])
		v, err := strconv.ParseFloat(string(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value: %w", lineNo+1, err)
		}
		out[string(key)] += v
	}
	return out, nil
}

// sum adds every series of the metric name, whatever their labels.
func (s series) sum(name string) float64 {
	var t float64
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return t
}

// by sums the metric's series by the value of one label.
func (s series) by(name, label string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		rest, ok := strings.CutPrefix(k, name+"{")
		if !ok {
			continue
		}
		labels, _, err := parseLabels([]byte(rest))
		if err != nil {
			continue
		}
		out[labels[label]] += v
	}
	return out
}

// configVersion is the config_version an instance has in force, from /api/stats.
func configVersion(inst *soakInstance) (string, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+inst.admin+"/api/stats?scope=instance", 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("/api/stats: %w", err)
	}
	var rep struct {
		Instance struct {
			ConfigVersion string `json:"config_version"`
		} `json:"instance"`
	}
	if err := json.Unmarshal(body, &rep); err != nil || status != fasthttp.StatusOK || rep.Instance.ConfigVersion == "" {
		return "", fmt.Errorf("/api/stats: status %d, %s", status, oneLine(body))
	}
	return rep.Instance.ConfigVersion, nil
}

// adminCall sends an authorised admin API request and returns the status and body.
func (r *soakRun) adminCall(inst *soakInstance, method, path string, body []byte) (int, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + inst.admin + path)
	req.Header.SetMethod(method)
	req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+benchAdminToken)
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	// A reload compiles a whole config on a busy machine: give it the per-request
	// timeout and then some.
	if err := inst.adm.DoTimeout(req, resp, r.o.timeout+10*time.Second); err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// publicGet sends a Matomo hit to path on the public listener (a visitor where no
// consent is needed, so that it is forwarded) and returns the status.
func (r *soakRun) publicGet(inst *soakInstance, path string) (int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + inst.public + path + "?idsite=1&rec=1&action_name=soak&url=https%3A%2F%2Fwww.example.com%2F")
	req.Header.Set(fasthttp.HeaderXForwardedFor, "216.160.83.57")
	if err := inst.api.DoTimeout(req, resp, r.o.timeout); err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var errNoCookie = errors.New("no consent cookie in the answer")
