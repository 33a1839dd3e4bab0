package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
)

// The checks of the consent stream: decisions sampled while the soak runs, and every
// acknowledged write at the end.

// ipEEA is an EEA visitor of the realistic mix (SE in both test databases).
const ipEEA = "89.160.20.112"

// decisionCounts are the sampled decisions and how they compared.
type decisionCounts struct {
	sampled, matched uint64
	byStore          map[string]uint64
	mismatches       map[string]uint64
	// From the Redis restart on, the decisions the cookie's snapshot took part in: in
	// full while the store did not answer; in full once it answered with no record and
	// the snapshot older than its dataset (dataset_lost); its refusals only once it
	// answered with no record (not_found). Of the visitors whose record was lost, those
	// whose grants were applied again (revived) and those whose were not (notRevived).
	snapshotFull, snapshotLost, snapshotRefusals, revived, notRevived uint64
	// firstRefusalAfterBack and firstRevivedAfterBack: the first sampled decision after
	// Redis came back whose refusal the snapshot kept with the record gone, and whose
	// grants it applied again, counted from Redis's return (-1: none).
	firstRefusalAfterBack, firstRevivedAfterBack time.Duration
}

// sampleDecisions asks the instances in turn, every -explain-every, how they decide a
// hit of a random visitor whose last write has settled, and compares it with the
// visitor's choice (judge).
func (cs *consentStream) sampleDecisions(ctx context.Context) {
	r := cs.r
	rng := rand.New(rand.NewPCG(r.o.seed, 0xe1))
	t := time.NewTicker(r.o.explainEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		inst := r.inst[n%2]
		for range 5 {
			v := cs.visitors[rng.IntN(len(cs.visitors))]
			if !v.mu.TryLock() {
				continue
			}
			if !v.acked || time.Since(v.ackedAt) < r.o.settle {
				v.mu.Unlock()
				continue
			}
			at := time.Now()
			d, err := r.explain(inst, string(cs.live.get(v.slot)), ipEEA)
			// Read after the answer: a restart that began meanwhile is known then.
			gone, back := r.restartTimes()
			last, pending, lostOK, loss := v.last, slices.Clone(v.pending), v.lostOK(gone), r.lossRule(at, v.ackedAt)
			v.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil && !inst.proc.Exited() {
					r.problem("explain on %s: %v", inst.name, err)
				}
				break
			}
			cs.record(judge(d, last, pending, lostOK, loss), d, v.slot, inst, at, gone, back)
			break
		}
	}
}

func (cs *consentStream) record(vd verdict, d decision, slot int, inst *soakInstance, at, gone, back time.Time) {
	cs.mu.Lock()
	dc := &cs.dc
	if dc.byStore == nil {
		dc.byStore, dc.mismatches = map[string]uint64{}, map[string]uint64{}
		dc.firstRefusalAfterBack, dc.firstRevivedAfterBack = -1, -1
	}
	dc.sampled++
	dc.byStore[d.Signals.Store]++
	if !vd.ok {
		dc.mismatches[vd.mismatch]++
		cs.mu.Unlock()
		cs.r.problem("decision of %s for visitor %d: %s (store %s, consent %+v, sources %+v)", inst.name, slot, vd.mismatch, d.Signals.Store, d.Consent, d.Sources)
		return
	}
	dc.matched++
	if !gone.IsZero() && !at.Before(gone) {
		switch {
		case vd.snapshot && d.Signals.Store == "error":
			dc.snapshotFull++
		case vd.snapshot && d.Signals.Store == "dataset_lost":
			dc.snapshotLost++
		case vd.snapshot && d.Signals.Store == "not_found":
			dc.snapshotRefusals++
			if !back.IsZero() && dc.firstRefusalAfterBack < 0 {
				dc.firstRefusalAfterBack = at.Sub(back)
			}
		}
		switch {
		case vd.revived:
			dc.revived++
			if !back.IsZero() && dc.firstRevivedAfterBack < 0 {
				dc.firstRevivedAfterBack = at.Sub(back)
			}
		case vd.notRevived:
			dc.notRevived++
		}
	}
	cs.mu.Unlock()
}

