package proxy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartReloadAbandonsAHungRead: a reload whose config path blocks on read (a FIFO
// nobody writes) is one at a time, is abandoned after its timeout (counted as failed,
// the config in force unchanged), frees the way for the next reload, and does not hold
// up Shutdown.
func TestStartReloadAbandonsAHungRead(t *testing.T) {
	up := startSink(t)
	path := filepath.Join(t.TempDir(), "consentgate.yaml")
	p := startProxy(t, strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1))
	p.opts.ConfigPath = path
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	version := p.Config().Version()
	if !p.StartReload(300 * time.Millisecond) {
		t.Fatal("the first reload did not start")
	}
	if p.StartReload(300 * time.Millisecond) {
		t.Error("a second reload started while the first hangs")
	}
	// The second request runs once the first is abandoned, and hangs the same way.
	eventually(t, 10*time.Second, "both hung reloads counted as failed", func() bool {
		return strings.Contains(p.metricsText(t), "consentgate_config_reload_errors_total 2")
	})
	eventually(t, 10*time.Second, "the abandoned reload lets the next one start", func() bool { return !p.reloading.Load() })
	if !p.StartReload(time.Minute) {
		t.Error("no reload could start after the abandoned one")
	}
	if p.Config().Version() != version {
		t.Error("the config in force changed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("shutdown with a reload hanging: %v", err)
	}
	if ctx.Err() != nil {
		t.Errorf("shutdown waited for the hung reload (%s)", time.Since(start))
	}
	// Release the blocked reads so the test leaves no goroutine behind; what they read
	// is dropped (the server is stopped).
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		f.Close()
	}
}

// TestStartReloadRunsOnceMoreForRequestsMeanwhile: SIGHUPs that arrive while a reload
// runs (it may have read the config before the edit they announce) make exactly one more
// reload run after it, which reads the config as it is then.
func TestStartReloadRunsOnceMoreForRequestsMeanwhile(t *testing.T) {
	up := startSink(t)
	path := filepath.Join(t.TempDir(), "consentgate.yaml")
	base := strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)
	p := startProxy(t, base)
	p.opts.ConfigPath = path
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Each reload blocks opening the FIFO until the test writes a config into it.
	feed := func(cfg string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(cfg)
		f.Close()
	}
	if !p.StartReload(time.Minute) {
		t.Fatal("the first reload did not start")
	}
	for range 3 {
		if p.StartReload(time.Minute) {
			t.Fatal("a reload started while one runs")
		}
	}
	first := base + "log_level: warn\n"
	second := base + "log_level: error\n"
	feed(first)
	// Once the first is in force its reader is gone: the next writer meets the one more
	// reload's reader, not the tail of the first's.
	eventually(t, 10*time.Second, "the first config in force", func() bool { return p.Config().LogLevel == "warn" })
	feed(second)
	eventually(t, 10*time.Second, "the second config in force", func() bool { return p.Config().LogLevel == "error" })
	eventually(t, 10*time.Second, "no reload running", func() bool { return !p.reloading.Load() })
	// No third reload: nobody opens the FIFO to read (ENXIO for a writer without a reader).
	time.Sleep(100 * time.Millisecond)
	if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
		t.Error("a third reload is reading the config: the three requests made more than one more")
	}
	if m := p.metricsText(t); !strings.Contains(m, "consentgate_config_reload_errors_total 0") {
		t.Errorf("a reload failed:\n%s", grep(m, "config_reload"))
	}
}

// TestListenerSettingsNeedRestart: fasthttp reads its timeouts and sizes without a lock
// while it serves, so a reload that changes one is refused and the config stays.
func TestListenerSettingsNeedRestart(t *testing.T) {
	up := startSink(t)
	path := filepath.Join(t.TempDir(), "consentgate.yaml")
	good := strings.Replace(testConfig(up.URL(), ""), "../testdata", mustAbs(t, "../testdata"), 1)
	p := startProxy(t, good)
	p.opts.ConfigPath = path
	for _, extra := range []string{"read_timeout: 6s\n", "write_timeout: 6s\n", "idle_timeout: 2m\n", "max_header_size: 65536\n",
		"max_body_size: 32768\n", "max_conns_per_ip: 10\n"} {
		if err := os.WriteFile(path, []byte(good+extra), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.Reload(); err == nil || !strings.Contains(err.Error(), "cannot change on reload: restart the process") {
			t.Errorf("reload with %q: %v, want it refused", strings.TrimSpace(extra), err)
		}
	}
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Errorf("reload of the same config: %v", err)
	}
}
