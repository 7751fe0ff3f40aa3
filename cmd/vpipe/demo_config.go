//go:build !nodemo

package main

import (
	"bytes"
	"strconv"
	"text/template"
)

// demoAddrs is what the demo configuration is filled with: where the
// simulators, the tenants' syslog servers and the data live.
type demoAddrs struct {
	DataDir   string // the embedded broker's data, the NDJSON files, the secrets
	VCenter   string // vcsim, https://host:port
	VCenterCA string
	NSX       string // the NSX simulator, https://host:port
	NSXCA     string
	VCO       string // the VCO simulator, http://host:port
	Znuny     string // the Znuny web service URL
	VCD       string // the VCD simulator, http://host:port
	Acme      string // acme's syslog server, host:port
	Globex    string // globex's syslog server, host:port
	Provider  string // the provider's catch-all syslog server, host:port
	Secrets   string // directory of the password and token files
}

// demoTemplate is the configuration `vpipe demo` runs: every role on the
// embedded broker, each source and stage pointed at its simulator, the
// pollers' intervals short so that the demo does not wait. The users and
// passwords are the simulators' (demoCredentials); the secrets are read
// from files under Secrets, as a production configuration would read them.
// testdata/demo/vpipe-demo.yaml is this template filled with example
// addresses (`go test ./cmd/vpipe -run DemoConfig -update` writes it).
const demoTemplate = `# The configuration 'vpipe demo' runs: every role in one process on the
# embedded broker, each source and stage pointed at a simulator on loopback.
log: {level: info}
kafka:
  embedded:
    listen: "127.0.0.1:0"
    data_dir: {{q .DataDir "kafka"}}
    partitions: 2
  shutdown_timeout: 10s
syslog:
  - {transport: tcp, address: "127.0.0.1:0", name: demo-tcp}
http: {address: "127.0.0.1:0"}

sources:
  vcenter:                      # vCenter events (tagging among them) → vpipe.vcenter
    - name: vcsim
      url: {{q .VCenter}}
      username: {{q vcUser}}
      password_file: {{q .Secrets "vcenter.password"}}
      tls: {ca_file: {{q .VCenterCA}}}
      poll_interval: 200ms
      start_lookback: 10m
      max_backoff: 2s
  velocloud:                    # VCO enterprise events → vpipe.velocloud
    - name: vcosim
      url: {{q .VCO}}
      account: operator
      token_file: {{q .Secrets "vco.token"}}
      interval: 300ms
      backfill: 1h
      min_backoff: 200ms
      max_backoff: 2s
  nsx_groups:                   # quarantine group membership → vpipe.nsx
    - name: nsxsim
      url: {{q .NSX}}
      auth: basic
      username: {{q nsxUser}}
      password_file: {{q .Secrets "nsx.password"}}
      tls: {ca_file: {{q .NSXCA}}}
      interval: 1s
      groups: [{id: quarantine, name: Quarantine}]

tenants:                        # the destinations; the labels come from VCD
  list:
    - id: acme
      name: ACME Corporation
      syslog: [{name: acme-syslog, transport: tcp, address: {{q .Acme}}}]
    - id: globex
      name: Globex
      syslog: [{name: globex-syslog, transport: tcp, address: {{q .Globex}}}]
  vcd:
    url: {{q .VCD}}
    org: System
    token_file: {{q .Secrets "vcd.token"}}
    refresh_interval: 1m

stages:
  tenant_forward:               # vpipe.firewall → each tenant's syslog
    catch_all: [{name: provider-syslog, transport: tcp, address: {{q .Provider}}}]
  tag_sync:                     # vSphere tags → NSX tags
    vcenter: vcsim
    categories: {security-zone: zone}
    reconcile_interval: 1h
    nsx:
      url: {{q .NSX}}
      auth: session
      username: {{q nsxUser}}
      password_file: {{q .Secrets "nsx.password"}}
      tls: {ca_file: {{q .NSXCA}}}
  jit_access:                   # a locked ticket → an NSX tag on its VM
    field: JITAccessVM
    tag: {scope: jit, tag: ssh}
    reconcile_interval: 1m
    znuny:
      url: {{q .Znuny}}
      auth: session
      username: {{q znunyUser}}
      password_file: {{q .Secrets "znuny.password"}}
    vcenter:
      url: {{q .VCenter}}
      username: {{q vcUser}}
      password_file: {{q .Secrets "vcenter.password"}}
      tls: {ca_file: {{q .VCenterCA}}}
    nsx:
      url: {{q .NSX}}
      auth: session
      username: {{q nsxUser}}
      password_file: {{q .Secrets "nsx.password"}}
      tls: {ca_file: {{q .NSXCA}}}
  forensics:                    # a VM joins Quarantine → snapshot + port mirror
    vcenter:
      url: {{q .VCenter}}
      username: {{q vcUser}}
      password_file: {{q .Secrets "vcenter.password"}}
      tls: {ca_file: {{q .VCenterCA}}}
    groups: [{group: Quarantine}]
    snapshot: {enabled: true}
    mirror: {enabled: true, destination: {{q analyser}}, encapsulation: gre}
  ndjson:                       # vpipe.velocloud → <dir>/<enterprise>/events.json
    dir: {{q .DataDir "events"}}
    topics: [velocloud]
`

// Credentials the demo's simulators accept and vpipe logs in with.
const (
	demoVCUser      = "administrator@vsphere.local"
	demoVCPassword  = "vcsim-Demo1!"
	demoNSXUser     = "admin"
	demoNSXPassword = "VMware1!VMware1!"
	demoZnunyUser   = "vpipe"
	demoZnunyPass   = "znuny-demo"
	demoVCOToken    = "vcosim-demo-token"
	demoAnalyser    = "192.0.2.10" // the port mirror's destination (TEST-NET-1)
)

// renderDemoConfig fills demoTemplate with a.
func renderDemoConfig(a demoAddrs) ([]byte, error) {
	t, err := template.New("demo").Option("missingkey=error").Funcs(template.FuncMap{
		// q quotes a value, or a directory joined with a file name, as a
		// YAML double-quoted string.
		"q": func(s string, file ...string) string {
			for _, f := range file {
				s += "/" + f
			}
			return strconv.Quote(s)
		},
		"vcUser":    func() string { return demoVCUser },
		"nsxUser":   func() string { return demoNSXUser },
		"znunyUser": func() string { return demoZnunyUser },
		"analyser":  func() string { return demoAnalyser },
	}).Parse(demoTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, a); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
