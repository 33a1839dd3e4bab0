// Command demo is `make demo`: the consentgate binary with a demo config, a sink standing
// in for every vendor, and a static demo shop whose tags go through the proxy. It prints
// the URLs and runs until Ctrl-C (or SIGTERM), then stops everything it started. Nothing
// leaves the machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/consentgate/consentgate/internal/demo"
)

func main() {
	o := demo.Options{Out: os.Stdout}
	flag.StringVar(&o.Binary, "binary", "bin/consentgate", "the consentgate binary (make build)")
	flag.StringVar(&o.ShopAddr, "shop", "127.0.0.1:8000", "the demo shop's address")
	flag.StringVar(&o.ProxyAddr, "proxy", "127.0.0.1:8080", "the proxy's public listener")
	flag.StringVar(&o.AdminAddr, "admin", "127.0.0.1:9090", "the proxy's admin listener (dashboard)")
	flag.StringVar(&o.SinkAddr, "sink", "127.0.0.1:8090", "the sink standing in for every vendor")
	flag.StringVar(&o.UnknownRegime, "regime", "opt_in", "the regime of this machine's browsers (a loopback address has no location): opt_in, opt_out or none")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := demo.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Print(d.Banner())
	<-ctx.Done()
	fmt.Println("\nstopping…")
	if err := d.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
