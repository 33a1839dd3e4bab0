package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The soak's consent stream: visitors who answer a banner through POST /consent, again
// and again, each keeping the cookie the last acknowledged write returned (the load's
// stream visitors send it). What was acknowledged is remembered, so that the decisions
// the instances make and what the store holds at the end can be checked against it.

// choice is a banner's answer, as the stream writes it.
type choice uint8

const (
	grantAll choice = iota
	denyMarketing
	denyAll
	numChoices
)

var choiceNames = [numChoices]string{"grant_all", "deny_marketing", "deny_all"}

var choiceBodies = [numChoices]string{
	`{"purposes":{"statistics":true,"marketing":true}}`,
	`{"purposes":{"statistics":true,"marketing":false}}`,
	`{"purposes":{"statistics":false,"marketing":false}}`,
}

// purposeStates is what a decision or a stored state says of the two purposes the
// stream writes, as the proxy's JSON words them: granted, denied or unset.
type purposeStates struct{ Statistics, Marketing string }

func (c choice) states() purposeStates {
	return [numChoices]purposeStates{{"granted", "granted"}, {"granted", "denied"}, {"denied", "denied"}}[c]
}

// streamVisitor is one visitor of the stream. mu is held while a write or a check of
// the visitor is in flight, so the two never overlap.
type streamVisitor struct {
	mu   sync.Mutex
	slot int // in the stream's liveCookies
	id   string
	// The last acknowledged write: its choice, the version the proxy answered, and
	// when it was sent and answered.
	acked           bool
	last            choice
	version         int64
	sentAt, ackedAt time.Time
	// pending are the writes after it that were not acknowledged (503, a timeout): the
	// store may or may not have applied them.
	pending []choice
}

// lostOK: the visitor's last acknowledged write went to the Redis that was killed, so
// the store may have lost it.
func (v *streamVisitor) lostOK(gone time.Time) bool {
	return !gone.IsZero() && v.sentAt.Before(gone)
}

// consentStream writes and checks the visitors' consent.
type consentStream struct {
	r        *soakRun
	visitors []*streamVisitor
	live     *liveCookies
	writes   atomic.Uint64 // sent, for the instance to send the next one to

	mu sync.Mutex // guards the counts
	wc writeCounts
	dc decisionCounts
}

type writeCounts struct {
	ok, unavailable, transport, unexpected uint64
	byChoice                               [numChoices]uint64
	// unavailableDown: the 503s answered while Redis was down; lastUnavailable: the
	// last 503 after it was back, counted from its return (-1: none).
	unavailableDown uint64
	lastUnavailable time.Duration
	// idKept counts the updates after the Redis restart that kept the visitor's ID: the
	// record was gone, the cookie's snapshot proved the ID.
	idKept uint64
}

func newConsentStream(r *soakRun) *consentStream {
	cs := &consentStream{r: r, live: newLiveCookies(r.o.visitors), wc: writeCounts{lastUnavailable: -1}}
	for i := range r.o.visitors {
		cs.visitors = append(cs.visitors, &streamVisitor{slot: i})
	}
	return cs
}

