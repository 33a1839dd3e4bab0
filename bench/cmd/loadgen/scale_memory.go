package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// memoryPoint is one cache size: memory, and the store's work on each visitor's
// first and second hit.
type memoryPoint struct {
	Visitors        int     `json:"visitors"`
	Store           string  `json:"store"`
	CacheTTLSeconds float64 `json:"cache_ttl_seconds"`
	RSSBeforeBytes  uint64  `json:"rss_before_bytes"`
	RSSAfterBytes   uint64  `json:"rss_after_bytes"`
	HWMAfterBytes   uint64  `json:"hwm_after_bytes"`
	BytesPerVisitor float64 `json:"bytes_per_visitor"`
	FillSeconds     float64 `json:"create_seconds"`
	// Cached is how many visitors the warm pass found in the cache (all of them with
	// the memory store); FillPasses the passes it took past the cold one.
	Cached     int     `json:"cached"`
	FillPasses int     `json:"fill_passes"`
	Cold       passFig `json:"cold"`
	Warm       passFig `json:"warm"`
}

type passFig struct {
	Hits           uint64            `json:"hits"`
	NotOK          uint64            `json:"not_2xx_3xx"`
	Seconds        float64           `json:"seconds"`
	RedisCalls     uint64            `json:"redis_calls"`
	RedisByCommand map[string]uint64 `json:"redis_calls_by_command,omitempty"`
	CallsPerHit    float64           `json:"redis_calls_per_hit"`
	// RedisReads is the socket reads Redis processed (INFO stats total_reads_processed):
	// a batch of lookups in one pipeline is one read, so reads per hit tell how well the
	// cold lookups were batched, which commands per hit cannot.
	RedisReads  uint64             `json:"redis_reads"`
	ReadsPerHit float64            `json:"redis_reads_per_hit"`
	Lookups     map[string]float64 `json:"consent_lookups,omitempty"`
}

