package ndjson_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/sinks/ndjson"
)

// benchRecords returns n records of three enterprises, as the stage
// decodes them from vpipe.velocloud.
func benchRecords(n, offset int) []stage.Record {
	out := make([]stage.Record, n)
	for i := range out {
		out[i] = vcoRecord([]string{"Acme Corp", "Globex", "Initech"}[i%3], offset+i)
	}
	return out
}

// BenchmarkWrite measures the sink alone: batches of 500 records over
// three enterprise files, each file fsynced once per batch, with the
// dedupe lookups.
//
//	go test -run '^$' -bench BenchmarkWrite ./sinks/ndjson/
//	BenchmarkWrite/original/batch=500-2    829   1461510 ns/op   342068 lines/s
//	BenchmarkWrite/event/batch=500-2       493   2325601 ns/op   214969 lines/s
//	BenchmarkWrite/original/batch=2000-2   213   5255304 ns/op   379686 lines/s
//	BenchmarkWrite/event/batch=2000-2      165   6907650 ns/op   289472 lines/s
//
// (2-core VM shared with other work, load average about 2.5; the fsync
// latency of its disk varies with that load.)
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		format string
		batch  int
	}{{ndjson.FormatOriginal, 500}, {ndjson.FormatEvent, 500}, {ndjson.FormatOriginal, 2000}, {ndjson.FormatEvent, 2000}} {
		format, batch := tc.format, tc.batch
		b.Run(fmt.Sprintf("%s/batch=%d", format, batch), func(b *testing.B) {
			s, _ := open(b, ndjson.Config{Dir: b.TempDir(), Format: format})
			ctx := context.Background()
			recs := benchRecords(batch, 0)
			off := 0
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				// New ids each batch, so nothing is dropped as a duplicate.
				for i := range recs {
					recs[i].Event.ID = fmt.Sprint("ev-", off+i)
					recs[i].Event.Original = fmt.Appendf(recs[i].Event.Original[:0], `{"id":%d,"eventTime":"2026-01-02T03:04:05.000Z","event":"EDGE_UP","category":"EDGE","severity":"NOTICE","message":"Edge [b1-edge1] is up","detail":"{\"enterpriseLogicalId\": \"24676352-23ed-4cdd-a0db-52f61810de1b\"}","enterpriseUsername":null,"edgeName":"b1-edge1","segmentName":null}`, off+i)
				}
				off += batch
				b.StartTimer()
				if err := s.Write(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(off)/time.Since(start).Seconds(), "lines/s")
		})
	}
}

// BenchmarkStage measures the ndjson stage end to end: records already
// in Kafka (the embedded broker), consumed by the stage runner in batches
// of 500, decoded, written to three enterprise files with an fsync per
// file and batch, offsets committed.
//
//	go test -run '^$' -bench BenchmarkStage -benchtime 2x ./sinks/ndjson/
//	BenchmarkStage/batch=500-2    2   130682 ... 180854 lines/s
//	BenchmarkStage/batch=2000-2   2    98975 ... 201817 lines/s
//
// The runner's fetch and DecodeJSON dominate, with the synchronous
// commit per batch.
func BenchmarkStage(b *testing.B) {
	for _, batch := range []int{500, 2000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchStage(b, batch) })
	}
}

func benchStage(b *testing.B, batch int) {
	const n = 200_000
	addr := brokertest.StartConfig(b, broker.Config{Listen: "127.0.0.1:0", Partitions: 3, Topics: []string{"vpipe.velocloud", "vpipe.dlq"}}).Addr()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "vpipe.velocloud", Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, BatchSize: 5000, BatchBytes: 1 << 20, Compression: kafka.Lz4}
	msgs := make([]kafka.Message, 0, 10_000)
	for i, r := range benchRecords(n, 0) {
		msgs = append(msgs, kafka.Message{Key: pipeline.AppendKey(nil, r.Event), Value: r.Event.AppendJSON(nil)})
		if len(msgs) == cap(msgs) || i == n-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	w.Close()
	var total int
	var elapsed time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		reg := ndjsonRegistry()
		sink, err := ndjson.Open(ndjson.Config{Dir: dir}, ndjson.NewMetrics(reg), nil)
		if err != nil {
			b.Fatal(err)
		}
		r, err := stage.New(stage.Config{
			Name: "ndjson", Brokers: []string{addr}, Topics: []string{"vpipe.velocloud"}, DLQTopic: "vpipe.dlq",
			GroupID: fmt.Sprint("bench-", i), BatchSize: batch, BatchWait: 20 * time.Millisecond,
			SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		}, sink, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		i++
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		b.StartTimer()
		start := time.Now()
		go func() { r.Run(ctx); close(done) }()
		deadline := time.Now().Add(5 * time.Minute)
		tick := time.NewTicker(10 * time.Millisecond)
		for metrictest.Sum(b, reg, "vpipe_ndjson_lines_total") < n {
			if time.Now().After(deadline) {
				b.Fatalf("%v lines after 5 minutes", metrictest.Sum(b, reg, "vpipe_ndjson_lines_total"))
			}
			<-tick.C
		}
		tick.Stop()
		elapsed += time.Since(start)
		total += n
		b.StopTimer()
		cancel()
		<-done
		sink.Close()
		for _, e := range []string{"Acme Corp", "Globex", "Initech"} {
			if got := len(lines(b, filepath.Join(dir, ndjson.Sanitize(e), "events.json"))); got < n/3 {
				b.Fatalf("%s: %d lines", e, got)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(0, "ns/op")
}
