package otlpurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Resolve returns the URL for one signal. endpoint is either a URL (http://collector:4318,
// https://otlp.example.com/custom/path), whose scheme decides TLS, or a bare host:port,
// for which insecure picks http over https. An empty path or "/" becomes signalPath
// (/v1/metrics, /v1/traces), as the OTLP spec does for OTEL_EXPORTER_OTLP_ENDPOINT; the
// exporters' own WithEndpointURL would post to "/" instead, which no collector serves.
func Resolve(endpoint string, insecure bool, signalPath string) (string, error) {
	if endpoint == "" {
		return "", errors.New("no endpoint")
	}
	raw := endpoint
	if !strings.Contains(raw, "://") {
		scheme := "https"
		if insecure {
			scheme = "http"
		}
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the input, which may hold a password: say only why.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("endpoint: %w", err)
	}
	endpoint = u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("endpoint %q: scheme %q, want http or https", endpoint, u.Scheme)
	case u.Host == "":
		return "", fmt.Errorf("endpoint %q: no host", endpoint)
	case u.User != nil:
		// Credentials in the URL would end up in logs; headers are the place for them.
		return "", fmt.Errorf("endpoint %q: credentials in the URL; use headers", endpoint)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("endpoint %q: query or fragment not allowed", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = signalPath
	}
	return u.String(), nil
}
