package forensics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/stage"
)

const testGroup = "/infra/domains/default/groups/quarantine"

// membership returns a stage record of a membership change, encoded and
// decoded as the runner would hand it over.
func membership(t *testing.T, id int, uuid, vm string, joined bool, group string) stage.Record {
	t.Helper()
	m := nsxgroups.Membership{
		Source: "nsx1", Manager: "nsx.example", Product: nsxgroups.ProductNSX, Group: group, GroupName: "Quarantine",
		VMExternalID: uuid, VMName: vm, Joined: joined, Time: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC),
		Generation: uint64(id),
	}
	var e pipeline.Event
	m.Fill(&e)
	var back pipeline.Event
	if err := back.DecodeJSON(e.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}
	return stage.Record{Msg: kafka.Message{Topic: "vpipe.nsx"}, Event: &back}
}

func TestSinkWrite(t *testing.T) {
	s := startVCSim(t)
	audit, addr := startAudit(t)
	var status atomic.Int32
	status.Store(http.StatusOK)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(hook.Close)

	vm0 := s.setNICs(t, "DC0_H0_VM0", []string{"10", "11"}, true)
	vm1 := s.setNICs(t, "DC0_H0_VM1", []string{"20", "21"}, false)
	vm2 := s.setNICs(t, "DC0_C0_RP0_VM0", []string{"30"}, false)
	sink, err := New(Config{
		Groups:   map[string]GroupOptions{testGroup: {Webhook: &Webhook{URL: hook.URL + "/hook?token=secret"}}},
		Snapshot: &SnapshotOptions{Quiesce: true},
		Mirror:   &MirrorOptions{Destination: "198.51.100.7"},
	}, Deps{VCenter: s.vc, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	other := membership(t, 1, vm0, "DC0_H0_VM0", true, "/infra/domains/default/groups/other")
	notMembership := membership(t, 1, vm0, "DC0_H0_VM0", true, testGroup)
	notMembership.Event.Dataset = pipeline.DatasetVCenterEvent

	type act struct{ action, outcome string }
	ok := func(a string) act { return act{a, "success"} }
	failed := func(a string) act { return act{a, "failure"} }
	steps := []struct {
		name   string
		before func()
		batch  []stage.Record
		err    string // "": nil, "permanent", "retryable"
		retry  func() // before a second Write of the same batch, which must succeed
		uuid   string
		// auditVM is the VM the step's audit events are about (default
		// uuid): the topic keeps order per VM only.
		auditVM string
		snaps   int
		mirror  int // ports in the VM's session; 0: none
		audits  []act
	}{
		{name: "join: snapshot, mirror, webhook", batch: []stage.Record{membership(t, 1, vm0, "DC0_H0_VM0", true, testGroup)},
			uuid: vm0, snaps: 1, mirror: 2,
			audits: []act{ok(ActionSnapshotCreate), ok(ActionMirrorCreate), failed(ActionMirrorCreate), ok(ActionWebhookPost)}},
		{name: "redelivered join: nothing new", batch: []stage.Record{membership(t, 1, vm0, "DC0_H0_VM0", true, testGroup)},
			uuid: vm0, snaps: 1, mirror: 2,
			audits: []act{ok(ActionSnapshotCreate), ok(ActionMirrorCreate), failed(ActionMirrorCreate), ok(ActionWebhookPost)}},
		{name: "another join while quarantined: no second snapshot", batch: []stage.Record{membership(t, 2, vm0, "DC0_H0_VM0", true, testGroup)},
			uuid: vm0, snaps: 1, mirror: 2,
			audits: []act{ok(ActionSnapshotCreate), ok(ActionMirrorCreate), failed(ActionMirrorCreate), ok(ActionWebhookPost)}},
		{name: "other groups and datasets are ignored", batch: []stage.Record{other, notMembership},
			uuid: vm0, snaps: 1, mirror: 2},
		{name: "a VM vCenter does not know is permanent", batch: []stage.Record{membership(t, 1, "no-such-uuid", "ghost", true, testGroup)},
			err: "permanent", uuid: vm0, auditVM: "no-such-uuid", snaps: 1, mirror: 2,
			audits: []act{failed(ActionVMLookup), ok(ActionWebhookPost)}},
		{name: "leave with the webhook refusing: session gone, failure audited", before: func() { status.Store(http.StatusBadRequest) },
			batch: []stage.Record{membership(t, 3, vm0, "DC0_H0_VM0", false, testGroup)},
			err:   "permanent", uuid: vm0, snaps: 1, mirror: 0,
			audits: []act{ok(ActionMirrorRemove), failed(ActionWebhookPost)}},
		{name: "webhook down is retried; the retry redoes nothing", before: func() { status.Store(http.StatusServiceUnavailable) },
			batch: []stage.Record{membership(t, 4, vm1, "DC0_H0_VM1", true, testGroup)},
			err:   "retryable", retry: func() { status.Store(http.StatusOK) }, uuid: vm1, snaps: 1, mirror: 2,
			audits: []act{ok(ActionSnapshotCreate), ok(ActionMirrorCreate), ok(ActionSnapshotCreate), ok(ActionMirrorCreate), ok(ActionWebhookPost)}},
		{name: "mirror answer lost after vCenter applied it: the retry finds it",
			before: func() {
				s.model.Service.AddFaultRule(&simulator.FaultInjectionRule{MethodName: "ReconfigureDvs_Task", ObjectType: "*", ObjectName: "*",
					Probability: 1, MaxCount: 1, Enabled: true, FaultType: simulator.FaultTypeCustom, Fault: &types.HostCommunication{}})
			},
			batch: []stage.Record{membership(t, 5, vm2, "DC0_C0_RP0_VM0", true, testGroup)},
			err:   "retryable", uuid: vm2, snaps: 1, mirror: 1,
			audits: []act{ok(ActionSnapshotCreate), ok(ActionSnapshotCreate), ok(ActionMirrorCreate), ok(ActionWebhookPost)}},
	}
	ctx := context.Background()
	audited := 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			err := sink.Write(ctx, st.batch)
			switch {
			case st.err == "" && err != nil,
				st.err == "permanent" && !errors.Is(err, pipeline.ErrPermanent),
				st.err == "retryable" && (err == nil || errors.Is(err, pipeline.ErrPermanent)):
				t.Fatalf("Write: %v, want %s error", err, st.err)
			}
			if st.err == "retryable" {
				if st.retry != nil {
					st.retry()
				}
				if err := sink.Write(ctx, st.batch); err != nil {
					t.Fatalf("second Write: %v", err)
				}
			}
			if n := len(s.snapshots(t, st.uuid)); n != st.snaps {
				t.Fatalf("%d snapshots, want %d", n, st.snaps)
			}
			ss := s.sessions(t, st.uuid)
			ports := 0
			if len(ss) > 1 {
				t.Fatalf("%d sessions for one VM", len(ss))
			} else if len(ss) == 1 {
				ports = len(ss[0].Session.SourcePortReceived.PortKey)
			}
			if ports != st.mirror {
				t.Fatalf("session mirrors %d ports, want %d", ports, st.mirror)
			}
			if len(st.audits) == 0 {
				return
			}
			audited += len(st.audits)
			vm := st.auditVM
			if vm == "" {
				vm = st.uuid
			}
			var mine []*pipeline.Event
			for _, e := range readAudit(t, addr, audited, true) {
				if e.Label(LabelVMUUID) == vm {
					mine = append(mine, e)
				}
			}
			var got []act
			for _, e := range mine[len(mine)-len(st.audits):] {
				got = append(got, act{e.Action, e.Outcome})
				if e.Action == ActionWebhookPost && e.Label(LabelTarget) != hook.URL+"/hook" {
					t.Fatalf("webhook target %q: the token must not be audited", e.Label(LabelTarget))
				}
			}
			for i := range got {
				if got[i] != st.audits[i] {
					t.Fatalf("audits\n got %v\nwant %v", got, st.audits)
				}
			}
		})
	}
}

