package forensics

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/sinks/forensics/vspansim"
)

// sim is a running vcsim (VPX model: one datacenter, a distributed switch
// DVS0 with portgroup DC0_DVPG0, VMs on it) with VSPAN sessions modelled
// by vspansim.
type sim struct {
	model *simulator.Model
	url   string
	c     *vim25.Client
	vc    *VCenter
}

func startVCSim(t *testing.T) *sim {
	t.Helper()
	m := simulator.VPX()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	vspansim.Install(m.Map())
	srv := m.Service.NewServer()
	t.Cleanup(func() {
		srv.Close()
		m.Remove()
	})
	ctx := context.Background()
	u := *srv.URL
	u.User = nil
	c, logout, err := Dial(ctx, vcenter.ConnConfig{URL: u.String(), Username: "user", Password: "pass", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logout(context.Background()) })
	return &sim{model: m, url: u.String(), c: c, vc: NewVCenter(c)}
}

// vmByName returns a simulator VM's reference and instance UUID.
func (s *sim) vmByName(t *testing.T, name string) (types.ManagedObjectReference, string) {
	t.Helper()
	for _, e := range s.model.Map().All("VirtualMachine") {
		if vm := e.(*simulator.VirtualMachine); vm.Name == name {
			return vm.Self, vm.Config.InstanceUuid
		}
	}
	t.Fatalf("no vm %s", name)
	return types.ManagedObjectReference{}, ""
}

// setNICs gives the VM one vNIC per port key on DC0_DVPG0, bound to that
// port (vspansim.BindNICs), and one vNIC on the standard network "VM
// Network" when standard is true.
func (s *sim) setNICs(t *testing.T, name string, ports []string, standard bool) string {
	t.Helper()
	ctx := context.Background()
	ref, uuid := s.vmByName(t, name)
	if err := vspansim.BindNICs(ctx, s.c, s.model.Map(), ref, "DC0_DVPG0", ports...); err != nil {
		t.Fatal(err)
	}
	if standard {
		err := object.NewVirtualMachine(s.c, ref).AddDevice(ctx, &types.VirtualE1000{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{Backing: &types.VirtualEthernetCardNetworkBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return uuid
}

// snapshots returns the names and descriptions of a VM's snapshots.
func (s *sim) snapshots(t *testing.T, uuid string) []types.VirtualMachineSnapshotTree {
	t.Helper()
	vm, err := s.vc.FindVM(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return vm.Snapshots
}

// sessions returns vpipe's sessions of a VM.
func (s *sim) sessions(t *testing.T, uuid string) []SwitchSession {
	t.Helper()
	ss, err := s.vc.Sessions(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func vmObject(s *sim, ref types.ManagedObjectReference) *object.VirtualMachine {
	return object.NewVirtualMachine(s.c, ref)
}

// startAudit starts an embedded broker and the Auditor of a producer
// writing to it, as vpipe run wires the stage.
func startAudit(t *testing.T) (PublishAudit, string) {
	t.Helper()
	addr := brokertest.Start(t, auditTopic)
	p, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: "vpipe."}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return PublishAudit{Publisher: p}, addr
}

const auditTopic = "vpipe.audit"

// readAudit reads at least n audit events, exactly n when exact.
func readAudit(t *testing.T, addr string, n int, exact bool) []*pipeline.Event {
	t.Helper()
	msgs := brokertest.ReadN(t, addr, auditTopic, n, 10*time.Second)
	if exact && len(msgs) != n {
		t.Fatalf("%d audit events, want %d", len(msgs), n)
	}
	out := make([]*pipeline.Event, len(msgs))
	for i, m := range msgs {
		out[i] = new(pipeline.Event)
		if err := out[i].DecodeJSON(m.Value); err != nil {
			t.Fatal(err)
		}
		if got := string(pipeline.AppendKey(nil, out[i])); got != string(m.Key) || got == "" {
			t.Fatalf("audit record key %q, vm %q", m.Key, got)
		}
	}
	return out
}

func sortedPorts(p *types.VMwareVspanPort) []string {
	if p == nil {
		return nil
	}
	return slices.Sorted(slices.Values(p.PortKey))
}
