package nsxgroups

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/sinks/nsx"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// TestSourceNSXV: a VM joins and leaves an NSX-V security group (dynamic
// membership by security tag) in the simulator; the source, reading
// through the NSX-V client, publishes joined and left events named by
// managed object id to the embedded broker.
func TestSourceNSXV(t *testing.T) {
	const sg = "securitygroup-10"
	sim := simulator.New(simulator.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.AddVM(simulator.VM{ExternalID: "uuid-a", DisplayName: "web-a", MoRef: "vm-1"})
	sim.AddVM(simulator.VM{ExternalID: "uuid-b", DisplayName: "web-b", MoRef: "vm-2"})
	sim.AddSecurityGroup(simulator.SecurityGroup{ID: sg, Name: "Quarantine", Tags: []string{"av|infected"}})
	c, err := nsx.New(nsx.Config{URL: srv.URL, API: nsx.APINSXV, Auth: nsx.AuthBasic,
		Username: "admin", Password: "VMware1!VMware1!"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := brokertest.Start(t, topicNSX, topicCheckpoints)
	pub, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: "vpipe."}, kafkaout.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
	})

	ctx, cancel := context.WithCancel(context.Background())
	m := NewMetrics(nil)
	src, err := New(Config{Name: "nsxv1", Manager: "nsxv.example", Product: ProductNSXV,
		Groups: []Group{{ID: sg, Name: "Quarantine"}}, Interval: time.Hour, MinBackoff: 10 * time.Millisecond,
	}, Deps{Lister: NSXVLister(c), Publisher: pub, Metrics: m,
		OpenCheckpoints: func(ctx context.Context) (Checkpointer, error) {
			return checkpoint.Open(ctx, []string{addr}, topicCheckpoints)
		}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	okPolls := func() int { return int(counterValue(m.polls.WithLabelValues("nsxv1", "ok"))) }
	poll := func() {
		t.Helper()
		n := okPolls()
		if !src.Trigger(sg) {
			t.Fatal("trigger: group not watched")
		}
		waitFor(t, 10*time.Second, "a successful poll", func() bool { return okPolls() > n })
	}
	waitFor(t, 10*time.Second, "the first poll", func() bool { return okPolls() == 1 })

	// b joins by its security tag, set through the client's NSX-V tag API.
	if _, err := c.AddTags(ctx, "uuid-b", nsx.Tag{Scope: "av", Tag: "infected"}); err != nil {
		t.Fatal(err)
	}
	poll()
	if !sim.SetSecurityTags("vm-2", nil) {
		t.Fatal("no vm-2")
	}
	poll()
	poll() // nothing changed: nothing more published

	msgs := brokertest.ReadN(t, addr, topicNSX, 2, 10*time.Second)
	var got []string
	for _, msg := range msgs {
		var e pipeline.Event
		if err := e.DecodeJSON(msg.Value); err != nil {
			t.Fatal(err)
		}
		mb, ok := FromEvent(&e)
		if !ok {
			t.Fatalf("not a membership event: %s", msg.Value)
		}
		if mb.Group != sg || mb.GroupName != "Quarantine" || mb.Source != "nsxv1" || mb.Manager != "nsxv.example" ||
			mb.VMRef != "vm-2" || mb.VMExternalID != "" {
			t.Fatalf("membership %+v", mb)
		}
		got = append(got, mb.Action()+" "+mb.VMName)
	}
	if want := []string{"joined web-b", "left web-b"}; !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
}
