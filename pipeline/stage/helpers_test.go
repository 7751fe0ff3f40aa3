package stage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/runtest"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// testConfig is a stage config with timeouts short enough for tests.
func testConfig(addr, name string, topics ...string) stage.Config {
	return stage.Config{
		Name:       name,
		Brokers:    []string{addr},
		Topics:     topics,
		DLQTopic:   "dlq",
		BatchSize:  50,
		BatchWait:  20 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
		// A killed member's partitions move after SessionTimeout. A
		// rebalance ends as soon as every live member rejoined, so a long
		// RebalanceTimeout costs nothing, and it spares a member that is
		// slow to rejoin (kafka-go first finishes its fetches and its last
		// commit) from being dropped from the group under -race.
		SessionTimeout:    3 * time.Second,
		HeartbeatInterval: 300 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		FetchMaxWait:      time.Second,
		ShutdownTimeout:   3 * time.Second,
	}
}

// testEvent is a small, valid event with id ev-<i>.
func testEvent(i int) *pipeline.Event {
	return &pipeline.Event{
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Created:   time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		ID:        eventID(i),
		Dataset:   pipeline.DatasetSyslogGeneric,
		Original:  fmt.Appendf(nil, "<134>1 2026-01-02T03:04:05Z esx-%d vpxa - - - event %d", i%7, i),
		Message:   fmt.Sprintf("event %d", i),
	}
}

func eventID(i int) string { return fmt.Sprintf("ev-%06d", i) }

// eventMessage encodes testEvent(i) as a Kafka message keyed like the
// producer keys it.
func eventMessage(i int) kafka.Message {
	e := testEvent(i)
	return kafka.Message{Key: pipeline.AppendKey(nil, e), Value: e.AppendJSON(nil)}
}

// produce writes msgs to topic (acks=all), partitioned by key.
func produce(tb testing.TB, addr, topic string, msgs ...kafka.Message) {
	tb.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		BatchSize:    1000,
		BatchBytes:   1 << 20, // the broker's limit (message.max.bytes)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) {
			for _, e := range werrs {
				if e != nil {
					tb.Fatalf("produce to %s: %d of %d failed, first: %v", topic, werrs.Count(), len(msgs), e)
				}
			}
		}
		tb.Fatalf("produce to %s: %v", topic, err)
	}
}

func produceEvents(tb testing.TB, addr, topic string, from, to int) {
	tb.Helper()
	msgs := make([]kafka.Message, 0, to-from)
	for i := from; i < to; i++ {
		msgs = append(msgs, eventMessage(i))
	}
	produce(tb, addr, topic, msgs...)
}

// start runs a Runner until the test ends (or stop is called) and fails
// the test if Run returns an error.
func start(tb testing.TB, cfg stage.Config, sink stage.Sink, m *stage.Metrics) (stop func()) {
	tb.Helper()
	r, err := stage.New(cfg, sink, m, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return runtest.Start(tb, "stage "+cfg.Name, r.Run)
}

// testLogger logs warnings and errors to the test log when -v is given.
func testLogger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// memSink records the event ids it was given. fail, if set, decides the
// error of each call.
type memSink struct {
	mu     sync.Mutex
	calls  int
	ids    map[string]int
	parts  map[int]bool
	failFn func(call int, batch []stage.Record) error
}

func newMemSink(fail func(call int, batch []stage.Record) error) *memSink {
	return &memSink{ids: map[string]int{}, parts: map[int]bool{}, failFn: fail}
}

func (s *memSink) Write(ctx context.Context, batch []stage.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failFn != nil {
		if err := s.failFn(s.calls, batch); err != nil {
			return err
		}
	}
	for _, r := range batch {
		s.ids[strings.Clone(r.Event.ID)]++
		s.parts[r.Msg.Partition] = true
	}
	return nil
}

// distinct is the number of distinct ids delivered.
func (s *memSink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *memSink) snapshot() (ids map[string]int, parts map[int]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, parts = map[string]int{}, map[int]bool{}
	for k, v := range s.ids {
		ids[k] = v
	}
	for k := range s.parts {
		parts[k] = true
	}
	return ids, parts
}

var errTransient = errors.New("destination unavailable")

// committed returns the group's committed offsets of topic, by partition.
func committed(tb testing.TB, addr, group, topic string) map[int]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2, 3}}})
	if err != nil {
		tb.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			tb.Fatalf("offset fetch %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// highWatermarks returns the end offsets of topic's partitions.
func highWatermarks(tb testing.TB, addr, topic string) map[int]int64 {
	tb.Helper()
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range parts {
		c, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p.ID)
		if err != nil {
			tb.Fatal(err)
		}
		last, err := c.ReadLastOffset()
		c.Close()
		if err != nil {
			tb.Fatal(err)
		}
		out[p.ID] = last
	}
	return out
}

// header returns the value of header key in m.
func header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}
