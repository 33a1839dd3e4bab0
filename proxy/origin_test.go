package proxy

import (
	"bytes"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		origin, host string
		want         bool
	}{
		{"https://t.example.com", "t.example.com", true},
		{"http://t.example.com", "t.example.com", true},
		{"https://T.Example.com", "t.example.com", true},
		{"https://t.example.com:443", "t.example.com", true},
		{"https://t.example.com", "t.example.com:443", true},
		{"http://t.example.com", "t.example.com:80", true},
		{"https://t.example.com", "t.example.com:80", true}, // TLS ends in front of the proxy
		{"https://t.example.com:8443", "t.example.com:8443", true},
		{"https://t.example.com:8443", "t.example.com", false},
		{"https://evil.t.example.com", "t.example.com", false},
		{"https://t.example.com.evil", "t.example.com", false},
		{"ftp://t.example.com", "t.example.com", false},
		{"https://", "", false},
		{"t.example.com", "t.example.com", false},
		{"null", "t.example.com", false},
	} {
		if got := sameOrigin([]byte(c.origin), []byte(c.host)); got != c.want {
			t.Errorf("sameOrigin(%q, %q) = %v", c.origin, c.host, got)
		}
	}
}

func TestRefererOrigin(t *testing.T) {
	for _, c := range []struct {
		ref, want string
		ok        bool
	}{
		{"https://www.example.com/privacy?x=1#y", "https://www.example.com", true},
		{"https://www.example.com", "https://www.example.com", true},
		{"http://www.example.com:8080?q", "http://www.example.com:8080", true},
		{"https://www.example.com#frag", "https://www.example.com", true},
		{"https://user@www.example.com/", "", false},
		{"https:///path", "", false},
		{"javascript://x", "", false},
		{"/relative", "", false},
		{"", "", false},
	} {
		got, ok := refererOrigin([]byte(c.ref))
		if string(got) != c.want || ok != c.ok {
			t.Errorf("refererOrigin(%q) = %q, %v", c.ref, got, ok)
		}
	}
}

// FuzzRefererOrigin: the Referer and Origin readers never panic, and an origin read off a
// Referer is its prefix, an http(s) scheme and a host with nothing after it.
func FuzzRefererOrigin(f *testing.F) {
	for _, s := range []string{"https://www.example.com/a?b#c", "http://h:1", "https://u@h/", "://", "https://", "null"} {
		f.Add(s, "h")
	}
	f.Fuzz(func(t *testing.T, ref, host string) {
		sameOrigin([]byte(ref), []byte(host))
		o, ok := refererOrigin([]byte(ref))
		if !ok {
			return
		}
		if !bytes.HasPrefix([]byte(ref), o) || !(bytes.HasPrefix(o, []byte("https://")) || bytes.HasPrefix(o, []byte("http://"))) {
			t.Fatalf("refererOrigin(%q) = %q", ref, o)
		}
		rest := o[bytes.Index(o, []byte("://"))+3:]
		if len(rest) == 0 || bytes.ContainsAny(rest, "/?#@") {
			t.Fatalf("refererOrigin(%q) = %q: not an origin", ref, o)
		}
	})
}
