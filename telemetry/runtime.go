package telemetry

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registerRuntime adds what every Go service exports to the registry behind /metrics:
// the Go runtime's (go_goroutines, go_threads, go_memstats_*, go_gc_duration_seconds,
// go_info, GOGC, GOMEMLIMIT and GOMAXPROCS) and the process's (process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds, ...), so a leak or a goroutine pile-up shows on a graph
// before it shows as an outage. They are read per scrape, never on the hit path, and are
// on /metrics only: OTLP carries the consentgate_ metrics (a collector can scrape
// /metrics for these).
func (m *Metrics) registerRuntime() error {
	err := errors.Join(
		m.registry.Register(collectors.NewGoCollector()),
		m.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if err != nil {
		return fmt.Errorf("telemetry: runtime metrics: %w", err)
	}
	return nil
}
