package nsxgroups

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

const (
	topicNSX         = "vpipe.nsx"
	topicCheckpoints = "vpipe.checkpoints"
	quarantine       = "/infra/domains/default/groups/quarantine"
)

var infected = simulator.Tag{Scope: "av", Tag: "infected"}

// harness is the real parts a source runs against: the NSX simulator
// through the NSX client, the embedded broker through the producer, and
// checkpoints on the compacted topic.
type harness struct {
	nsx    *simulator.Server
	client *nsx.Client
	addr   string
	pub    *kafkaout.Producer
}

func newHarness(t *testing.T, vms ...simulator.VM) *harness {
	t.Helper()
	sim := simulator.New(simulator.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	for _, vm := range vms {
		sim.AddVM(vm)
	}
	c, err := nsx.New(nsx.Config{URL: srv.URL, Username: "admin", Password: "VMware1!VMware1!"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.PutGroup(ctx, "default", nsx.Group{ID: "quarantine", DisplayName: "Quarantine",
		Expression: []nsx.Condition{nsx.TagCondition(nsx.Tag{Scope: infected.Scope, Tag: infected.Tag})}}); err != nil {
		t.Fatal(err)
	}
	addr := brokertest.Start(t, topicNSX, topicCheckpoints, topicAudit)
	pub, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: "vpipe."}, kafkaout.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
	})
	return &harness{nsx: sim, client: c, addr: addr, pub: pub}
}

func (h *harness) tag(t *testing.T, id string, on bool) {
	t.Helper()
	var tags []simulator.Tag
	if on {
		tags = []simulator.Tag{infected}
	}
	if !h.nsx.SetTags(id, tags) {
		t.Fatalf("no vm %s", id)
	}
}

// running is a started Source.
type running struct {
	src  *Source
	m    *Metrics
	stop func()
}

// start opens a checkpoint store (reading what earlier sources stored)
// and runs a source until the test ends or stop is called. cp, when not
// nil, wraps the store.
func (h *harness) start(t *testing.T, interval time.Duration, cp func(Checkpointer) Checkpointer) *running {
	t.Helper()
	return h.startLister(t, interval, cp, PolicyLister(h.client))
}

func (h *harness) startLister(t *testing.T, interval time.Duration, cp func(Checkpointer) Checkpointer, l Lister) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	open := func(ctx context.Context) (Checkpointer, error) {
		store, err := checkpoint.Open(ctx, []string{h.addr}, topicCheckpoints)
		if err != nil || cp == nil {
			return store, err
		}
		return closing{cp(store), store}, nil
	}
	m := NewMetrics(nil)
	src, err := New(Config{
		Name: "nsx1", Manager: "nsx.example", Groups: []Group{{ID: quarantine, Name: "Quarantine"}},
		Interval: interval, MinBackoff: 10 * time.Millisecond,
	}, Deps{Lister: l, Publisher: h.pub, OpenCheckpoints: open, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	var once atomic.Bool
	stop := func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stop)
	return &running{src: src, m: m, stop: stop}
}

// okPolls is the number of successful polls so far.
func (r *running) okPolls() int {
	return int(counterValue(r.m.polls.WithLabelValues("nsx1", "ok")))
}

