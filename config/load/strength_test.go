package load

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSecretStrength: placeholders, repeats, sequences, common words and short
// passphrases are refused; random values and long passphrases pass.
func TestSecretStrength(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        string // "" = accepted, else a part of the message
	}{
		{"README's old admin_token", "change-me-to-a-long-random-string", "example value"},
		{"README's old secret", "another-long-random-string", "example value"},
		{"deploy example's old admin_token", "replace-me-with-32-random-characters", "example value"},
		{"deploy example's old secret", "replace-me-with-another-32-chars", "example value"},
		{"README's placeholder", "REPLACE-ME-run-openssl-rand-base64-32", "example value"},
		{"placeholder words", "please-CHANGE_ME-k8Pq2Zr7Lw4Nx9Vb", "placeholder"},
		{"placeholder words with l33t spacing", "Your.Secret.Goes.Here.9f8e7d6c5b4a", "placeholder"},
		{"a command instead of its output", "$(openssl rand -hex 32)", "placeholder"},
		{"short", "k8Pq2Zr7Lw4N", "too short (12 characters)"},
		{"one character", strings.Repeat("a", 40), "too guessable"},
		{"a repeated piece", strings.Repeat("Xy7!", 10), "too guessable"},
		{"sequences", "0123456789abcdefghijklmnop", "too guessable"},
		{"keyboard and words", "qwertyPassword123456", "too guessable"},
		{"l33t words", "P@ssw0rd-S3cr3t-T0k3n-Adm1n", "too guessable"},
		{"the old test token", "test-admin-token-0123456789", "too guessable"},
		{"the old full.yaml secret", "0123456789abcdef0123", "too guessable"},
		{"a four-word passphrase", "correct-horse-battery-staple", "too guessable"},
		{"openssl rand -base64 32", "q3Zc8m0Yk7o5VwT0bJr9h2fXn4sLp6aUeG1dR8iK3cQ=", ""},
		{"openssl rand -hex 16", "9f2c4e6a8b1d3f5e7a9c0b2d4f6e8a1c", ""},
		{"16 random hex digits", "3f9a1c07b2e84d56", ""},
		{"24 random alphanumerics", "q8Xr2LmZ0vK4wN7pT1sYc6Hd", ""},
		{"a six-word passphrase", "lunar-pebble-mosaic-tundra-quiver-saffron", ""},
		{"unicode", "ключ-日本語-κλειδί-4827-ñandú-ø", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkSecretStrength(c.value, "it matters")
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused (estimated %.0f bits): %v", estimateBits(c.value), err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v (estimated %.0f bits), want %q", err, estimateBits(c.value), c.want)
			case err != nil && len(c.value) > 4 && strings.Contains(err.Error(), c.value):
				t.Errorf("the message repeats the value: %v", err)
			}
		})
	}
}

// TestRandomSecretsPass: what the docs tell operators to generate is never refused.
// 64 random bits in hex, the least that meets the bar, pass nearly always: a few are
// digits only (0.05%) or hold runs and sequences by chance, and an estimate judges the
// value, not the generator it came from.
func TestRandomSecretsPass(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	least, refusedHex := math.Inf(1), 0
	for range n {
		var b [32]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		v := base64.StdEncoding.EncodeToString(b[:])
		if err := checkSecretStrength(v, "x"); err != nil {
			t.Fatalf("openssl-style %q refused: %v", v, err)
		}
		least = min(least, estimateBits(v))
		if checkSecretStrength(hex.EncodeToString(b[:8]), "x") != nil {
			refusedHex++
		}
	}
	if refusedHex > n/100 {
		t.Errorf("%d of %d random 64-bit hex values refused, want under 1%%", refusedHex, n)
	}
	t.Logf("least estimate for 32 random bytes in base64: %.0f bits; 64-bit hex refused %d of %d", least, refusedHex, n)
}

// TestDocsPlaceholdersRefused: the README's config example, taken as written, is refused
// at its admin_token and anonymise.secret lines; with real values in their place it
// loads. The deploy example names no secret at all (they belong in the environment).
func TestDocsPlaceholdersRefused(t *testing.T) {
	useEnv(t, nil)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\nExample:\n\n```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no config example")
	}
	example := string(m[1])
	_, err = LoadBytes("README.md", []byte(example))
	if err == nil {
		t.Fatal("the README example loads with its placeholder secrets")
	}
	for _, want := range []string{"admin_token: is the example value", "anonymise.secret: is the example value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("README example: %v\nwant %q", err, want)
		}
	}
	if !regexp.MustCompile(`README\.md:\d+:\d+: admin_token`).MatchString(err.Error()) {
		t.Errorf("no file:line:col: %v", err)
	}
	real := regexp.MustCompile(`"REPLACE-ME[^"]*"`).ReplaceAllStringFunc(example, func(string) string {
		var b [32]byte
		for i := range b {
			b[i] = byte(i*37 + 11)
		}
		return `"` + base64.StdEncoding.EncodeToString(b[:]) + `"`
	})
	if _, err := LoadBytes("README.md", []byte(strings.Replace(real, "/var/lib/GeoIP/GeoLite2-City.mmdb", "../../testdata/geoip/GeoIP2-City-Test.mmdb", 1))); err != nil {
		t.Errorf("README example with real secrets: %v", err)
	}
	deploy, err := os.ReadFile("../../deploy/consentgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^\s*(admin_token|secret):`).Match(deploy) {
		t.Error("the deploy example sets a secret in the file: they belong in the environment")
	}
}

// FuzzEstimateBits: any value gets a finite, non-negative estimate, never above what
// spelling it out character by character costs, and the check never panics.
func FuzzEstimateBits(f *testing.F) {
	for _, s := range []string{"", "a", "aaaa", "abcabc", "P@ssw0rd", "correct-horse", "ключ", "\xff\xfe", "0123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bits := estimateBits(s)
		rs := []rune(s)
		if len(rs) > maxEstimated {
			rs = rs[:maxEstimated]
		}
		if math.IsNaN(bits) || math.IsInf(bits, 0) || bits < 0 {
			t.Fatalf("estimate %v for %q", bits, s)
		}
		if bits > float64(len(rs))*math.Log2(26+26+10+33+100)+1e-9 {
			t.Fatalf("estimate %v above spelling %q out", bits, s)
		}
		_ = checkSecretStrength(s, "x")
	})
}
