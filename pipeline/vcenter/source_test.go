package vcenter_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/pipeline/vcenter/vcentertest"
)

const (
	vcTopic = "vpipe.vcenter"
	cpTopic = "vpipe.checkpoints"
)

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// rig is a broker, a producer, a vcsim and the means to run sources
// against them.
type rig struct {
	t      testing.TB
	addr   string
	prod   *kafkaout.Producer
	sim    *vcentertest.Sim
	conn   vcenter.ConnConfig
	m      *vcenter.Metrics
	reg    *prometheus.Registry
	seen   map[int64]int // event key → times read from Kafka
	msgs   int
	vmName string
}

func newRig(t testing.TB) *rig {
	t.Helper()
	addr := brokertest.Start(t, vcTopic, cpTopic, "vpipe.dlq")
	prod, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: "vpipe."}, kafkaout.NewMetrics(prometheus.NewRegistry()), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		prod.Close(ctx)
	})
	sim := vcentertest.Start(t, nil)
	reg := prometheus.NewRegistry()
	return &rig{t: t, addr: addr, prod: prod, sim: sim, conn: sim.Conn, m: vcenter.NewMetrics(reg), reg: reg,
		seen: map[int64]int{}, vmName: "DC0_H0_VM0"}
}

// start runs a source with a fresh checkpoint store (as a new process
// would) and returns its stop function, which waits for Run to return.
func (r *rig) start() (stop func()) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cp, err := checkpoint.Open(ctx, []string{r.addr}, cpTopic)
	if err != nil {
		r.t.Fatal(err)
	}
	src, err := vcenter.New(vcenter.Config{
		Name: "vc1", Conn: r.conn, PollInterval: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}, r.prod, cp, r.m, testLog(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(runCtx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopRun()
			<-done
			cp.Close()
		})
	}
	r.t.Cleanup(stop)
	return stop
}

