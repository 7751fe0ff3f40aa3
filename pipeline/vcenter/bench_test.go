package vcenter_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/vcenter"
)

// countingPublisher counts the events Kafka acknowledged.
type countingPublisher struct {
	pipeline.Publisher
	acked atomic.Int64
}

func (c *countingPublisher) Publish(ctx context.Context, e *pipeline.Event, done func(error)) error {
	return c.Publisher.Publish(ctx, e, func(err error) {
		if err == nil {
			c.acked.Add(1)
		}
		done(err)
	})
}

// BenchmarkSourceToKafka measures vCenter events per second from vcsim's
// event history, through the source (SOAP ReadNextEvents pages of 1000,
// normalisation, checkpoint per page) to Kafka acknowledgements on the
// embedded broker. Events are posted in-process, at most 800 ahead of
// Kafka, as vcsim keeps only the last 1000 events per collector.
//
// Measured on the shared 2-core VM: 7 100–14 300 events/s (README,
// "vCenter tags → NSX tags", Performance).
func BenchmarkSourceToKafka(b *testing.B) {
	r := newRig(b)
	pub := &countingPublisher{Publisher: r.prod}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cp, err := checkpoint.Open(ctx, []string{r.addr}, cpTopic)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer cp.Close()
	src, err := vcenter.New(vcenter.Config{Name: "vc1", Conn: r.conn, PollInterval: 5 * time.Millisecond}, pub, cp, r.m, testLog(b))
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(runCtx) }()
	defer func() { stop(); <-done }()
	r.connected()
	base := pub.acked.Load() // vcsim's own login event, if read
	ev := func() types.BaseEvent {
		return &types.VmPoweredOnEvent{VmEvent: types.VmEvent{Event: types.Event{
			Vm: &types.VmEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0_H0_VM0"},
				Vm: types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-55"}},
			Host: &types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0_H0"},
				Host: types.ManagedObjectReference{Type: "HostSystem", Value: "host-21"}},
			Datacenter: &types.DatacenterEventArgument{EntityEventArgument: types.EntityEventArgument{Name: "DC0"},
				Datacenter: types.ManagedObjectReference{Type: "Datacenter", Value: "datacenter-2"}},
		}}}
	}
	b.ResetTimer()
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	for i := 0; i < b.N; i++ {
		for int64(i)-(pub.acked.Load()-base) >= 800 {
			if time.Now().After(deadline) {
				b.Fatalf("stalled: %d posted, %d acknowledged", i, pub.acked.Load()-base)
			}
			time.Sleep(100 * time.Microsecond)
		}
		r.sim.Post("VSPHERE.LOCAL\\bob", ev())
	}
	for pub.acked.Load()-base < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("stalled: %d of %d acknowledged", pub.acked.Load()-base, b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
}
