package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/vcd/simulator"
)

func TestTenantsCommand(t *testing.T) {
	f, err := simulator.LoadFixture("../../testdata/tenants/vcd-fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(f, simulator.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vpipe.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`kafka: {brokers: ["127.0.0.1:9092"]}
tenants:
  vcd: {url: %q, token_env: VPIPE_TEST_VCD_TOKEN}
  list:
    - id: acme
      name: ACME
      labels: [ACME-web]
      syslog: [{transport: tcp, address: "127.0.0.1:6514"}]
`, srv.URL)), 0o600)
	t.Setenv("VPIPE_TEST_VCD_TOKEN", "provider-token")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		absent   []string
		stderr   string
		jsonRows int
	}{
		{name: "discovered", args: []string{"tenants", "-c", cfg}, stdout: []string{
			`tenant acme "ACME" (configured, discovered from VCD)`,
			"dfw-first27  acme-5f0e8d7c-6b5a-4938-8271-605  5f0e8d7c-6b5a-4938-8271-605  dc_groups[0] acme-dcgroup",
			"gateway      a93c9db9-7acme-d1e2f",
			"verbatim     ACME-web",
			`tenant initech "Initech" (discovered from VCD; no destination`,
		}},
		{name: "offline", args: []string{"tenants", "-c", cfg, "--offline"}, stdout: []string{`tenant acme "ACME" (configured)`}, absent: []string{"initech", "dfw"}},
		{name: "json", args: []string{"tenants", "-c", cfg, "--json"}, jsonRows: 3},
		{name: "no file", args: []string{"tenants"}, code: 2, stderr: "vpipe tenants -c FILE"},
		{name: "bad file", args: []string{"tenants", "-c", "../../testdata/tenants/config-bad-claims.yaml"}, code: 1, stderr: "which tenant \"acme\" also claims"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			flat := strings.Join(strings.Fields(stdout), " ")
			for _, s := range tt.stdout {
				if !strings.Contains(flat, strings.Join(strings.Fields(s), " ")) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout has %q:\n%s", s, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
			if tt.jsonRows > 0 {
				sc := bufio.NewScanner(strings.NewReader(stdout))
				rows := 0
				for sc.Scan() {
					var v struct {
						ID     string `json:"id"`
						Labels []struct{ Shape, Label, Match string }
					}
					if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.ID == "" || len(v.Labels) == 0 {
						t.Errorf("row %q: %v", sc.Text(), err)
					}
					rows++
				}
				if rows != tt.jsonRows {
					t.Errorf("%d rows, want %d", rows, tt.jsonRows)
				}
			}
		})
	}
	t.Run("vcd down", func(t *testing.T) {
		sim.SetDown(true)
		defer sim.SetDown(false)
		code, _, stderr := runCLI("tenants", "-c", cfg)
		if code != 1 || !strings.Contains(stderr, "vcd discovery: vcd login (POST /oauth/provider/token): status 503") {
			t.Errorf("exit %d, stderr %s", code, stderr)
		}
	})
}

// frameServer is a syslog receiver: it collects the frames it reads.
type frameServer struct {
	ln     net.Listener
	mu     sync.Mutex
	frames []string
}

func newFrameServer(t *testing.T) *frameServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &frameServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := syslog.NewScanner(c, 1<<20)
				sc.SetFraming(syslog.FramingOctetCounting)
				for sc.Scan() {
					s.mu.Lock()
					s.frames = append(s.frames, string(sc.Frame()))
					s.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *frameServer) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frames...)
}

// TestEndToEndTenantForward: NSX DFW lines with VCD log labels arrive
// over syslog TCP, are parsed, go through Kafka, and the tenant-forward
// stage sends each to its tenant's syslog server; one with a label of
// nobody goes to the provider's catch-all.
func TestEndToEndTenantForward(t *testing.T) {
	acme, catchAll := newFrameServer(t), newFrameServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "vpipe.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`kafka:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
  shutdown_timeout: 10s
syslog: [{transport: tcp, address: "127.0.0.1:0"}]
http: {address: "127.0.0.1:0"}
tenants:
  list:
    - id: acme
      name: ACME Corporation
      dc_groups: [{name: acme-dcgroup, id: 5f0e8d7c-6b5a-4938-8271-605f4e3d2c1b}]
      syslog: [{transport: tcp, address: %q}]
stages:
  tenant_forward:
    catch_all: [{transport: tcp, address: %q}]
`, dir, acme.ln.Addr(), catchAll.ln.Addr())), 0o600)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	r := startVpipeRoles(t, cfg, map[string]bool{roleIngest: true, roleTenantForward: true})
	c, err := net.Dial("tcp", r.p.listeners[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const body = "8b4a1980 INET match PASS 1044 IN 80 TCP 10.0.0.1/51000->10.0.0.2/443 S "
	lines := []string{
		"<134>1 2024-05-15T19:41:25.001Z esx01.example.com FIREWALL-PKTLOG - - - " + body + "acme-5f0e8d7c-6b5a-4938-8271-605\n",
		"<134>1 2024-05-15T19:41:26.001Z esx01.example.com FIREWALL-PKTLOG - - - " + body + "ac-6b5a-4938-8271-605f4e3d2c1b\n",
		"<134>1 2024-05-15T19:41:27.001Z esx01.example.com FIREWALL-PKTLOG - - - " + body + "other-5f0e8d7c-6b5a-4938-8271-606\n",
	}
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for len(acme.got()) < 2 || len(catchAll.got()) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("acme got %d, the catch-all %d\nlogs:\n%s", len(acme.got()), len(catchAll.got()), r.logs)
		}
		time.Sleep(20 * time.Millisecond) // polling the receivers with a deadline
	}
	for _, f := range acme.got() {
		if !strings.Contains(f, `[vpipe@32473 tenant="acme"`) || !strings.Contains(f, `dataset="nsx.dfw" action="pass"`) || !strings.Contains(f, body) {
			t.Errorf("acme received %q", f)
		}
	}
	if f := catchAll.got()[0]; strings.Contains(f, "tenant=") || !strings.Contains(f, "other-5f0e8d7c") {
		t.Errorf("the catch-all received %q", f)
	}
	if strings.Contains(strings.Join(acme.got(), ""), "other-") {
		t.Error("acme received the event of a label one character off")
	}
}

// registryTenants is the vpipe_tenant_registry_tenants gauge of p.
func (p *proc) registryTenants() float64 {
	mfs, _ := p.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "vpipe_tenant_registry_tenants" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// tenantUp reports whether the tenant-forward sink of p has a destination
// of tenant connected (vpipe_tenant_endpoint_up); the series exists from
// when the sink set the destination up until it removed it.
func (p *proc) tenantUp(tenant string) (exists, up bool) {
	mfs, _ := p.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "vpipe_tenant_endpoint_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenant {
					return true, m.GetGauge().GetValue() == 1
				}
			}
		}
	}
	return false, false
}

// TestTenantListReload: tenants.list of the main configuration file is
// reloaded when the file changes (no separate tenants file: the registry
// manager watches the main file) and on SIGHUP (with a tenants file,
// which the manager watches; the list is read first). Only the tenants
// section is read again; an invalid list is logged and the last good
// registry stays. Events go through a running vpipe: syslog in, Kafka,
// the tenant-forward stage, the tenants' syslog servers.
func TestTenantListReload(t *testing.T) {
	const body = "8b4a1980 INET match PASS 1044 IN 80 TCP 10.0.0.1/51000->10.0.0.2/443 S "
	// DFW labels: 5 characters of the DC group name, 27 of its UUID.
	const (
		acmeGroup, acmeLabel   = "5f0e8d7c-6b5a-4938-8271-605f4e3d2c1b", "acme-5f0e8d7c-6b5a-4938-8271-605"
		betaGroup, betaLabel   = "6a1f9e8d-7c6b-4a59-9382-716e5d4c3b2a", "beta-6a1f9e8d-7c6b-4a59-9382-716"
		gammaGroup, gammaLabel = "7b2a0f9e-8d7c-4b6a-a493-827f6e5d4c3b", "gamma7b2a0f9e-8d7c-4b6a-a493-827"
	)
	tenant := func(indent, id, group, addr string) string {
		return fmt.Sprintf("%s- id: %s\n%s  dc_groups: [{name: %s-dcgroup, id: %s}]\n%s  syslog: [{transport: tcp, address: %q}]\n",
			indent, id, indent, id, group, indent, addr)
	}
	for _, tc := range []struct {
		name     string
		withFile bool // a separate tenants file; list changes are announced by SIGHUP
	}{
		{name: "file change"},
		{name: "SIGHUP with a tenants file", withFile: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acme, beta, gamma, catchAll := newFrameServer(t), newFrameServer(t), newFrameServer(t), newFrameServer(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "vpipe.yaml")
			interval, extra, fixed := "100ms", "", 1.0
			if tc.withFile {
				interval = "1h" // only SIGHUP reloads
				tf := filepath.Join(dir, "tenants.yaml")
				if err := os.WriteFile(tf, []byte("list:\n"+tenant("  ", "gamma", gammaGroup, gamma.ln.Addr().String())), 0o600); err != nil {
					t.Fatal(err)
				}
				extra, fixed = fmt.Sprintf("  file: %q\n", tf), 2
			}
			write := func(list string) {
				t.Helper()
				err := os.WriteFile(path, []byte(fmt.Sprintf(`kafka:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
  shutdown_timeout: 10s
syslog: [{transport: tcp, address: "127.0.0.1:0"}]
http: {address: "127.0.0.1:0"}
tenants:
  reload_interval: %s
%s  list:
%sstages:
  tenant_forward:
    catch_all: [{transport: tcp, address: %q}]
`, dir, interval, extra, list, catchAll.ln.Addr())), 0o600)
				if err != nil {
					t.Fatal(err)
				}
			}
			acmeYAML := tenant("    ", "acme", acmeGroup, acme.ln.Addr().String())
			write(acmeYAML)
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			r := startVpipeRoles(t, cfg, map[string]bool{roleIngest: true, roleTenantForward: true})
			for _, s := range r.p.stages {
				if rr, ok := s.(*registryRunner); ok {
					<-rr.ready // SIGHUP is caught from here on
				}
			}
			c, err := net.Dial("tcp", r.p.listeners[0].Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			n := 0
			send := func(label string) {
				t.Helper()
				n++
				line := fmt.Sprintf("<134>1 2024-05-15T19:41:25.%03dZ esx01.example.com FIREWALL-PKTLOG - - - %sn=%d %s\n", n, body, n, label)
				if _, err := c.Write([]byte(line)); err != nil {
					t.Fatal(err)
				}
			}
			reload := func() {
				t.Helper()
				if tc.withFile {
					if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
				}
			}
			wait := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, r.logs)
					}
					time.Sleep(20 * time.Millisecond) // polling with a deadline
				}
			}
			send(betaLabel)
			wait("beta's event at the catch-all", func() bool { return len(catchAll.got()) == 1 })

			// beta is added to the list.
			write(acmeYAML + tenant("    ", "beta", betaGroup, beta.ln.Addr().String()))
			reload()
			wait("beta's destination", func() bool { _, up := r.p.tenantUp("beta"); return up })
			if got := r.p.registryTenants(); got != fixed+1 {
				t.Errorf("registry has %v tenants, want %v", got, fixed+1)
			}
			send(betaLabel)
			send(acmeLabel)
			wait("beta's and acme's events", func() bool { return len(beta.got()) == 1 && len(acme.got()) == 1 })

			// An invalid list, and a broken section elsewhere (which the
			// reload does not read), leave the registry as it was.
			write(acmeYAML + tenant("    ", "beta", betaGroup, "192.0.2.1") + "stages_typo: {}\n")
			reload()
			wait("the error logged", func() bool {
				logs := r.logs.String()
				return strings.Contains(logs, "tenants.list[1].syslog[0].address") && strings.Contains(logs, "keeping the previous")
			})
			if got := r.p.registryTenants(); got != fixed+1 {
				t.Errorf("registry has %v tenants after an invalid list, want %v", got, fixed+1)
			}
			send(betaLabel)
			wait("beta's event after the invalid list", func() bool { return len(beta.got()) == 2 })

			// beta is removed again: its events go to the catch-all.
			write(acmeYAML)
			reload()
			wait("beta's destination removed", func() bool { exists, _ := r.p.tenantUp("beta"); return !exists })
			send(betaLabel)
			wait("beta's event at the catch-all again", func() bool { return len(catchAll.got()) == 2 })
			if tc.withFile {
				send(gammaLabel)
				wait("gamma's event (a tenant of the tenants file)", func() bool { return len(gamma.got()) == 1 })
			}
			for _, f := range beta.got() {
				if !strings.Contains(f, `tenant="beta"`) {
					t.Errorf("beta received %q", f)
				}
			}
		})
	}
}
