package proxy

import (
	"encoding/json"
	"maps"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/corpus"
	"github.com/consentgate/consentgate/rules"
)

// wireCase is one hit sent both live, byte for byte on a socket, and to explain.
type wireCase struct {
	name, method, target, body string
	headers                    map[string]string
}

// sendRaw writes c to the public listener as it stands: request line, the headers in
// name order (the order explain sets them in), Content-Length, body.
func (p *testProxy) sendRaw(t *testing.T, c wireCase) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(c.method + " " + c.target + " HTTP/1.1\r\nHost: t.example.com\r\n")
	names := make([]string, 0, len(c.headers))
	for k := range c.headers {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		return strings.Compare(textproto.CanonicalMIMEHeaderKey(a), textproto.CanonicalMIMEHeaderKey(b))
	})
	for _, k := range names {
		b.WriteString(k + ": " + c.headers[k] + "\r\n")
	}
	if c.body != "" || c.method == "POST" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(c.body)) + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n" + c.body)
	return p.rawRequest(t, b.String())
}

type explainedWire struct {
	Action   string `json:"action"`
	Reason   string `json:"reason"`
	Upstream *struct {
		URL         string            `json:"url"`
		RequestLine string            `json:"request_line"`
		Headers     map[string]string `json:"headers"`
		Body        string            `json:"body"`
		Wire        string            `json:"wire"`
		WireBase64  []byte            `json:"wire_base64"`
	} `json:"upstream"`
}

// TestExplainIsTheWire: for every hit of the leak corpus (every vendor) under every
// action, what explain says goes upstream is, byte for byte, what the upstream sink
// read off its socket: request line, headers, body. A dropped hit has no upstream in
// explain and sends nothing. A few hits beyond the corpus cover the rewrites this
// depends on: a compressed body, a query with bytes that are escaped on the way, a
// configured prefix route.
func TestExplainIsTheWire(t *testing.T) {
	hits, err := corpus.Load("../rules/testdata/hits")
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	up := startSink(t)
	anonPolicy := "policy:\n  opt_in:\n    unset:\n      statistics: anonymise\n      marketing: anonymise\n      preferences: anonymise\n" +
		"routes:\n  - { path: \"/ads/*\", endpoint: google_ads_conversion }\n"
	p := startProxy(t, testConfig(up.URL(), anonPolicy))
	granted := p.consentCookie(`{"necessary":true,"preferences":true,"statistics":true,"marketing":true}`)
	denied := p.consentCookie(`{"necessary":true,"preferences":false,"statistics":false,"marketing":false}`)

	var cases []wireCase
	for _, h := range hits {
		target := h.Path
		if h.Query != "" {
			target += "?" + h.Query
		}
		cases = append(cases, wireCase{name: h.Name, method: h.Method, target: target, body: h.Body,
			headers: map[string]string{"Content-Type": h.ContentType}})
	}
	cases = append(cases,
		wireCase{name: "gzip beacon", method: "POST", target: "/g/collect?v=2&tid=G-1&cid=1.2",
			body:    string(gzipOf(t, "en=page_view&_uip=9.9.9.9\nen=scroll")),
			headers: map[string]string{"Content-Type": "text/plain", "Content-Encoding": "gzip"}},
		wireCase{name: "query escaped on the way", method: "GET", target: "/tr?id=1&ev=PageView&cd[content_name]=Caf\xc3\xa9\"<b>'&x=100%"},
		wireCase{name: "configured prefix route", method: "GET", target: "/ads/123?label=L&gclid=abc"},
		// The upstream client would name itself: the built request must say so too.
		wireCase{name: "no user agent", method: "GET", target: "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view",
			headers: map[string]string{"User-Agent": "-"}},
	)

	seen := map[string]map[string]bool{}
	for _, c := range cases {
		for _, a := range []struct{ action, cookie string }{{"forward", granted}, {"anonymise", ""}, {"drop", denied}} {
			t.Run(c.name+"/"+a.action, func(t *testing.T) {
				hdr := map[string]string{
					"X-Forwarded-For": ipSE, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) wire",
					"Accept-Language": "sv-SE,sv;q=0.9", "Origin": "https://shop.example.com", "X-Custom": "kept-on-forward",
				}
				for k, v := range c.headers {
					switch v {
					case "":
					case "-":
						delete(hdr, k)
					default:
						hdr[k] = v
					}
				}
				if a.cookie != "" {
					hdr["Cookie"] = a.cookie + "; _ga=GA1.1.999"
				}
				live := c
				live.headers = hdr
				if resp := p.sendRaw(t, live); !strings.HasPrefix(resp, "HTTP/1.1 2") {
					t.Fatalf("live hit answered %q", resp)
				}
				// The host the live hit was sent to: pseudonyms are kept apart per site.
				exHdr := maps.Clone(hdr)
				exHdr["Host"] = "t.example.com"
				in := ExplainRequest{Method: c.method, URL: c.target, Headers: exHdr, RemoteAddr: "127.0.0.1"}
				if strings.ContainsRune(c.body, 0x1f) {
					in.BodyBase64 = []byte(c.body)
				} else {
					in.Body = c.body
				}
				code, out := p.Explain(t.Context(), in)
				if code != 200 {
					t.Fatalf("explain: %d %s", code, out)
				}
				var ex explainedWire
				if err := json.Unmarshal(out, &ex); err != nil {
					t.Fatal(err)
				}
				if ex.Action != a.action {
					t.Fatalf("explain says %s (%s), the case is %s", ex.Action, ex.Reason, a.action)
				}
				if a.action == "drop" {
					up.none(t)
					if ex.Upstream != nil {
						t.Errorf("a dropped hit has an upstream in explain: %+v", ex.Upstream)
					}
					return
				}
				got := up.one(t)
				if ex.Upstream == nil {
					t.Fatal("explain shows no upstream")
				}
				wire := ex.Upstream.Wire
				if ex.Upstream.WireBase64 != nil {
					wire = string(ex.Upstream.WireBase64)
				}
				if wire != got.Raw {
					t.Errorf("explain's wire differs from what the sink read:\n--- explain\n%q\n--- sink\n%q", wire, got.Raw)
				}
				if ex.Upstream.RequestLine != got.Line() {
					t.Errorf("request line: explain %q, sink %q", ex.Upstream.RequestLine, got.Line())
				}
				if !strings.HasSuffix(ex.Upstream.URL, got.Target()) {
					t.Errorf("url %q does not end in the request target %q", ex.Upstream.URL, got.Target())
				}
				if ex.Upstream.Body != got.Body {
					t.Errorf("body: explain %q, sink %q", ex.Upstream.Body, got.Body)
				}
				for k, v := range ex.Upstream.Headers {
					if got.Header.Get(k) != v {
						t.Errorf("header %s: explain %q, sink %q", k, v, got.Header.Get(k))
					}
				}
				if ep, ok := rules.EndpointByName(endpointOf(t, out)); ok {
					if seen[ep.Vendor] == nil {
						seen[ep.Vendor] = map[string]bool{}
					}
					seen[ep.Vendor][a.action] = true
				}
			})
		}
	}
	for _, v := range rules.VendorNames() {
		for _, a := range []string{"forward", "anonymise"} {
			if !seen[v][a] {
				t.Errorf("vendor %s: %s never compared with the wire", v, a)
			}
		}
	}
}

func endpointOf(t *testing.T, explain []byte) string {
	t.Helper()
	var v struct {
		Endpoint string `json:"endpoint"`
	}
	if err := json.Unmarshal(explain, &v); err != nil {
		t.Fatal(err)
	}
	return v.Endpoint
}
