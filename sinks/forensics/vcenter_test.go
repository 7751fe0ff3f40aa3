package forensics

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
)

func TestFindVM(t *testing.T) {
	s := startVCSim(t)
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10", "11", "12"}, true)
	tests := []struct {
		name     string
		uuid     string
		wantErr  error
		wantNICs int
		mirror   int
	}{
		{name: "multi-nic vm", uuid: uuid, wantNICs: 4, mirror: 3},
		{name: "unknown uuid", uuid: "00000000-0000-0000-0000-000000000000", wantErr: ErrVMNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, err := s.vc.FindVM(context.Background(), tt.uuid)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, pipeline.ErrPermanent) {
					t.Fatalf("err = %v, want %v (permanent)", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if vm.Name != "DC0_H0_VM0" || vm.InstanceUUID != tt.uuid || len(vm.NICs) != tt.wantNICs {
				t.Fatalf("vm = %+v", vm)
			}
			n := 0
			for _, nic := range vm.NICs {
				if nic.Mirrorable() {
					n++
				}
			}
			if n != tt.mirror {
				t.Fatalf("%d mirrorable nics, want %d: %+v", n, tt.mirror, vm.NICs)
			}
		})
	}
}

func TestSnapshotIdempotent(t *testing.T) {
	s := startVCSim(t)
	ctx := context.Background()
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10"}, false)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		name        string
		event       string
		wantChanged bool
		wantCount   int
	}{
		{"first join", "ev-1", true, 1},
		{"redelivered join", "ev-1", false, 1},
		{"later join", "ev-2", true, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			vm, err := s.vc.FindVM(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			c := Cause{Group: "/infra/domains/default/groups/quarantine", GroupName: "quarantine", EventID: st.event, Time: at}
			r, err := s.vc.Snapshot(ctx, vm, c, SnapshotOptions{Memory: true, Quiesce: false})
			if err != nil {
				t.Fatal(err)
			}
			if r.Changed != st.wantChanged || r.Ref == "" {
				t.Fatalf("result %+v, want changed %t", r, st.wantChanged)
			}
			snaps := s.snapshots(t, uuid)
			if len(snaps) != st.wantCount {
				t.Fatalf("%d snapshots, want %d", len(snaps), st.wantCount)
			}
			last := snaps[len(snaps)-1]
			if !IsVpipeSnapshot(&last) || last.Name != "vpipe-forensics quarantine 2025-03-01T12:00:00Z" {
				t.Fatalf("snapshot %q: not vpipe's or misnamed", last.Name)
			}
			for _, want := range []string{"joined NSX group quarantine", "vpipe-event: ev-", "vpipe-group: /infra/domains/default/groups/quarantine"} {
				if !strings.Contains(last.Description, want) {
					t.Fatalf("description %q lacks %q", last.Description, want)
				}
			}
		})
	}
}

func TestMirrorLifecycle(t *testing.T) {
	s := startVCSim(t)
	ctx := context.Background()
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10", "11", "12"}, true)
	opt := MirrorOptions{Destination: "192.0.2.10", SamplingRate: 4, SnapshotLength: 128, EncapType: "erspan3", ErspanID: 7}
	a := Cause{Group: "g-a", EventID: "e1"}
	b := Cause{Group: "g-b", EventID: "e2"}
	steps := []struct {
		name        string
		do          func(vm *VM) ([]Result, error)
		wantChanged bool
		wantGroups  []string // nil: no session
	}{
		{"join a creates", func(vm *VM) ([]Result, error) { r, _, err := s.vc.Mirror(ctx, vm, a, opt); return r, err }, true, []string{"g-a"}},
		{"join a again is a no-op", func(vm *VM) ([]Result, error) { r, _, err := s.vc.Mirror(ctx, vm, a, opt); return r, err }, false, []string{"g-a"}},
		{"join b adds the group", func(vm *VM) ([]Result, error) { r, _, err := s.vc.Mirror(ctx, vm, b, opt); return r, err }, true, []string{"g-a", "g-b"}},
		{"leave a keeps it for b", func(vm *VM) ([]Result, error) { return s.vc.Unmirror(ctx, uuid, vm.Name, a) }, true, []string{"g-b"}},
		{"leave a again is a no-op", func(vm *VM) ([]Result, error) { return s.vc.Unmirror(ctx, uuid, vm.Name, a) }, false, []string{"g-b"}},
		{"leave b removes it", func(vm *VM) ([]Result, error) { return s.vc.Unmirror(ctx, uuid, vm.Name, b) }, true, nil},
		{"leave b again finds nothing", func(vm *VM) ([]Result, error) { return s.vc.Unmirror(ctx, uuid, vm.Name, b) }, false, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			vm, err := s.vc.FindVM(ctx, uuid)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := st.do(vm)
			if err != nil {
				t.Fatal(err)
			}
			changed := slices.ContainsFunc(rs, func(r Result) bool { return r.Changed })
			if changed != st.wantChanged {
				t.Fatalf("changed = %t, want %t (%+v)", changed, st.wantChanged, rs)
			}
			ss := s.sessions(t, uuid)
			if st.wantGroups == nil {
				if len(ss) != 0 {
					t.Fatalf("sessions left: %+v", ss)
				}
				return
			}
			if len(ss) != 1 {
				t.Fatalf("%d sessions, want 1", len(ss))
			}
			got := ss[0].Session
			if got.Name != "vpipe:DC0_H0_VM0:"+uuid || !got.Enabled ||
				got.SessionType != "encapsulatedRemoteMirrorSource" ||
				!slices.Equal(sortedPorts(got.SourcePortTransmitted), []string{"10", "11", "12"}) ||
				!slices.Equal(sortedPorts(got.SourcePortReceived), []string{"10", "11", "12"}) ||
				got.DestinationPort == nil || !slices.Equal(got.DestinationPort.IpAddress, []string{"192.0.2.10"}) ||
				got.SamplingRate != 4 || got.MirroredPacketLength != 128 || got.EncapType != "erspan3" || got.ErspanId != 7 {
				t.Fatalf("session = %+v", got)
			}
			if g := sessionGroups(got.Description); !slices.Equal(g, st.wantGroups) {
				t.Fatalf("groups %q, want %q", g, st.wantGroups)
			}
		})
	}
}

