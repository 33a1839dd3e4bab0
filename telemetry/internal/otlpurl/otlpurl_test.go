package otlpurl

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		insecure bool
		want     string // "" means an error is expected
	}{
		{"http base", "http://collector:4318", false, "http://collector:4318/v1/metrics"},
		{"https base with slash", "https://otlp.example.com/", false, "https://otlp.example.com/v1/metrics"},
		{"custom path kept", "https://otlp.example.com/otlp/v1/metrics", false, "https://otlp.example.com/otlp/v1/metrics"},
		{"scheme wins over insecure", "https://collector:4318", true, "https://collector:4318/v1/metrics"},
		{"bare host defaults to TLS", "collector:4318", false, "https://collector:4318/v1/metrics"},
		{"bare host insecure", "collector:4318", true, "http://collector:4318/v1/metrics"},
		{"ipv6", "http://[::1]:4318", false, "http://[::1]:4318/v1/metrics"},
		{"empty", "", false, ""},
		{"grpc scheme", "grpc://collector:4317", false, ""},
		{"no host", "http://", false, ""},
		{"query", "http://collector:4318?a=b", false, ""},
		{"fragment", "http://collector:4318#x", false, ""},
		{"credentials", "https://u:p@collector", false, ""},
		{"unparsable", "http://collector:port", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.endpoint, tt.insecure, "/v1/metrics")
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Resolve(%q) = %q, want an error", tt.endpoint, got)
				}
				if strings.Contains(err.Error(), ":p@") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q, %v) = %q, %v; want %q", tt.endpoint, tt.insecure, got, err, tt.want)
			}
		})
	}
}
