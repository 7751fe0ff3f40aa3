// Package brokertest starts the embedded broker for tests and reads topics
// back through kafka-go, the client vpipe itself uses.
package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline/broker"
)

// Start starts an in-memory embedded broker on 127.0.0.1 with a free port
// and closes it when the test ends. It returns the broker's address.
func Start(tb testing.TB, topics ...string) string {
	tb.Helper()
	return StartConfig(tb, broker.Config{Listen: "127.0.0.1:0", Topics: topics}).Addr()
}

// StartConfig starts an embedded broker with cfg and closes it when the
// test ends.
func StartConfig(tb testing.TB, cfg broker.Config) *broker.Embedded {
	tb.Helper()
	b, err := broker.Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// ReadN reads n messages from every partition of topic (from the start,
// without a consumer group) and fails the test if they do not arrive
// within timeout. It returns them in partition, then offset, order.
func ReadN(tb testing.TB, addr, topic string, n int, timeout time.Duration) []kafka.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msgs, err := Read(ctx, addr, topic, n)
	if err != nil {
		tb.Fatalf("read %d messages from %s: got %d: %v", n, topic, len(msgs), err)
	}
	return msgs
}

// Read reads messages from every partition of topic from the start until
// it has n of them or ctx ends.
func Read(ctx context.Context, addr, topic string, n int) ([]kafka.Message, error) {
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	for {
		out = out[:0]
		for _, p := range parts {
			msgs, err := readPartition(ctx, addr, topic, p.ID)
			if err != nil {
				return out, err
			}
			out = append(out, msgs...)
		}
		if len(out) >= n {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readPartition returns every message currently in one partition.
func readPartition(ctx context.Context, addr, topic string, partition int) ([]kafka.Message, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, err
	}
	if last <= first {
		return nil, nil
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		return nil, err
	}
	var out []kafka.Message
	for off := first; off < last; {
		if dl, ok := ctx.Deadline(); ok {
			conn.SetReadDeadline(dl)
		}
		batch := conn.ReadBatch(1, 16<<20)
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			out = append(out, m)
			off = m.Offset + 1
		}
		if err := batch.Close(); err != nil {
			return out, err
		}
	}
	return out, nil
}
