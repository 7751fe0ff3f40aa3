package tenantsyslog_test

import (
	"context"
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
