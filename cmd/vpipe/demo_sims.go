//go:build !nodemo

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // vAPI tagging endpoints in vcsim
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/parsers/syslog"
	vcdsim "github.com/vpipe/vpipe/pipeline/vcd/simulator"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	vcosim "github.com/vpipe/vpipe/pipeline/velocloud/simulator"
	znsim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
	"github.com/vpipe/vpipe/sinks/forensics/vspansim"
	"github.com/vpipe/vpipe/sinks/nsx"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// The demo's VMs: vcsim's four, renamed for what each workflow does to it.
const (
	demoVMTagged     = "web-01"  // workflow 1: a vSphere tag
	demoVMJIT        = "jump-01" // workflow 3: SSH while a ticket is locked
	demoVMQuarantine = "app-01"  // workflow 4: quarantined
)

// demoVMNames gives vcsim's VPX VMs the demo's names.
var demoVMNames = map[string]string{
	"DC0_H0_VM0":     demoVMTagged,
	"DC0_H0_VM1":     demoVMJIT,
	"DC0_C0_RP0_VM0": demoVMQuarantine,
	"DC0_C0_RP0_VM1": "app-02",
}

// demoVM is a VM of vcsim, known to the NSX simulator by its instance UUID.
type demoVM struct {
	Name string
	UUID string // config.instanceUuid, NSX's external_id
	Ref  types.ManagedObjectReference
}

// demoSims is every system the demo simulates, on loopback: vcsim (with
// VSPAN sessions), the NSX, VCO, Znuny and VCD simulators, and the
// tenants' and the provider's syslog servers.
type demoSims struct {
	dir string

	vcModel *simulator.Model
	vcSrv   *simulator.Server
	vcURL   string
	vcCA    string
	vc      *vcenter.Conn // the demo's own session (SOAP and vAPI)
	vms     map[string]demoVM

	nsx    *nsxsim.Server
	nsxSrv *httptest.Server
	nsxCA  string
	nsxc   *nsx.Client // the demo's own NSX client, as an AV partner's

	vco    *vcosim.Server
	vcoSrv *httptest.Server

	// Znuny's invoker posts to vpipe, whose address is known only once
	// vpipe runs: the listener is bound first, the server made later.
	zn    *znsim.Server
	znLn  net.Listener
	znSrv *http.Server

	vcd    *vcdsim.Server
	vcdSrv *httptest.Server

	syslog map[string]*demoReceiver // acme, globex, provider

	closers []func()
}

// startDemoSims starts every simulator, with its CA certificate and the
// secrets vpipe needs as files under dir.
func startDemoSims(ctx context.Context, dir string) (s *demoSims, err error) {
	s = &demoSims{dir: dir, syslog: map[string]*demoReceiver{}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		return nil, err
	}
	secrets := map[string]string{
		"vcenter.password": demoVCPassword, "nsx.password": demoNSXPassword,
		"znuny.password": demoZnunyPass, "vco.token": demoVCOToken, "vcd.token": vcdsim.DemoToken,
	}
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(v+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	if err := s.startVCSim(ctx); err != nil {
		return nil, fmt.Errorf("vcsim: %w", err)
	}
	if err := s.startNSX(ctx); err != nil {
		return nil, fmt.Errorf("nsx simulator: %w", err)
	}
	s.vco = vcosim.New(vcosim.Config{Tokens: []vcosim.Token{{Token: demoVCOToken, Role: vcosim.RoleOperator}}})
	s.vcoSrv = s.serve(s.vco, false)
	s.vcd = vcdsim.New(vcdsim.Demo(), vcdsim.Options{})
	s.vcdSrv = s.serve(s.vcd, false)
	if s.znLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	for _, name := range []string{"acme", "globex", "provider"} {
		r, err := newDemoReceiver()
		if err != nil {
			return nil, err
		}
		s.syslog[name] = r
		s.closers = append(s.closers, r.close)
	}
	return s, nil
}

// startVCSim runs vcsim over HTTPS with vAPI tagging and VSPAN sessions,
// renames its VMs and gives the quarantine VM two vNICs bound to ports of
// the distributed switch (vcsim binds none itself).
func (s *demoSims) startVCSim(ctx context.Context) error {
	m := simulator.VPX()
	// vcsim's AlarmManager panics on an EventEx without an entity, as
	// tagging events are (pipeline/vcenter/vcentertest).
	m.ServiceContent.AlarmManager = nil
	if err := m.Create(); err != nil {
		return err
	}
	s.vcModel = m
	s.closers = append(s.closers, m.Remove)
	vspansim.Install(m.Map())
	m.Service.TLS = new(tls.Config)
	m.Service.RegisterEndpoints = true
	m.Service.Listen = &url.URL{User: url.UserPassword(demoVCUser, demoVCPassword)}
	s.vcSrv = m.Service.NewServer()
	s.closers = append(s.closers, s.vcSrv.Close)
	s.vcCA = filepath.Join(s.dir, "vcsim-ca.pem")
	if err := writeCert(s.vcCA, s.vcSrv.Certificate()); err != nil {
		return err
	}
	u := *s.vcSrv.URL
	u.User = nil
	s.vcURL = u.String()
	c, err := vcenter.Dial(ctx, vcenter.ConnConfig{
		URL: s.vcURL, Username: demoVCUser, Password: demoVCPassword, CAFile: s.vcCA, Timeout: 30 * time.Second,
	}, true)
	if err != nil {
		return err
	}
	s.vc = c
	s.closers = append(s.closers, func() { c.Logout(context.Background()) })

	var vms []mo.VirtualMachine
	cv, err := view.NewManager(c.VIM).CreateContainerView(ctx, c.VIM.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err == nil {
		err = cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid"}, &vms)
		cv.Destroy(ctx)
	}
	if err != nil {
		return err
	}
	s.vms = map[string]demoVM{}
	for _, vm := range vms {
		name, ok := demoVMNames[vm.Name]
		if !ok {
			continue
		}
		task, err := object.NewVirtualMachine(c.VIM, vm.Self).Rename(ctx, name)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("rename %s: %w", vm.Name, err)
		}
		s.vms[name] = demoVM{Name: name, UUID: vm.Config.InstanceUuid, Ref: vm.Self}
	}
	if len(s.vms) != len(demoVMNames) {
		return fmt.Errorf("vcsim has %d of the VMs %v", len(s.vms), demoVMNames)
	}
	return vspansim.BindNICs(ctx, c.VIM, m.Map(), s.vms[demoVMQuarantine].Ref, "DC0_DVPG0", "10", "11")
}

// startNSX runs the NSX simulator over HTTPS with vcsim's VMs, each with
// a tag of its own that vpipe must keep, and the Quarantine group (VMs
// tagged av|infected) created through the API.
func (s *demoSims) startNSX(ctx context.Context) error {
	s.nsx = nsxsim.New(nsxsim.Options{Users: map[string]string{demoNSXUser: demoNSXPassword}})
	for _, name := range slices.Sorted(maps.Keys(s.vms)) {
		vm := s.vms[name]
		s.nsx.AddVM(nsxsim.VM{ExternalID: vm.UUID, DisplayName: vm.Name, MoRef: vm.Ref.Value,
			Tags: []nsxsim.Tag{{Scope: "owner", Tag: "team-" + strings.SplitN(vm.Name, "-", 2)[0]}}})
	}
	s.nsxSrv = s.serve(s.nsx, true)
	s.nsxCA = filepath.Join(s.dir, "nsx-ca.pem")
	if err := writeCert(s.nsxCA, s.nsxSrv.Certificate()); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.nsxSrv.Certificate())
	c, err := nsx.New(nsx.Config{
		Name: "demo", URL: s.nsxSrv.URL, Username: demoNSXUser, Password: demoNSXPassword,
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}, nil, nil)
	if err != nil {
		return err
	}
	s.nsxc = c
	s.closers = append(s.closers, func() { c.Close(context.Background()) })
	return c.PutGroup(ctx, "default", nsx.Group{ID: "quarantine", DisplayName: "Quarantine",
		Expression: []nsx.Condition{nsx.TagCondition(demoQuarantineTag)}})
}

