package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
)

// TestRestartKeepsRecordsAndOffsets produces through kafka-go, commits a
// group offset, restarts the broker on the same data directory and checks
// that both survived.
func TestRestartKeepsRecordsAndOffsets(t *testing.T) {
	dir := t.TempDir()
	cfg := broker.Config{Listen: "127.0.0.1:0", DataDir: dir, Topics: []string{"t"}, Partitions: 2}
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "t", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	var msgs []kafka.Message
	for i := range 100 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, GroupID: "g", Topic: "t", MaxWait: 50 * time.Millisecond})
	var got []kafka.Message
	for range 10 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if err := r.CommitMessages(ctx, got...); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b.Close()

	cfg.Listen = "127.0.0.1:0"
	b2 := brokertest.StartConfig(t, cfg)
	all := brokertest.ReadN(t, b2.Addr(), "t", 100, 20*time.Second)
	if len(all) != 100 {
		t.Fatalf("after restart: %d records, want 100", len(all))
	}
	r2 := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b2.Addr()}, GroupID: "g", Topic: "t", MaxWait: 50 * time.Millisecond})
	defer r2.Close()
	seen := map[string]bool{}
	for _, m := range got {
		seen[fmt.Sprint(m.Partition, "/", m.Offset)] = true
	}
	for range 90 {
		m, err := r2.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[fmt.Sprint(m.Partition, "/", m.Offset)] {
			t.Fatalf("committed record %d/%d delivered again after restart", m.Partition, m.Offset)
		}
	}
}
