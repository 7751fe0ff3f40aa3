package stage_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// firewallEvent is a typical NSX DFW event (about 900 bytes of JSON).
func firewallEvent(i int) *pipeline.Event {
	orig := fmt.Appendf(nil, "<190>1 2026-01-02T03:04:05.%06dZ esx-01.example.com FIREWALL-PKTLOG - - - "+
		"c5a8a1e4 INET match PASS 3074 OUT 48 TCP 10.1.2.%d/51234->192.168.10.20/443 S 3e2b9c1a-aaaa-bbbb-cccc-ddddeeeeffff", i%1000000, i%250)
	e := &pipeline.Event{
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, (i%1000000)*1000, time.UTC),
		Created:   time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		ID:        fmt.Sprintf("nsx-%016x", i),
		Dataset:   pipeline.DatasetNSXDFW,
		Action:    "pass",
		Original:  orig,
		LogSource: "10.0.0.11:514",
		Observer:  pipeline.Observer{Hostname: "esx-01.example.com", Type: "firewall", Vendor: "VMware", Product: "NSX"},
		Syslog:    pipeline.Syslog{PriorityValid: true, Priority: 190, Facility: 23, Severity: 6, Version: 1, Hostname: "esx-01.example.com", AppName: "FIREWALL-PKTLOG"},
		Source:    pipeline.Endpoint{IP: netip.AddrFrom4([4]byte{10, 1, 2, byte(i % 250)}), Port: 51234, PortValid: true},
		Destination: pipeline.Endpoint{
			IP: netip.MustParseAddr("192.168.10.20"), Port: 443, PortValid: true,
		},
		Network: pipeline.Network{Transport: "tcp", IANANumber: "6", Type: "ipv4", Direction: "egress"},
		Rule:    pipeline.Rule{ID: "3074", Ruleset: "INET"},
	}
	e.VMware.NSX = pipeline.NSX{LogLabel: fmt.Sprintf("tenant-%02d", i%16), FilterHash: "c5a8a1e4", Reason: "match", PacketLength: 48, TCPFlags: "S"}
	return e
}

type discardSink struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (s *discardSink) Write(_ context.Context, batch []stage.Record) error {
	if s.n.Add(int64(len(batch))) == s.target {
		close(s.done)
	}
	return nil
}

// BenchmarkRunner measures the runner from the embedded broker (over TCP,
// through kafka-go) into a sink that discards: fetch, decode, batch,
// commit. Each iteration is one event; the events are produced before the
// timer starts; the group join is inside the timed region. The broker runs
// in the benchmark's process, so B/op and allocs/op include its share.
func BenchmarkRunner(b *testing.B) {
	for _, batch := range []int{100, stage.DefaultBatchSize, 2000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkRunner(b, batch) })
	}
}

func benchmarkRunner(b *testing.B, batch int) {
	addr := brokertest.Start(b, "bench", "dlq")
	const topic = "bench"
	const distinct = 4096
	vals := make([]kafka.Message, distinct)
	size := 0
	for i := range vals {
		e := firewallEvent(i)
		vals[i] = kafka.Message{Key: pipeline.AppendKey(nil, e), Value: e.AppendJSON(nil)}
		size += len(vals[i].Value)
	}
	for from := 0; from < b.N; from += distinct {
		msgs := make([]kafka.Message, 0, distinct)
		for i := from; i < min(b.N, from+distinct); i++ {
			msgs = append(msgs, vals[i%distinct])
		}
		produce(b, addr, topic, msgs...)
	}
	b.SetBytes(int64(size / distinct))
	b.ReportAllocs()

	sink := &discardSink{target: int64(b.N), done: make(chan struct{})}
	cfg := testConfig(addr, "bench", topic)
	cfg.BatchSize = batch
	r, err := stage.New(cfg, sink, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { ran <- r.Run(ctx) }()
	select {
	case <-sink.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("delivered %d of %d", sink.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	cancel()
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
}
