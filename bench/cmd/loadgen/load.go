package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

const consentCookieName = "cg_id"

var (
	hdrXFF = []byte("X-Forwarded-For")
	hdrGPC = []byte("Sec-GPC")
	one    = []byte("1")
	cgName = []byte(consentCookieName)
)

// visitorPool holds what the workers pick visitors from, all as bytes so that a
// pick is an index and a header set, never a conversion.
type visitorPool struct {
	ipClasses [][][]byte // per jurisdiction class, its IPs
	cookies   [numConsentClasses][][]byte
	// stream holds the cookies of the consentFromStream class, which change during the run.
	stream  *liveCookies
	juris   picker
	consent picker
	// gpcPercent of hits carry Sec-GPC: 1.
	gpcPercent int
}

func newVisitorPool(spec mixSpec, granted, deniedMarketing [][]byte) (*visitorPool, error) {
	return buildVisitorPool(spec, granted, deniedMarketing, nil)
}

// buildVisitorPool is newVisitorPool with the live cookies of the consentFromStream class.
func buildVisitorPool(spec mixSpec, granted, deniedMarketing [][]byte, stream *liveCookies) (*visitorPool, error) {
	vp := &visitorPool{gpcPercent: spec.gpcPercent, stream: stream}
	for _, jc := range jurisdictionMix {
		ips := make([][]byte, len(jc.ips))
		for j, ip := range jc.ips {
			ips[j] = []byte(ip)
		}
		vp.ipClasses = append(vp.ipClasses, ips)
	}
	var err error
	if vp.juris, err = newPicker(spec.juris); err != nil {
		return nil, fmt.Errorf("jurisdiction mix: %w", err)
	}
	vp.cookies[consentGranted] = granted
	vp.cookies[consentDeniedMarketing] = deniedMarketing
	// A class without cookies (a target without the consent API) would otherwise be
	// picked and silently sent as "none"; folding its weight into "none" keeps the
	// per-class counts honest.
	cw := append([]uint64(nil), spec.consent...)
	for _, c := range []int{consentGranted, consentDeniedMarketing, consentFromStream} {
		if len(vp.cookies[c]) == 0 && (c != consentFromStream || stream == nil || len(stream.slots) == 0) {
			cw[consentNone] += cw[c]
			cw[c] = 0
		}
	}
	if vp.consent, err = newPicker(cw); err != nil {
		return nil, fmt.Errorf("consent mix: %w", err)
	}
	return vp, nil
}

// cookie draws a cookie of consent class cc; nil for a visitor without one.
func (vp *visitorPool) cookie(cc int, r *rand.Rand) []byte {
	if cc == consentFromStream {
		return vp.stream.pick(r)
	}
	if cookies := vp.cookies[cc]; len(cookies) > 0 {
		return cookies[r.IntN(len(cookies))]
	}
	return nil
}

// liveCookies are the consent cookies of visitors whose choice changes during a run
// (loadgen soak's consent stream): each acknowledged write replaces the visitor's
// cookie, and the workers send the new one from their next hit, as a browser would.
type liveCookies struct {
	slots []atomic.Pointer[[]byte]
}

func newLiveCookies(n int) *liveCookies {
	return &liveCookies{slots: make([]atomic.Pointer[[]byte], n)}
}

func (l *liveCookies) set(i int, c []byte) { l.slots[i].Store(&c) }

// get returns visitor i's current cookie, nil while it has none.
func (l *liveCookies) get(i int) []byte {
	if p := l.slots[i].Load(); p != nil {
		return *p
	}
	return nil
}

// pick returns a visitor's current cookie, nil while it has none.
func (l *liveCookies) pick(r *rand.Rand) []byte { return l.get(r.IntN(len(l.slots))) }

// runStats is what one run (warm-up or measured) observed from the client side.
// Each worker fills its own and they are merged after the run.
type runStats struct {
	hist       histogram
	status     [600]uint64
	errors     map[string]uint64
	byTemplate []uint64
	// non-2xx/3xx per template, to tell at once which vendor misbehaves
	badByTemplate []uint64
	byJuris       []uint64
	byConsent     [numConsentClasses]uint64
	gpc           uint64
	elapsed       time.Duration
}

func newRunStats(templates int) *runStats {
	return &runStats{
		errors:        map[string]uint64{},
		byTemplate:    make([]uint64, templates),
		badByTemplate: make([]uint64, templates),
		byJuris:       make([]uint64, len(jurisdictionMix)),
	}
}

