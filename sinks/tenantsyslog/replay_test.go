package tenantsyslog_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

// TestReplayDoesNotWaitForADeadTenant: two tenants whose endpoints are
// down share the only partition of the parked topic, their events
// interleaved. When one comes back it gets its whole backlog, in order,
// although the other's records come first and stay unsendable; the
// replay group commits no further than the dead tenant's first record;
// when that one comes back it gets everything too.
func TestReplayDoesNotWaitForADeadTenant(t *testing.T) {
	per := scale(3000, 400)
	addr := brokertest.StartConfig(t, broker.Config{Listen: "127.0.0.1:0", Partitions: 1, Topics: []string{"firewall", "parked", "dlq"}}).Addr()
	a, b := newReceiver(t, "tcp"), newReceiver(t, "tcp")
	vdcA, vdcB := "a93c9db9-7471-3192-8d09-a8f7eeda85f9", "c0ffee00-1234-4abc-9def-0123456789ab"
	da, db := a.destination(nil), b.destination(nil)
	a.expect(da)
	b.expect(db)
	reg, _ := tenants.Build([]tenants.Tenant{
		{ID: "a", NSXVOrgVDCs: []string{vdcA}, Destinations: []tenants.Destination{da}},
		{ID: "b", NSXVOrgVDCs: []string{vdcB}, Destinations: []tenants.Destination{db}},
	})
	var evs []*pipeline.Event
	for i := 0; i < 2*per; i++ {
		l := vdcA
		if i%2 == 1 {
			l = vdcB
		}
		evs = append(evs, fwEvent(i, pipeline.DatasetNSXVDFW, l))
	}
	produce(t, addr, "firewall", evs)
	f := startForward(t, stageConfig(addr, 200), sinkConfig(addr), reg)
	waitFor(t, 60*time.Second, "every event parked", func() bool {
		return f.metric(t, "vpipe_tenant_parked_total") == float64(2*per)
	})
	b.start()
	waitFor(t, 60*time.Second, "b's backlog", func() bool { return b.distinct() == per })
	if got := b.received(); !slices.IsSorted(got) {
		t.Errorf("b's events arrived out of order")
	}
	if n := a.count(); n != 0 {
		t.Fatalf("a, still down, received %d events", n)
	}
	// a's first parked record is at offset 0: nothing may be committed.
	if off := committedOffset(t, addr, "replay", "parked", 0); off > 0 {
		t.Errorf("replay committed offset %d past the records of a, which were never sent", off)
	}
	a.start()
	waitFor(t, 60*time.Second, "a's backlog", func() bool { return a.distinct() == per })
	if got := a.received(); !slices.IsSorted(got) {
		t.Errorf("a's events arrived out of order")
	}
	waitFor(t, 30*time.Second, "the replay to commit everything", func() bool {
		return committedOffset(t, addr, "replay", "parked", 0) == int64(2*per)
	})
	if d := a.count() + b.count() - 2*per; d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// committedOffset is the group's committed offset of a partition (-1:
// none).
func committedOffset(tb testing.TB, addr, group, topic string, partition int) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		tb.Fatalf("offset fetch: %v", err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	return -1
}

// TestTwoProcesses: two stage processes (here two sinks with their
// runners and replayers in one test process) share the partitions of the
// firewall and parked topics. A tenant whose endpoint is down at first
// gets all its events once it is back, and both processes go back to
// sending its events live, also the one whose replayer does not own the
// tenant's parked partition (it learns from the committed offsets).
func TestTwoProcesses(t *testing.T) {
	per := scale(500, 100)
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	var ts []tenants.Tenant
	var recvs []*receiver
	var labels []string
	for k := 0; k < 4; k++ {
		r := newReceiver(t, "tcp")
		d := r.destination(nil)
		r.expect(d)
		if k > 0 {
			r.start()
		}
		vdc := fmt.Sprintf("%08x-7471-4192-8d09-a8f7eeda85f9", 0x1000+k)
		ts = append(ts, tenants.Tenant{ID: fmt.Sprintf("t%d", k), NSXVOrgVDCs: []string{vdc}, Destinations: []tenants.Destination{d}})
		recvs = append(recvs, r)
		labels = append(labels, vdc)
	}
	reg, _ := tenants.Build(ts)
	wave := func(from int) {
		var evs []*pipeline.Event
		for i := from; i < from+4*per; i++ {
			evs = append(evs, fwEvent(i, pipeline.DatasetNSXVDFW, labels[i%4]))
		}
		produce(t, addr, "firewall", evs)
	}
	wave(0)
	f1 := startForward(t, stageConfig(addr, 50), sinkConfig(addr), reg)
	f2 := startForward(t, stageConfig(addr, 50), sinkConfig(addr), reg)
	parked := func() float64 {
		return f1.metric(t, "vpipe_tenant_parked_total", "tenant", "t0") + f2.metric(t, "vpipe_tenant_parked_total", "tenant", "t0")
	}
	waitFor(t, 60*time.Second, "t0's first wave parked", func() bool { return parked() == float64(per) })
	recvs[0].start()
	waitFor(t, 60*time.Second, "t0's first wave replayed", func() bool { return recvs[0].distinct() == per })
	// Until both processes see t0 caught up, new events may still be
	// parked (and replayed): wave after wave, they go live again.
	from := 4 * per
	deadline := time.Now().Add(60 * time.Second)
	for {
		before := parked()
		wave(from)
		from += 4 * per
		waitFor(t, 60*time.Second, "the wave", func() bool { return recvs[0].distinct() == from/4 })
		if parked() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("t0's events are still parked after %d waves", from/(4*per))
		}
	}
	for k, r := range recvs {
		// A tenant may still be parking in one process (one that started
		// after the other had parked t0's events parks the destinations
		// of that partition behind them): its events come, later.
		waitFor(t, 60*time.Second, fmt.Sprintf("t%d's events", k), func() bool { return r.distinct() == from/4 })
		if !slices.IsSorted(r.received()) && k == 0 {
			t.Logf("t0's events arrived out of order across processes (allowed: order is per partition)")
		}
	}
}
