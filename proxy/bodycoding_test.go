package proxy

import (
	"bytes"
	stdgzip "compress/gzip"
	stdzlib "compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	brotli "github.com/molecule-man/go-brrr"
)

func gzipOf(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := stdgzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zlibOf(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := stdzlib.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func rawDeflateOf(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	io.WriteString(w, s)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func brotliOf(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := brotli.NewWriter(&b, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseCodings(t *testing.T) {
	for _, c := range []struct {
		values []string
		want   coding
		err    bool
	}{
		{nil, codingNone, false},
		{[]string{"identity"}, codingNone, false},
		{[]string{"gzip"}, codingGzip, false},
		{[]string{"GZip"}, codingGzip, false},
		{[]string{"x-gzip"}, codingGzip, false},
		{[]string{" deflate "}, codingDeflate, false},
		{[]string{"br"}, codingBrotli, false},
		{[]string{"identity, gzip"}, codingGzip, false},
		{[]string{"gzip", "identity"}, codingGzip, false},
		{[]string{"gzip,"}, codingGzip, false},
		{[]string{"gzip, br"}, codingNone, true}, // stacked
		{[]string{"gzip", "gzip"}, codingNone, true},
		{[]string{"zstd"}, codingNone, true},
		{[]string{"compress"}, codingNone, true},
		{[]string{"gzip;q=1"}, codingNone, true},
		{[]string{"deflate-raw"}, codingNone, true},
	} {
		var vals [][]byte
		for _, v := range c.values {
			vals = append(vals, []byte(v))
		}
		got, err := parseCodings(vals)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%q: %v, %v; want %v, error %v", c.values, got, err, c.want, c.err)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	const text = "en=page_view&_et=10&_uip=9.9.9.9\nen=scroll"
	gz := gzipOf(t, text)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-5] ^= 0xff
	bomb := gzipOf(t, strings.Repeat("\x00", 8<<20))
	for _, c := range []struct {
		name string
		body []byte
		c    coding
		max  int
		want string
		err  error // nil, errDecodedTooLarge, or errCoding for "any other error"
	}{
		{"gzip", gz, codingGzip, 1 << 16, text, nil},
		{"gzip, two members", append(gzipOf(t, "a=1&"), gzipOf(t, "b=2")...), codingGzip, 1 << 16, "a=1&b=2", nil},
		{"deflate is zlib", zlibOf(t, text), codingDeflate, 1 << 16, text, nil},
		{"brotli", brotliOf(t, text), codingBrotli, 1 << 16, text, nil},
		{"exactly max", gz, codingGzip, len(text), text, nil},
		{"one over max", gz, codingGzip, len(text) - 1, "", errDecodedTooLarge},
		{"bomb: 8 MiB of zeros in " + strconv.Itoa(len(bomb)) + " bytes", bomb, codingGzip, 1 << 16, "", errDecodedTooLarge},
		{"brotli bomb", brotliOf(t, strings.Repeat("a", 4<<20)), codingBrotli, 1 << 16, "", errDecodedTooLarge},
		{"zlib bomb", zlibOf(t, strings.Repeat("a", 4<<20)), codingDeflate, 1 << 16, "", errDecodedTooLarge},
		{"truncated gzip", gz[:len(gz)-10], codingGzip, 1 << 16, "", errCoding},
		{"gzip with a bad checksum", badCRC, codingGzip, 1 << 16, "", errCoding},
		{"gzip with garbage after it", append(bytes.Clone(gz), "junk"...), codingGzip, 1 << 16, "", errCoding},
		{"not gzip at all", []byte(text), codingGzip, 1 << 16, "", errCoding},
		{"raw deflate labelled deflate", rawDeflateOf(t, text), codingDeflate, 1 << 16, "", errCoding},
		{"truncated brotli", brotliOf(t, text)[:5], codingBrotli, 1 << 16, "", errCoding},
		{"plain text labelled br", []byte(text), codingBrotli, 1 << 16, "", errCoding},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeBody([]byte("prefix:"), c.body, c.c, c.max)
			switch {
			case c.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case c.err == nil && string(got) != "prefix:"+c.want:
				t.Fatalf("decoded %q, want %q", got, c.want)
			case c.err == errDecodedTooLarge && !errors.Is(err, errDecodedTooLarge):
				t.Fatalf("error %v, want %v", err, errDecodedTooLarge)
			case c.err == errCoding && (err == nil || errors.Is(err, errDecodedTooLarge)):
				t.Fatalf("error %v, want a decoding error", err)
			case c.err != nil && string(got) != "prefix:":
				t.Fatalf("failed, but left %q in dst", got)
			}
		})
	}
}

// TestCompressedHits drives compressed bodies through the real listener to the sink.
// Forwarded and anonymised hits are rewritten from the decoded body, so a gzip body
// cannot choose the IP the vendor sees, and the upstream gets the body decoded with a
// matching Content-Length and no Content-Encoding. Bombs, corrupt streams and unknown or
// stacked codings are dropped and counted; nothing of them leaves.
func TestCompressedHits(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "max_body_size: 65536\n"))
	granted := p.consentCookie(`{"statistics":true,"marketing":true}`)
	const lines = "en=page_view&_et=10&_uip=9.9.9.9\nen=scroll&_uip=9.9.9.9"
	const ga4 = "/g/collect?v=2&tid=G-TEST123&cid=1234567890.1712345678"
	hdr := func(enc, cookie string) []string {
		h := []string{"X-Forwarded-For", ipSE, "Content-Type", "text/plain;charset=UTF-8", "Content-Encoding", enc}
		if cookie != "" {
			h = append(h, "Cookie", cookie)
		}
		return h
	}
	checkPlain := func(t *testing.T, got received) {
		t.Helper()
		if ce := got.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("upstream got Content-Encoding %q", ce)
		}
		if cl := got.Header.Get("Content-Length"); cl != strconv.Itoa(len(got.Body)) {
			t.Errorf("Content-Length %q for a body of %d bytes", cl, len(got.Body))
		}
		if strings.Contains(got.Raw, "9.9.9.9") {
			t.Errorf("the IP the browser chose reached the upstream:\n%s", got.Raw)
		}
	}

	for _, c := range []struct {
		enc  string
		body []byte
	}{
		{"gzip", gzipOf(t, lines)},
		{"x-gzip", gzipOf(t, lines)},
		{"deflate", zlibOf(t, lines)},
		{"br", brotliOf(t, lines)},
		{"identity", []byte(lines)},
	} {
		t.Run(c.enc+"/forward", func(t *testing.T) {
			if r := p.do("POST", ga4, string(c.body), hdr(c.enc, granted)...); r.Status >= 300 {
				t.Fatalf("status %d", r.Status)
			}
			got := up.one(t)
			checkPlain(t, got)
			if got.Body != "en=page_view&_et=10\nen=scroll" || !strings.Contains(got.Query, "_uip="+ipSE) {
				t.Errorf("forwarded as %q ? %q", got.Body, got.Query)
			}
		})
		t.Run(c.enc+"/anonymise", func(t *testing.T) {
			p.do("POST", ga4, string(c.body), hdr(c.enc, "")...)
			got := up.one(t)
			checkPlain(t, got)
			if got.Body != "en=page_view&_et=10\nen=scroll" || !strings.Contains(got.Query, "_uip=89.160.20.0") {
				t.Errorf("anonymised as %q ? %q", got.Body, got.Query)
			}
		})
	}
	t.Run("meta form deflate", func(t *testing.T) {
		p.do("POST", "/tr", string(zlibOf(t, "id=1&ev=Purchase&cd[value]=9")), "X-Forwarded-For", ipSE, "Cookie", granted,
			"Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "deflate")
		got := up.one(t)
		checkPlain(t, got)
		if got.Body != "id=1&ev=Purchase&cd[value]=9" {
			t.Errorf("body %q", got.Body)
		}
	})
	t.Run("measurement protocol brotli", func(t *testing.T) {
		p.do("POST", "/mp/collect?measurement_id=G-1&api_secret=s", string(brotliOf(t, `{"client_id":"1.2","ip_override":"9.9.9.9","events":[{"name":"x"}]}`)),
			"X-Forwarded-For", ipSE, "Cookie", granted, "Content-Type", "application/json", "Content-Encoding", "br")
		got := up.one(t)
		checkPlain(t, got)
		// The sender is not in server_side.trusted_senders: it names no visitor, so no
		// IP goes upstream, least of all the one the body states.
		if strings.Contains(got.Body, "ip_override") || strings.Contains(got.Body, "9.9.9.9") {
			t.Errorf("body %q", got.Body)
		}
	})

	for _, c := range []struct {
		name, enc string
		body      []byte
		reason    string
		status    int
	}{
		{"bomb", "gzip", gzipOf(t, strings.Repeat("en=x&", 4<<20)), "body_too_large", 413},
		{"corrupt gzip", "gzip", gzipOf(t, lines)[:20], "bad_body_encoding", 204},
		{"plain text said to be gzip", "gzip", []byte(lines), "bad_body_encoding", 204},
		{"zstd", "zstd", []byte(lines), "bad_body_encoding", 204},
		{"stacked", "gzip, br", brotliOf(t, string(gzipOf(t, lines))), "bad_body_encoding", 204},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := p.hits(t, "ga4", "drop", c.reason, "eea")
			r := p.do("POST", ga4, string(c.body), hdr(c.enc, granted)...)
			up.none(t)
			if r.Status != c.status {
				t.Errorf("status %d, want %d", r.Status, c.status)
			}
			if n := p.hits(t, "ga4", "drop", c.reason, "eea") - before; n != 1 {
				t.Errorf("%s counted %d, want 1", c.reason, n)
			}
		})
	}
}

