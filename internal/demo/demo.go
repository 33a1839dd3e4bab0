package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Options are the demo's addresses and parts. Empty addresses take a free port on
// 127.0.0.1.
type Options struct {
	Binary                                   string // the consentgate binary
	ShopAddr, ProxyAddr, AdminAddr, SinkAddr string
	// ShopOrigins are extra origins the shop is opened under (beyond its own address and
	// localhost), for allowed_origins.
	ShopOrigins []string
	// NoAllowedOrigins leaves allowed_origins empty: the shop's page may not call the
	// consent API (the cross-origin test).
	NoAllowedOrigins bool
	// ProxyOrigin is the proxy's origin as the shop's page uses it; empty: the page's own
	// host name with the proxy's port.
	ProxyOrigin   string
	UnknownRegime string
	ProxyExtra    string       // more YAML for the proxy config
	Extra         http.Handler // the shop's /test/ pages
	// Out receives the sink's lines and the proxy's log; nil discards them.
	Out io.Writer
	// Dir holds the generated config; empty: a temporary directory, removed on Stop.
	Dir string
}

// Demo is a running demo.
type Demo struct {
	Sink  *Sink
	Shop  *Shop
	Proxy *Proxy
	// URLs as a browser on this machine opens them.
	ShopURL, ProxyURL, AdminURL, DashboardURL string
	AdminToken                                string
	dir                                       string
	ownDir                                    bool
}

// Start starts the sink, the proxy and the shop, and waits until the proxy is ready.
func Start(ctx context.Context, o Options) (_ *Demo, err error) {
	d := &Demo{dir: o.Dir}
	defer func() {
		if err != nil {
			d.Stop() // what was started before the error
		}
	}()
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "consentgate-demo-"); err != nil {
			return nil, err
		}
		d.ownDir = true
	}
	addr := func(a *string) error {
		if *a != "" {
			return nil
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		*a = l.Addr().String()
		return l.Close()
	}
	for _, a := range []*string{&o.ShopAddr, &o.ProxyAddr, &o.AdminAddr} {
		if err := addr(a); err != nil {
			return nil, err
		}
	}
	if o.SinkAddr == "" {
		o.SinkAddr = "127.0.0.1:0"
	}
	sinkOut := o.Out
	if d.Sink, err = StartSink(o.SinkAddr, sinkOut); err != nil {
		return nil, err
	}
	_, shopPort, _ := net.SplitHostPort(o.ShopAddr)
	_, proxyPort, _ := net.SplitHostPort(o.ProxyAddr)
	var origins []string
	if !o.NoAllowedOrigins {
		origins = append([]string{"http://127.0.0.1:" + shopPort, "http://localhost:" + shopPort}, o.ShopOrigins...)
	}
	d.AdminToken = randomToken()
	cfg := ProxyConfig{
		Listen: o.ProxyAddr, AdminListen: o.AdminAddr, AdminToken: d.AdminToken, SinkURL: d.Sink.URL(),
		AllowedOrigins: origins, UnknownRegime: o.UnknownRegime, Extra: o.ProxyExtra,
	}
	var proxyOut io.Writer
	if o.Out != nil {
		proxyOut = prefixWriter{o.Out, "proxy: "}
	}
	if d.Proxy, err = StartProxy(o.Binary, d.dir, cfg, proxyOut); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := d.Proxy.WaitReady(wctx); err != nil {
		return nil, err
	}
	d.ProxyURL = "http://" + o.ProxyAddr
	d.AdminURL = "http://" + o.AdminAddr
	d.DashboardURL = d.AdminURL + "/dashboard"
	if d.Shop, err = StartShop(ShopOptions{
		Addr: o.ShopAddr, ProxyPort: proxyPort, ProxyOrigin: o.ProxyOrigin, Dashboard: d.DashboardURL,
		Sink: d.Sink, Proxy: d.Proxy, Extra: o.Extra,
	}); err != nil {
		return nil, err
	}
	d.ShopURL = d.Shop.URL()
	return d, nil
}

// Stop stops the shop, the proxy (SIGTERM) and the sink.
func (d *Demo) Stop() error {
	var errs []error
	if d.Shop != nil {
		errs = append(errs, d.Shop.Close())
	}
	if d.Proxy != nil {
		errs = append(errs, d.Proxy.Stop())
	}
	if d.Sink != nil {
		errs = append(errs, d.Sink.Close())
	}
	if d.ownDir {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

// Banner is what `make demo` prints once everything runs.
func (d *Demo) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nconsentgate demo: nothing here leaves this machine.\n\n")
	fmt.Fprintf(&b, "  shop       %s/              click accept / reject / withdraw\n", d.ShopURL)
	fmt.Fprintf(&b, "             %s/?cmp=cookiebot  (or onetrust, tcf, gpp, consentmode: a stand-in banner API)\n", d.ShopURL)
	fmt.Fprintf(&b, "  proxy      %s               (public listener: the tags, /consent, /consentgate.js)\n", d.ProxyURL)
	fmt.Fprintf(&b, "  dashboard  %s\n", d.DashboardURL)
	fmt.Fprintf(&b, "  sink       %s/hits          (what the vendors received; also printed below)\n", d.Sink.URL())
	fmt.Fprintf(&b, "  admin API  %s/admin/…  with Authorization: Bearer %s\n\n", d.AdminURL, d.AdminToken)
	fmt.Fprintf(&b, "Press Ctrl-C to stop.\n\n")
	return b.String()
}

// prefixWriter starts every line written through it with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	lines := strings.SplitAfter(string(b), "\n")
	var out strings.Builder
	for _, l := range lines {
		if l != "" {
			out.WriteString(p.prefix + l)
		}
	}
	_, err := io.WriteString(p.w, out.String())
	return len(b), err
}
