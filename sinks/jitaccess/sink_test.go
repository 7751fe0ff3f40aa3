package jitaccess_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	znsim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
	"github.com/vpipe/vpipe/sinks/jitaccess"
)

// TestDecisions drives the sink directly (as the stage runner does) against
// vcsim, the NSX and Znuny simulators and Kafka, one help desk story per
// case, each on its own VM.
func TestDecisions(t *testing.T) {
	e := newEnv(t, znsim.Invoker{})
	s := e.sink(baseConfig(), e.store())
	ctx := ctxFor(t, 2*time.Minute)

	t.Run("lock tags the VM, unlock untags it", func(t *testing.T) {
		vm := e.vms["web02"]
		id := e.create("web02")
		e.lock(id)
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		if !e.tagged(vm) {
			t.Fatal("locked: no tag")
		}
		if other := e.dup["web01"]; e.tagged(other) || e.tagged(e.vms["web01"]) {
			t.Fatal("another VM was tagged")
		}
		// A duplicate delivery changes nothing.
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		e.unlock(id)
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		if e.tagged(vm) {
			t.Fatal("unlocked: tag still there")
		}
		want := []string{"access.grant/success", "access.grant/success", "access.revoke/success"}
		if got := e.actions(id); !slices.Equal(got, want) {
			t.Fatalf("audit actions %v, want %v", got, want)
		}
		a := e.audits(id)
		if got := label(a[0], jitaccess.LabelChange) + "," + label(a[1], jitaccess.LabelChange) + "," + label(a[2], jitaccess.LabelChange); got != "added,present,removed" {
			t.Errorf("changes %s", got)
		}
		ev := a[0]
		if ev.User.Name != "agent1" || ev.Host.Hostname != "web02" || label(ev, jitaccess.LabelVMUUID) != vm.InstanceUUID ||
			label(ev, jitaccess.LabelTag) != "jit|ssh" || label(ev, jitaccess.LabelExpires) == "" || ev.ID == "" {
			t.Errorf("grant audit event: %+v", ev)
		}
		// The contract with the group watchers: a tag added or removed
		// makes the watchers of nsx.example poll at once; one already
		// there does not.
		for i, want := range []bool{true, false, true} {
			h, ok := nsxgroups.HintOf(a[i])
			if ok != want || ok && !slices.Equal(h.Hosts, []string{"nsx.example"}) {
				t.Errorf("audit %d (%s): trigger hint %+v, %t", i, label(a[i], jitaccess.LabelChange), h, ok)
			}
		}
	})

	t.Run("two tickets on one VM", func(t *testing.T) {
		vm := e.vms["db01"]
		a, b := e.create("db01"), e.create(vm.InstanceUUID) // one by name, one by instance UUID
		e.lock(a)
		e.lock(b)
		if err := e.write(s, ticketBody(a), ticketBody(b)); err != nil {
			t.Fatal(err)
		}
		e.unlock(a)
		if err := e.write(s, ticketBody(a)); err != nil {
			t.Fatal(err)
		}
		if !e.tagged(vm) {
			t.Fatal("tag removed while ticket b still holds the VM")
		}
		if ev := e.audits(a); label(ev[len(ev)-1], jitaccess.LabelChange) != "kept" || label(ev[len(ev)-1], jitaccess.LabelHolders) != b {
			t.Errorf("revoke of a: %+v", ev[len(ev)-1])
		}
		e.unlock(b)
		if err := e.write(s, ticketBody(b)); err != nil {
			t.Fatal(err)
		}
		if e.tagged(vm) {
			t.Fatal("both unlocked: tag still there")
		}
	})

	t.Run("closed ticket untags", func(t *testing.T) {
		vm := e.vms["app01"]
		id := e.create("app01")
		e.lock(id)
		if err := e.write(s, ticketBody(id)); err != nil || !e.tagged(vm) {
			t.Fatalf("lock: %v", err)
		}
		if _, err := e.znSim.SetState(ctx, id, "merged", "merged"); err != nil {
			t.Fatal(err)
		}
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		if e.tagged(vm) {
			t.Fatal("merged ticket still grants access")
		}
	})

	t.Run("field names another VM", func(t *testing.T) {
		from, to := e.vms["web03"], e.vms["app01"]
		id := e.create("web03")
		e.lock(id)
		if err := e.write(s, ticketBody(id)); err != nil || !e.tagged(from) {
			t.Fatalf("lock: %v", err)
		}
		if _, err := e.znSim.SetDynamicField(ctx, id, field, "app01"); err != nil {
			t.Fatal(err)
		}
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		if e.tagged(from) || !e.tagged(to) {
			t.Fatalf("after the field changed: web03 %v, app01 %v", e.tagged(from), e.tagged(to))
		}
		e.unlock(id)
		if err := e.write(s, ticketBody(id)); err != nil || e.tagged(to) {
			t.Fatalf("unlock: %v", err)
		}
	})

	t.Run("webhook with the ticket number only", func(t *testing.T) {
		vm := e.vms["web02"]
		id, number := e.znSim.CreateTicket(znsim.NewTicket{DynamicFields: map[string]any{field: "web02"}})
		e.lock(id)
		if err := e.write(s, `{"TicketNumber":"`+number+`"}`); err != nil || !e.tagged(vm) {
			t.Fatalf("lock by number: %v", err)
		}
		e.unlock(id)
		if err := e.write(s, `{"TicketNumber":"`+number+`"}`, `{"TicketNumber":"0000"}`); err != nil || e.tagged(vm) {
			t.Fatalf("unlock by number: %v", err)
		}
		if got := e.actions(""); len(got) == 0 || got[len(got)-1] != "access.deny/failure" {
			t.Errorf("unknown number: %v", got)
		}
	})

	for _, tc := range []struct {
		name   string
		value  any    // the dynamic field; nil: absent
		reason string // in the deny audit event
		untag  []jitaccess.VM
	}{
		{"ticket without the field", nil, `dynamic field "JITAccessVM" is empty or missing`, nil},
		{"empty field", "", `dynamic field "JITAccessVM" is empty or missing`, nil},
		{"duplicate VM names refused", "web01", `2 VMs in vCenter are named "web01"`, []jitaccess.VM{e.vms["web01"], e.dup["web01"]}},
		{"unknown VM", "nosuchvm", `no VM in vCenter is named "nosuchvm"`, nil},
		{"unknown instance UUID", "00000000-0000-0000-0000-000000000000", "no VM in vCenter has instance UUID", nil},
		{"several values", []string{"web02", "db01"}, "holds 2 values", []jitaccess.VM{e.vms["web02"], e.vms["db01"]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.create(tc.value)
			e.lock(id)
			if err := e.write(s, ticketBody(id)); err != nil {
				t.Fatal(err)
			}
			for _, vm := range tc.untag {
				if e.tagged(vm) {
					t.Errorf("vm %s %s tagged", vm.Name, vm.InstanceUUID)
				}
			}
			a := e.audits(id)
			if len(a) != 1 || a[0].Action != jitaccess.ActionDeny || a[0].Outcome != "failure" || !strings.Contains(a[0].Reason, tc.reason) {
				for _, ev := range a {
					t.Logf("audit: %s %s %s", ev.Action, ev.Outcome, ev.Reason)
				}
				t.Fatalf("want one deny/failure audit saying %q", tc.reason)
			}
		})
	}

	t.Run("duplicate name resolved by instance UUID", func(t *testing.T) {
		twin := e.dup["web01"]
		id := e.create(strings.ToUpper(twin.InstanceUUID))
		e.lock(id)
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		if !e.tagged(twin) || e.tagged(e.vms["web01"]) {
			t.Fatal("want exactly the named twin tagged")
		}
		e.unlock(id)
		if err := e.write(s, ticketBody(id)); err != nil || e.tagged(twin) {
			t.Fatalf("unlock: %v", err)
		}
	})

	t.Run("restricted ticket denied", func(t *testing.T) {
		id, _ := e.znSim.CreateTicket(znsim.NewTicket{Restricted: true, DynamicFields: map[string]any{field: "web02"}})
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		if a := e.audits(id); len(a) != 1 || a[0].Action != jitaccess.ActionDeny || !strings.Contains(a[0].Reason, "AccessDenied") {
			t.Fatalf("audits %v", e.actions(id))
		}
	})

	t.Run("help desk down is retryable", func(t *testing.T) {
		id := e.create("web02")
		e.znSim.FailNext(503, 503, 503, 503)
		err := e.write(s, ticketBody(id))
		if err == nil || errors.Is(err, pipeline.ErrPermanent) {
			t.Fatalf("err = %v: want retryable", err)
		}
	})

	t.Run("reconcile heals missed webhooks", func(t *testing.T) {
		vm, stray := e.vms["web03"], e.vms["db01"]
		id := e.create("web03")
		e.lock(id)                                                                // no webhook reaches the stage
		if _, err := e.nsx.AddTags(ctx, stray.InstanceUUID, jitTag); err != nil { // tagged behind vpipe's back
			t.Fatal(err)
		}
		if err := s.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if !e.tagged(vm) || e.tagged(stray) {
			t.Fatalf("after reconcile: web03 %v (want true), db01 %v (want false)", e.tagged(vm), e.tagged(stray))
		}
		e.unlock(id) // missed again
		if err := s.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if e.tagged(vm) {
			t.Fatal("reconcile left the tag of an unlocked ticket")
		}
		if got := e.actions(id); !slices.Equal(got, []string{"access.grant/success", "access.revoke/success"}) {
			t.Errorf("audits %v", got)
		}
		// A pass with nothing to change audits nothing.
		before := len(e.audits(""))
		if err := s.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if after := len(e.audits("")); after != before {
			t.Errorf("idle reconcile audited %d events", after-before)
		}
	})

	t.Run("VM not in NSX yet", func(t *testing.T) {
		vm := e.vms["app01"]
		nv, _ := e.nsxSim.VM(vm.InstanceUUID)
		e.nsxSim.RemoveVM(vm.InstanceUUID)
		id := e.create("app01")
		e.lock(id)
		if err := e.write(s, ticketBody(id)); err != nil {
			t.Fatal(err)
		}
		a := e.audits(id)
		if len(a) != 1 || a[0].Outcome != "failure" || label(a[0], jitaccess.LabelChange) != "vm_not_in_nsx" {
			t.Fatalf("audits %v", e.actions(id))
		}
		e.nsxSim.AddVM(nv) // NSX learns the VM from its host
		if err := s.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if !e.tagged(vm) {
			t.Fatal("the reconcile did not tag the VM once NSX knew it")
		}
		e.unlock(id)
		if err := e.write(s, ticketBody(id)); err != nil || e.tagged(vm) {
			t.Fatalf("unlock: %v", err)
		}
	})
}
