package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/tenants"
)

// TestTenantConfigFiles decodes every testdata/tenants/config-*.yaml:
// config-valid*.yaml must load, config-bad-*.yaml must fail with exactly
// the problems in its .err file.
func TestTenantConfigFiles(t *testing.T) {
	checkFixtures(t, "../../testdata/tenants/config-*.yaml", "config-valid", nil)
}

func TestTenantDefaults(t *testing.T) {
	c, err := Load("../../testdata/tenants/config-valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := c.Tenants.List[0].Syslog[0]
	if d.Name != "tcp:syslog.acme.example:6514" || d.Format != "rfc5424" || d.Framing != "octet-counting" ||
		d.SDID != DefaultSDID || d.WriteTimeout.D() != 10*time.Second || d.MaxMessageBytes != 1<<20 {
		t.Errorf("tcp destination defaults: %+v", d)
	}
	u := c.Tenants.List[0].Syslog[1]
	if u.Framing != "" || u.Burst != 500 || u.MaxMessageBytes != 8192 {
		t.Errorf("udp destination defaults: %+v", u)
	}
	if ca := c.Stages.TenantForward.CatchAll[0]; ca.Framing != "newline" {
		t.Errorf("json destinations default to newline framing: %+v", ca)
	}
	s := c.Stages.TenantForward
	if s.Unknown != "catch_all" || s.GroupID != "vpipe-tenant-forward" || s.BatchSize != 2000 || s.ParkedTopic != "parked" ||
		s.QueueSize != 4096 || s.DeliverTimeout.D() != time.Second || s.Replay.GroupID != "vpipe-tenant-forward-replay" {
		t.Errorf("stage defaults: %+v", s)
	}
	v := c.Tenants.VCD
	if v.Org != "System" || v.APIVersion != "37.2" || v.RefreshInterval.D() != 5*time.Minute || v.PageSize != 128 {
		t.Errorf("vcd defaults: %+v", v)
	}
	if c.Tenants.List[0].Name != "ACME Corporation" || c.Tenants.ReloadInterval.D() != 5*time.Second {
		t.Errorf("tenants: %+v", c.Tenants)
	}
	list := c.TenantList()
	if len(list) != 1 || list[0].OrgVDCs[0].ID != "urn:vcloud:vdc:a93c9db9-7471-3192-8d09-a8f7eeda85f9" || len(list[0].Destinations) != 2 {
		t.Errorf("TenantList: %+v", list)
	}
	if _, probs := tenants.Build(list); len(probs) > 0 {
		t.Errorf("the listed tenants do not build: %v", probs)
	}
}

func TestParseTenantsFile(t *testing.T) {
	tests := []struct {
		name, data, err string
	}{
		{"empty", "", ""},
		{"valid", "list:\n  - id: a\n    syslog: [{transport: udp, address: \"127.0.0.1:514\"}]\n", ""},
		{"missing port", "list:\n  - id: a\n    syslog: [{transport: tcp, address: 127.0.0.1}]\n", "list[0].syslog[0].address: missing port"},
		{"unknown key", "list:\n  - id: a\n    vdcs: []\n", "line 3: field vdcs not found in type config.Tenant"},
		{"not a list", "list: {id: a}\n", "cannot unmarshal"},
		{"duplicate claim", "list:\n  - id: a\n    labels: [x]\n    syslog: [{transport: udp, address: \"127.0.0.1:514\"}]\n" +
			"  - id: b\n    labels: [x]\n    syslog: [{transport: udp, address: \"127.0.0.1:515\"}]\n",
			`list[1].labels[0]: claims verbatim label key "x", which tenant "a" also claims (list[0].labels[0])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := ParseTenantsFile([]byte(tt.data))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range ts {
					if len(x.Destinations) == 0 || x.Destinations[0].Format != "rfc5424" {
						t.Errorf("defaults not filled: %+v", x)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestVCDToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(" secret\n"), 0o600)
	t.Setenv("VPIPE_TEST_VCD_TOKEN", "envsecret")
	tests := []struct {
		name string
		vcd  VCD
		want string
		err  bool
	}{
		{"file", VCD{TokenFile: file}, "secret", false},
		{"env", VCD{TokenEnv: "VPIPE_TEST_VCD_TOKEN"}, "envsecret", false},
		{"unset env", VCD{TokenEnv: "VPIPE_TEST_UNSET_TOKEN"}, "", true},
		{"none", VCD{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.vcd.Token()
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("Token() = %q, %v", got, err)
			}
		})
	}
}
