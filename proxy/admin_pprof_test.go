package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
)

// TestPprof: Go's profiler is off by default (the path does not exist); with
// admin_pprof: true it is served on the admin listener behind the admin token, with
// bounded durations; a reload turns it off again.
func TestPprof(t *testing.T) {
	up := startSink(t)
	good := strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)

	t.Run("off by default", func(t *testing.T) {
		p := startProxy(t, good)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			if r := p.adminDo("GET", path, "", bearer...); r.Status != 404 {
				t.Errorf("%s: %d, want 404 with admin_pprof off", path, r.Status)
			}
		}
	})

	p, path := fileProxy(t, good+"admin_pprof: true\n")
	t.Run("behind the token", func(t *testing.T) {
		for _, target := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
			r := p.adminDo("GET", target, "")
			if r.Status != 401 || strings.Contains(r.Body, "goroutine") {
				t.Errorf("%s without a token: %d %.80q", target, r.Status, r.Body)
			}
			if r := p.adminDo("GET", target, "", "Authorization", "Bearer not-the-token-0123456789"); r.Status != 401 {
				t.Errorf("%s with a wrong token: %d", target, r.Status)
			}
		}
	})

	t.Run("profiles", func(t *testing.T) {
		r := p.adminDo("GET", "/debug/pprof/", "", bearer...)
		if r.Status != 200 || !strings.Contains(r.Body, "goroutine") || !strings.Contains(r.Body, "heap") || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("index: %d %q %.200q", r.Status, r.Header.Get("Cache-Control"), r.Body)
		}
		r = p.adminDo("GET", "/debug/pprof/goroutine?debug=1", "", bearer...)
		if r.Status != 200 || !strings.HasPrefix(r.Body, "goroutine profile: total ") || !strings.Contains(r.Body, "valyala/fasthttp") {
			t.Errorf("goroutine?debug=1: %d %.200q", r.Status, r.Body)
		}
		// Binary profiles are gzipped protobuf, as go tool pprof reads them.
		for _, target := range []string{"/debug/pprof/heap", "/debug/pprof/allocs", "/debug/pprof/profile?seconds=1"} {
			r := p.adminDo("GET", target, "", bearer...)
			if r.Status != 200 {
				t.Errorf("%s: %d %.200q", target, r.Status, r.Body)
				continue
			}
			zr, err := gzip.NewReader(bytes.NewReader([]byte(r.Body)))
			if err != nil {
				t.Errorf("%s: not gzip: %v", target, err)
				continue
			}
			if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
				t.Errorf("%s: %d bytes, %v", target, len(b), err)
			}
		}
		if r := p.adminDo("GET", "/debug/pprof/trace?seconds=1", "", bearer...); r.Status != 200 || len(r.Body) == 0 {
			t.Errorf("trace: %d, %d bytes", r.Status, len(r.Body))
		}
		if r := p.adminDo("GET", "/debug/pprof/cmdline", "", bearer...); r.Status != 200 || r.Body == "" {
			t.Errorf("cmdline: %d %q", r.Status, r.Body)
		}
		if r := p.adminDo("GET", "/debug/pprof", "", bearer...); r.Status != 301 || r.Header.Get("Location") == "" {
			t.Errorf("/debug/pprof: %d %v, want a redirect to /debug/pprof/", r.Status, r.Header)
		}
	})

	t.Run("bounded and GET only", func(t *testing.T) {
		for _, target := range []string{"/debug/pprof/profile?seconds=61", "/debug/pprof/trace?seconds=3600", "/debug/pprof/profile?seconds=0", "/debug/pprof/heap?seconds=x"} {
			if r := p.adminDo("GET", target, "", bearer...); r.Status != 400 || !strings.Contains(r.Body, "seconds must be a whole number from 1 to 60") {
				t.Errorf("%s: %d %q", target, r.Status, r.Body)
			}
		}
		if r := p.adminDo("DELETE", "/debug/pprof/heap", "", bearer...); r.Status != 405 {
			t.Errorf("DELETE: %d", r.Status)
		}
	})

	t.Run("a reload turns it off", func(t *testing.T) {
		writeFile(t, path, good)
		if code, a := p.reloadAPI(t); code != 200 {
			t.Fatalf("reload: %d %+v", code, a)
		}
		if r := p.adminDo("GET", "/debug/pprof/", "", bearer...); r.Status != 404 {
			t.Errorf("after admin_pprof went off: %d", r.Status)
		}
	})
}