// pollOnce triggers a poll and waits until it succeeded.
func (r *running) pollOnce(t *testing.T) {
	t.Helper()
	n := r.okPolls()
	if !r.src.Trigger(quarantine) {
		t.Fatal("trigger: group not watched")
	}
	waitFor(t, 10*time.Second, "a successful poll", func() bool { return r.okPolls() > n })
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// change is a membership change as read back from the topic.
type change struct {
	action, vm string
	id         string
}

func (c change) String() string { return c.action + " " + c.vm }

// changes reads exactly n events from the nsx topic.
func (h *harness) changes(t *testing.T, n int) []change {
	t.Helper()
	msgs := brokertest.ReadN(t, h.addr, topicNSX, n, 10*time.Second)
	if len(msgs) != n {
		t.Fatalf("%d events on %s, want %d", len(msgs), topicNSX, n)
	}
	out := make([]change, len(msgs))
	for i, msg := range msgs {
		var e pipeline.Event
		if err := e.DecodeJSON(msg.Value); err != nil {
			t.Fatal(err)
		}
		m, ok := FromEvent(&e)
		if !ok {
			t.Fatalf("not a membership event: %s", msg.Value)
		}
		if m.Group != quarantine || m.GroupName != "Quarantine" || m.Source != "nsx1" || m.Manager != "nsx.example" {
			t.Fatalf("membership %+v", m)
		}
		if e.ID != m.ID() {
			t.Fatalf("event id %s, membership id %s", e.ID, m.ID())
		}
		out[i] = change{action: m.Action(), vm: m.VMName, id: e.ID}
	}
	return out
}

func names(cs []change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func TestSourceJoinLeaveRestart(t *testing.T) {
	h := newHarness(t,
		simulator.VM{ExternalID: "uuid-a", DisplayName: "web-a", Tags: []simulator.Tag{infected}},
		simulator.VM{ExternalID: "uuid-b", DisplayName: "web-b"},
		simulator.VM{ExternalID: "uuid-c", DisplayName: "db-c"},
	)
	// An interval far beyond the test: every poll is the first one or a
	// Trigger.
	r := h.start(t, time.Hour, nil)
	waitFor(t, 10*time.Second, "the first poll", func() bool { return r.okPolls() == 1 })
	if (Sources{r.src}).Trigger("/infra/domains/default/groups/unwatched") {
		t.Fatal("an unwatched group triggered a poll")
	}

	type step struct {
		name    string
		tag     map[string]bool // vm -> tagged
		restart bool            // stop the source, change tags, start a new one
		want    []string        // every change on the topic so far
	}
	steps := []step{
		{name: "a member at start joins", want: []string{"joined web-a"}},
		{name: "tagging b joins it", tag: map[string]bool{"uuid-b": true},
			want: []string{"joined web-a", "joined web-b"}},
		{name: "untagging a lets it leave", tag: map[string]bool{"uuid-a": false},
			want: []string{"joined web-a", "joined web-b", "left web-a"}},
		{name: "nothing changed, nothing published",
			want: []string{"joined web-a", "joined web-b", "left web-a"}},
		{name: "changes while down are published once after restart, no join again",
			tag: map[string]bool{"uuid-b": false, "uuid-a": true, "uuid-c": true}, restart: true,
			want: []string{"joined web-a", "joined web-b", "left web-a", "left web-b", "joined web-a", "joined db-c"}},
		{name: "a restart without changes publishes nothing", restart: true,
			want: []string{"joined web-a", "joined web-b", "left web-a", "left web-b", "joined web-a", "joined db-c"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.restart {
				r.stop()
			}
			for vm, on := range st.tag {
				h.tag(t, vm, on)
			}
			if st.restart {
				r = h.start(t, time.Hour, nil)
				waitFor(t, 10*time.Second, "the first poll after restart", func() bool { return r.okPolls() == 1 })
			} else if st.tag != nil {
				r.pollOnce(t)
			}
			// One more poll: a change published twice would show now.
			r.pollOnce(t)
			// The topic is keyed by group and VM: one VM's changes keep
			// their order, different VMs' may interleave.
			got := h.changes(t, len(st.want))
			if g, w := perVM(names(got)), perVM(st.want); !maps.EqualFunc(g, w, slices.Equal) {
				t.Fatalf("changes per VM\n got %q\nwant %q", g, w)
			}
		})
	}
	var webA []change
	for _, c := range h.changes(t, 6) {
		if c.vm == "web-a" {
			webA = append(webA, c)
		}
	}
	if len(webA) != 3 || webA[0].id == webA[2].id {
		t.Fatalf("web-a's changes %v: want three, the second join with an id of its own", webA)
	}
}

// perVM splits changes written as "<action> <vm>" by VM, in order.
func perVM(changes []string) map[string][]string {
	out := map[string][]string{}
	for _, c := range changes {
		action, vm, _ := strings.Cut(c, " ")
		out[vm] = append(out[vm], action)
	}
	return out
}

// closing is a wrapped store that Run closes.
type closing struct {
	Checkpointer
	io.Closer
}

// failingPut fails the first n Puts, as a crash between publishing the
// changes and checkpointing them would.
type failingPut struct {
	Checkpointer
	n atomic.Int32
}

func (f *failingPut) Put(ctx context.Context, key string, value []byte) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("injected checkpoint failure")
	}
	return f.Checkpointer.Put(ctx, key, value)
}

func TestSourceRepublishesWithSameIDs(t *testing.T) {
	h := newHarness(t, simulator.VM{ExternalID: "uuid-a", DisplayName: "web-a", Tags: []simulator.Tag{infected}})
	fp := &failingPut{}
	fp.n.Store(2)
	r := h.start(t, time.Hour, func(c Checkpointer) Checkpointer { fp.Checkpointer = c; return fp })
	// The first poll and two retries publish; the third checkpoints.
	waitFor(t, 10*time.Second, "a checkpointed poll", func() bool { return r.okPolls() == 1 })
	r.pollOnce(t)
	got := h.changes(t, 3)
	for _, c := range got {
		if c.String() != "joined web-a" || c.id != got[0].id {
			t.Fatalf("changes %+v: want the same join three times with one id", got)
		}
	}
	if errs := counterValue(r.m.polls.WithLabelValues("nsx1", "error")); errs != 2 {
		t.Fatalf("%v failed polls, want 2", errs)
	}
}

