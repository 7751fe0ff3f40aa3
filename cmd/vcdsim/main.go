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
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
	"github.com/vpipe/vpipe/pipeline/vcd/simulator"
)

func main() { simcmd.Main("vcdsim", run) }

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vcdsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5480", "`address` to listen on")
	fixture := fs.String("fixture", "", "fixture `file` (JSON: orgs, vdcs, vdcGroups, edgeGateways, tokens); default a built-in demo")
	cert := fs.String("cert", "", "TLS certificate `file` (with -key): serve HTTPS")
	key := fs.String("key", "", "TLS key `file`")
	noVDCList := fs.Bool("no-vdc-list", false, "answer 404 on /cloudapi/1.0.0/vdcs so clients use the legacy query API")
	if err := simcmd.Parse(fs, args); err != nil {
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
	scheme := "http"
	if *cert != "" || *key != "" {
		c, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			ln.Close()
			return err
		}
		scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12})
	}
	fmt.Printf("vcdsim serving %d orgs on %s://%s\n", len(f.Orgs), scheme, ln.Addr())
	for token, org := range f.Tokens {
		fmt.Printf("  API token %q (org %s)\n", token, org)
	}
	srv := &http.Server{Handler: simulator.New(f, simulator.Options{NoVDCList: *noVDCList, LinkHeaders: true})}
	return simcmd.Serve(ctx, srv, ln)
}
