package config

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestSecretsCovered holds the one list of secrets to the schema: every setting whose
// name says it is a credential is on it, and Redacted blanks each one.
func TestSecretsCovered(t *testing.T) {
	credential := regexp.MustCompile(`token|secret|password|headers|snapshot\.keys`)
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := name
			if path != "" {
				key = path + "." + name
			}
			switch f.Type.Kind() {
			case reflect.Struct:
				if f.Type.Name() != "Duration" {
					walk(f.Type, key)
				}
				continue
			case reflect.Map:
				key += ".X"
			case reflect.Slice:
				key += ".0"
			}
			if credential.MatchString(strings.TrimSuffix(key, ".0")) && !IsSecret(key) {
				t.Errorf("%s looks like a credential but is not in secretKeys", key)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")

	const marker = "MUST-NOT-SHOW-0123456789"
	cfg := &Config{}
	cfg.AdminToken, cfg.Anonymise.Secret, cfg.Consent.Redis.Password = marker, marker, marker
	cfg.Consent.Snapshot.Keys = []string{marker, marker}
	cfg.Telemetry.OTLP.Headers = map[string]string{"X-Api-Key": marker}
	b, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), marker) {
		t.Errorf("Redacted keeps a secret: %s", b)
	}
	if cfg.Telemetry.OTLP.Headers["X-Api-Key"] != marker || cfg.AdminToken != marker || cfg.Consent.Snapshot.Keys[1] != marker {
		t.Error("Redacted changed the config it copied")
	}
	if !strings.Contains(string(b), "X-Api-Key") {
		t.Error("Redacted dropped the header name; only values are secret")
	}
	for _, k := range []string{"listen", "consent.redis.username", "telemetry.otlp.headers", "telemetry.otlp.endpoint"} {
		if IsSecret(k) {
			t.Errorf("IsSecret(%q) = true", k)
		}
	}
}
