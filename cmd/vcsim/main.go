// Command vcsim serves govmomi's vCenter simulator (the module's own
// github.com/vmware/govmomi/simulator, the version the tests use) with
// what vpipe's demos need on top of the upstream vcsim binary: vAPI
// tagging, VSPAN port-mirroring sessions on the distributed switch
// (sinks/forensics/vspansim), every VM's vNICs bound to ports of that
// switch so a session can mirror them, and no AlarmManager, which would
// panic on the tagging events (EventEx without an entity) a demo posts.
//
//	vcsim -listen 127.0.0.1:8989 -username vpipe@vsphere.local -password secret -ca-out vcsim-ca.pem
//
// Upstream's vcsim is a module of its own since govmomi v0.47 (with a
// replace directive), so `go install` cannot fetch it from the module
// proxy; this command builds from vpipe's go.mod instead.
package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // vAPI: tags and categories
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
	"github.com/vpipe/vpipe/sinks/forensics/vspansim"
)

func main() { simcmd.Main("vcsim", run) }

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vcsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `vcsim [flags]

Serves a simulated vCenter (govmomi's VPX model: datacenter DC0, a cluster and
a standalone host, VMs DC0_H0_VM0 ..., distributed switch DVS0 with portgroup
DC0_DVPG0) on /sdk, with vAPI tagging on /rest and /api, VSPAN sessions on
the distributed switch, and each VM's vNICs bound to ports of DC0_DVPG0.

Flags:`)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8989", "`address` to listen on")
	user := fs.String("username", "user", "login `name`")
	password := fs.String("password", "pass", "login `password`")
	useTLS := fs.Bool("tls", true, "serve HTTPS with a self-signed certificate (see -ca-out)")
	caOut := fs.String("ca-out", "", "write the certificate to this `file`, for clients' ca_file")
	nics := fs.Int("nics", 2, "vNICs per VM bound to ports of DC0_DVPG0 (0: leave vcsim's own)")
	if err := simcmd.Parse(fs, args); err != nil {
		return err
	}
	if *nics < 0 {
		fmt.Fprintln(stderr, "vcsim: -nics must be 0 or more")
		return simcmd.ErrUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	// The inventory of upstream vcsim without model flags, so that
	// fixtures naming its VMs (instance UUIDs derive from the names) hold
	// for both.
	m := simulator.VPX()
	// vcsim's AlarmManager looks up the entity of every posted EventEx and
	// panics when there is none, as for a tagging event (govmomi v0.56.0
	// simulator/alarm_manager.go); vpipe does not use alarms.
	m.ServiceContent.AlarmManager = nil
	if err := m.Create(); err != nil {
		return err
	}
	defer m.Remove()
	vspansim.Install(m.Map())
	if *useTLS {
		m.Service.TLS = new(tls.Config)
	}
	m.Service.RegisterEndpoints = true
	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	srv := m.Service.NewServer()
	defer srv.Close()

	if *useTLS && *caOut != "" {
		der := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(*caOut, der, 0o644); err != nil {
			return err
		}
	}
	bound, err := bindAll(ctx, srv, m.Map(), *nics)
	if err != nil {
		return fmt.Errorf("bind vNICs: %w", err)
	}
	u := *srv.URL
	u.User = nil
	log.Info("vcsim serving", "url", u.String(), "username", *user, "vms", len(m.Map().All("VirtualMachine")), "bound_vnics", bound)
	<-ctx.Done()
	log.Info("vcsim stopped")
	return nil
}

// bindAll gives every VM n vNICs bound to ports of DC0_DVPG0, distinct
// port keys across VMs (100, 101, ...), through the server's own API.
func bindAll(ctx context.Context, srv *simulator.Server, r *simulator.Registry, n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	c, err := vim25.NewClient(ctx, soap.NewClient(srv.URL, true))
	if err != nil {
		return 0, err
	}
	sm := session.NewManager(c)
	if err := sm.Login(ctx, srv.URL.User); err != nil {
		return 0, err
	}
	defer sm.Logout(context.WithoutCancel(ctx))
	next := 100
	for _, e := range r.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		ports := make([]string, n)
		for i := range ports {
			ports[i] = strconv.Itoa(next)
			next++
		}
		if err := vspansim.BindNICs(ctx, c, r, vm.Self, "DC0_DVPG0", ports...); err != nil {
			return 0, fmt.Errorf("%s: %w", vm.Name, err)
		}
	}
	return next - 100, nil
}
