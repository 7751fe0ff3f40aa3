package simulator_test

import (
	"strings"
	"testing"

	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

func TestSecurityGroupTranslation(t *testing.T) {
	s, srv := newServer(t)
	s.AddVM(simulator.VM{ExternalID: "uuid-1", DisplayName: "web-1", MoRef: "vm-1"})
	s.AddVM(simulator.VM{ExternalID: "uuid-2", DisplayName: "db-2", MoRef: "vm-2", SecurityTags: []string{"infected"}})
	s.AddSecurityGroup(simulator.SecurityGroup{ID: "securitygroup-10", Name: "Quarantine", Tags: []string{"infected"}})
	u := srv.URL + "/api/2.0/services/securitygroup/securitygroup-10/translation/virtualmachines"
	st, _, b := do(t, "GET", u, "", "")
	if st != 200 || !strings.Contains(string(b), "<vmnodes><vmnode><vmId>vm-2</vmId><vmName>db-2</vmName></vmnode></vmnodes>") {
		t.Fatalf("%d %s", st, b)
	}
	if !s.SetSecurityTags("vm-1", []string{"infected"}) || !s.SetSecurityTags("uuid-2", nil) {
		t.Fatal("set security tags")
	}
	if _, _, b := do(t, "GET", u, "", ""); !strings.Contains(string(b), "<vmnodes><vmnode><vmId>vm-1</vmId><vmName>web-1</vmName></vmnode></vmnodes>") {
		t.Fatalf("after retag: %s", b)
	}
	if st, _, b := do(t, "GET", srv.URL+"/api/2.0/services/securitygroup/securitygroup-11/translation/virtualmachines", "", ""); st != 404 || !strings.Contains(string(b), "<errorCode>202</errorCode>") {
		t.Fatalf("unknown group: %d %s", st, b)
	}
}
