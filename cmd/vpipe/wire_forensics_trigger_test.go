package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/vcenter/vcentertest"
	"github.com/vpipe/vpipe/sinks/nsx"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// TestNSXGroupsTriggers runs two vpipe processes against one broker, as
// roles split across machines do: A ingests syslog and syncs vCenter tags
// to NSX (roles ingest, vcenter, tag-sync; the embedded broker), B watches
// an NSX group polling once an hour (role nsx-groups). A VM joins the
// group on B's topic within a second of the change that made it join:
// tag-sync's NSX tag change (its audit event on vpipe.audit), and a tag
// set by hand in NSX whose audit log line reaches A over syslog (nsx.audit
// on vpipe.nsx). A line from a manager B does not watch triggers nothing.
func TestNSXGroupsTriggers(t *testing.T) {
	r := newTagSyncRig(t)
	ctx := context.Background()
	// The quarantine group: VMs tagged sec|pci.
	tc, err := clientTLS("test", config.ClientTLS{CAFile: r.nsxCA}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nsx.New(nsx.Config{URL: r.url, Auth: "session", Username: "vpipe-tagsync", Password: "nsx-pw", TLS: tc}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pci := nsxsim.Tag{Scope: "sec", Tag: "pci"}
	if err := nc.PutGroup(ctx, "default", nsx.Group{ID: "quarantine", DisplayName: "Quarantine",
		Expression: []nsx.Condition{nsx.TagCondition(nsx.Tag{Scope: pci.Scope, Tag: pci.Tag})}}); err != nil {
		t.Fatal(err)
	}

	write := func(name, y string) string {
		f := filepath.Join(r.dir, name)
		if err := os.WriteFile(f, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cfgA, err := config.Load(write("a.yaml", fmt.Sprintf(`kafka:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
syslog: [{transport: tcp, address: "127.0.0.1:0"}]
http: {address: "127.0.0.1:0"}
sources:
  vcenter:
    - {name: vc1, url: %s, username: %s, password_env: VPIPE_TEST_VC_PW, tls: {ca_file: %s}, poll_interval: 50ms, max_backoff: 1s}
stages:
  tag_sync:
    vcenter: vc1
    categories: {security: sec}
    reconcile_interval: 1h
    nsx: {url: %s, auth: session, username: vpipe-tagsync, password_env: VPIPE_TEST_NSX_PW, tls: {ca_file: %s}}
`, filepath.Join(r.dir, "data"), r.sim.Conn.URL, vcentertest.Username, r.sim.Conn.CAFile, r.url, r.nsxCA)))
	if err != nil {
		t.Fatal(err)
	}
	a := startVpipeRoles(t, cfgA, map[string]bool{roleIngest: true, roleVCenter: true, roleTagSync: true})
	triggerWaitLog(t, a, "reading vcenter events")

	cfgB, err := config.Load(write("b.yaml", fmt.Sprintf(`kafka:
  brokers: [%q]
syslog: []
http: {address: "127.0.0.1:0"}
sources:
  nsx_groups:
    - name: nsx1
      url: %s
      auth: session
      username: vpipe-tagsync
      password_env: VPIPE_TEST_NSX_PW
      tls: {ca_file: %s}
      interval: 1h
      aliases: [nsx-mgr-01]
      groups: [{id: quarantine, name: Quarantine}]
`, a.kafka(), r.url, r.nsxCA)))
	if err != nil {
		t.Fatal(err)
	}
	b := startVpipeRoles(t, cfgB, map[string]bool{roleNSXGroups: true})
	polls := func() float64 {
		return metrictest.Sum(t, b.p.reg, "vpipe_nsxgroups_polls_total", "source", "nsx1", "result", "ok")
	}
	triggerWait(t, b, "the first poll", func() bool { return polls() >= 1 })
	triggerWaitLog(t, b, "following tag and group changes")

	joined := func(name string) bool {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		msgs, _ := brokertest.Read(rctx, a.kafka(), "vpipe."+pipeline.TopicNSX, 0)
		for _, msg := range msgs {
			var e pipeline.Event
			if e.DecodeJSON(msg.Value) != nil {
				continue
			}
			if m, ok := nsxgroups.FromEvent(&e); ok && m.Joined && m.VMName == name && m.Source == "nsx1" {
				return true
			}
		}
		return false
	}
	var latencies []time.Duration
	within := func(what, vm string, since time.Time) {
		t.Helper()
		triggerWait(t, b, vm+" joining after "+what, func() bool { return joined(vm) })
		d := time.Since(since)
		latencies = append(latencies, d)
		if d > time.Second {
			t.Errorf("%s: %s joined %s after the change, want within 1s", what, vm, d)
		}
	}

	t.Run("tag-sync's tag change", func(t *testing.T) {
		r.attach(t, 1, "pci", true)
		triggerWait(t, a, "tag-sync's NSX tag", func() bool { return r.has(1, pci) })
		within("tag-sync's tag change", r.vms[1].Name, time.Now())
		// "triggered": the audit event named this manager (nsx_manager),
		// not "every source polls" for an event that names none.
		if n := metrictest.Sum(t, b.p.reg, "vpipe_nsxgroups_trigger_events_total", "kind", nsxgroups.HintVpipeAudit, "result", "triggered"); n < 1 {
			t.Errorf("%v audit events naming this manager triggered polls", n)
		}
	})

	// send sends line over syslog TCP from the loopback address from:
	// the socket peer is a name of the sender too, and B's manager is
	// 127.0.0.1 (the simulator's URL).
	send := func(from, line string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", a.p.listeners[0].Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	auditLine := func(host string) string {
		return `<182>1 ` + time.Now().UTC().Format(time.RFC3339Nano) + ` ` + host + ` NSX 2326 POLICY [nsx@6876 audit="true" comp="nsx-manager" level="INFO" subcomp="policy" update="true" username="admin"] ` +
			`UserName="admin", ModuleName="PolicyRealizedState", Operation="TagVirtualMachine", Operation status="success", New value=["default" {"virtual_machine_id":"` + r.vms[0].Config.InstanceUuid + `","tags":[{"scope":"sec","tag":"pci"}]}]`
	}

	t.Run("a tag set in NSX, seen in its audit log", func(t *testing.T) {
		vm, _ := r.nsx.VM(r.vms[0].Config.InstanceUuid)
		if !r.nsx.SetTags(vm.ExternalID, append(slices.Clone(vm.Tags), pci)) {
			t.Fatal("no such VM in NSX")
		}
		at := time.Now()
		send("127.0.0.2", auditLine("nsx-mgr-01.corp.example"))
		within("the NSX audit log line", r.vms[0].Name, at)
	})

	t.Run("another manager's audit log triggers nothing", func(t *testing.T) {
		send("127.0.0.3", auditLine("nsx-elsewhere-01"))
		triggerWait(t, b, "the line read", func() bool {
			return metrictest.Sum(t, b.p.reg, "vpipe_nsxgroups_trigger_events_total", "kind", nsxgroups.HintNSXAudit, "result", "unmatched") == 1
		})
		if !strings.Contains(b.logs.String(), "no nsx_groups source names") {
			t.Errorf("the unmatched manager was not logged:\n%s", b.logs)
		}
	})
	t.Logf("change to join on the topic: %v", latencies)
}

// triggerWaitLog waits until r logged msg.
func triggerWaitLog(t *testing.T, r *running, msg string) {
	t.Helper()
	triggerWait(t, r, "log "+msg, func() bool { return strings.Contains(r.logs.String(), msg) })
}

// triggerWait waits up to 30s for cond, failing with r's logs.
func triggerWait(t *testing.T, r *running, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; logs:\n%s", what, r.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
