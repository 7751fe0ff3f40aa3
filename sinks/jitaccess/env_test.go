package jitaccess_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/pipeline/znuny"
	znsim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
	"github.com/vpipe/vpipe/sinks/jitaccess"
	"github.com/vpipe/vpipe/sinks/nsx"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

const (
	prefix    = "vpipe."
	field     = "JITAccessVM"
	nsxUser   = "admin"
	nsxPass   = "VMware1!VMware1!"
	agentUser = "vpipe"
	agentPass = "s3cret"
)

var (
	jitTag   = nsx.Tag{Scope: "jit", Tag: "ssh"}
	otherTag = nsx.Tag{Scope: "owner", Tag: "alice"}
)

// env is one of everything, real: the embedded broker, a producer, vcsim,
// the NSX simulator and the Znuny simulator, all over TCP.
type env struct {
	t      *testing.T
	broker string
	prod   *kafkaout.Producer
	vc     *jitaccess.VCenter
	vms    map[string]jitaccess.VM // by name; "web01" has a twin in DC1 under dup["web01"]
	dup    map[string]jitaccess.VM
	nsxSim *nsxsim.Server
	nsx    *nsx.Client
	znSim  *znsim.Server
	zn     *znuny.Client
	log    *slog.Logger
}

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newEnv builds the environment; invoker, if set, is the Znuny
// simulator's webhook configuration.
func newEnv(t *testing.T, invoker znsim.Invoker) *env {
	t.Helper()
	e := &env{t: t, log: testLog()}
	topics := make([]string, len(pipeline.AllTopics))
	for i, tp := range pipeline.AllTopics {
		topics[i] = prefix + tp
	}
	e.broker = brokertest.Start(t, topics...)
	var err error
	e.prod, err = kafkaout.New(kafkaout.Config{Brokers: []string{e.broker}, TopicPrefix: prefix, Linger: time.Millisecond},
		kafkaout.NewMetrics(prometheus.NewRegistry()), e.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.prod.Close(ctx)
	})
	e.startVCenter()
	e.startNSX()
	e.znSim = znsim.New(znsim.Options{Users: map[string]string{agentUser: agentPass}, Invoker: invoker})
	zsrv := httptest.NewServer(e.znSim)
	t.Cleanup(zsrv.Close)
	e.zn = mustClient(t, zsrv.URL+e.znSim.BasePath())
	return e
}

