package tagsync_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/pipeline/vcenter/vcentertest"
	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
	"github.com/vpipe/vpipe/sinks/tagsync"
)

const (
	nsxUser = "admin"
	nsxPass = "VMware1!VMware1!"
	prefix  = "vpipe."
)

var (
	owner      = simulator.Tag{Scope: "owner", Tag: "alice"} // not vpipe's: must survive
	categories = map[string]string{"security": "sec", "application": "app"}
)

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is vcsim, the NSX simulator with the same VMs, and (when started)
// the whole pipeline between them: vCenter source → Kafka → tag-sync
// stage → NSX.
type env struct {
	t     testing.TB
	sim   *vcentertest.Sim
	vc    *vcenter.Conn
	tm    *tags.Manager
	nsx   *simulator.Server
	nsxc  *nsx.Client
	addr  string
	prod  *kafkaout.Producer
	sink  *tagsync.Sink
	reg   *prometheus.Registry // source and NSX client metrics
	sreg  *prometheus.Registry // the current sink's metrics
	vms   []vmInfo
	tagID map[string]string // "category/tag" → id
}

type vmInfo struct {
	ref  object.Reference
	name string
	uuid string
}

func newEnv(t testing.TB, cfg tagsync.Config) *env {
	t.Helper()
	e := &env{t: t, tagID: map[string]string{}, reg: prometheus.NewRegistry()}
	e.sim = vcentertest.Start(t, nil)
	e.vc = e.sim.Dial(t)
	e.tm = tags.NewManager(e.vc.REST)
	e.nsx = simulator.New(simulator.Options{Users: map[string]string{nsxUser: nsxPass}})
	srv := httptest.NewUnstartedServer(e.nsx)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	var err error
	e.nsxc, err = nsx.New(nsx.Config{URL: srv.URL, Auth: nsx.AuthSession, Username: nsxUser, Password: nsxPass,
		Transport: srv.Client().Transport, MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetries: 8},
		nsx.NewMetrics(e.reg), testLog())
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range e.sim.VMs(t, e.vc) {
		var m mo.VirtualMachine
		if err := vm.Properties(context.Background(), vm.Reference(), []string{"name", "config.instanceUuid"}, &m); err != nil {
			t.Fatal(err)
		}
		e.vms = append(e.vms, vmInfo{ref: vm, name: m.Name, uuid: m.Config.InstanceUuid})
		e.nsx.AddVM(simulator.VM{ExternalID: m.Config.InstanceUuid, DisplayName: m.Name, MoRef: vm.Reference().Value,
			Tags: []simulator.Tag{owner}})
	}
	sort.Slice(e.vms, func(i, j int) bool { return e.vms[i].name < e.vms[j].name })
	if len(e.vms) < 4 {
		t.Fatalf("vcsim has %d VMs; want 4", len(e.vms))
	}
	if cfg.VCenter == "" {
		cfg.VCenter = "vc1"
	}
	if cfg.Categories == nil {
		cfg.Categories = categories
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = -1
	}
	e.sreg = prometheus.NewRegistry()
	e.sink, err = tagsync.New(cfg, tagsync.Deps{VCenter: e.sim.Conn, NSX: e.nsxc, Metrics: tagsync.NewMetrics(e.sreg), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sink.Close() })
	return e
}

