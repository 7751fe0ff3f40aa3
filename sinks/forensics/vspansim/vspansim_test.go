package vspansim_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/sinks/forensics/vspansim"
)

func TestReconfigureVspan(t *testing.T) {
	m := simulator.VPX()
	defer m.Remove()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	vspansim.Install(m.Map())
	ctx := context.Background()
	c, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		t.Fatal(err)
	}
	ref := m.Map().Any("DistributedVirtualSwitch").Reference()
	dvs := object.NewDistributedVirtualSwitch(c, ref)
	read := func() *types.VMwareDVSConfigInfo {
		var s mo.DistributedVirtualSwitch
		if err := dvs.Properties(ctx, ref, []string{"config"}, &s); err != nil {
			t.Fatal(err)
		}
		return s.Config.(*types.VMwareDVSConfigInfo)
	}
	spec := func(version, op string, s types.VMwareVspanSession) *types.VMwareDVSConfigSpec {
		return &types.VMwareDVSConfigSpec{
			DVSConfigSpec:   types.DVSConfigSpec{ConfigVersion: version},
			VspanConfigSpec: []types.VMwareDVSVspanConfigSpec{{Operation: op, VspanSession: s}},
		}
	}
	tests := []struct {
		name     string
		spec     func(version string) types.BaseDVSConfigSpec
		fault    types.BaseMethodFault
		sessions []string // names after the call
	}{
		{"add", func(v string) types.BaseDVSConfigSpec {
			return spec(v, "add", types.VMwareVspanSession{Key: "ignored", Name: "a", SessionType: "encapsulatedRemoteMirrorSource"})
		}, nil, []string{"a"}},
		{"add another without a type", func(v string) types.BaseDVSConfigSpec { return spec(v, "add", types.VMwareVspanSession{Name: "b"}) }, nil, []string{"a", "b"}},
		{"edit by key", func(v string) types.BaseDVSConfigSpec {
			return spec(v, "edit", types.VMwareVspanSession{Key: "1", Name: "a2"})
		}, nil, []string{"a2", "b"}},
		{"remove by key", func(v string) types.BaseDVSConfigSpec { return spec(v, "remove", types.VMwareVspanSession{Key: "2"}) }, nil, []string{"a2"}},
		{"unknown key", func(v string) types.BaseDVSConfigSpec { return spec(v, "remove", types.VMwareVspanSession{Key: "9"}) }, &types.NotFound{}, []string{"a2"}},
		{"stale config version", func(v string) types.BaseDVSConfigSpec { return spec(v+"0", "add", types.VMwareVspanSession{Name: "c"}) }, &types.ConcurrentAccess{}, []string{"a2"}},
		{"bad session type", func(v string) types.BaseDVSConfigSpec {
			return spec(v, "add", types.VMwareVspanSession{Name: "c", SessionType: "tap"})
		}, &types.InvalidArgument{}, []string{"a2"}},
		{"hosts and sessions at once", func(v string) types.BaseDVSConfigSpec {
			s := spec(v, "add", types.VMwareVspanSession{Name: "c"})
			s.Host = []types.DistributedVirtualSwitchHostMemberConfigSpec{{Operation: "add"}}
			return s
		}, &types.NotSupported{}, []string{"a2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := read()
			task, err := dvs.Reconfigure(ctx, tt.spec(before.ConfigVersion))
			if err == nil {
				err = task.Wait(ctx)
			}
			after := read()
			switch {
			case tt.fault == nil && err != nil:
				t.Fatal(err)
			case tt.fault != nil && !fault.Is(err, tt.fault):
				t.Fatalf("err = %v, want %T", err, tt.fault)
			case tt.fault == nil && after.ConfigVersion == before.ConfigVersion:
				t.Fatal("configVersion did not change")
			case tt.fault != nil && after.ConfigVersion != before.ConfigVersion:
				t.Fatal("a refused spec changed configVersion")
			}
			var names []string
			for _, s := range after.VspanSession {
				names = append(names, s.Name)
				if s.SessionType == "" || s.Key == "" || s.Key == "ignored" {
					t.Fatalf("session %+v: key or type not set", s)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.sessions, ",") {
				t.Fatalf("sessions %q, want %q", names, tt.sessions)
			}
		})
	}
}