func (s *runStats) merge(o *runStats) {
	s.hist.Merge(&o.hist)
	for i, c := range o.status {
		s.status[i] += c
	}
	for k, v := range o.errors {
		s.errors[k] += v
	}
	for i := range o.byTemplate {
		s.byTemplate[i] += o.byTemplate[i]
		s.badByTemplate[i] += o.badByTemplate[i]
	}
	for i := range o.byJuris {
		s.byJuris[i] += o.byJuris[i]
	}
	for i := range o.byConsent {
		s.byConsent[i] += o.byConsent[i]
	}
	s.gpc += o.gpc
}

func (s *runStats) requests() uint64 { return s.hist.Count() }

func (s *runStats) errorCount() uint64 {
	var n uint64
	for _, v := range s.errors {
		n += v
	}
	return n
}

func (s *runStats) count5xx() uint64 {
	var n uint64
	for c := 500; c < 600; c++ {
		n += s.status[c]
	}
	return n
}

// loadRun drives the target with n workers until the duration is up or ctx ends.
type loadRun struct {
	hc        *fasthttp.HostClient
	baseURL   string
	templates []hitTemplate
	mix       picker
	visitors  *visitorPool
	seed      uint64
	timeout   time.Duration
	// abort closes when the proxy dies, so the run ends at once instead of
	// spinning on connection errors until the duration is up. Nil: never.
	abort <-chan struct{}
	// rate, when > 0, is the offered load in requests per second over all workers
	// (open loop); 0 is a closed loop, each worker sending as soon as it is answered.
	rate float64
	// slow, when set, counts the hits slower than its threshold by the second they
	// were due in (loadgen soak: to tell whether the tail follows its operations).
	slow *slowHits
}

// slowHits counts slow hits per second of a run. Only slow hits touch it, with one
// atomic add.
type slowHits struct {
	start     time.Time
	threshold time.Duration
	perSecond []atomic.Uint64
}

func newSlowHits(start time.Time, threshold, d time.Duration) *slowHits {
	return &slowHits{start: start, threshold: threshold, perSecond: make([]atomic.Uint64, int(d/time.Second)+2)}
}

func (s *slowHits) record(due time.Time, lat time.Duration) {
	if lat < s.threshold {
		return
	}
	sec := int(due.Sub(s.start) / time.Second)
	s.perSecond[min(max(sec, 0), len(s.perSecond)-1)].Add(1)
}

func (lr *loadRun) run(ctx context.Context, workers int, d time.Duration, phase uint64) *runStats {
	var stop atomic.Bool
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// Workers poll one atomic; the watcher turns the deadline, an interrupt or the
	// proxy's death into it, so no context or channel is touched per request.
	go func() {
		select {
		case <-ctx.Done():
		case <-lr.abort:
		}
		stop.Store(true)
	}()

	results := make([]*runStats, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		results[i] = newRunStats(len(lr.templates))
		// Seeds differ per worker and per phase, and repeat across runs, so two
		// runs of the same flags send the same sequence of hits.
		r := rand.New(rand.NewPCG(lr.seed, phase<<32|uint64(i)))
		var interval time.Duration
		var first time.Time
		if lr.rate > 0 {
			// Each worker sends every workers/rate seconds, the workers evenly
			// staggered, so the arrivals are regular rather than in bursts.
			interval = time.Duration(float64(workers) / lr.rate * float64(time.Second))
			first = start.Add(interval * time.Duration(i) / time.Duration(workers))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lr.worker(r, &stop, results[i], first, interval)
		}()
	}
	wg.Wait()
	total := newRunStats(len(lr.templates))
	// Requests in flight when the clock ran out were started inside the window and
	// are counted, so the rate uses the time until the last one came back.
	total.elapsed = time.Since(start)
	for _, r := range results {
		total.merge(r)
	}
	return total
}