func TestSourceConfig(t *testing.T) {
	l := ListerFunc(func(context.Context, string) ([]Member, error) { return nil, nil })
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"valid", Config{Name: "n", Groups: []Group{{ID: quarantine}}}, true},
		{"no name", Config{Groups: []Group{{ID: quarantine}}}, false},
		{"no groups", Config{Name: "n"}, false},
		{"duplicate group", Config{Name: "n", Groups: []Group{{ID: "g"}, {ID: "g"}}}, false},
		{"bad product", Config{Name: "n", Product: "NSX-X", Groups: []Group{{ID: "g"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Deps{Lister: l, Publisher: noPublisher{}, OpenCheckpoints: func(context.Context) (Checkpointer, error) { return nil, nil }})
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %t", err, tt.ok)
			}
		})
	}
}

type noPublisher struct{}

func (noPublisher) Publish(context.Context, *pipeline.Event, func(error)) error {
	return errors.New("not used")
}

func TestParsePolicyPath(t *testing.T) {
	tests := []struct {
		path, domain, id string
		ok               bool
	}{
		{"/infra/domains/default/groups/quarantine", "default", "quarantine", true},
		{PolicyPath("cgw", "q-1"), "cgw", "q-1", true},
		{"/infra/domains/default/groups/", "", "", false},
		{"securitygroup-10", "", "", false},
		{"/infra/domains/default/groups/a/b", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			d, id, err := ParsePolicyPath(tt.path)
			if (err == nil) != tt.ok || d != tt.domain || id != tt.id {
				t.Fatalf("got %q %q %v", d, id, err)
			}
		})
	}
}

func TestMembershipEventRoundTrip(t *testing.T) {
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []Membership{
		{Source: "nsx1", Manager: "nsx.example", Product: ProductNSX, Group: quarantine, GroupName: "Quarantine",
			VMExternalID: "uuid-a", VMName: "web-a", Joined: true, Time: at, Generation: 7},
		{Source: "nsxv", Manager: "nsxv.example", Product: ProductNSXV, Group: "securitygroup-10",
			VMRef: "vm-42", VMName: "web-b", Joined: false, Time: at, Generation: 1},
	}
	for _, m := range tests {
		t.Run(m.Action()+" "+m.Group, func(t *testing.T) {
			var e pipeline.Event
			m.Fill(&e)
			var back pipeline.Event
			if err := back.DecodeJSON(e.AppendJSON(nil)); err != nil {
				t.Fatal(err)
			}
			got, ok := FromEvent(&back)
			if !ok || got != m {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, m)
			}
			if back.ID != m.ID() || back.Dataset != pipeline.DatasetGroupMembership || pipeline.TopicFor(back.Dataset) != pipeline.TopicNSX {
				t.Fatalf("event %+v", back)
			}
			other := m
			other.Generation++
			if other.ID() == m.ID() {
				t.Fatal("the id does not depend on the generation")
			}
		})
	}
	var e pipeline.Event
	e.Dataset = pipeline.DatasetVCenterEvent
	if _, ok := FromEvent(&e); ok {
		t.Fatal("a vcenter event read as a membership")
	}
}

// TestSourceManagedObjectIDs covers members listed by managed object id
// only, as NSX-V's security group translation lists them. The NSX client
// has no NSX-V group call yet, so a ListerFunc over a list stands in for
// it.
func TestSourceManagedObjectIDs(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	members := []Member{{Ref: "vm-42", Name: "web-a"}, {Name: "no id at all"}}
	l := ListerFunc(func(context.Context, string) ([]Member, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(members), nil
	})
	r := h.startLister(t, time.Hour, nil, l)
	waitFor(t, 10*time.Second, "the first poll", func() bool { return r.okPolls() == 1 })
	mu.Lock()
	members = nil
	mu.Unlock()
	r.pollOnce(t)
	msgs := brokertest.ReadN(t, h.addr, topicNSX, 2, 10*time.Second)
	var got []string
	for _, msg := range msgs {
		var e pipeline.Event
		if err := e.DecodeJSON(msg.Value); err != nil {
			t.Fatal(err)
		}
		m, ok := FromEvent(&e)
		if !ok || m.VMExternalID != "" {
			t.Fatalf("membership %+v", m)
		}
		got = append(got, m.Action()+" "+m.VMRef)
	}
	if want := []string{"joined vm-42", "left vm-42"}; !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
	if n := counterValue(r.m.skipped.WithLabelValues("nsx1")); n != 1 {
		t.Fatalf("%v members skipped, want 1", n)
	}
}
