// Command vcdsim serves a VMware Cloud Director API simulator
// (pipeline/vcd/simulator) for demos of vpipe's tenant discovery:
//
//	vcdsim [-listen 127.0.0.1:5480] [-fixture FILE] [-cert FILE -key FILE] [-no-vdc-list]
//
// Without -fixture it serves simulator.Demo(); point tenants.vcd.url at
// the address it prints and use the token it prints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vpipe/vpipe/pipeline/vcd/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "vcdsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vcdsim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5480", "`address` to listen on")
	fixture := fs.String("fixture", "", "fixture `file` (JSON: orgs, vdcs, vdcGroups, edgeGateways, tokens); default a built-in demo")
	cert := fs.String("cert", "", "TLS certificate `file` (with -key): serve HTTPS")
	key := fs.String("key", "", "TLS key `file`")
	noVDCList := fs.Bool("no-vdc-list", false, "answer 404 on /cloudapi/1.0.0/vdcs so clients use the legacy query API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f := simulator.Demo()
	if *fixture != "" {
		var err error
		if f, err = simulator.LoadFixture(*fixture); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: simulator.New(f, simulator.Options{NoVDCList: *noVDCList, LinkHeaders: true}), ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	fmt.Printf("vcdsim serving %d orgs on %s://%s\n", len(f.Orgs), scheme, ln.Addr())
	for token, org := range f.Tokens {
		fmt.Printf("  API token %q (org %s)\n", token, org)
	}
	errc := make(chan error, 1)
	go func() {
		if *cert != "" {
			errc <- srv.ServeTLS(ln, *cert, *key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
