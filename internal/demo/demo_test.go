package demo

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/config/load"
	"github.com/consentgate/consentgate/rules"
)

// The demo config is a valid config: the proxy would refuse to start otherwise.
func TestDemoConfigLoads(t *testing.T) {
	for _, regime := range []string{"", "opt_in", "opt_out", "none"} {
		c := ProxyConfig{
			Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9090", AdminToken: randomToken(), SinkURL: "http://127.0.0.1:8090",
			AllowedOrigins: []string{"http://127.0.0.1:8000", "http://localhost:8000"}, UnknownRegime: regime,
		}
		ld := &load.Loader{Vocabulary: rules.Vocabulary()}
		cfg, err := ld.LoadBytes("demo.yaml", c.YAML())
		if err != nil {
			t.Fatalf("regime %q: %v\n%s", regime, err, c.YAML())
		}
		if len(cfg.AllowedOrigins) != 2 || cfg.Upstreams["meta"] != c.SinkURL || cfg.Policy.Table["opt_in"]["denied"]["statistics"] != "anonymise" {
			t.Errorf("regime %q: %+v", regime, cfg)
		}
		if _, err := rules.Compile(cfg, rules.CompileOptions{}); err != nil {
			t.Errorf("regime %q: compile: %v", regime, err)
		}
	}
	// The vendors are the catalogue's, so none goes to the real vendor.
	if strings.Join(vendors, ",") != strings.Join(rules.VendorNames(), ",") {
		t.Errorf("demo vendors %v, catalogue %v", vendors, rules.VendorNames())
	}
}

func TestSinkRecords(t *testing.T) {
	s, err := StartSink("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		req, _ := http.NewRequest("POST", s.URL()+"/g/collect?v=2&cid=1.2", strings.NewReader("en=page_view&_et=1\nen=scroll"))
		req.Header.Set("Cookie", "x=1")
		if r, err := http.DefaultClient.Do(req); err == nil {
			r.Body.Close()
		}
		if r, err := http.Get(s.URL() + "/tr?id=1&ev=PageView&cd%5Bview%5D=3"); err == nil {
			r.Body.Close()
			if r.Header.Get("Content-Type") != "image/gif" {
				t.Errorf("pixel answered %s", r.Header.Get("Content-Type"))
			}
		}
	}()
	h, err := s.Wait(ctx, 0, func(h Hit) bool { return h.Vendor == "meta" })
	if err != nil {
		t.Fatal(err)
	}
	if h.Param("cd[view]") != "3" || h.Seq != 2 {
		t.Errorf("meta hit %+v", h)
	}
	ga := s.Hits()[0]
	if ga.Vendor != "ga4" || ga.Param("cid") != "1.2" || ga.Param("en") != "page_view" || !ga.Cookie {
		t.Errorf("ga4 hit %+v", ga)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.Wait(short, 2, func(Hit) bool { return true }); err == nil {
		t.Error("Wait returned a hit that never came")
	}
}

// A demo that cannot start says why and stops what it had started (it used to call Stop
// on a nil demo).
func TestStartFailsCleanly(t *testing.T) {
	_, err := Start(context.Background(), Options{Binary: "/nonexistent/consentgate"})
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("Start with no binary: %v", err)
	}
}
