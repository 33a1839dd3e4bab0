//go:build !race

package proxy

import (
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/canary"
	"github.com/consentgate/consentgate/rules"
)

// FuzzLeakGenerative drives the generative leak test's oracle with inputs the fuzzer
// chooses: which endpoint, position, canary kind, encoding and regime, and the text
// around the canary (it stays a word of its own: joined to its neighbours it would
// be a different value, "981.2.69.142" is no IP address). Any canary that reaches the
// upstream where TestLeakGenerative would not allow it fails. `make fuzz` runs it.
func FuzzLeakGenerative(f *testing.F) {
	// One proxy for every input: the fuzz function may not start one itself (the
	// cleanup belongs to f), and inputs run one at a time per worker process.
	wk := newLeakWorker(f)
	bases := map[string]leakCase{}
	for _, c := range leakCases(f) {
		if _, ok := bases[c.ep.Name]; !ok {
			bases[c.ep.Name] = c
		}
	}
	f.Add(uint8(0), uint16(12), uint8(0), uint8(1), uint8(1), "Order for", "today", uint32(1))
	f.Add(uint8(1), uint16(30), uint8(3), uint8(2), uint8(1), "", "", uint32(2))
	f.Add(uint8(2), uint16(5), uint8(7), uint8(0), uint8(0), "utm_source=a;gclid=", "#x", uint32(3))
	f.Add(uint8(6), uint16(40), uint8(12), uint8(4), uint8(4), "\u200b", "@", uint32(4))
	f.Fuzz(func(t *testing.T, epi uint8, posi uint16, kindi, enci, rgi uint8, before, after string, serial uint32) {
		eps := rules.Builtin()
		ep := &eps[int(epi)%len(eps)]
		positions := endpointPositions(ep)
		pos := positions[int(posi)%len(positions)]
		kinds := kindsFor(pos)
		c := canary.New(kinds[int(kindi)%len(kinds)], int(serial%1_000_000))
		encs := encodingsFor(pos)
		rg := leakRegimes[int(rgi)%len(leakRegimes)]
		inner := pos.embed
		if len(before)+len(after) > 200 || strings.ContainsAny(before+after, "\x00") {
			return
		}
		if before != "" || after != "" {
			pos.embed = func(c canary.Canary) string {
				v := c.Value
				if inner != nil {
					v = inner(c)
				}
				return before + " " + v + " " + after
			}
		}
		lc := bases[ep.Name]
		lc.pos, lc.canary, lc.enc, lc.regime = pos, c, encs[int(enci)%len(encs)], rg.name
		fs, _ := wk.run(&lc)
		for _, fd := range fs {
			t.Errorf("LEAK %s: %s: %q (%s) in %s\n    sent: %.600q", fd.class(), fd.c, fd.needle, fd.form, fd.where, fd.sent)
		}
	})
}