// worker sends hits until stop. With interval > 0 it sends at first, first+interval,
// ... and times each hit from when it was due, not from when it went out: a slow
// answer that delays the next send counts in the latency (no coordinated omission).
func (lr *loadRun) worker(r *rand.Rand, stop *atomic.Bool, st *runStats, first time.Time, interval time.Duration) {
	// One request per template, built once: a hit only changes the visitor headers.
	reqs := make([]*fasthttp.Request, len(lr.templates))
	for i, t := range lr.templates {
		req := &fasthttp.Request{}
		req.SetRequestURI(lr.baseURL + t.pathQuery)
		req.Header.SetMethod(t.method)
		if t.contentType != "" {
			req.Header.SetContentType(t.contentType)
		}
		if t.body != nil {
			// The body is shared read-only by all workers; SetBodyRaw does not copy.
			req.SetBodyRaw(t.body)
		}
		reqs[i] = req
	}
	var resp fasthttp.Response
	vp := lr.visitors
	for !stop.Load() {
		ti := lr.mix.pick(r)
		req := reqs[ti]
		h := &req.Header

		jc := vp.juris.pick(r)
		ips := vp.ipClasses[jc]
		h.SetBytesKV(hdrXFF, ips[r.IntN(len(ips))])

		cc := vp.consent.pick(r)
		if c := vp.cookie(cc, r); len(c) > 0 {
			h.SetCookieBytesKV(cgName, c)
		} else {
			h.DelAllCookies()
		}
		gpc := r.IntN(100) < vp.gpcPercent
		if gpc {
			h.SetBytesKV(hdrGPC, one)
		} else {
			h.DelBytes(hdrGPC)
		}

		var t0 time.Time
		if interval > 0 {
			if d := time.Until(first); d > 0 {
				time.Sleep(d)
			}
			t0 = first
			first = first.Add(interval)
		} else {
			t0 = time.Now()
		}
		err := lr.hc.DoTimeout(req, &resp, lr.timeout)
		lat := time.Since(t0)
		if lr.slow != nil {
			lr.slow.record(t0, lat)
		}

		st.byTemplate[ti]++
		st.byJuris[jc]++
		st.byConsent[cc]++
		if gpc {
			st.gpc++
		}
		// Failed requests count in the latency too: leaving out the slow failures
		// would flatter the tail.
		st.hist.Record(lat)
		if err != nil {
			st.errors[errKind(err)]++
			st.badByTemplate[ti]++
			continue
		}
		code := resp.StatusCode()
		if code < 0 || code >= len(st.status) {
			code = 0
		}
		st.status[code]++
		if code < 200 || code >= 400 {
			st.badByTemplate[ti]++
		}
	}
}

// errKind names an error without its addresses so that errors group well.
func errKind(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout):
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no free connections"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "connection closed by server"
	}
	return err.Error()
}

// createVisitors asks the proxy's consent API for the cookies of the consented
// visitors, as a site's banner would.
func createVisitors(hc *fasthttp.HostClient, baseURL string, granted, deniedMarketing int) (g, d [][]byte, err error) {
	create := func(body string, n int) ([][]byte, error) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		out := make([][]byte, 0, n)
		for range n {
			req.Reset()
			req.SetRequestURI(baseURL + "/consent")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			req.SetBodyString(body)
			// A 503 means the store did not answer within its budget (5 ms of Redis
			// by default), which a busy machine misses often when many visitors are
			// created at once; the API says to retry, as a banner would (for ~8 s).
			for attempt := 0; ; attempt++ {
				if err := hc.DoTimeout(req, resp, 5*time.Second); err != nil {
					return nil, fmt.Errorf("POST /consent: %w", err)
				}
				if resp.StatusCode() != fasthttp.StatusServiceUnavailable || attempt == 12 {
					break
				}
				time.Sleep(min(time.Duration(20<<attempt)*time.Millisecond, time.Second))
			}
			if resp.StatusCode() != fasthttp.StatusOK {
				return nil, fmt.Errorf("POST /consent: status %d: %.120s", resp.StatusCode(), strings.Join(strings.Fields(string(resp.Body())), " "))
			}
			c := fasthttp.AcquireCookie()
			c.SetKey(consentCookieName)
			ok := resp.Header.Cookie(c)
			v := append([]byte(nil), c.Value()...)
			fasthttp.ReleaseCookie(c)
			if !ok || len(v) == 0 {
				return nil, fmt.Errorf("POST /consent: no %s cookie in the response", consentCookieName)
			}
			out = append(out, v)
		}
		return out, nil
	}
	if g, err = create(`{"purposes":{"statistics":true,"marketing":true}}`, granted); err != nil {
		return nil, nil, fmt.Errorf("granted visitors: %w", err)
	}
	if d, err = create(`{"purposes":{"statistics":true,"marketing":false}}`, deniedMarketing); err != nil {
		return nil, nil, fmt.Errorf("marketing-denied visitors: %w", err)
	}
	return g, d, nil
}