// TestSinkByManagedObjectID covers NSX-V, whose security group
// translation names members by managed object id only.
func TestSinkByManagedObjectID(t *testing.T) {
	s := startVCSim(t)
	audit, addr := startAudit(t)
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10", "11"}, false)
	ref, _ := s.vmByName(t, "DC0_H0_VM0")
	sink, err := New(Config{
		Groups:   map[string]GroupOptions{"securitygroup-10": {}},
		Snapshot: &SnapshotOptions{},
		Mirror:   &MirrorOptions{Destination: "198.51.100.7"},
	}, Deps{VCenter: s.vc, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(id int, vmRef string, joined bool) stage.Record {
		r := membership(t, id, "", "DC0_H0_VM0", joined, "securitygroup-10")
		m, _ := nsxgroups.FromEvent(r.Event)
		m.VMRef = vmRef
		m.Fill(r.Event)
		return r
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		rec     stage.Record
		err     bool
		session bool
	}{
		{"join by managed object id", rec(1, ref.Value, true), false, true},
		{"leave by managed object id", rec(2, ref.Value, false), false, false},
		{"a leave of a VM that is gone cannot find its session", rec(3, "vm-999", false), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sink.Write(ctx, []stage.Record{tt.rec})
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, pipeline.ErrPermanent)) {
				t.Fatalf("Write: %v, want permanent error %t", err, tt.err)
			}
			if got := len(s.sessions(t, uuid)) == 1; got != tt.session {
				t.Fatalf("session present %t, want %t", got, tt.session)
			}
		})
	}
	// Audit events of a VM found by managed object id are keyed by its
	// instance UUID, like the others.
	n := 0
	for _, e := range readAudit(t, addr, 3, false) {
		if e.Label(LabelVMUUID) == uuid {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("%d audit events keyed by the VM's uuid, want snapshot, mirror and removal", n)
	}
}
