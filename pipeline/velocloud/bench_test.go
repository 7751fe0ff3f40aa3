package velocloud_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
)

// BenchmarkSource measures the source from the simulator to Kafka (the
// embedded broker, acks=all, records stored): three enterprises with a
// backlog of 100k events each, read in windows of up to 2048 events,
// normalised, published, acknowledged and checkpointed. Each iteration is
// a new source (its own topic prefix) reading the whole backlog.
//
// Measured on the 2-core development VM, shared:
//
//	go test -run '^$' -bench BenchmarkSource -benchtime 3x ./pipeline/velocloud/
//	BenchmarkSource-2   2   89449 events/s (load average 6) ... 161208 events/s (load average 2)
//
// (see the README for the figure of record).
func BenchmarkSource(b *testing.B) {
	const perEnterprise = 100_000
	sim, url := startSim(b, simConfig(
		simulator.Enterprise{ID: 1, Name: "Acme"},
		simulator.Enterprise{ID: 2, Name: "Globex"},
		simulator.Enterprise{ID: 3, Name: "Initech"},
	))
	now := time.Now()
	for _, ent := range sim.Enterprises() {
		if err := sim.Fill(ent.ID, now.Add(-2*time.Hour), now, perEnterprise, uint64(ent.ID)); err != nil {
			b.Fatal(err)
		}
	}
	addr := startBroker(b)
	total := 3 * perEnterprise
	b.ResetTimer()
	var elapsed time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b, addr, fmt.Sprintf("bench%d.", i))
		i++
		cfg := sourceConfig("bench", url)
		cfg.Interval = time.Minute
		cfg.Lookback = time.Minute
		cfg.Backfill = 3 * time.Hour
		cfg.Concurrency = 3
		deps := h.deps(b)
		b.StartTimer()
		start := time.Now()
		stop := runSource(b, cfg, deps)
		waitFor(b, 5*time.Minute, "the backlog acknowledged", func() bool {
			return metrictest.Sum(b, h.reg, "vpipe_velocloud_events_total") >= float64(total)
		})
		elapsed += time.Since(start)
		b.StopTimer()
		stop()
		if got := metrictest.Sum(b, h.reg, "vpipe_velocloud_events_total"); got != float64(total) {
			b.Fatalf("%v events, want %d", got, total)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total*i)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
