package checkpoint_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
)

func open(t *testing.T, addr, topic string) *checkpoint.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := checkpoint.Open(ctx, []string{addr}, topic)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *checkpoint.Store, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Put(ctx, key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func TestStore(t *testing.T) {
	tests := []struct {
		name   string
		seeded bool // the topic exists with 4 partitions (as vpipe run seeds it)
	}{
		{"created by Open", false},
		{"seeded with partitions", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const topic = "vpipe.checkpoints"
			var addr string
			if tt.seeded {
				addr = brokertest.Start(t, topic)
			} else {
				addr = brokertest.Start(t)
			}
			s := open(t, addr, topic)
			if _, ok := s.Get("vcenter/vc1"); ok {
				t.Fatal("Get on an empty topic found a value")
			}
			for i := range 5 {
				put(t, s, "vcenter/vc1", fmt.Appendf(nil, `{"key":%d}`, i))
			}
			put(t, s, "velocloud/vco1", []byte("window-1"))
			put(t, s, "gone", []byte("x"))
			put(t, s, "gone", nil)
			put(t, s, "empty", []byte("x"))
			put(t, s, "empty", []byte{})
			check := func(s *checkpoint.Store) {
				t.Helper()
				if v, ok := s.Get("vcenter/vc1"); !ok || string(v) != `{"key":4}` {
					t.Errorf("Get(vcenter/vc1) = %q, %v; want the last Put", v, ok)
				}
				if v, ok := s.Get("velocloud/vco1"); !ok || string(v) != "window-1" {
					t.Errorf("Get(velocloud/vco1) = %q, %v", v, ok)
				}
				if v, ok := s.Get("empty"); ok {
					t.Errorf("Get(empty) = %q after an empty Put; want nothing", v)
				}
				if v, ok := s.Get("gone"); ok {
					t.Errorf("Get(gone) = %q after a nil Put; want nothing", v)
				}
			}
			check(s)
			// Another process (or a restart) reads what was confirmed.
			check(open(t, addr, topic))
		})
	}
}

func TestConcurrentPuts(t *testing.T) {
	addr := brokertest.Start(t)
	s := open(t, addr, "cp")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				if err := s.Put(context.Background(), fmt.Sprintf("src-%d", w), fmt.Appendf(nil, "%d", i)); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				s.Get(fmt.Sprintf("src-%d", (w+1)%4))
			}
		})
	}
	wg.Wait()
	r := open(t, addr, "cp")
	for w := range 4 {
		if v, ok := r.Get(fmt.Sprintf("src-%d", w)); !ok || string(v) != "9" {
			t.Errorf("src-%d = %q, %v; want 9", w, v, ok)
		}
	}
}

// TestLatestAcrossPartitions: records of one key in two partitions (the
// topic's partition count changed, or another producer partitioned
// differently): the newest wins.
func TestLatestAcrossPartitions(t *testing.T) {
	addr := brokertest.Start(t, "cp")
	now := time.Now()
	for i, w := range []struct {
		partition int
		m         kafka.Message
	}{
		{2, kafka.Message{Key: []byte("k"), Value: []byte("new"), Time: now}},
		{0, kafka.Message{Key: []byte("k"), Value: []byte("old"), Time: now.Add(-time.Minute)}},
	} {
		conn, err := kafka.DialLeader(context.Background(), "tcp", addr, "cp", w.partition)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteMessages(w.m); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		conn.Close()
	}
	if v, ok := open(t, addr, "cp").Get("k"); !ok || string(v) != "new" {
		t.Errorf("Get(k) = %q, %v; want new", v, ok)
	}
}

func TestErrors(t *testing.T) {
	addr := brokertest.Start(t)
	s := open(t, addr, "cp")
	s.Close()
	if err := s.Put(context.Background(), "k", []byte("v")); err == nil {
		t.Error("Put after Close succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for _, tc := range []struct {
		name    string
		brokers []string
		topic   string
	}{
		{"no brokers", nil, "cp"},
		{"no topic", []string{addr}, ""},
		{"unreachable", []string{"127.0.0.1:1"}, "cp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := checkpoint.Open(ctx, tc.brokers, tc.topic); err == nil {
				s.Close()
				t.Error("Open succeeded")
			}
		})
	}
}