// pipeline starts the broker, the producer, the vCenter source and the
// tag-sync stage (a new sink publishing audits), and returns once the
// source reads vCenter's events.
func (e *env) pipeline(cfg tagsync.Config) {
	t := e.t
	t.Helper()
	e.addr = brokertest.Start(t, prefix+pipeline.TopicVCenter, prefix+pipeline.TopicCheckpoints, prefix+pipeline.TopicDLQ,
		prefix+pipeline.TopicAudit, prefix+pipeline.TopicOther)
	var err error
	e.prod, err = kafkaout.New(kafkaout.Config{Brokers: []string{e.addr}, TopicPrefix: prefix}, kafkaout.NewMetrics(prometheus.NewRegistry()), testLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer fcancel()
		e.prod.Close(fctx)
	})
	octx, ocancel := context.WithTimeout(ctx, 20*time.Second)
	cp, err := checkpoint.Open(octx, []string{e.addr}, prefix+pipeline.TopicCheckpoints)
	ocancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	vm := vcenter.NewMetrics(e.reg)
	src, err := vcenter.New(vcenter.Config{Name: "vc1", Conn: e.sim.Conn, PollInterval: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, e.prod, cp, vm, testLog())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.VCenter == "" {
		cfg.VCenter = "vc1"
	}
	if cfg.Categories == nil {
		cfg.Categories = categories
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = -1
	}
	e.sink.Close()
	e.sreg = prometheus.NewRegistry()
	e.sink, err = tagsync.New(cfg, tagsync.Deps{VCenter: e.sim.Conn, NSX: e.nsxc, Audit: e.prod,
		Metrics: tagsync.NewMetrics(e.sreg), Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := stage.New(stage.Config{
		Name: "tag-sync", Brokers: []string{e.addr}, Topics: []string{prefix + pipeline.TopicVCenter},
		DLQTopic: prefix + pipeline.TopicDLQ, BatchSize: 50, BatchWait: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
	}, e.sink, stage.NewMetrics(nil), testLog())
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { src.Run(ctx) })
	wg.Go(func() { r.Run(ctx) })
	e.waitFor("the vCenter source to connect", func() bool { return metrictest.Sum(e.t, e.reg, "vpipe_vcenter_connected") == 1 })
}

// waitFor polls cond until it holds, failing the test after a deadline.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tag returns the id of category/tag in vcsim, creating both.
func (e *env) tag(category, name string) string {
	key := category + "/" + name
	if id, ok := e.tagID[key]; ok {
		return id
	}
	id := vcentertest.Tagging(e.t, e.vc, category, name)
	e.tagID[key] = id
	return id
}

// attach attaches category/tag to vm in vcsim; with event, it also posts
// the tagging event vCenter would log (vcsim does not).
func (e *env) attach(vm vmInfo, category, name string, event bool) {
	e.t.Helper()
	if err := e.tm.AttachTag(context.Background(), e.tag(category, name), vm.ref); err != nil {
		e.t.Fatal(err)
	}
	if event {
		e.sim.Post("VSPHERE.LOCAL\\alice", vcentertest.TagEvent(true, name, e.currentName(vm), "VSPHERE.LOCAL\\alice"))
	}
}

func (e *env) detach(vm vmInfo, category, name string, event bool) {
	e.t.Helper()
	if err := e.tm.DetachTag(context.Background(), e.tag(category, name), vm.ref); err != nil {
		e.t.Fatal(err)
	}
	if event {
		e.sim.Post("VSPHERE.LOCAL\\alice", vcentertest.TagEvent(false, name, e.currentName(vm), "VSPHERE.LOCAL\\alice"))
	}
}

func (e *env) currentName(vm vmInfo) string {
	var m mo.VirtualMachine
	if err := e.vms[0].ref.(*object.VirtualMachine).Properties(context.Background(), vm.ref.Reference(), []string{"name"}, &m); err != nil {
		e.t.Fatal(err)
	}
	return m.Name
}

// moveToNewFolder moves vm into a new VM folder, where it may take a name
// another VM has (vCenter refuses two VMs of one name in one folder).
func (e *env) moveToNewFolder(vm vmInfo, folder string) {
	e.t.Helper()
	ctx := context.Background()
	dc, err := find.NewFinder(e.vc.VIM).DefaultDatacenter(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := folders.VmFolder.CreateFolder(ctx, folder)
	if err != nil {
		e.t.Fatal(err)
	}
	task, err := f.MoveInto(ctx, []types.ManagedObjectReference{vm.ref.Reference()})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) rename(vm vmInfo, name string) {
	e.t.Helper()
	task, err := vm.ref.(*object.VirtualMachine).Rename(context.Background(), name)
	if err == nil {
		err = task.Wait(context.Background())
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// nsxTags returns the NSX tags of vm, sorted.
func (e *env) nsxTags(vm vmInfo) []simulator.Tag {
	v, _ := e.nsx.VM(vm.uuid)
	out := slices.Clone(v.Tags)
	slices.SortFunc(out, func(a, b simulator.Tag) int {
		if a.Scope+"|"+a.Tag < b.Scope+"|"+b.Tag {
			return -1
		}
		return 1
	})
	return out
}

func (e *env) hasNSX(vm vmInfo, want ...simulator.Tag) bool {
	got := e.nsxTags(vm)
	slices.SortFunc(want, func(a, b simulator.Tag) int {
		if a.Scope+"|"+a.Tag < b.Scope+"|"+b.Tag {
			return -1
		}
		return 1
	})
	return slices.Equal(got, want)
}

// waitNSX waits until vm's NSX tags are exactly want.
func (e *env) waitNSX(vm vmInfo, want ...simulator.Tag) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !e.hasNSX(vm, want...) {
		if time.Now().After(deadline) {
			e.t.Fatalf("NSX tags of %s = %v; want %v", vm.name, e.nsxTags(vm), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