// scaleMemory fills the consent cache with n visitors and reads the proxy's RSS
// before and after, and counts Redis commands on each visitor's first and second hit.
func (cr *compareRun) scaleMemory(ctx context.Context, so *scaleOptions, n int) (memoryPoint, error) {
	o, w := cr.o, cr.w
	mp := memoryPoint{Visitors: n, Store: so.store, CacheTTLSeconds: so.cacheTTL.Seconds()}
	// The stores bound their entries shard by shard, so a bound of exactly n would
	// evict some of the n visitors from the fuller shards: 1/8 more leaves room. The byte
	// bounds are set well past what the visitors weigh, so that the entries bound alone
	// decides (the defaults, 64 MiB of cache and 256 MiB of store, are sized for the
	// default entry bounds, not for a million).
	bound := n + n/8 + 1000
	tweak := func(c *proxyConfig) {
		if so.store == "memory" {
			c.RedisAddr = ""
			c.MaxEntries = bound
			c.MaxBytes = max(bound*1024, 16<<20)
			return
		}
		c.CacheMaxEntries = bound
		c.CacheMaxBytes = max(bound*256, 1<<20)
		c.CacheTTL = so.cacheTTL
	}
	dir := filepath.Join(cr.dir, fmt.Sprintf("memory-%d", n))
	fmt.Fprintf(w, "\n== memory: %d visitors, %s store\n", n, so.store)
	hcFill := func(lp *liveProxy) *fasthttp.HostClient {
		hc := cr.client(strings.TrimPrefix(lp.url, "http://"))
		hc.MaxConns = so.workers + 4
		return hc
	}

	// The instance that creates the visitors is not measured: a Redis budget of a
	// second keeps a busy machine from refusing the writes (503) by the thousand.
	createTweak := tweak
	if so.store == "redis" {
		createTweak = func(c *proxyConfig) {
			tweak(c)
			c.RedisTimeout = time.Second
		}
	}
	lp, err := cr.startConsentgate(dir+"-create", o.proxyCPU, o.gomaxprocs, createTweak)
	if err != nil {
		return mp, err
	}
	cr.proxies = append(cr.proxies, lp)
	defer cr.stopAll()
	warmUp := func(lp *liveProxy) error {
		// Hits without a cookie: connections, buffers and pools at their working size
		// before the baseline, so that the difference is the visitors'.
		spec, _ := mixByName("realistic")
		vp, err := newVisitorPool(spec, nil, nil)
		if err != nil {
			return err
		}
		lr := &loadRun{hc: hcFill(lp), baseURL: lp.url, templates: spec.templates, visitors: vp, seed: o.seed, timeout: o.timeout, abort: lp.proc.exited}
		lr.mix, _ = newPicker(templateWeights(spec.templates))
		st := lr.run(ctx, so.workers, max(o.warmup, time.Second), 7)
		if st.requests() == 0 {
			return fmt.Errorf("warm-up: no request completed")
		}
		return nil
	}
	if so.store == "memory" {
		if err := warmUp(lp); err != nil {
			return mp, err
		}
		g, err := readGroup(lp.proc.Pid())
		if err != nil {
			return mp, err
		}
		mp.RSSBeforeBytes = g.RSS
	}
	start := time.Now()
	cookies, err := createVisitorsParallel(ctx, hcFill(lp), lp.url, n, so.workers)
	if err != nil {
		return mp, err
	}
	mp.FillSeconds = time.Since(start).Seconds()
	fmt.Fprintf(w, "created %d visitors through POST /consent in %.1fs\n", n, mp.FillSeconds)

	if so.store == "redis" {
		// A fresh process: its cache has never seen these visitors, so the first pass
		// is cold, and its RSS baseline has no visitor in it.
		if err := lp.proc.stop(15 * time.Second); err != nil {
			return mp, err
		}
		cr.proxies = nil
		if lp, err = cr.startConsentgate(dir, o.proxyCPU, o.gomaxprocs, tweak); err != nil {
			return mp, err
		}
		cr.proxies = append(cr.proxies, lp)
		if err := warmUp(lp); err != nil {
			return mp, err
		}
		g, err := readGroup(lp.proc.Pid())
		if err != nil {
			return mp, err
		}
		mp.RSSBeforeBytes = g.RSS
	}
	hc := hcFill(lp)
	report := func(name string, fig passFig) {
		fmt.Fprintf(w, "%s pass: %d hits in %.1fs, %d not 2xx/3xx, Redis %d calls (%s) = %.4f per hit, %d reads = %.4f per hit; lookups %s\n",
			name, fig.Hits, fig.Seconds, fig.NotOK, fig.RedisCalls, joinCounts(fig.RedisByCommand), fig.CallsPerHit, fig.RedisReads, fig.ReadsPerHit, joinFloats(fig.Lookups))
		if e := fig.Lookups["redis/error"]; e > float64(fig.Hits)/100 {
			fmt.Fprintf(w, "note: %.0f lookups failed: not answered within consent.redis.timeout (5 ms by default), which counts the wait for the proxy's own core as well as Redis's answer (-fill-connections keeps that core saturated); those hits were decided as on_store_error says\n", e)
		}
	}
	if mp.Cold, err = cr.visitPass(ctx, lp, hc, cookies, so.workers); err != nil {
		return mp, err
	}
	report("cold", mp.Cold)
	// A lookup that failed (the store's budget missed) caches nothing; passes are
	// repeated until (nearly) every visitor is cached, so that the warm pass and the
	// memory are those of n cached visitors. How many were is reported either way.
	misses := mp.Cold.Lookups["cache/miss"]
	for mp.FillPasses = 0; mp.FillPasses < 5 && misses > float64(n)/1000 && ctx.Err() == nil; mp.FillPasses++ {
		fig, err := cr.visitPass(ctx, lp, hc, cookies, so.workers)
		if err != nil {
			return mp, err
		}
		report("fill", fig)
		misses = fig.Lookups["cache/miss"]
	}
	if mp.Warm, err = cr.visitPass(ctx, lp, hc, cookies, so.workers); err != nil {
		return mp, err
	}
	report("warm", mp.Warm)
	mp.Cached = int(mp.Warm.Lookups["cache/hit"])
	if so.store == "memory" {
		mp.Cached = n
	}
	if mp.Cached < n*99/100 {
		fmt.Fprintf(w, "note: only %d of %d visitors were in the cache at the end (failed lookups cache nothing): the memory is for %d\n", mp.Cached, n, mp.Cached)
	}
	g, err := readGroup(lp.proc.Pid())
	if err != nil {
		return mp, err
	}
	mp.RSSAfterBytes, mp.HWMAfterBytes = g.RSS, g.HWM
	if mp.Cached > 0 {
		mp.BytesPerVisitor = (float64(mp.RSSAfterBytes) - float64(mp.RSSBeforeBytes)) / float64(mp.Cached)
	}
	fmt.Fprintf(w, "RSS %.1f MiB before, %.1f MiB after (peak %.1f MiB): %.0f bytes per visitor\n",
		mib(mp.RSSBeforeBytes), mib(mp.RSSAfterBytes), mib(mp.HWMAfterBytes), mp.BytesPerVisitor)
	return mp, lp.proc.stop(15 * time.Second)
}