// finalCounts is the check of every visitor's last acknowledged write at the end.
type finalCounts struct {
	visitors, neverAcked int
	// readable: GET /consent returns it. lostWithRedis: it went to the killed Redis and
	// is gone, and the snapshot stands in as documented; of those, refusalsKept had a
	// refusal the snapshot still applies, grantsRevived grants it applies again, and
	// grantsNotRevived grants it does not (after_data_loss: refusals_only).
	readable, lostWithRedis, refusalsKept, grantsRevived, grantsNotRevived int
	lost, unverified                                                       int
}

// verifyAll checks, once the load and the stream have stopped, that every visitor's
// last acknowledged write is either in the store or, if it went to the Redis that was
// killed, still applied through the cookie's snapshot: with restore, in full, once the
// instances have had epochGrace to see the new dataset epoch.
func (cs *consentStream) verifyAll(ctx context.Context) finalCounts {
	r := cs.r
	gone, back := r.restartTimes()
	if wait := time.Until(back.Add(epochGrace)); !back.IsZero() && wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	fc := finalCounts{visitors: len(cs.visitors)}
	for i, v := range cs.visitors {
		if ctx.Err() != nil {
			break
		}
		v.mu.Lock()
		if !v.acked {
			fc.neverAcked++
			v.mu.Unlock()
			continue
		}
		inst := r.inst[i%2]
		cookie := string(cs.live.get(v.slot))
		code, stored, err := r.readConsent(inst, cookie)
		switch {
		case err != nil:
			fc.unverified++
			r.problem("visitor %d: GET /consent on %s: %v", v.slot, inst.name, err)
		case code == fasthttp.StatusOK && (stored == v.last.states() || slices.ContainsFunc(v.pending, func(c choice) bool { return c.states() == stored })):
			fc.readable++
		case code == fasthttp.StatusOK:
			fc.lost++
			r.problem("visitor %d: the store holds %+v, the last acknowledged write was %s", v.slot, stored, choiceNames[v.last])
		case code == fasthttp.StatusNotFound && !v.lostOK(gone):
			fc.lost++
			r.problem("visitor %d: the write acknowledged at +%s is not in the store", v.slot, v.ackedAt.Sub(r.start).Round(time.Millisecond))
		case code == fasthttp.StatusNotFound:
			d, err := r.explain(inst, cookie, ipEEA)
			if err != nil {
				fc.unverified++
				r.problem("visitor %d: explain on %s: %v", v.slot, inst.name, err)
				break
			}
			vd := judge(d, v.last, nil, true, r.lossRule(time.Now(), v.ackedAt))
			if !vd.ok {
				fc.lost++
				r.problem("visitor %d: the record went with Redis and the snapshot did not stand in: %s (consent %+v)", v.slot, vd.mismatch, d.Consent)
				break
			}
			fc.lostWithRedis++
			if st := v.last.states(); st.Statistics == "denied" || st.Marketing == "denied" {
				fc.refusalsKept++
			}
			switch {
			case vd.revived:
				fc.grantsRevived++
			case vd.notRevived:
				fc.grantsNotRevived++
			}
		default:
			fc.unverified++
			r.problem("visitor %d: GET /consent on %s: status %d", v.slot, inst.name, code)
		}
		v.mu.Unlock()
	}
	return fc
}

// readConsent reads the store's record for the cookie through GET /consent, retrying
// for a few seconds what the store could not answer.
func (r *soakRun) readConsent(inst *soakInstance, cookie string) (int, purposeStates, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + inst.public + "/consent")
	req.Header.SetCookie(consentCookieName, cookie)
	var err error
	for attempt := range 6 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		if err = inst.api.DoTimeout(req, resp, r.o.timeout); err != nil || resp.StatusCode() == fasthttp.StatusServiceUnavailable {
			continue
		}
		var st struct {
			Purposes purposeStates `json:"purposes"`
		}
		if resp.StatusCode() == fasthttp.StatusOK {
			if err := json.Unmarshal(resp.Body(), &st); err != nil {
				return 0, purposeStates{}, fmt.Errorf("answer %s: %w", oneLine(resp.Body()), err)
			}
		}
		return resp.StatusCode(), st.Purposes, nil
	}
	if err == nil {
		err = fmt.Errorf("status %d after 6 attempts", resp.StatusCode())
	}
	return 0, purposeStates{}, err
}
