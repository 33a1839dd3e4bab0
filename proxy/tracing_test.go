package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/consentgate/consentgate/internal/otlptest"
	"github.com/consentgate/consentgate/internal/redistest"
)

// TestTracesEndToEnd: with telemetry.traces on, every hit (ratio 1) becomes a "hit" span
// with vendor, action, reason and jurisdiction, its Redis lookup a child span, and both
// reach an OTLP collector. No attribute carries the visitor's IP or IDs.
func TestTracesEndToEnd(t *testing.T) {
	col := otlptest.Start(t, "/v1/traces",
		func() *coltracepb.ExportTraceServiceRequest { return &coltracepb.ExportTraceServiceRequest{} },
		&coltracepb.ExportTraceServiceResponse{})
	rs := redistest.Start(t)
	up := startSink(t)
	cfg := redisConfig(up.URL(), rs.Addr) + "telemetry:\n  otlp:\n    endpoint: \"" + col.URL + "\"\n  traces:\n    enabled: true\n    sample_ratio: 1\n"
	p := startProxy(t, cfg)
	cookie := p.consentCookie(`{"statistics":false}`)
	p.do("GET", "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view", "", "X-Forwarded-For", ipSE, "Cookie", cookie,
		"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00") // ignored: not trusted
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.tracing.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	type span struct {
		name, parent, id, trace string
		attrs                   map[string]string
	}
	var spans []span
	if err := col.Wait(ctx, func(rs []otlptest.Request[*coltracepb.ExportTraceServiceRequest]) bool {
		spans = spans[:0]
		for _, r := range rs {
			for _, res := range r.Body.GetResourceSpans() {
				for _, ss := range res.GetScopeSpans() {
					for _, s := range ss.GetSpans() {
						a := map[string]string{}
						for _, kv := range s.GetAttributes() {
							a[kv.GetKey()] = kv.GetValue().GetStringValue()
						}
						spans = append(spans, span{s.GetName(), string(s.GetParentSpanId()), string(s.GetSpanId()), string(s.GetTraceId()), a})
					}
				}
			}
		}
		for _, s := range spans {
			if s.name == "hit" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no hit span arrived: %v (%d spans)", err, len(spans))
	}
	var hit *span
	for i := range spans {
		if spans[i].name == "hit" {
			hit = &spans[i]
		}
	}
	want := map[string]string{"consentgate.vendor": "ga4", "consentgate.action": "drop",
		"consentgate.reason": "consent_denied", "consentgate.jurisdiction": "eea", "consentgate.endpoint": "ga4_collect"}
	for k, v := range want {
		if hit.attrs[k] != v {
			t.Errorf("hit span %s = %q, want %q", k, hit.attrs[k], v)
		}
	}
	if hit.parent != "" || strings.Contains(hit.trace, "\x0a\xf7\x65\x19") {
		t.Errorf("the hit span continued the browser's traceparent")
	}
	children := 0
	for _, s := range spans {
		if s.parent == hit.id && s.trace == hit.trace {
			children++
		}
		for k, v := range s.attrs {
			for _, secret := range []string{ipSE, strings.TrimPrefix(cookie, "cg_id="), "1.2"} {
				if v == secret || (len(secret) > 4 && strings.Contains(v, secret)) {
					t.Errorf("span %s attribute %s carries %q", s.name, k, v)
				}
			}
		}
	}
	if children == 0 {
		t.Errorf("no Redis span under the hit span; spans: %+v", spans)
	}
	if err := col.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestOTLPMetricsEndToEnd: with telemetry.otlp.endpoint set, the hit counters reach an
// OTLP collector with the same labels /metrics shows.
func TestOTLPMetricsEndToEnd(t *testing.T) {
	col := otlptest.Start(t, "/v1/metrics",
		func() *colmetricpb.ExportMetricsServiceRequest { return &colmetricpb.ExportMetricsServiceRequest{} },
		&colmetricpb.ExportMetricsServiceResponse{})
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "telemetry:\n  otlp:\n    endpoint: \""+col.URL+"\"\n    headers:\n      x-api-key: k-123\n"))
	p.do("GET", "/tr?id=1&ev=PageView", "", "X-Forwarded-For", ipSE)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.metrics.ForceFlush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	found := func(rs []otlptest.Request[*colmetricpb.ExportMetricsServiceRequest]) bool {
		for _, r := range rs {
			if r.Header.Get("X-Api-Key") != "k-123" {
				continue
			}
			for _, rm := range r.Body.GetResourceMetrics() {
				for _, sm := range rm.GetScopeMetrics() {
					for _, m := range sm.GetMetrics() {
						if m.GetName() != "consentgate_hits_total" {
							continue
						}
						for _, dp := range m.GetSum().GetDataPoints() {
							a := map[string]string{}
							for _, kv := range dp.GetAttributes() {
								a[kv.GetKey()] = kv.GetValue().GetStringValue()
							}
							if a["vendor"] == "meta" && a["action"] == "drop" && a["reason"] == "consent_missing" && a["jurisdiction"] == "eea" && dp.GetAsInt() == 1 {
								return true
							}
						}
					}
				}
			}
		}
		return false
	}
	if err := col.Wait(ctx, found); err != nil {
		t.Fatalf("consentgate_hits_total{meta,drop,consent_missing,eea} = 1 never arrived: %v", err)
	}
}