// demoQuarantineTag puts a VM in the Quarantine group, as an AV or IDS
// partner's tag would.
var demoQuarantineTag = nsx.Tag{Scope: "av", Tag: "infected"}

// startZnuny serves the Znuny simulator on its listener, its invoker
// posting ticket lock changes to vpipe's webhook at webhook.
func (s *demoSims) startZnuny(webhook string) {
	s.zn = znsim.New(znsim.Options{
		Users:   map[string]string{demoZnunyUser: demoZnunyPass},
		Invoker: znsim.Invoker{URL: webhook, Events: []string{znsim.EventLockUpdate}},
	})
	s.znSrv = &http.Server{Handler: s.zn, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go s.znSrv.Serve(s.znLn)
}

// znunyURL is the web service URL vpipe is configured with, known before
// startZnuny makes the server (the default web service name gives the same
// base path).
func (s *demoSims) znunyURL() string {
	return "http://" + s.znLn.Addr().String() + znsim.New(znsim.Options{}).BasePath()
}

func (s *demoSims) serve(h http.Handler, tlsOn bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s.closers = append(s.closers, srv.Close)
	return srv
}

// addrs is where everything is, for the configuration.
func (s *demoSims) addrs() demoAddrs {
	return demoAddrs{
		DataDir: s.dir, Secrets: filepath.Join(s.dir, "secrets"),
		VCenter: s.vcURL, VCenterCA: s.vcCA, NSX: s.nsxSrv.URL, NSXCA: s.nsxCA,
		VCO: s.vcoSrv.URL, Znuny: s.znunyURL(), VCD: s.vcdSrv.URL,
		Acme: s.syslog["acme"].addr(), Globex: s.syslog["globex"].addr(), Provider: s.syslog["provider"].addr(),
	}
}

// close stops every simulator, the last started first.
func (s *demoSims) close() {
	if s.znSrv != nil {
		s.znSrv.Close()
	} else if s.znLn != nil {
		s.znLn.Close()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func writeCert(path string, c *x509.Certificate) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600)
}

// demoReceiver is a tenant's (or the provider's) syslog server over TCP:
// it keeps the octet-counted frames it reads.
type demoReceiver struct {
	ln     net.Listener
	mu     sync.Mutex
	frames []string
	wg     sync.WaitGroup
	conns  map[net.Conn]bool
}

func newDemoReceiver() (*demoReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &demoReceiver{ln: ln, conns: map[net.Conn]bool{}}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			r.wg.Go(func() {
				defer c.Close()
				sc := syslog.NewScanner(c, 1<<20)
				sc.SetFraming(syslog.FramingOctetCounting)
				for sc.Scan() {
					r.mu.Lock()
					r.frames = append(r.frames, string(sc.Frame()))
					r.mu.Unlock()
				}
			})
		}
	})
	return r, nil
}

func (r *demoReceiver) addr() string { return r.ln.Addr().String() }

// got returns the frames received so far.
func (r *demoReceiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

func (r *demoReceiver) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