// connected waits until the source holds a collector, so that events
// posted afterwards are new to it.
func (r *rig) connected() {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for metric(r, "vpipe_vcenter_connected") != 1 {
		if time.Now().After(deadline) {
			r.t.Fatal("the source did not connect in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metric sums the series of a counter or gauge.
func metric(r *rig, name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// post posts n VM events and returns nothing; their keys follow vcsim's
// counter.
func (r *rig) post(n int) {
	for range n {
		r.sim.Post("VSPHERE.LOCAL\\bob", &types.VmPoweredOnEvent{VmEvent: types.VmEvent{Event: types.Event{
			Vm: &types.VmEventArgument{EntityEventArgument: types.EntityEventArgument{Name: r.vmName},
				Vm: types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-55"}},
			Host: &types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0_H0"},
				Host: types.ManagedObjectReference{Type: "HostSystem", Value: "host-21"}},
			Datacenter: &types.DatacenterEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0"},
				Datacenter: types.ManagedObjectReference{Type: "Datacenter", Value: "datacenter-2"}},
		}}})
	}
}

// await reads the topic until it holds n events of the types the test
// posts (vcsim adds its own, such as session logins), and records their
// keys.
func (r *rig) await(n int) []pipeline.Event {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		msgs, err := brokertest.Read(ctx, r.addr, vcTopic, n)
		if err != nil {
			r.t.Fatalf("read %s: %v (have %d)", vcTopic, err, r.msgs)
		}
		clear(r.seen)
		var out []pipeline.Event
		for _, m := range msgs {
			var e pipeline.Event
			if err := e.DecodeJSON(m.Value); err != nil {
				r.t.Fatalf("decode %s: %v", m.Value, err)
			}
			switch e.VMware.VCenter.EventType {
			case "vim.event.UserLoginSessionEvent", "vim.event.UserLogoutSessionEvent":
				continue
			}
			r.seen[e.VMware.VCenter.Key]++
			out = append(out, e)
		}
		r.msgs = len(out)
		if len(out) >= n {
			return out
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("read %d events of %s in time; have %d", n, vcTopic, len(out))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exactlyOnce posts a sentinel event, waits for it, and checks that every
// event arrived exactly once and that the topic holds want events before
// the sentinel.
func (r *rig) exactlyOnce(want int) {
	r.t.Helper()
	r.post(1)
	r.await(want + 1)
	if r.msgs != want+1 {
		r.t.Errorf("%d events in Kafka; want %d", r.msgs, want+1)
	}
	for k, n := range r.seen {
		if n != 1 {
			r.t.Errorf("event key %d delivered %d times", k, n)
		}
	}
}

func TestSourceNormalises(t *testing.T) {
	r := newRig(t)
	r.start()
	r.connected()
	r.sim.Post("VSPHERE.LOCAL\\alice", vcentertest.TagEvent(true, "prod", "DC0_H0_VM0", "VSPHERE.LOCAL\\alice"))
	r.post(1)
	r.sim.Post("", &types.HostConnectionLostEvent{HostEvent: types.HostEvent{Event: types.Event{
		Host: &types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0_H0"},
			Host: types.ManagedObjectReference{Type: "HostSystem", Value: "host-21"}},
		Datacenter: &types.DatacenterEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0"},
			Datacenter: types.ManagedObjectReference{Type: "Datacenter", Value: "datacenter-2"}},
	}}})
	evs := r.await(3)
	type want struct {
		eventType, objName, objRef, objType, tag, user, dc string
	}
	wants := map[string]want{
		"com.vmware.cis.tagging.attach":     {"com.vmware.cis.tagging.attach", "DC0_H0_VM0", "", "", "prod", "alice", ""},
		"vim.event.VmPoweredOnEvent":        {"vim.event.VmPoweredOnEvent", "DC0_H0_VM0", "vm-55", "VirtualMachine", "", "bob", "DC0"},
		"vim.event.HostConnectionLostEvent": {"vim.event.HostConnectionLostEvent", "DC0_H0", "host-21", "HostSystem", "", "", "DC0"},
	}
	ids := map[string]bool{}
	for _, e := range evs {
		v := e.VMware.VCenter
		w, ok := wants[v.EventType]
		if !ok {
			t.Errorf("unexpected event type %q", v.EventType)
			continue
		}
		got := want{v.EventType, v.ObjectName, v.ObjectRef, v.ObjectType, v.Tag, e.User.Name, v.Datacenter}
		if got != w {
			t.Errorf("%s: got %+v; want %+v", v.EventType, got, w)
		}
		if e.Dataset != pipeline.DatasetVCenterEvent || v.Server != "vc1" || v.Key == 0 || e.ID == "" || len(e.Original) == 0 || e.Timestamp.IsZero() {
			t.Errorf("%s: dataset %q server %q key %d id %q timestamp %v original %q", v.EventType, e.Dataset, v.Server, v.Key, e.ID, e.Timestamp, e.Original)
		}
		if ids[e.ID] {
			t.Errorf("event id %s repeats", e.ID)
		}
		ids[e.ID] = true
	}
}

// TestRestartNoLossNoDuplicates stops the source mid-stream, posts while it
// is down, and starts another (a new process: a new checkpoint store).
func TestRestartNoLossNoDuplicates(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	r.connected()
	r.post(30)
	r.await(30)
	r.post(10) // maybe read before the stop, maybe not
	stop()
	r.post(20) // while no source runs
	r.start()
	r.exactlyOnce(60)
}

// TestKeyWrapAround: the event key wraps (int32) within a session, and is
// reset below the checkpoint's key across a restart.
func TestKeyWrapAround(t *testing.T) {
	r := newRig(t)
	stop := r.start()
	r.connected()
	r.post(3)
	r.await(3)
	r.sim.SetNextKey(math.MaxInt32 - 2)
	r.post(5) // keys MaxInt32-1, MaxInt32, then negative
	r.await(8)
	if metric(r, "vpipe_vcenter_key_wraps_total") != 1 {
		t.Errorf("wraps = %v; want 1", metric(r, "vpipe_vcenter_key_wraps_total"))
	}
	stop()
	r.sim.SetNextKey(0) // database reset: keys restart at 1, below the checkpoint's
	r.post(4)
	r.start()
	r.exactlyOnce(12)
}

// TestReconnect: the session expires (NotAuthenticated), or the network to
// vCenter is lost for a while; the source logs in again and loses nothing.
func TestReconnect(t *testing.T) {
	t.Run("session expired", func(t *testing.T) {
		r := newRig(t)
		r.start()
		r.connected()
		r.post(5)
		r.await(5)
		r.sim.Fault("ReadNextEvents", simulator.FaultTypeNotAuthenticated, 1)
		r.post(5)
		r.exactlyOnce(10)
		if n := metric(r, "vpipe_vcenter_logins_total"); n < 2 {
			t.Errorf("logins = %v; want a re-login", n)
		}
	})
	t.Run("network lost", func(t *testing.T) {
		r := newRig(t)
		p := newProxy(t, r.sim.Server.URL.Host)
		r.conn.URL = "https://" + p.addr + r.sim.Server.URL.Path
		r.start()
		r.connected()
		r.post(5)
		r.await(5)
		p.cut()
		r.post(5)
		deadline := time.Now().Add(20 * time.Second)
		for metric(r, "vpipe_vcenter_errors_total") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the source did not notice the lost network")
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.restore()
		r.exactlyOnce(10)
	})
}

// proxy forwards TCP to a target and can drop everything and come back on
// the same address.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy relisten: %v", err)
	}
	p.serve(ln)
}
