// Package telemetry counts what the proxy does and exports it.
//
// The hit path only ever does index arithmetic and one atomic add into arrays sized at
// start. OpenTelemetry observable instruments read those arrays when a collector asks
// (a Prometheus scrape, an OTLP push), so the cost of exporting is paid per collection,
// never per hit. The one synchronous instrument is the upstream latency histogram: it is
// recorded once per upstream round trip (not per hit), with precomputed attribute sets,
// and allocates nothing once a series exists (see UpstreamDone).
//
// Metrics exported on /metrics (Prometheus text format) and, with WithOTLP, pushed over
// OTLP/HTTP:
//
//	consentgate_hits_total{vendor,action,reason,jurisdiction}          counter, only non-zero series
//	consentgate_upstream_requests_total{vendor}                         counter, every vendor
//	consentgate_upstream_errors_total{vendor,kind}                      counter, every vendor × kind
//	consentgate_upstream_request_duration_seconds{vendor,outcome}       histogram, series seen so far
//	consentgate_consent_lookups_total{source,result}                    counter, every source × result
//	consentgate_consent_store_up                                        gauge 0/1
//	consentgate_requests_refused_total{reason}                          counter, every reason
//	consentgate_public_connections                                      gauge
//	consentgate_anonymise_salt_fallbacks_total                          counter
//	consentgate_signal_errors_total{signal}                             counter, every signal
//	consentgate_config_last_reload_successful                           gauge 0/1
//	consentgate_config_reload_errors_total                              counter
//	consentgate_config_last_reload_success_timestamp_seconds            gauge, Unix seconds
//	consentgate_geoip_last_reload_successful                            gauge 0/1
//	consentgate_geoip_reload_errors_total                               counter
//	consentgate_geoip_last_reload_success_timestamp_seconds             gauge, Unix seconds
//	consentgate_geoip_database_build_timestamp_seconds                  gauge, Unix seconds
//	consentgate_tls_reloads_total{result}                               counter, ok and error, once TLS is on
//	consentgate_tls_last_reload_successful                              gauge 0/1, once TLS is on
//	consentgate_tls_cert_expiry_timestamp_seconds                       gauge, Unix seconds, once TLS is on
//	consentgate_build_info{version,commit,goversion}                    gauge = 1
//	consentgate_telemetry_dropped_observations_total                    counter
//	consentgate_consent_snapshot_used_total{when}                       counter, every when
//	consentgate_consent_snapshot_rejected_total{reason}                 counter, every reason
//	consentgate_rate_limited_total{limit}                               counter, every limit
//	consentgate_consent_writes_refused_total{reason}                    counter, every reason
//	consentgate_consent_ids_issued_total{why}                           counter, every why
//	consentgate_consent_store_bytes                                     gauge, bytes
//	consentgate_script_requests_total{script,outcome}                   counter, every interned script × outcome
//	consentgate_script_vendor_errors_total{script,kind}                 counter, every interned script × kind
//	consentgate_fleet_stats_publishes_total{result}                     counter, ok and error from zero
//	consentgate_fleet_stats_pending_batches                             gauge
//	consentgate_fleet_stats_lost_hits_total                             counter
//
// and, on /metrics only, the Go runtime's and the process's (runtime.go): go_goroutines,
// go_threads, go_memstats_*, go_gc_duration_seconds, go_info, process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds, process_max_fds and the rest of
// client_golang's Go and process collectors.
//
// Hits are sparse because vendor × action × reason × jurisdiction is large and most
// combinations never happen. Upstream counters are few, so they are exported from zero:
// an error counter that appears only at its first increment hides that increment from
// rate() and increase(), and upstream errors are what SREs alert on. The latency
// histogram is the exception: a synchronous histogram has no way to export a series it
// has not seen, and quantiles need no zero series (alerts use the counters).
package telemetry
