package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProxyConfig is what the demo config needs to know.
type ProxyConfig struct {
	Listen, AdminListen string
	AdminToken          string
	SinkURL             string
	// AllowedOrigins are the shop's origins: its page calls /consent on the proxy's
	// origin, with credentials.
	AllowedOrigins []string
	// UnknownRegime is the regime of a visitor without a location, which every browser
	// on this machine is (a loopback address has none): opt_in unless set.
	UnknownRegime string
	// Extra is appended to the config (YAML), for tests.
	Extra string
}

// vendors are the catalogue's vendors: every one of them goes to the sink.
var vendors = []string{"ga4", "meta", "google_ads", "bing", "linkedin", "tiktok", "matomo", "plausible"}

// YAML is the demo config.
func (c ProxyConfig) YAML() []byte {
	q := strconv.Quote
	var b strings.Builder
	b.WriteString("# The consentgate demo config, written by internal/demo (make demo).\n")
	fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\nadmin_token: %s\n", q(c.Listen), q(c.AdminListen), q(c.AdminToken))
	b.WriteString("allowed_origins: [")
	for i, o := range c.AllowedOrigins {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(o))
	}
	b.WriteString("]\n")
	regime := c.UnknownRegime
	if regime == "" {
		regime = "opt_in"
	}
	fmt.Fprintf(&b, "geo:\n  unknown_regime: %s\n", regime)
	b.WriteString(`# Analytics the visitor refused is still measured, anonymised, as it is before they
# choose: the demo shows "anonymised" for reject and withdraw alike. Without this cell a
# refusal in an opt_in jurisdiction drops the hit.
policy:
  opt_in:
    denied:
      statistics: anonymise
`)
	fmt.Fprintf(&b, "anonymise:\n  secret: %s\n", q(randomToken()))
	b.WriteString("upstreams:\n")
	for _, v := range vendors {
		fmt.Fprintf(&b, "  %s: %s\n", v, q(c.SinkURL))
	}
	b.WriteString("telemetry:\n  decision_log:\n    sample_ratio: 1\n")
	b.WriteString(c.Extra)
	return []byte(b.String())
}

// randomToken is a fresh secret: the demo's admin token and anonymiser key.
func randomToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Proxy is the consentgate binary running the demo config.
type Proxy struct {
	cmd    *exec.Cmd
	admin  string
	token  string
	exited chan struct{}
	err    error
	log    *tail
}

// StartProxy writes cfg to dir and starts binary with it; the proxy's output goes to out
// (and the last lines are kept for error messages).
func StartProxy(binary, dir string, cfg ProxyConfig, out io.Writer) (*Proxy, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("proxy binary %s: %w (build it with `make build`)", binary, err)
	}
	path := filepath.Join(dir, "consentgate.demo.yaml")
	if err := os.WriteFile(path, cfg.YAML(), 0o600); err != nil {
		return nil, fmt.Errorf("write demo config: %w", err)
	}
	t := &tail{}
	w := io.Writer(t)
	if out != nil {
		w = io.MultiWriter(out, t)
	}
	cmd := exec.Command(binary, "serve", "--config", path, "--drain-delay", "0s")
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group, so Ctrl-C reaches the demo, which stops the proxy; and
	// SIGTERM if the demo dies first, so no proxy is left holding the ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &Proxy{cmd: cmd, admin: "http://" + cfg.AdminListen, token: cfg.AdminToken, exited: make(chan struct{}), log: t}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// WaitReady polls /readyz until the proxy answers 200, exits, or ctx ends.
func (p *Proxy) WaitReady(ctx context.Context) error {
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("consentgate exited (%v):\n%s", p.err, p.log.String())
		default:
		}
		if r, err := http.Get(p.admin + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consentgate not ready at %s: %w\n%s", p.admin, ctx.Err(), p.log.String())
		case <-p.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the drain; a proxy that does not stop is killed.
func (p *Proxy) Stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return fmt.Errorf("consentgate exited with %v after SIGTERM", ee)
		}
		return nil
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("consentgate did not stop within 10s of SIGTERM; killed")
	}
}

// Output is the proxy's output so far (its last 64 KiB).
func (p *Proxy) Output() string { return p.log.String() }

// Admin calls the admin API with the demo's token.
func (p *Proxy) Admin(method, path string) (int, []byte, error) {
	req, err := http.NewRequest(method, p.admin+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	return r.StatusCode, b, err
}

// tail keeps the last 64 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - 64<<10; over > 0 {
		t.buf = t.buf[over:]
		if i := bytes.IndexByte(t.buf, '\n'); i >= 0 {
			t.buf = t.buf[i+1:]
		}
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