func TestMirrorFollowsNICs(t *testing.T) {
	s := startVCSim(t)
	ctx := context.Background()
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10"}, true)
	opt := MirrorOptions{Destination: "192.0.2.10"}
	c := Cause{Group: "g", EventID: "e"}
	vm, _ := s.vc.FindVM(ctx, uuid)
	_, bad, err := s.vc.Mirror(ctx, vm, c, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].SwitchUUID != "" {
		t.Fatalf("unmirrorable = %+v, want the standard-network vNIC", bad)
	}
	// A vNIC added while quarantined is covered by the next join.
	s.setNICs(t, "DC0_H0_VM0", []string{"10", "20"}, false)
	vm, _ = s.vc.FindVM(ctx, uuid)
	rs, bad, err := s.vc.Mirror(ctx, vm, c, opt)
	if err != nil || len(bad) != 0 || len(rs) != 1 || !rs[0].Changed {
		t.Fatalf("results %+v, bad %+v, err %v", rs, bad, err)
	}
	ss := s.sessions(t, uuid)
	if len(ss) != 1 || !slices.Equal(sortedPorts(ss[0].Session.SourcePortReceived), []string{"10", "20"}) {
		t.Fatalf("sessions %+v", ss)
	}
}

func TestRetention(t *testing.T) {
	s := startVCSim(t)
	ctx := context.Background()
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10"}, false)
	vm, _ := s.vc.FindVM(ctx, uuid)
	if _, err := s.vc.Snapshot(ctx, vm, Cause{Group: "g", EventID: "e1", Time: time.Now()}, SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	// A snapshot vpipe did not take.
	ref, _ := s.vmByName(t, "DC0_H0_VM0")
	task, err := vmObject(s, ref).CreateSnapshot(ctx, "before patching", "by an admin", false, false)
	if err != nil || task.Wait(ctx) != nil {
		t.Fatal(err)
	}
	audit, addr := startAudit(t)
	audited := 0
	tests := []struct {
		name     string
		now      time.Time
		deleted  int
		left     int
		audited  int
		deletion bool
	}{
		{"young snapshots stay", time.Now(), 0, 2, 0, false},
		{"old vpipe snapshot goes", time.Now().Add(48 * time.Hour), 1, 1, 1, true},
		{"the admin's stays", time.Now().Add(480 * time.Hour), 0, 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Retention{VCenter: s.vc, Audit: audit, Keep: 24 * time.Hour, Now: func() time.Time { return tt.now }}
			n, err := r.Sweep(ctx)
			if err != nil || n != tt.deleted {
				t.Fatalf("deleted %d, err %v; want %d", n, err, tt.deleted)
			}
			if got := len(s.snapshots(t, uuid)); got != tt.left {
				t.Fatalf("%d snapshots left, want %d", got, tt.left)
			}
			if tt.audited == audited {
				return
			}
			audited = tt.audited
			events := readAudit(t, addr, tt.audited, true)
			if tt.deletion {
				e := events[len(events)-1]
				if e.Action != ActionSnapshotDelete || e.Outcome != "success" || e.Label(LabelTrigger) != "e1" || e.Label(LabelVMUUID) != uuid {
					t.Fatalf("audit event %+v", e)
				}
			}
		})
	}
}

func TestConcurrentSwitchChange(t *testing.T) {
	s := startVCSim(t)
	ctx := context.Background()
	uuid := s.setNICs(t, "DC0_H0_VM0", []string{"10"}, false)
	vm, _ := s.vc.FindVM(ctx, uuid)
	sws, err := s.vc.switches(ctx)
	if err != nil || len(sws) != 1 {
		t.Fatal(sws, err)
	}
	stale := &types.VMwareDVSConfigSpec{
		DVSConfigSpec: types.DVSConfigSpec{ConfigVersion: sws[0].Version + "-stale"},
		VspanConfigSpec: []types.VMwareDVSVspanConfigSpec{{Operation: "add",
			VspanSession: types.VMwareVspanSession{Name: "other"}}},
	}
	if err := s.vc.reconfigure(ctx, sws[0].Ref, stale); !fault.Is(err, &types.ConcurrentAccess{}) {
		t.Fatalf("stale configVersion: err = %v, want ConcurrentAccess", err)
	}
	// Another session on the switch changes its version; vpipe's still goes in.
	other := &types.VMwareDVSConfigSpec{
		DVSConfigSpec: types.DVSConfigSpec{ConfigVersion: sws[0].Version},
		VspanConfigSpec: []types.VMwareDVSVspanConfigSpec{{Operation: "add",
			VspanSession: types.VMwareVspanSession{Name: "someone else's", SessionType: "dvPortMirror"}}},
	}
	if err := s.vc.reconfigure(ctx, sws[0].Ref, other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.vc.Mirror(ctx, vm, Cause{Group: "g"}, MirrorOptions{Destination: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	sws, _ = s.vc.switches(ctx)
	if len(sws[0].Sessions) != 2 {
		t.Fatalf("sessions %+v", sws[0].Sessions)
	}
}
