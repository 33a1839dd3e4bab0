package telemetry

import (
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestRuntimeMetrics: /metrics carries the Go runtime's and the process's metrics, with
// live values: goroutines started by the test show up in go_goroutines, and the
// process's own memory, CPU and descriptors are there.
func TestRuntimeMetrics(t *testing.T) {
	m := newTestMetrics(t)
	s := serve(t, m)
	value := func(fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no family %s", name)
		}
		if f.GetType() != typ || len(f.GetMetric()) == 0 || f.GetHelp() == "" {
			t.Fatalf("%s: type %v with %d series, want %v with help", name, f.GetType(), len(f.GetMetric()), typ)
		}
		mt := f.GetMetric()[0]
		switch typ {
		case dto.MetricType_GAUGE:
			return mt.GetGauge().GetValue()
		case dto.MetricType_COUNTER:
			return mt.GetCounter().GetValue()
		case dto.MetricType_SUMMARY:
			return float64(mt.GetSummary().GetSampleCount())
		}
		return 0
	}

	before := value(s.scrape(t).families, "go_goroutines", dto.MetricType_GAUGE)
	const extra = 50
	release := make(chan struct{})
	var started, done sync.WaitGroup
	for range extra {
		started.Add(1)
		done.Go(func() {
			started.Done()
			<-release
		})
	}
	started.Wait()
	fams := s.scrape(t).families
	close(release)
	done.Wait()
	// Goroutines of earlier tests (servers shutting down) may end between the two scrapes,
	// so the gauge is held to the goroutines this test keeps alive, not to before+extra.
	if after := value(fams, "go_goroutines", dto.MetricType_GAUGE); after < extra+1 || after <= before {
		t.Errorf("go_goroutines %v with %d more goroutines running, was %v", after, extra, before)
	}
	for _, c := range []struct {
		name string
		typ  dto.MetricType
	}{
		{"go_threads", dto.MetricType_GAUGE},
		{"go_memstats_heap_inuse_bytes", dto.MetricType_GAUGE},
		{"go_memstats_alloc_bytes_total", dto.MetricType_COUNTER},
		{"process_resident_memory_bytes", dto.MetricType_GAUGE},
		{"process_open_fds", dto.MetricType_GAUGE},
		{"process_max_fds", dto.MetricType_GAUGE},
		{"process_start_time_seconds", dto.MetricType_GAUGE},
	} {
		if v := value(fams, c.name, c.typ); v <= 0 {
			t.Errorf("%s = %v, want a positive value", c.name, v)
		}
	}
	value(fams, "process_cpu_seconds_total", dto.MetricType_COUNTER) // may still read 0 in a fresh process
	value(fams, "go_gc_duration_seconds", dto.MetricType_SUMMARY)
	if info := fams["go_info"]; info == nil || len(info.GetMetric()) != 1 {
		t.Errorf("go_info: %v", info)
	}
	// The process collector reads /proc/self: it must be this process.
	if fds := value(fams, "process_open_fds", dto.MetricType_GAUGE); fds > value(fams, "process_max_fds", dto.MetricType_GAUGE) {
		t.Errorf("open fds %v above the limit", fds)
	}
}
