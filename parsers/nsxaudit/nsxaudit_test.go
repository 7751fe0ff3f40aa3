package nsxaudit

import (
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// TestFields checks, line by line, what the group-membership source and a
// SIEM read from an event: the call, its result, who made it, which
// manager logged it, and whether it can change a group's membership.
func TestFields(t *testing.T) {
	chain := golden.Syslog(Parser{})
	const sd = `[nsx@6876 audit="true" comp="nsx-manager" level="INFO" subcomp="policy" update="true" username="svc"] `
	tests := []struct {
		name, line                  string
		dataset, action, outcome    string
		user, manager, module, kind string
		membership                  bool
	}{
		{"tag call", `<182>1 2024-05-15T10:00:00.000Z nsx-mgr-01.corp.example NSX 1 POLICY ` + sd + `UserName="vpipe", ModuleName="PolicyRealizedState", Operation="TagVirtualMachine", Operation status="success"`,
			Dataset, "TagVirtualMachine", "success", "vpipe", "nsx-mgr-01.corp.example", "PolicyRealizedState", ChangeTags, true},
		{"failed tag call", `<182>1 2024-05-15T10:00:00.000Z m NSX 1 POLICY ` + sd + `UserName="vpipe", ModuleName="PolicyRealizedState", Operation="ApplyTagOnVirtualMachine", Operation status="failure"`,
			Dataset, "ApplyTagOnVirtualMachine", "failure", "vpipe", "m", "PolicyRealizedState", ChangeTags, false},
		{"group call", `<182>1 2024-05-15T10:00:00.000Z m NSX 1 POLICY ` + sd + `UserName="a", ModuleName="Policy", Operation="PatchGroupForDomain", Operation status="success", New value=[{"x":"]"}]`,
			Dataset, "PatchGroupForDomain", "success", "a", "m", "Policy", ChangeGroup, true},
		{"identity group", `<182>1 2024-05-15T10:00:00.000Z m NSX 1 - ` + sd + `UserName="a", ModuleName="AAA", Operation="CreateVidmGroupRoleBinding", Operation status="success"`,
			Dataset, "CreateVidmGroupRoleBinding", "success", "a", "m", "AAA", "", false},
		{"other write", `<182>1 2024-05-15T10:00:00.000Z m NSX 1 - ` + sd + `UserName="a", ModuleName="TransportZone", Operation="CreateTransportZone", Operation status="success"`,
			Dataset, "CreateTransportZone", "success", "a", "m", "TransportZone", "", false},
		{"user from the structured data", `<182>1 2024-05-15T10:00:00.000Z m NSX 1 - ` + sd + `Operation="TagBulkUpdate", Operation status="success"`,
			Dataset, "TagBulkUpdate", "success", "svc", "m", "", ChangeTags, true},
		{"a read", `<182>1 2020-05-05T00:29:02.900Z nsx-manager1 NSX 147324 - [nsx@6876 audit="true" comp="nsx-manager" level="INFO" subcomp="policy" username="admin"] UserName="admin", ModuleName="AAA", Operation="GetCurrentUserInfo", Operation status="success"`,
			pipeline.DatasetSyslogGeneric, "", "", "", "nsx-manager1", "", "", false},
		{"relayed RFC 3164", `<182>May 15 10:00:06 nsx-mgr-01 NSX: ` + sd + `UserName="vpipe", Operation="TagVirtualMachine", Operation status="success"`,
			Dataset, "TagVirtualMachine", "success", "vpipe", "nsx-mgr-01", "", ChangeTags, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Event{Original: []byte(tt.line), Created: golden.Created}
			chain(e)
			got := []string{e.Dataset, e.Action, e.Outcome, e.User.Name, e.Observer.Hostname, e.Label(LabelModule), e.Label(LabelChange)}
			want := []string{tt.dataset, tt.action, tt.outcome, tt.user, tt.manager, tt.module, tt.kind}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("field %d: got %q, want %q (event %s)", i, got[i], want[i], e.AppendJSON(nil))
				}
			}
			if ChangesMembership(e) != tt.membership {
				t.Fatalf("ChangesMembership = %t", !tt.membership)
			}
			if e.Error != "" {
				t.Fatalf("error %q", e.Error)
			}
		})
	}
}

// TestParseAllocs: a line parses with no allocation once the event's
// buffers have grown. (The envelope is parsed once: the record chain has
// its own allocation budget, measured in parsers/record.)
func TestParseAllocs(t *testing.T) {
	line := `<182>1 2024-05-15T10:00:00.000Z nsx-mgr-01 NSX 1 POLICY [nsx@6876 audit="true" level="Info" update="true"] UserName="vpipe", ModuleName="Policy", Operation="PatchGroupForDomain", Operation status="success", New value=[{"a":[1,2]}]`
	var e pipeline.Event
	e.Original = []byte(line)
	msg := syslog.NewParser(syslog.Options{}).Parse(&e)
	sd := e.Syslog.StructuredData
	run := func() {
		orig := e.Original
		e.Reset()
		e.Original = orig
		e.Syslog.StructuredData = sd
		if !(Parser{}).Parse(&e, msg) {
			t.Fatal("not parsed")
		}
	}
	run()
	if e.Dataset != Dataset || e.LogLevel != "info" || e.Label(LabelChange) != ChangeGroup {
		t.Fatalf("event %s", e.AppendJSON(nil))
	}
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per line", n)
	}
}
