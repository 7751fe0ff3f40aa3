package stage_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// pipelinedSink confirms each batch only when the test releases it.
type pipelinedSink struct {
	mu      sync.Mutex
	batches []pipelinedBatch
	writes  int // Write calls (the one-by-one fallback)
}

type pipelinedBatch struct {
	next    map[int]int64 // per partition, the offset after the batch's last record
	release chan struct{}
}

func (s *pipelinedSink) Write(context.Context, []stage.Record) error {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return nil
}

func (s *pipelinedSink) WritePipelined(_ context.Context, batch []stage.Record) (func(context.Context) error, error) {
	b := pipelinedBatch{next: map[int]int64{}, release: make(chan struct{})}
	for _, r := range batch {
		b.next[r.Msg.Partition] = max(b.next[r.Msg.Partition], r.Msg.Offset+1)
	}
	s.mu.Lock()
	s.batches = append(s.batches, b)
	s.mu.Unlock()
	return func(ctx context.Context) error {
		select {
		case <-b.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

func (s *pipelinedSink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batches)
}

// through returns what committing batches 0..i-1 covers, by partition.
func (s *pipelinedSink) through(i int) map[int]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int64{}
	for _, b := range s.batches[:i] {
		for p, o := range b.next {
			out[p] = max(out[p], o)
		}
	}
	return out
}

func (s *pipelinedSink) release(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.batches[i].release)
}

// committedNonEmpty is committed without the partitions that have no
// commit.
func committedNonEmpty(t *testing.T, addr, group, topic string) map[int]int64 {
	out := committed(t, addr, group, topic)
	maps.DeleteFunc(out, func(_ int, o int64) bool { return o < 0 })
	return out
}

// TestPipelinedSink: the runner goes on delivering while a pipelined
// sink's batches are unconfirmed (two at most), commits a batch only once
// it and every batch before it are confirmed, in order, and at shutdown
// leaves an unconfirmed batch uncommitted, so the next member gets it
// again.
func TestPipelinedSink(t *testing.T) {
	const n = 100
	addr := brokertest.Start(t, "in", "dlq")
	produceEvents(t, addr, "in", 0, n)
	cfg := testConfig(addr, "pipelined", "in")
	cfg.GroupID = "pipelined"
	cfg.BatchSize = 10
	cfg.ShutdownTimeout = 2 * time.Second
	sink := &pipelinedSink{}
	stop := start(t, cfg, sink, nil)

	// Two batches wait for their confirmation and the third is written;
	// handing it over blocks, so no fourth is written.
	waitFor(t, 30*time.Second, "three batches written", func() bool { return sink.calls() >= 3 })
	if c := sink.calls(); c != 3 {
		t.Fatalf("%d batches written with two unconfirmed, want 3", c)
	}
	if c := committedNonEmpty(t, addr, "pipelined", "in"); len(c) != 0 {
		t.Fatalf("committed %v before any confirmation", c)
	}
	// The second confirmed first: nothing may be committed yet.
	sink.release(1)
	if c := committedNonEmpty(t, addr, "pipelined", "in"); len(c) != 0 {
		t.Fatalf("committed %v with the first batch unconfirmed", c)
	}
	sink.release(0)
	want := sink.through(2)
	waitFor(t, 30*time.Second, "the first two batches committed", func() bool {
		return maps.Equal(committedNonEmpty(t, addr, "pipelined", "in"), want)
	})
	// The fourth batch is written now that a place is free.
	waitFor(t, 30*time.Second, "a fourth batch written", func() bool { return sink.calls() >= 4 })

	// Stop with batch 2 confirmed and 3 not: 2 is committed, 3 is not.
	sink.release(2)
	want = sink.through(3)
	waitFor(t, 30*time.Second, "the third batch committed", func() bool {
		return maps.Equal(committedNonEmpty(t, addr, "pipelined", "in"), want)
	})
	stop()
	if c := committedNonEmpty(t, addr, "pipelined", "in"); !maps.Equal(c, want) {
		t.Fatalf("after stop committed %v, want %v (batch 3 was never confirmed)", c, want)
	}

	// The next member starts after the last confirmed batch.
	mem := newMemSink(nil)
	start(t, cfg, mem, nil)
	left := n
	for _, o := range want {
		left -= int(o)
	}
	waitFor(t, 30*time.Second, "the rest delivered again", func() bool { return mem.distinct() == left })
	if sink.writes != 0 {
		t.Errorf("Write called %d times: the runner must use WritePipelined", sink.writes)
	}
}
