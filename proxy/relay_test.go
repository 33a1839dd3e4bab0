package proxy

import (
	"slices"
	"strings"
	"testing"
)

// TestRelayedResponses: a forwarded hit's browser gets the vendor's status and, when its
// type is a pixel's or a collector's (GIF, PNG, plain text, JSON), its body, with
// headers the proxy sets: nosniff and no-store, never the vendor's cookies, cache
// lifetime or own headers. HTML, scripts, SVG, XML, an unknown coding or a redirect get
// the endpoint's local response: nothing a browser would render or run is served from
// the site's host.
func TestRelayedResponses(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), ""))
	cache := []string{"Cache-Control", "public, max-age=31536000", "Expires", "Thu, 01 Dec 2099 16:00:00 GMT", "Pragma", "cache",
		"Access-Control-Allow-Origin", "*", "Content-Security-Policy", "script-src *", "Link", "<https://vendor.example>; rel=preconnect"}
	for _, c := range []struct {
		name   string
		status int
		body   string
		header []string
		// relayed: the vendor's status and body, with contentType; else the local response
		relayed     bool
		contentType string
	}{
		{"a GIF pixel", 200, "GIF89a-pixel", append([]string{"Content-Type", "image/gif"}, cache...), true, "image/gif"},
		{"a PNG pixel", 200, "\x89PNG-pixel", []string{"Content-Type", "IMAGE/PNG"}, true, "image/png"},
		{"plain text with a charset", 200, "ok", []string{"Content-Type", "text/plain; charset=ISO-8859-1"}, true, "text/plain"},
		{"JSON", 200, `{"status":"ok"}`, append([]string{"Content-Type", "application/json; charset=utf-8"}, cache...), true, "application/json"},
		{"a 400 with text", 400, "bad hit", []string{"Content-Type", "text/plain"}, true, "text/plain"},
		{"no content", 204, "", cache, true, ""},
		{"HTML with a script", 200, "<html><script>alert(document.cookie)</script>", append([]string{"Content-Type", "text/html; charset=utf-8"}, cache...), false, ""},
		{"a script", 200, "alert(1)", []string{"Content-Type", "application/javascript"}, false, ""},
		{"a text/javascript script", 200, "alert(1)", []string{"Content-Type", "text/javascript"}, false, ""},
		{"SVG", 200, "<svg onload=alert(1)>", []string{"Content-Type", "image/svg+xml"}, false, ""},
		{"XML", 200, "<x/>", []string{"Content-Type", "application/xml"}, false, ""},
		// fasthttp reads a missing type as text/plain; with nosniff a browser shows it as
		// text at most.
		{"a body without a type", 200, "<script>alert(1)</script>", nil, true, "text/plain"},
		{"an unknown coding", 200, "ok", []string{"Content-Type", "text/plain", "Content-Encoding", "x-vendor"}, false, ""},
		// Vendors' answer heads carry cookies, CSP and reporting headers: 8 KB is more
		// than the client's default read buffer and still relayed, not an upstream error.
		{"an 8 KB answer head", 200, "GIF89a-pixel", []string{"Content-Type", "image/gif", "Report-To", strings.Repeat("r", 8<<10)}, true, "image/gif"},
		{"a redirect", 302, "", []string{"Location", "https://vendor.example/sync?uid=1"}, false, ""},
		{"a redirect with a body", 301, "moved", []string{"Location", "https://vendor.example/", "Content-Type", "text/plain"}, false, ""},
	} {
		for _, h := range []struct {
			name, target string
			gif          bool
		}{
			{"ga4 (204)", "/g/collect?v=2&tid=G-1&cid=1.2", false},
			{"meta (gif)", "/tr?id=1&ev=PageView", true},
		} {
			t.Run(c.name+"/"+h.name, func(t *testing.T) {
				up.answer(c.status, c.body, c.header...)
				defer up.answer(0, "")
				r := p.do("GET", h.target, "", "X-Forwarded-For", ipUSCA)
				up.one(t) // forwarded
				if !c.relayed {
					assertLocalResponse(t, r, h.gif)
					return
				}
				if r.Status != c.status || r.Body != c.body {
					t.Errorf("%d %q, want the vendor's %d %q", r.Status, r.Body, c.status, c.body)
				}
				want := map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
				if c.contentType != "" {
					want["Content-Type"] = c.contentType
				}
				for name, vs := range r.Header {
					switch name {
					case "Date", "Server", "Content-Length":
						continue
					}
					if w, ok := want[name]; !ok || !slices.Equal(vs, []string{w}) {
						t.Errorf("relayed %s: %q, want %q", name, vs, w)
					}
				}
				for name, w := range want {
					if got := r.Header.Get(name); got != w {
						t.Errorf("relayed %s: %q, want %q", name, got, w)
					}
				}
			})
		}
	}
}

// TestRelayedTypeAndCoding holds the allow-lists to their parsing.
func TestRelayedTypeAndCoding(t *testing.T) {
	for v, want := range map[string]string{
		"image/gif": "image/gif", " Image/GIF ; x=1": "image/gif", "text/plain;charset=utf-8": "text/plain",
		"application/json": "application/json", "text/html": "", "text/plain-evil": "", "": "", "image/gif\x00": "",
		"application/json5": "", "text/plainx; a=b": "",
	} {
		got, ok := relayedType([]byte(v))
		if got != want || ok != (want != "") {
			t.Errorf("relayedType(%q) = %q, %v; want %q", v, got, ok, want)
		}
	}
	for v, want := range map[string]string{"": "", "identity": "", "GZIP": "gzip", " br ": "br", "gzip, br": "!", "compress": "!"} {
		got, ok := relayedCoding([]byte(v))
		if want == "!" {
			if ok {
				t.Errorf("relayedCoding(%q) = %q, accepted", v, got)
			}
			continue
		}
		if got != want || !ok {
			t.Errorf("relayedCoding(%q) = %q, %v; want %q", v, got, ok, want)
		}
	}
	if strings.Join(relayedTypes, ",") != "image/gif,image/png,text/plain,application/json" {
		t.Errorf("relayedTypes changed: %v; update the README's relayed-response section", relayedTypes)
	}
}
