package tenantsyslog_test

import (
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/sinks/tenantsyslog"
)

// TestUnresolved: events whose label is unknown, ambiguous-free near
// misses, missing, or whose tenant has no destination go to the catch-all
// when configured, and are otherwise counted as dropped and committed.
func TestUnresolved(t *testing.T) {
	vdc := "a93c9db9-7471-3192-8d09-a8f7eeda85f9"
	other := "4e2a9f10-3b7c-4d5e-a6f7-8091a2b3c4d5"
	tests := []struct {
		name     string
		unknown  string
		catchAll bool
	}{
		{"drop", tenantsyslog.UnknownDrop, false},
		{"catch-all", tenantsyslog.UnknownCatchAll, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := brokertest.Start(t, "firewall", "parked", "dlq")
			a, ca := newReceiver(t, "tcp"), newReceiver(t, "tcp")
			a.start()
			ca.start()
			reg, _ := tenants.Build([]tenants.Tenant{
				{ID: "acme", NSXVOrgVDCs: []string{vdc}, Destinations: []tenants.Destination{a.destination(nil)}},
				{ID: "discovered", NSXVOrgVDCs: []string{other}}, // known, without destination
			})
			evs := []*pipeline.Event{
				fwEvent(0, pipeline.DatasetNSXVDFW, vdc),
				fwEvent(1, pipeline.DatasetNSXVDFW, "b93c9db9-7471-3192-8d09-a8f7eeda85f9"), // near miss
				fwEvent(2, pipeline.DatasetNSXVDFW, ""),
				fwEvent(3, pipeline.DatasetNSXVDFW, other),
				fwEvent(4, pipeline.DatasetNSXDFW, "nothing-like-a-label"),
			}
			produce(t, addr, "firewall", evs)
			cfg := sinkConfig(addr)
			cfg.Unknown = tt.unknown
			if tt.catchAll {
				cfg.CatchAll = []tenants.Destination{ca.destination(nil)}
			}
			f := startForward(t, stageConfig(addr, 10), cfg, reg)
			waitFor(t, 30*time.Second, "every event handled", func() bool {
				return f.metric(t, "vpipe_stage_delivered_total") == float64(len(evs))
			})
			waitFor(t, 10*time.Second, "acme's event", func() bool { return a.count() == 1 })
			result := tenantsyslog.ResultDropped
			if tt.catchAll {
				result = tenantsyslog.ResultCatchAll
				waitFor(t, 10*time.Second, "the catch-all's events", func() bool { return ca.count() == 4 })
			}
			for reason, want := range map[string]float64{
				tenantsyslog.ReasonUnknown: 2, tenantsyslog.ReasonNoLabel: 1, tenantsyslog.ReasonNoDestination: 1,
			} {
				if got := f.metric(t, "vpipe_tenant_unresolved_total", "reason", reason, "result", result); got != want {
					t.Errorf("unresolved{reason=%s,result=%s} = %v, want %v", reason, result, got, want)
				}
			}
			if !tt.catchAll && ca.count() != 0 {
				t.Errorf("the catch-all received %d events with unknown: drop", ca.count())
			}
		})
	}
}

// TestRateLimit: a destination limited to 200 events a second with a
// burst of 20 takes at least (n-20)/200 seconds for n events, and gets
// them all (the excess waits on the parked topic).
func TestRateLimit(t *testing.T) {
	const n = 120
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	a := newReceiver(t, "tcp")
	a.start()
	d := a.destination(nil)
	d.RateLimit, d.Burst = 200, 20
	vdc := "a93c9db9-7471-3192-8d09-a8f7eeda85f9"
	reg, _ := tenants.Build([]tenants.Tenant{{ID: "acme", NSXVOrgVDCs: []string{vdc}, Destinations: []tenants.Destination{d}}})
	var evs []*pipeline.Event
	for i := 0; i < n; i++ {
		evs = append(evs, fwEvent(i, pipeline.DatasetNSXVDFW, vdc))
	}
	produce(t, addr, "firewall", evs)
	start := time.Now()
	startForward(t, stageConfig(addr, 50), sinkConfig(addr), reg)
	waitFor(t, 30*time.Second, "every event", func() bool { return a.distinct() == n })
	if least := time.Duration(float64(n-20) / 200 * float64(time.Second)); time.Since(start) < least {
		t.Errorf("%d events in %s, faster than the limit allows (%s)", n, time.Since(start), least)
	}
}

// TestSetRegistry: a tenant added while the stage runs gets its events
// from then on; a destination whose address changes is replaced, and
// what was parked for it goes to the new address.
func TestSetRegistry(t *testing.T) {
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	a, b, b2 := newReceiver(t, "tcp"), newReceiver(t, "tcp"), newReceiver(t, "tcp")
	a.start()
	b2.start()
	vdcA, vdcB := "a93c9db9-7471-3192-8d09-a8f7eeda85f9", "4e2a9f10-3b7c-4d5e-a6f7-8091a2b3c4d5"
	ta := tenants.Tenant{ID: "a", NSXVOrgVDCs: []string{vdcA}, Destinations: []tenants.Destination{a.destination(nil)}}
	reg, _ := tenants.Build([]tenants.Tenant{ta})
	f := startForward(t, stageConfig(addr, 10), sinkConfig(addr), reg)
	produce(t, addr, "firewall", []*pipeline.Event{fwEvent(0, pipeline.DatasetNSXVDFW, vdcA), fwEvent(1, pipeline.DatasetNSXVDFW, vdcB)})
	waitFor(t, 30*time.Second, "the first events", func() bool { return f.metric(t, "vpipe_stage_delivered_total") == 2 })

	// b joins; its endpoint is down at first: its events are parked.
	tb := tenants.Tenant{ID: "b", NSXVOrgVDCs: []string{vdcB}, Destinations: []tenants.Destination{b.destination(nil)}}
	reg, _ = tenants.Build([]tenants.Tenant{ta, tb})
	if err := f.sink.SetRegistry(reg); err != nil {
		t.Fatal(err)
	}
	produce(t, addr, "firewall", []*pipeline.Event{fwEvent(2, pipeline.DatasetNSXVDFW, vdcB), fwEvent(3, pipeline.DatasetNSXVDFW, vdcB)})
	waitFor(t, 30*time.Second, "b's events parked", func() bool { return f.metric(t, "vpipe_tenant_parked_total", "tenant", "b") == 2 })

	// b's destination moves to a working address.
	tb.Destinations[0].Address = b2.addr
	reg, _ = tenants.Build([]tenants.Tenant{ta, tb})
	if err := f.sink.SetRegistry(reg); err != nil {
		t.Fatal(err)
	}
	produce(t, addr, "firewall", []*pipeline.Event{fwEvent(4, pipeline.DatasetNSXVDFW, vdcB)})
	waitFor(t, 30*time.Second, "b's events at the new address", func() bool { return b2.distinct() == 3 })
	if got := b2.received(); got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Errorf("b's events arrived as %v, want the parked ones (2, 3) first, then 4", got)
	}
	if a.count() != 1 || b.count() != 0 {
		t.Errorf("a got %d events (want 1), b's old address %d (want 0)", a.count(), b.count())
	}
}
