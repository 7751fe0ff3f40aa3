package pipeline

import "testing"

// TestNSXTopic checks the nsx topic's datasets and keys: NSX audit log
// events and group membership changes go to it, keyed by the NSX Manager
// so that one manager's events stay in order.
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
		{"membership change keyed by the manager",
			Event{Dataset: DatasetGroupMembership, Observer: Observer{Hostname: "nsx.example"}, Host: Host{Hostname: "web-a"}},
			"nsx.example"},
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