// TestExplainCompressedBody: explain takes a compressed body as body_base64, reads the
// signals from it decoded, and shows the decoded body that would be sent.
func TestExplainCompressedBody(t *testing.T) {
	up := startSink(t)
	p := startProxy(t, testConfig(up.URL(), "server_side:\n  trusted_senders: [\""+ipUSWA+"\"]\n"))
	body := gzipOf(t, `{"client_id":"1.2","consent":{"ad_user_data":"DENIED"},"ip_override":"`+ipUSWA+`","user_location":{"country_id":"FR"},"events":[{"name":"x"}]}`)
	req, _ := json.Marshal(ExplainRequest{
		Method: "POST", URL: "/mp/collect?measurement_id=G-1&api_secret=s", RemoteAddr: "127.0.0.1",
		Headers:    map[string]string{"X-Forwarded-For": ipUSWA, "Content-Type": "application/json", "Content-Encoding": "gzip"},
		BodyBase64: body,
	})
	code, out := p.Explain(t.Context(), mustUnmarshal[ExplainRequest](t, req))
	if code != 200 {
		t.Fatalf("explain: %d %s", code, out)
	}
	var got struct {
		Action  string `json:"action"`
		Signals struct {
			ConsentMode struct {
				MP *struct {
					Valid      bool   `json:"valid"`
					AdUserData string `json:"ad_user_data"`
				} `json:"mp_consent"`
			} `json:"consent_mode"`
		} `json:"signals"`
		Upstream struct {
			Body, Wire string
			Headers    map[string]string
		} `json:"upstream"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if mp := got.Signals.ConsentMode.MP; got.Action != "forward" || mp == nil || !mp.Valid || mp.AdUserData != "denied" {
		t.Errorf("explain did not read the decoded body's consent:\n%s", out)
	}
	if !strings.HasPrefix(got.Upstream.Body, `{"ip_override":"`+ipUSWA+`"`) || got.Upstream.Headers["Content-Encoding"] != "" ||
		strings.Contains(got.Upstream.Wire, "\"FR\"") && !strings.Contains(got.Upstream.Wire, "user_location") {
		t.Errorf("upstream: %+v", got.Upstream)
	}
}

func mustUnmarshal[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// FuzzDecodeBody: whatever the bytes and the coding, the decoder never returns more
// than max bytes, and returns the same again for the same body; what it returns for gzip and deflate is what the standard library's
// decoders (an independent implementation) read, and a body it calls too large is one
// they read past max.
func FuzzDecodeBody(f *testing.F) {
	f.Add(gzipOf(f, "en=page_view&_et=10"), uint8(codingGzip), uint16(64))
	f.Add(gzipOf(f, strings.Repeat("a", 5000)), uint8(codingGzip), uint16(100))
	f.Add(zlibOf(f, "a=1&b=2"), uint8(codingDeflate), uint16(3))
	f.Add(brotliOf(f, "a=1&b=2"), uint8(codingBrotli), uint16(64))
	f.Add([]byte("\x1f\x8b\x08\x00garbage"), uint8(codingGzip), uint16(64))
	f.Fuzz(func(t *testing.T, body []byte, c uint8, max16 uint16) {
		cod, max := coding(c%4), int(max16)
		got, err := decodeBody(nil, body, cod, max)
		if len(got) > max {
			t.Fatalf("returned %d bytes, max %d", len(got), max)
		}
		if err != nil && len(got) != 0 {
			t.Fatalf("failed (%v) but returned %d bytes", err, len(got))
		}
		// Pooled decoders carry nothing from one body to the next.
		if again, err2 := decodeBody(nil, body, cod, max); !bytes.Equal(again, got) || (err == nil) != (err2 == nil) {
			t.Fatalf("decoded twice: %q (%v), then %q (%v)", got, err, again, err2)
		}
		var ref io.Reader
		switch cod {
		case codingGzip:
			zr, zerr := stdgzip.NewReader(bytes.NewReader(body))
			if zerr != nil {
				if err == nil {
					t.Fatalf("decoded %q where the standard library refuses the header: %v", got, zerr)
				}
				return
			}
			ref = zr
		case codingDeflate:
			zr, zerr := stdzlib.NewReader(bytes.NewReader(body))
			if zerr != nil {
				if err == nil {
					t.Fatalf("decoded %q where the standard library refuses the header: %v", got, zerr)
				}
				return
			}
			ref = zr
		default:
			return
		}
		want, rerr := io.ReadAll(io.LimitReader(ref, int64(max)+1))
		switch {
		case errors.Is(err, errDecodedTooLarge):
			if len(want) <= max {
				t.Fatalf("called too large, but the standard library reads %d bytes (max %d, its error %v)", len(want), max, rerr)
			}
		case err == nil:
			if rerr != nil || !bytes.Equal(got, want) {
				t.Fatalf("decoded %q, the standard library %q (%v)", got, want, rerr)
			}
		}
	})
}

// BenchmarkDecodeGzip: a GA4 sendBeacon body of 20 events, gzip-compressed, decoded into
// a reused buffer: what a compressed hit costs on top of a plain one.
func BenchmarkDecodeGzip(b *testing.B) {
	body := gzipOf(b, strings.Repeat("en=page_view&_et=1234&dl=https%3A%2F%2Fwww.example.com%2Fpricing&dt=Pricing\n", 20))
	var dst []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var err error
		if dst, err = decodeBody(dst[:0], body, codingGzip, 1<<16); err != nil {
			b.Fatal(err)
		}
	}
}