// populate gives every visitor a first choice before the load starts, retrying what
// the store could not take, as a banner would.
func (cs *consentStream) populate(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(cs.r.o.seed, 0x5eed))
	choices := make([]choice, len(cs.visitors))
	for i := range choices {
		choices[i] = choice(rng.IntN(int(numChoices)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	next := atomic.Int64{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(cs.visitors) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				v := cs.visitors[i]
				v.mu.Lock()
				for attempt := 0; !cs.write(v, choices[i]); attempt++ {
					if attempt == 10 {
						v.mu.Unlock()
						errs <- fmt.Errorf("consent stream: visitor %d's first write failed 10 times", i)
						return
					}
					time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
				}
				v.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// run writes -consent-rate choices a second to random visitors until ctx ends.
func (cs *consentStream) run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(cs.r.o.seed, 0xc0))
	t := time.NewTicker(time.Duration(float64(time.Second) / cs.r.o.consentRate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A visitor being checked is skipped: another takes the tick.
		for range 3 {
			v := cs.visitors[rng.IntN(len(cs.visitors))]
			if v.mu.TryLock() {
				cs.write(v, choice(rng.IntN(int(numChoices))))
				v.mu.Unlock()
				break
			}
		}
	}
}

// write posts c for v (locked by the caller) with v's cookie, and records the outcome;
// it reports whether the write was acknowledged.
func (cs *consentStream) write(v *streamVisitor, c choice) bool {
	inst := cs.r.inst[cs.writes.Add(1)%2]
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + inst.public + "/consent")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	if cookie := cs.live.get(v.slot); cookie != nil {
		req.Header.SetCookieBytesKV(cgName, cookie)
	}
	req.SetBodyString(choiceBodies[c])
	sent := time.Now()
	err := inst.api.DoTimeout(req, resp, cs.r.o.timeout)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	switch {
	case err != nil:
		cs.wc.transport++
		v.pending = append(v.pending, c)
		return false
	case resp.StatusCode() == fasthttp.StatusServiceUnavailable:
		// The store did not take it ("nothing was saved, retry"): during the Redis
		// outage, as documented; counted, not a failure of the run.
		cs.wc.unavailable++
		v.pending = append(v.pending, c)
		gone, back := cs.r.restartTimes()
		now := time.Now()
		switch {
		case !gone.IsZero() && (back.IsZero() || now.Before(back)):
			cs.wc.unavailableDown++
		case !back.IsZero():
			cs.wc.lastUnavailable = now.Sub(back)
		}
		return false
	case resp.StatusCode() != fasthttp.StatusOK:
		cs.wc.unexpected++
		cs.r.problem("consent write to %s: status %d, %s", inst.name, resp.StatusCode(), oneLine(resp.Body()))
		return false
	}
	var st struct {
		Purposes purposeStates `json:"purposes"`
		Version  int64         `json:"version"`
	}
	cookie, cerr := responseCookie(resp)
	if jerr := json.Unmarshal(resp.Body(), &st); jerr != nil || cerr != nil || st.Purposes != c.states() {
		cs.wc.unexpected++
		cs.r.problem("consent write to %s: answered %s (cookie: %v), want %s", inst.name, oneLine(resp.Body()), cerr, choiceNames[c])
		return false
	}
	id, _, _ := bytes.Cut(cookie, []byte("."))
	gone, _ := cs.r.restartTimes()
	if v.acked {
		if string(id) != v.id {
			cs.r.problem("consent stream: visitor %d's update was given a new ID (the cookie's signed snapshot should prove the old one)", v.slot)
		} else if v.lostOK(gone) {
			cs.wc.idKept++
		}
		if st.Version <= v.version {
			cs.r.problem("consent stream: visitor %d's version went from %d to %d", v.slot, v.version, st.Version)
		}
	}
	cs.wc.ok++
	cs.wc.byChoice[c]++
	v.id, v.acked, v.last, v.version = string(id), true, c, st.Version
	v.sentAt, v.ackedAt, v.pending = sent, time.Now(), nil
	cs.live.set(v.slot, cookie)
	return true
}

func responseCookie(resp *fasthttp.Response) ([]byte, error) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(consentCookieName)
	if !resp.Header.Cookie(c) || len(c.Value()) == 0 {
		return nil, errNoCookie
	}
	return append([]byte(nil), c.Value()...), nil
}

// decision is what POST /admin/explain says of a hit.
type decision struct {
	Consent     purposeStates `json:"consent"`
	Sources     purposeStates `json:"consent_sources"`
	Subdivision *string       `json:"subdivision"`
	Signals     struct {
		Store string `json:"store"`
	} `json:"signals"`
}

// explain asks inst how it would decide a GA4 page view from ip with the cookie.
func (r *soakRun) explain(inst *soakInstance, cookie, ip string) (decision, error) {
	in := map[string]any{
		"method":      "GET",
		"url":         "http://" + inst.public + "/g/collect?v=2&tid=G-SOAK&cid=1.2&en=page_view",
		"headers":     map[string]string{"X-Forwarded-For": ip},
		"remote_addr": "127.0.0.1:40000",
	}
	if cookie != "" {
		in["headers"].(map[string]string)["Cookie"] = consentCookieName + "=" + cookie
	}
	body, _ := json.Marshal(in)
	code, out, err := r.adminCall(inst, fasthttp.MethodPost, "/admin/explain", body)
	if err != nil {
		return decision{}, err
	}
	var d decision
	if err := json.Unmarshal(out, &d); err != nil || code != fasthttp.StatusOK {
		return decision{}, fmt.Errorf("explain: status %d, %s", code, oneLine(out))
	}
	return d, nil
}

// verdict is how one decision compares with the visitor's choice.
type verdict struct {
	ok       bool
	mismatch string // what went wrong, when !ok
	// snapshot: the cookie's snapshot decided a purpose. For a record lost with Redis:
	// revived, its grants applied again (the snapshot in full); notRevived, a grant
	// of the visitor's not applied (refusals only).
	snapshot, revived, notRevived bool
}

// afterLoss is what a decision must make of a record lost with the killed Redis.
type afterLoss uint8

const (
	// lossRefusals: the snapshot's refusals only (after_data_loss: refusals_only).
	lossRefusals afterLoss = iota
	// lossEither: refusals only or in full. The instance renews the dataset epoch on its
	// store health check, every 2 s: until then a lost record is taken for a deleted one.
	lossEither
	// lossRestored: the snapshot in full, grants too (after_data_loss: restore).
	lossRestored
)

// epochGrace bounds how long after Redis's return an instance may go on deciding a lost
// record by its snapshot's refusals only: two of its 2-second health checks, and a
// second for the snapshot's whole-second issue time.
const epochGrace = 5 * time.Second

// judge compares a decision with what README's "The signed consent snapshot" says it
// must be for a visitor whose last acknowledged choice is last (pending: later writes
// the store may have applied), given what the store answered:
//   - a record (found): the record, i.e. last or a pending choice;
//   - no answer (error): the cookie's snapshot in full, i.e. last;
//   - no record, the snapshot older than the dataset (dataset_lost): only when the
//     record may have been lost with the killed Redis (lostOK) and loss allows it, and
//     then the snapshot in full;
//   - no record (not_found): only when lostOK, and loss does not require the snapshot in
//     full; then its refusals only, grants left unset.
func judge(d decision, last choice, pending []choice, lostOK bool, loss afterLoss) verdict {
	v := verdict{snapshot: d.Sources.Statistics == "snapshot" || d.Sources.Marketing == "snapshot"}
	want := last.states()
	grants := want.Statistics == "granted" || want.Marketing == "granted"
	switch d.Signals.Store {
	case "found":
		if d.Consent == want {
			v.ok = true
			return v
		}
		for _, c := range pending {
			if d.Consent == c.states() {
				v.ok = true
				return v
			}
		}
	case "error":
	case "dataset_lost":
		switch {
		case !lostOK:
			v.mismatch = "decided by a snapshot older than the dataset: an acknowledged write is not in the store"
			return v
		case loss == lossRefusals:
			v.mismatch = "the snapshot decided in full after the data loss, against after_data_loss: refusals_only"
			return v
		}
		v.revived = grants
	case "not_found":
		switch {
		case !lostOK:
			v.mismatch = "record missing: an acknowledged write is not in the store"
			return v
		case loss == lossRestored:
			v.mismatch = "the record went with Redis and the snapshot gave its refusals only: the dataset epoch did not move"
			return v
		}
		v.notRevived = grants
		want = purposeStates{refusalOnly(want.Statistics), refusalOnly(want.Marketing)}
	default:
		v.mismatch = "the consent cookie was not read (store: " + d.Signals.Store + ")"
		return v
	}
	if d.Consent == want {
		v.ok = true
		return v
	}
	if d.Consent.Statistics == "granted" && want.Statistics != "granted" || d.Consent.Marketing == "granted" && want.Marketing != "granted" {
		v.mismatch = "granted a purpose it may not"
	} else {
		v.mismatch = "refused a purpose it should grant"
	}
	v.revived, v.notRevived = false, false
	return v
}

// lossRule is what a decision made at at must make of the lost record of a visitor
// whose last write was acknowledged at acked: with restore, the snapshot in full once
// the instance has had epochGrace to see the new dataset epoch; either before, or for a
// snapshot that may have been issued in the second the new dataset began (acknowledged
// a second or less before Redis was back: it counts as of the new dataset).
func (r *soakRun) lossRule(at, acked time.Time) afterLoss {
	if r.o.afterDataLoss == "refusals_only" {
		return lossRefusals
	}
	_, back := r.restartTimes()
	if back.IsZero() || at.Before(back.Add(epochGrace)) || !acked.Before(back.Add(-time.Second)) {
		return lossEither
	}
	return lossRestored
}

func refusalOnly(s string) string {
	if s == "denied" {
		return s
	}
	return "unset"
}
