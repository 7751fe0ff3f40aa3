package pipeline

import "testing"

// TestNSXTopic checks the nsx topic's datasets and keys: NSX audit log
// events (keyed by the NSX Manager, so one manager's log stays in order)
// and group membership changes (keyed by group and VM, DESIGN.md).
func TestNSXTopic(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		key  string
	}{
		{"audit log line keyed by the manager node",
			Event{Dataset: DatasetNSXAudit, Observer: Observer{Hostname: "nsx-manager1"}, Syslog: Syslog{Hostname: "nsx-manager1"}, Host: Host{Hostname: "web-a"}},
			"nsx-manager1"},
		{"audit log line without observer falls back to the syslog host",
			Event{Dataset: DatasetNSXAudit, Syslog: Syslog{Hostname: "svc.nsxmanager"}},
			"svc.nsxmanager"},
		{"audit log line with only the socket peer",
			Event{Dataset: DatasetNSXAudit, LogSource: "[2001:db8::1]:514"},
			"2001:db8::1"},
		{"membership change keyed by group and VM",
			Event{Dataset: DatasetGroupMembership, Observer: Observer{Hostname: "nsx.example"}, Host: Host{Hostname: "web-a"},
				Labels: []Label{{Key: "nsx_group", Value: "quarantine"}, {Key: "vm_external_id", Value: "5003c1e4-aaaa"}}},
			"quarantine/5003c1e4-aaaa"},
		{"NSX-V membership change keyed by group and VM reference",
			Event{Dataset: DatasetGroupMembership, Observer: Observer{Hostname: "nsx.example"},
				Labels: []Label{{Key: "nsx_group", Value: "securitygroup-10"}, {Key: "vm_ref", Value: "vm-42"}}},
			"securitygroup-10/vm-42"},
		{"membership change without a group falls back to the manager",
			Event{Dataset: DatasetGroupMembership, Observer: Observer{Hostname: "nsx.example"}},
			"nsx.example"},
		{"audit log line with a group label is still keyed by its manager",
			Event{Dataset: DatasetNSXAudit, Observer: Observer{Hostname: "nsx-manager1"}, Labels: []Label{{Key: "nsx_group", Value: "g"}}},
			"nsx-manager1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TopicFor(tt.e.Dataset); got != TopicNSX {
				t.Fatalf("topic %q, want %q", got, TopicNSX)
			}
			if got := string(AppendKey(nil, &tt.e)); got != tt.key {
				t.Fatalf("key %q, want %q", got, tt.key)
			}
		})
	}
}
