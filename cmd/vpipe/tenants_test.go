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
