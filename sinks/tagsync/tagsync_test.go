package tagsync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	vcsim "github.com/vmware/govmomi/simulator"

	"github.com/vpipe/vpipe/parsers/loginsight"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/vcenter/vcentertest"
	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
	"github.com/vpipe/vpipe/sinks/tagsync"
)

func st(scope, tag string) simulator.Tag { return simulator.Tag{Scope: scope, Tag: tag} }

// TestEndToEnd runs vcsim → vCenter source → Kafka → tag-sync stage → NSX
// simulator.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, tagsync.Config{})
	e.pipeline(tagsync.Config{NSXManager: "nsx.example"})
	vm0, vm1, vm2, vm3 := e.vms[0], e.vms[1], e.vms[2], e.vms[3]

	t.Run("attach then detach keeps other tags", func(t *testing.T) {
		e.t = t
		e.attach(vm0, "security", "pci", true)
		e.waitNSX(vm0, owner, st("sec", "pci"))
		e.detach(vm0, "security", "pci", true)
		e.waitNSX(vm0, owner)
	})
	t.Run("a category not allowed is not synced", func(t *testing.T) {
		e.t = t
		e.attach(vm0, "other", "x", true)
		e.attach(vm0, "security", "web", true) // same VM, same partition: after the first
		e.waitNSX(vm0, owner, st("sec", "web"))
	})
	t.Run("renamed VM", func(t *testing.T) {
		e.t = t
		e.rename(vm1, vm1.name+"-renamed") // NSX still shows the old name
		e.attach(vm1, "security", "pci", true)
		e.waitNSX(vm1, owner, st("sec", "pci"))
	})
	t.Run("two VMs of one name", func(t *testing.T) {
		e.t = t
		e.moveToNewFolder(vm3, "elsewhere")
		e.rename(vm2, "twin")
		e.rename(vm3, "twin")
		e.attach(vm2, "application", "db", true)
		e.waitNSX(vm2, owner, st("app", "db"))
		e.detach(vm2, "application", "db", true)
		e.attach(vm3, "application", "db", true)
		e.waitNSX(vm3, owner, st("app", "db"))
		e.waitNSX(vm2, owner)
	})
	t.Run("Log Insight alert webhook as the trigger", func(t *testing.T) {
		e.t = t
		// The seed's path: a Log Insight alert carries the event's text,
		// no vCenter name, no reference; the stage finds the VM by name.
		if err := e.tm.AttachTag(context.Background(), e.tag("security", "li"), vm0.ref); err != nil {
			t.Fatal(err)
		}
		body := `{"AlertName":"vTagSync: tached tag","messages":[{"text":"User VSPHERE.LOCAL\\alice attached tag li to object ` +
			e.currentName(vm0) + `","timestamp":` + fmt.Sprint(time.Now().UnixMilli()) +
			`,"fields":[{"name":"com.vmware.vsphere:vmw_vc_event_type","content":"com.vmware.cis.tagging.attach"}]}]}`
		var evs []*pipeline.Event
		if err := loginsight.ParseWebhook([]byte(body), time.Now(), func(ev *pipeline.Event) { evs = append(evs, ev) }); err != nil || len(evs) != 1 {
			t.Fatalf("parse webhook: %d events, %v", len(evs), err)
		}
		evs[0].ID = "li-1"
		if err := e.prod.Publish(context.Background(), evs[0], nil); err != nil {
			t.Fatal(err)
		}
		e.waitNSX(vm0, owner, st("sec", "web"), st("sec", "li"))
	})
	t.Run("non-VM object is ignored and counted", func(t *testing.T) {
		e.t = t
		e.sim.Post("VSPHERE.LOCAL\\alice", vcentertest.TagEvent(true, "pci", "DC0_H0", "VSPHERE.LOCAL\\alice"))
		e.waitFor("not_vm counted", func() bool {
			return metrictest.Sum(e.t, e.sreg, "vpipe_tagsync_events_total", "result", tagsync.EventNotVM) >= 1
		})
	})
	t.Run("NSX 503 and 429 are retried, nothing lost", func(t *testing.T) {
		e.t = t
		e.nsx.FailNext(12, 503, 0) // more than the client retries: the stage retries too
		e.nsx.FailNext(3, 429, time.Second)
		e.attach(vm0, "security", "retried", true)
		e.waitNSX(vm0, owner, st("sec", "web"), st("sec", "li"), st("sec", "retried"))
		if e.nsx.Stats().Faults < 15 {
			t.Errorf("%d faults served; want 15", e.nsx.Stats().Faults)
		}
	})
	t.Run("audit events", func(t *testing.T) {
		e.t = t
		topic := prefix + pipeline.TopicFor(tagsync.DatasetAudit)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			msgs, err := brokertest.Read(ctx, e.addr, topic, 1)
			if err != nil {
				t.Fatalf("read %s: %v", topic, err)
			}
			for _, m := range msgs {
				var ev pipeline.Event
				if err := ev.DecodeJSON(m.Value); err != nil || ev.Dataset != tagsync.DatasetAudit {
					continue
				}
				if label(&ev, tagsync.LabelVMUUID) == vm1.uuid && label(&ev, tagsync.LabelAdded) == "sec|pci" {
					if ev.User.Name != "alice" || ev.Outcome != "success" || label(&ev, tagsync.LabelStage) != tagsync.StageName ||
						label(&ev, tagsync.LabelCauseID) == "" || !strings.Contains(ev.Message, "sec|pci") || ev.ID == "" {
						t.Errorf("audit event %s", m.Value)
					}
					// The contract with the group watchers: this change
					// makes the watchers of nsx.example poll at once.
					if h, ok := nsxgroups.HintOf(&ev); !ok || !slices.Equal(h.Hosts, []string{"nsx.example"}) ||
						label(&ev, tagsync.LabelNSXManager) != "nsx.example" {
						t.Errorf("audit event %s: trigger hint %+v, %t", m.Value, h, ok)
					}
					return
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no audit event of vm1's change on %s", topic)
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

func label(e *pipeline.Event, k string) string {
	for _, l := range e.Labels {
		if l.Key == k {
			return l.Value
		}
	}
	return ""
}

// TestReconcile changes tags behind vpipe's back in both systems; one
// reconciliation restores agreement and leaves unmanaged tags alone.
func TestReconcile(t *testing.T) {
	e := newEnv(t, tagsync.Config{})
	vm0, vm1, vm2, vm3 := e.vms[0], e.vms[1], e.vms[2], e.vms[3]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	e.attach(vm0, "security", "pci", false)
	e.attach(vm1, "application", "web", false)
	e.attach(vm1, "other", "ignored", false)
	e.nsx.SetTags(vm2.uuid, []simulator.Tag{owner, st("sec", "stale")})
	e.nsx.SetTags(vm3.uuid, []simulator.Tag{st("owner", "bob"), st("other", "keep")})

	dry, err := tagsync.New(tagsync.Config{VCenter: "vc1", Categories: categories, DryRun: true}, tagsync.Deps{VCenter: e.sim.Conn, NSX: e.nsxc})
	if err != nil {
		t.Fatal(err)
	}
	defer dry.Close()
	writes := e.nsx.Stats().TagWrites
	rep, err := dry.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		vm0.uuid: "+sec|pci",
		vm1.uuid: "+app|web",
		vm2.uuid: "-sec|stale",
	}
	got := map[string]string{}
	for _, it := range rep.Plan {
		s := ""
		for _, a := range it.Add {
			s += "+" + a.String()
		}
		for _, r := range it.Remove {
			s += "-" + r.String()
		}
		got[it.VM.InstanceUUID] = s
	}
	if len(got) != len(want) {
		t.Errorf("plan %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("plan for %s = %q; want %q", k, got[k], v)
		}
	}
	if e.nsx.Stats().TagWrites != writes {
		t.Error("the dry run wrote to NSX")
	}

	rep, err = e.sink.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.VMs != 4 || rep.Changed != 3 || rep.Added != 2 || rep.Removed != 1 || rep.InSync != 1 {
		t.Errorf("report %+v; want 4 VMs, 3 changed (2 added, 1 removed), 1 in sync", rep)
	}
	for _, c := range []struct {
		vm   vmInfo
		want []simulator.Tag
	}{
		{vm0, []simulator.Tag{owner, st("sec", "pci")}},
		{vm1, []simulator.Tag{owner, st("app", "web")}},
		{vm2, []simulator.Tag{owner}},
		{vm3, []simulator.Tag{st("other", "keep"), st("owner", "bob")}},
	} {
		if !e.hasNSX(c.vm, c.want...) {
			t.Errorf("NSX tags of %s = %v; want %v", c.vm.name, e.nsxTags(c.vm), c.want)
		}
	}
	// The session vpipe holds expires: the next call logs in again.
	e.sim.Fault("*", vcsim.FaultTypeNotAuthenticated, 1)
	rep, err = e.sink.Reconcile(ctx)
	if err != nil || rep.Changed != 0 || rep.InSync != 4 {
		t.Errorf("second reconciliation, after the session expired: %+v, %v; want everything in sync", rep, err)
	}
	if n := e.sim.Model.Service.GetFaultStats()["total_injections"]; n != int64(1) {
		t.Errorf("%v NotAuthenticated faults served; want 1", n)
	}
	e.nsx.RemoveVM(vm3.uuid)
	rep, err = e.sink.Reconcile(ctx)
	if err != nil || rep.NotInNSX != 1 {
		t.Errorf("with a VM unknown to NSX: %+v, %v; want 1 not in NSX", rep, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := tagsync.Config{VCenter: "vc1", Categories: map[string]string{"security": "sec"}}
	tests := []struct {
		name string
		mod  func(*tagsync.Config)
		want string
	}{
		{"ok", func(*tagsync.Config) {}, ""},
		{"no vcenter", func(c *tagsync.Config) { c.VCenter = "" }, "vcenter: missing"},
		{"no categories", func(c *tagsync.Config) { c.Categories = nil }, "categories: missing"},
		{"empty scope", func(c *tagsync.Config) { c.Categories = map[string]string{"security": ""} }, "empty scope"},
		{"long scope", func(c *tagsync.Config) { c.Categories = map[string]string{"s": strings.Repeat("x", nsx.MaxScopeLen+1)} }, "longer than"},
		{"empty tag rename", func(c *tagsync.Config) { c.Tags = map[string]string{"PCI": ""} }, "tags[PCI]"},
		{"concurrency", func(c *tagsync.Config) { c.Concurrency = -1 }, "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.WithDefaults().Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate = %v; want %q", err, tt.want)
			}
		})
	}
}