// mustClient is a Znuny client of the web service at url.
func mustClient(t *testing.T, url string) *znuny.Client {
	t.Helper()
	c, err := znuny.New(znuny.Config{URL: url, Username: agentUser, Password: agentPass,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, znuny.NewMetrics(nil), testLog())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startVCenter runs vcsim with two datacenters and names their VMs web01,
// web02, db01, app01 (DC0) and web01, web03, ... (DC1): web01 is
// ambiguous.
func (e *env) startVCenter() {
	t := e.t
	model := simulator.VPX()
	model.Datacenter = 2
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(model.Remove)
	srv := model.Service.NewServer()
	t.Cleanup(srv.Close)
	ctx := ctxFor(t, 30*time.Second)

	c, err := govmomi.NewClient(ctx, srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	m := view.NewManager(c.Client)
	cv, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		t.Fatal(err)
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	names := map[string]string{ // vcsim name → ours
		"DC0_H0_VM0": "web01", "DC0_H0_VM1": "web02", "DC0_C0_RP0_VM0": "db01", "DC0_C0_RP0_VM1": "app01",
		"DC1_H0_VM0": "web01", "DC1_H0_VM1": "web03",
	}
	for _, vm := range vms {
		if n, ok := names[vm.Name]; ok {
			task, err := object.NewVirtualMachine(c.Client, vm.Self).Rename(ctx, n)
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				t.Fatalf("rename %s: %v", vm.Name, err)
			}
		}
	}
	u := *srv.URL
	u.User = nil
	e.vc, err = jitaccess.DialVCenter(ctx, vcenter.ConnConfig{URL: u.String(), Username: "user", Password: "pass", Insecure: true}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	e.vms, e.dup = map[string]jitaccess.VM{}, map[string]jitaccess.VM{}
	for _, n := range []string{"web01", "web02", "web03", "db01", "app01"} {
		found, err := e.vc.ByName(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(found, func(a, b jitaccess.VM) int { return strings.Compare(a.InstanceUUID, b.InstanceUUID) })
		e.vms[n] = found[0]
		if len(found) > 1 {
			e.dup[n] = found[1]
		}
	}
	if _, ok := e.dup["web01"]; !ok || len(e.vms) != 5 {
		t.Fatalf("vcsim inventory: %v %v", e.vms, e.dup)
	}
}

// startNSX runs the NSX simulator with every vCenter VM, each with a tag
// vpipe does not manage.
func (e *env) startNSX() {
	t := e.t
	e.nsxSim = nsxsim.New(nsxsim.Options{Users: map[string]string{nsxUser: nsxPass}})
	for _, m := range []map[string]jitaccess.VM{e.vms, e.dup} {
		for _, vm := range m {
			e.nsxSim.AddVM(nsxsim.VM{ExternalID: vm.InstanceUUID, DisplayName: vm.Name, MoRef: vm.Ref,
				Tags: []nsxsim.Tag{{Scope: otherTag.Scope, Tag: otherTag.Tag}}})
		}
	}
	srv := httptest.NewUnstartedServer(e.nsxSim)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	var err error
	e.nsx, err = nsx.New(nsx.Config{URL: srv.URL, Username: nsxUser, Password: nsxPass, Transport: srv.Client().Transport,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}, nil, e.log)
	if err != nil {
		t.Fatal(err)
	}
}

// store opens the grant store on the checkpoints topic, as wire_jit does.
func (e *env) store() *checkpoint.Store {
	e.t.Helper()
	s, err := checkpoint.Open(ctxFor(e.t, 30*time.Second), []string{e.broker}, prefix+pipeline.TopicCheckpoints)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func baseConfig() jitaccess.Config {
	return jitaccess.Config{Field: field, Tag: jitTag, MaxDuration: time.Hour, ReconcileInterval: time.Hour, NSXManager: "nsx.example"}
}

// sink builds a Sink on the environment with cfg and store.
func (e *env) sink(cfg jitaccess.Config, st jitaccess.Store) *jitaccess.Sink {
	e.t.Helper()
	s, err := jitaccess.New(cfg, jitaccess.Deps{Tickets: e.zn, VMs: e.vc, NSX: e.nsx, Store: st, Audit: e.prod, Log: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// write hands the sink one ticket.lock record per body, as the stage
// runner would after the webhook.
func (e *env) write(s *jitaccess.Sink, bodies ...string) error {
	e.t.Helper()
	var recs []stage.Record
	for i, b := range bodies {
		err := ticket.Webhook([]byte(b), time.Now(), func(ev *pipeline.Event) {
			ev.ID = fmt.Sprintf("%s-%d-%d", e.t.Name(), time.Now().UnixNano(), i)
			recs = append(recs, stage.Record{Event: ev})
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return s.Write(ctxFor(e.t, 30*time.Second), recs)
}

// ticketBody is the plain webhook body for ticket id.
func ticketBody(id string) string { return `{"TicketID":"` + id + `"}` }

// tags returns the NSX tags of a VM.
func (e *env) tags(vm jitaccess.VM) []nsx.Tag {
	v, ok := e.nsxSim.VM(vm.InstanceUUID)
	if !ok {
		e.t.Fatalf("nsx has no vm %s", vm.InstanceUUID)
	}
	out := []nsx.Tag{}
	for _, tg := range v.Tags {
		out = append(out, nsx.Tag{Scope: tg.Scope, Tag: tg.Tag})
	}
	return out
}

// tagged reports whether vm carries the JIT tag, and fails the test if it
// lost the tag vpipe does not manage.
func (e *env) tagged(vm jitaccess.VM) bool {
	e.t.Helper()
	tags := e.tags(vm)
	if !slices.Contains(tags, otherTag) {
		e.t.Fatalf("vm %s lost its other tag: %v", vm.Name, tags)
	}
	return slices.Contains(tags, jitTag)
}

// lock, unlock and create drive the help desk.
func (e *env) create(vmField any) string {
	e.t.Helper()
	fields := map[string]any{}
	if vmField != nil {
		fields[field] = vmField
	}
	id, _ := e.znSim.CreateTicket(znsim.NewTicket{Title: "maintenance", DynamicFields: fields})
	return id
}

func (e *env) lock(id string) {
	e.t.Helper()
	if _, err := e.znSim.Lock(ctxFor(e.t, 30*time.Second), id, "agent1"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) unlock(id string) {
	e.t.Helper()
	if _, err := e.znSim.Unlock(ctxFor(e.t, 30*time.Second), id); err != nil {
		e.t.Fatal(err)
	}
}

// audits returns the audit events published so far about ticket id ("":
// those without a ticket), in order.
func (e *env) audits(id string) []*pipeline.Event {
	e.t.Helper()
	topic := prefix + pipeline.TopicFor(jitaccess.DatasetAudit)
	msgs, err := brokertest.Read(ctxFor(e.t, 10*time.Second), e.broker, topic, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Time.Before(msgs[j].Time) })
	var out []*pipeline.Event
	for _, m := range msgs {
		ev := new(pipeline.Event)
		if err := ev.DecodeJSON(m.Value); err != nil {
			e.t.Fatalf("audit record: %v", err)
		}
		if ev.Dataset != jitaccess.DatasetAudit || label(ev, jitaccess.LabelTicketID) != id {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// actions is the event.action of each audit event about ticket id.
func (e *env) actions(id string) []string {
	var out []string
	for _, ev := range e.audits(id) {
		out = append(out, ev.Action+"/"+ev.Outcome)
	}
	return out
}

func label(ev *pipeline.Event, key string) string {
	for _, l := range ev.Labels {
		if l.Key == key {
			return l.Value
		}
	}
	return ""
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
