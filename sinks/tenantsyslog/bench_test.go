package tenantsyslog_test

import (
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForward measures the stage from the embedded broker to 10
// tenants over TCP (RFC 5424, octet-counting): fetch, decode, resolve,
// format, send, commit. Each iteration is one event; the events (NSX
// gateway firewall, ~1 KB of JSON, 10 labels) are produced before the
// timer starts, the group join is inside it. The broker and the 10
// receivers run in the benchmark's process on the same cores, so
// allocs/op and cpu-µs/event include their share. events/s is the
// throughput; cpu-µs/event the process's CPU time per event, steadier on
// a shared machine than wall time.
func BenchmarkForward(b *testing.B) {
	for _, batch := range []int{500, 2000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkForward(b, batch) })
	}
}

func benchmarkForward(b *testing.B, batch int) {
	const nTenants = 10
	addr := brokertest.Start(b, "firewall", "parked", "dlq")
	rng := mrand.New(mrand.NewPCG(3, 4))
	var ts []tenants.Tenant
	var recvs []*receiver
	var labels []string
	for k := 0; k < nTenants; k++ {
		vdc := randomUUID(rng)
		r := newReceiver(b, "tcp")
		r.countOnly = true
		d := r.destination(nil)
		r.expect(d)
		r.start()
		recvs = append(recvs, r)
		ts = append(ts, tenants.Tenant{ID: fmt.Sprintf("t%d", k), OrgVDCs: []tenants.Object{{ID: vdc}}, Destinations: []tenants.Destination{d}})
		labels = append(labels, tenants.GatewayLabel(vdc, "edge-gw", randomUUID(rng)))
	}
	reg, _ := tenants.Build(ts)
	const distinct = 4096
	evs := make([]*pipeline.Event, 0, distinct)
	for i := 0; i < distinct; i++ {
		evs = append(evs, fwEvent(i, pipeline.DatasetNSXGatewayFW, labels[i%nTenants]))
	}
	all := make([]*pipeline.Event, 0, b.N)
	for i := 0; i < b.N; i++ {
		all = append(all, evs[i%distinct])
	}
	produce(b, addr, "firewall", all)
	cfg := sinkConfig(addr)
	cfg.DeliverTimeout = time.Second
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	f := startForward(b, stageConfig(addr, batch), cfg, reg)
	received := func() int64 {
		var n int64
		for _, r := range recvs {
			n += r.frames.Load()
		}
		return n
	}
	waitFor(b, 5*time.Minute, "every event", func() bool { return received() >= int64(b.N) })
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	if p := f.metric(b, "vpipe_tenant_parked_total"); p > 0 {
		b.ReportMetric(p, "parked")
	}
	f.stop()
}

// BenchmarkIsolation runs the dead-and-slow scenario of
// TestDeadAndSlowTenants b.N times, each time twice: with all endpoints
// well, and with one endpoint down for the first half and another reading
// one message a second (in alternating order, so that a drift in the
// machine's load does not favour one). For each pair it takes the time
// the eight healthy tenants need for their events in the bad run over
// that in the good one. %-of-all-well is the median over the pairs (100:
// the bad tenants cost the others nothing; the target is at most
// 110), %-min and %-max the extremes: the machine is shared, so one pair
// says little. %-cpu-of-all-well is the same median for the process's CPU
// time over that window, which other processes on the machine disturb
// less (but which misses time spent waiting). Run it with -benchtime=10x
// or more. per is the events per tenant: the shorter run has more pairs
// for the time but weighs one-off costs (a destination's detection) more.
func BenchmarkIsolation(b *testing.B) {
	for _, per := range []int{30000, 100000} {
		b.Run(fmt.Sprintf("per=%d", per), func(b *testing.B) { benchmarkIsolation(b, per) })
	}
}

func benchmarkIsolation(b *testing.B, per int) {
	var ratios, cpuRatios []float64
	var slowParked float64
	for i := 0; i < b.N; i++ {
		base := &isolationRun{perTenant: per, batch: 2000}
		bad := &isolationRun{perTenant: per, batch: 2000, bad: true}
		if i%2 == 0 {
			base.do(b)
			bad.do(b)
		} else {
			bad.do(b)
			base.do(b)
		}
		r := 100 * bad.healthy.Seconds() / base.healthy.Seconds()
		ratios = append(ratios, r)
		cpuRatios = append(cpuRatios, 100*bad.healthyCPU.Seconds()/base.healthyCPU.Seconds())
		slowParked = bad.slowParked
		b.Logf("pair %d: healthy tenants %s (cpu %s) all well, %s (cpu %s) dead+slow: %.0f%%; writes: all well %d, mean %s, %d over 64ms; dead+slow %d, mean %s, %d over 64ms",
			i, base.healthy.Round(time.Millisecond), base.healthyCPU.Round(time.Millisecond),
			bad.healthy.Round(time.Millisecond), bad.healthyCPU.Round(time.Millisecond), r,
			base.writes, base.writeMean.Round(time.Microsecond), base.slowWrite, bad.writes, bad.writeMean.Round(time.Microsecond), bad.slowWrite)
	}
	slices.Sort(ratios)
	slices.Sort(cpuRatios)
	b.ReportMetric(ratios[len(ratios)/2], "%-of-all-well")
	b.ReportMetric(ratios[0], "%-min")
	b.ReportMetric(ratios[len(ratios)-1], "%-max")
	b.ReportMetric(cpuRatios[len(cpuRatios)/2], "%-cpu-of-all-well")
	b.ReportMetric(slowParked, "slow-parked")
}
