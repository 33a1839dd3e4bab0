package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// The chart is plain SVG written here: two panels per mix (CPU per hit, p99
// latency), one bar per proxy at its median, a whisker from the lowest to the highest
// round, so that a reader sees at once whether a difference is larger than the noise.

var proxyColours = map[string]string{"consentgate": "#2b6cb0", baselinePeer: "#90cdf4", "nginx": "#2f855a", "haproxy": "#c05621", sinkPeer: "#a0aec0"}

const (
	svgWidth  = 960
	panelW    = 430
	panelH    = 170
	rowH      = 215
	headerH   = 140
	footerH   = 24
	leftPanel = 60
	gapPanels = 470
)

type chartPanel struct {
	title string
	unit  string
	key   string
}

var chartPanels = []chartPanel{
	{"CPU per hit (µs, proxy processes)", "µs", "cpu_us_per_hit"},
	{"p99 latency (ms)", "ms", "p99_ms"},
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// fnum prints a finite number for an SVG attribute; anything else is 0, so the file
// stays valid whatever the figures.
func fnum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return fmt.Sprintf("%.1f", v)
}

// niceCeil rounds up to 1, 2 or 5 × a power of ten, for the axis.
func niceCeil(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func compareSVG(rep *compareReport) []byte {
	height := headerH + rowH*len(rep.Mixes) + footerH
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgWidth, height, svgWidth, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="20" y="26" font-size="17" font-weight="bold">%s</text>`+"\n",
		esc("consentgate and plain reverse proxies, each pinned to one core: CPU per hit and p99 latency"))
	s := rep.Settings
	shape := "closed loop"
	if s.Rate > 0 {
		shape = fmt.Sprintf("open loop at %.0f req/s", s.Rate)
	}
	var vers []string
	for _, n := range knownPeers {
		if v, ok := rep.Versions[n]; ok {
			vers = append(vers, v)
		}
	}
	lines := []struct{ text, attrs string }{
		{fmt.Sprintf("medians of %d interleaved rounds × %gs (after %gs warm-up), %d connections, %s; whiskers: lowest to highest round",
			s.Rounds, s.DurationSeconds, s.WarmupSeconds, s.Connections, shape), ``},
		{fmt.Sprintf("%s; %d cores: the proxy on CPU %s, the generator and the sink on CPU %s", rep.Time, rep.Machine.Cores, rep.Machine.ProxyCPU, rep.Machine.LoadCPU), `fill="#444"`},
		{strings.Join(vers, "; "), `fill="#444"`},
		{"$ " + rep.Command, `fill="#444" font-family="monospace" font-size="11"`},
	}
	load := fmt.Sprintf("load average %s at the start, %s at the end", rep.Machine.LoadAvgStart, rep.Machine.LoadAvgEnd)
	if rep.Machine.Shared {
		first := func(s string) string { f, _, _ := strings.Cut(s, " "); return f }
		lines = append(lines, struct{ text, attrs string }{fmt.Sprintf("Shared, loaded machine (load average %s at the start, %s at the end): absolute figures not trustworthy",
			first(rep.Machine.LoadAvgStart), first(rep.Machine.LoadAvgEnd)), `fill="#c53030" font-weight="bold"`})
	} else {
		lines = append(lines, struct{ text, attrs string }{load, `fill="#444"`})
	}
	y := 46
	for _, l := range lines {
		p(`<text x="20" y="%d" %s>%s</text>`+"\n", y, l.attrs, esc(clip(l.text, 150)))
		y += 18
	}

	for mi, mr := range rep.Mixes {
		y0 := headerH + mi*rowH
		p(`<text x="20" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", y0+20, esc("mix: "+mr.Mix))
		for pi, panel := range chartPanels {
			drawPanel(&b, mr, panel, leftPanel+pi*gapPanels, y0+40)
		}
	}
	p(`<text x="20" y="%d" fill="#666" font-size="11">%s</text>`+"\n", height-8,
		esc("CPU: utime+stime of every process of the proxy (/proc/PID/stat) over the measured window, divided by the hits answered. Written by bench/cmd/loadgen compare."))
	p("</svg>\n")
	return []byte(b.String())
}

// clip shortens a header line to what the chart's width holds.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func drawPanel(b *strings.Builder, mr mixReport, panel chartPanel, x0, y0 int) {
	p := func(f string, a ...any) { fmt.Fprintf(b, f, a...) }
	p(`<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0, esc(panel.title))
	top := y0 + 14
	bottom := top + panelH - 50
	var hi float64
	for _, pr := range mr.Proxies {
		hi = math.Max(hi, math.Max(pr.Max[panel.key], pr.Median[panel.key]))
	}
	axisMax := niceCeil(hi * 1.1)
	scale := func(v float64) float64 {
		if !(v > 0) || math.IsInf(v, 0) {
			return 0
		}
		return math.Min(v, axisMax) / axisMax * float64(bottom-top)
	}
	// Grid lines and their labels.
	for i := 0; i <= 4; i++ {
		v := axisMax * float64(i) / 4
		y := float64(bottom) - scale(v)
		p(`<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e2e2e2"/>`+"\n", x0+40, fnum(y), x0+panelW-10, fnum(y))
		p(`<text x="%d" y="%s" text-anchor="end" fill="#666" font-size="10">%s</text>`+"\n", x0+36, fnum(y+3), esc(fmtValue(v)))
	}
	n := len(mr.Proxies)
	if n == 0 {
		return
	}
	slot := float64(panelW-60) / float64(n)
	barW := math.Min(slot*0.55, 90)
	for i, pr := range mr.Proxies {
		if pr.Name == sinkPeer && panel.key == "cpu_us_per_hit" {
			continue // its CPU is the generator's: no bar rather than a zero
		}
		cx := float64(x0+45) + slot*(float64(i)+0.5)
		med := pr.Median[panel.key]
		h := scale(med)
		colour := proxyColours[pr.Name]
		if colour == "" {
			colour = "#718096"
		}
		p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`+"\n",
			fnum(cx-barW/2), fnum(float64(bottom)-h), fnum(barW), fnum(h), colour,
			esc(fmt.Sprintf("%s %s: median %s %s", pr.Name, panel.key, fmtValue(med), panel.unit)))
		if lo, hi := pr.Min[panel.key], pr.Max[panel.key]; hi > lo {
			ylo, yhi := float64(bottom)-scale(lo), float64(bottom)-scale(hi)
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#1a202c"/>`+"\n", fnum(cx), fnum(ylo), fnum(cx), fnum(yhi))
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#1a202c"/>`+"\n", fnum(cx-6), fnum(yhi), fnum(cx+6), fnum(yhi))
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#1a202c"/>`+"\n", fnum(cx-6), fnum(ylo), fnum(cx+6), fnum(ylo))
		}
		// Above the bar and its whisker, whichever is higher.
		label := fmtValue(med) + " " + panel.unit
		top := math.Max(h, scale(pr.Max[panel.key]))
		p(`<text x="%s" y="%s" text-anchor="middle" font-weight="bold">%s</text>`+"\n", fnum(cx), fnum(float64(bottom)-top-6), esc(label))
		p(`<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", fnum(cx), bottom+16, esc(pr.Name))
		if r, ok := pr.RatioToNginx[panel.key]; ok && pr.Name != "nginx" {
			p(`<text x="%s" y="%d" text-anchor="middle" fill="#444">%s</text>`+"\n", fnum(cx), bottom+31, esc(fmt.Sprintf("%.2f× nginx", r)))
		}
	}
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`+"\n", x0+40, bottom, x0+panelW-10, bottom)
}
