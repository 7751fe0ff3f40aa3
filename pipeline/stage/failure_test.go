package stage_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// TestDLQUnavailable: while the DLQ topic does not exist the batch holding
// a poison record is retried and not committed (the record reached neither
// the sink nor the DLQ); once the topic exists the record lands there and
// the stage moves on.
func TestDLQUnavailable(t *testing.T) {
	const n = 100
	addr := brokertest.Start(t, "in")
	garbage := kafka.Message{Key: []byte("k-garbage"), Value: []byte("garbage")}
	produce(t, addr, "in", garbage)
	produceEvents(t, addr, "in", 0, n)

	sink := newMemSink(nil)
	reg := prometheus.NewRegistry()
	cfg := testConfig(addr, "dlqdown", "in")
	cfg.DLQTopic = "dlq-later"
	start(t, cfg, sink, stage.NewMetrics(reg))

	waitFor(t, 30*time.Second, "failed DLQ writes", func() bool {
		return metrictest.Sum(t, reg, "vpipe_stage_dlq_errors_total", "stage", "dlqdown") >= 3
	})
	garbageAt := findKey(t, addr, "in", garbage.Key)
	if c := committed(t, addr, "vpipe-dlqdown", "in"); c[garbageAt.Partition] > garbageAt.Offset {
		t.Fatalf("offset %d committed on partition %d past the poison record at %d, which is in no DLQ",
			c[garbageAt.Partition], garbageAt.Partition, garbageAt.Offset)
	}

	createTopic(t, addr, "dlq-later")
	dlq := brokertest.ReadN(t, addr, "dlq-later", 1, 30*time.Second)
	if !bytes.Equal(dlq[0].Value, garbage.Value) {
		t.Errorf("DLQ value %q, want %q", dlq[0].Value, garbage.Value)
	}
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return sink.distinct() == n })
	hw := highWatermarks(t, addr, "in")
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool {
		c := committed(t, addr, "vpipe-dlqdown", "in")
		for p, end := range hw {
			if c[p] != end {
				return false
			}
		}
		return true
	})
}

// TestOversizedDeadLetter: a poison record too large to fit in the DLQ
// with its headers goes there without its value (and says so), rather than
// wedging the partition.
func TestOversizedDeadLetter(t *testing.T) {
	addr := brokertest.Start(t, "in", "dlq")
	big := kafka.Message{Key: []byte("k-big"), Value: bytes.Repeat([]byte("x"), 1<<20-200)}
	produce(t, addr, "in", big)
	produceEvents(t, addr, "in", 0, 10)

	sink := newMemSink(nil)
	start(t, testConfig(addr, "big", "in"), sink, nil)
	dlq := brokertest.ReadN(t, addr, "dlq", 1, 30*time.Second)
	if len(dlq[0].Value) != 0 {
		t.Errorf("DLQ value has %d bytes, want it dropped", len(dlq[0].Value))
	}
	if v, _ := header(dlq[0], stage.HeaderValueDropped); v != strconv.Itoa(len(big.Value)) {
		t.Errorf("%s = %q, want %d", stage.HeaderValueDropped, v, len(big.Value))
	}
	waitFor(t, 30*time.Second, "the other events delivered", func() bool { return sink.distinct() == 10 })
}

// TestCancelMidWrite: when ctx ends while the sink is still writing, Run
// returns promptly and commits nothing of that batch; the next member of
// the group delivers it.
func TestCancelMidWrite(t *testing.T) {
	const n = 100
	addr := brokertest.Start(t, "in", "dlq")
	produceEvents(t, addr, "in", 0, n)

	entered := make(chan struct{}, 1)
	stuck := stage.Sink(sinkFunc(func(ctx context.Context, _ []stage.Record) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done() // a destination that never answers
		return ctx.Err()
	}))
	cfg := testConfig(addr, "cancel", "in")
	cfg.BatchSize = 10
	reg := prometheus.NewRegistry()
	stop := start(t, cfg, stuck, stage.NewMetrics(reg))
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the sink was never called")
	}
	// The first batch is stuck: the records behind it are lag.
	if lag := metrictest.Sum(t, reg, "vpipe_stage_lag", "stage", "cancel"); lag <= 0 {
		t.Errorf("lag = %v while the sink is stuck on the first batch", lag)
	}
	began := time.Now()
	stop()
	if d := time.Since(began); d > cfg.FetchMaxWait+time.Second {
		t.Errorf("Run took %s to return after cancel", d)
	}
	for p, off := range committed(t, addr, "vpipe-cancel", "in") {
		if off >= 0 {
			t.Errorf("partition %d: offset %d committed for a batch the sink never confirmed", p, off)
		}
	}

	sink := newMemSink(nil)
	start(t, cfg, sink, nil)
	waitFor(t, 30*time.Second, "the next member to deliver every event", func() bool { return sink.distinct() == n })
}

type sinkFunc func(ctx context.Context, batch []stage.Record) error

func (f sinkFunc) Write(ctx context.Context, batch []stage.Record) error { return f(ctx, batch) }

// findKey returns the first message of topic with key.
func findKey(t *testing.T, addr, topic string, key []byte) kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := brokertest.Read(ctx, addr, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if bytes.Equal(m.Key, key) {
			return m
		}
	}
	t.Fatalf("no message with key %q in %s", key, topic)
	return kafka.Message{}
}

func createTopic(t *testing.T, addr, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatal(err)
	}
}