// visitPass sends one GA4 hit per visitor, from the EEA (so that the consent is
// looked up), spread over workers, and counts what the store did meanwhile.
func (cr *compareRun) visitPass(ctx context.Context, lp *liveProxy, hc *fasthttp.HostClient, cookies [][]byte, workers int) (passFig, error) {
	before, err := redisCommandStats(cr.redis.Addr)
	if err != nil {
		return passFig{}, err
	}
	reads0, err := redisReads(cr.redis.Addr)
	if err != nil {
		return passFig{}, err
	}
	lookups0, err := scrapeLookups(lp.admin)
	if err != nil {
		return passFig{}, err
	}
	var next, notOK, hits atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	url := lp.url + "/g/collect?" + ga4Query + "&en=page_view&_et=1234"
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.Set("X-Forwarded-For", "89.160.20.112")
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= uint64(len(cookies)) {
					return
				}
				req.Header.SetCookieBytesKV(cgName, cookies[i])
				err := hc.DoTimeout(req, resp, cr.o.timeout)
				hits.Add(1)
				if err != nil || resp.StatusCode() < 200 || resp.StatusCode() >= 400 {
					notOK.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fig := passFig{Hits: hits.Load(), NotOK: notOK.Load(), Seconds: time.Since(start).Seconds()}
	after, err := redisCommandStats(cr.redis.Addr)
	if err != nil {
		return fig, err
	}
	reads1, err := redisReads(cr.redis.Addr)
	if err != nil {
		return fig, err
	}
	fig.RedisReads = readsBetween(reads0, reads1)
	lookups1, err := scrapeLookups(lp.admin)
	if err != nil {
		return fig, err
	}
	fig.RedisCalls, fig.RedisByCommand = redisCallsBetween(before, after)
	fig.Lookups = map[string]float64{}
	for k, v := range lookups1 {
		if d := v - lookups0[k]; d != 0 {
			fig.Lookups[k] = d
		}
	}
	if fig.Hits > 0 {
		fig.CallsPerHit = float64(fig.RedisCalls) / float64(fig.Hits)
		fig.ReadsPerHit = float64(fig.RedisReads) / float64(fig.Hits)
	}
	if lp.proc.Exited() {
		return fig, fmt.Errorf("the proxy died (%v): %s", lp.proc.waitErr, lp.proc.logTail(20))
	}
	return fig, nil
}

// redisReads reads INFO stats' total_reads_processed.
func redisReads(addr string) (uint64, error) {
	body, err := redisInfo(addr, "stats")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_reads_processed:"); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redis INFO stats: no total_reads_processed")
}

// readingReads is what the readings of a pass add to the reads between its two
// redisReads: each INFO is a read and its connection's close another, and between the
// two come the first's close, a commandstats reading and the second's INFO.
const readingReads = 4

func readsBetween(before, after uint64) uint64 {
	if after < before+readingReads {
		return 0
	}
	return after - before - readingReads
}

// createVisitorsParallel creates n visitors who granted every purpose through the
// consent API over several connections, and returns their cookies.
func createVisitorsParallel(ctx context.Context, hc *fasthttp.HostClient, baseURL string, n, workers int) ([][]byte, error) {
	out := make([][]byte, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	const batch = 100
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := int(next.Add(batch)) - batch
				if lo >= n {
					return
				}
				hi := min(lo+batch, n)
				got, _, err := createVisitors(hc, baseURL, hi-lo, 0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				copy(out[lo:hi], got)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, nil
}

func printMemory(w io.Writer, pts []memoryPoint) {
	fmt.Fprintf(w, "\n%-10s %-7s %9s %11s %11s %11s %12s %15s %15s %15s\n", "visitors", "store", "cached", "RSS before", "RSS after", "peak RSS", "per visitor", "cold calls/hit", "cold reads/hit", "warm calls/hit")
	for _, p := range pts {
		fmt.Fprintf(w, "%-10d %-7s %9d %7.1f MiB %7.1f MiB %7.1f MiB %10.0f B %15.4f %15.4f %15.4f\n", p.Visitors, p.Store, p.Cached,
			mib(p.RSSBeforeBytes), mib(p.RSSAfterBytes), mib(p.HWMAfterBytes), p.BytesPerVisitor, p.Cold.CallsPerHit, p.Cold.ReadsPerHit, p.Warm.CallsPerHit)
	}
}
