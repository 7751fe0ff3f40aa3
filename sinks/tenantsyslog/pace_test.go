package tenantsyslog

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline/stage"
)

func TestBehindBy(t *testing.T) {
	rec := func(p int, off, hwm int64) stage.Record {
		return stage.Record{Msg: kafka.Message{Topic: "fw", Partition: p, Offset: off, HighWaterMark: hwm}}
	}
	tests := []struct {
		name  string
		batch []stage.Record
		want  bool
	}{
		{"caught up", []stage.Record{rec(0, 10, 12), rec(0, 11, 12)}, false},
		{"one batch behind", []stage.Record{rec(0, 10, 13), rec(1, 3, 4)}, false},
		{"more than a batch behind", []stage.Record{rec(0, 10, 20), rec(0, 11, 20)}, true},
		// The later record of a partition counts, not the first.
		{"later record", []stage.Record{rec(0, 1, 100), rec(0, 98, 100)}, false},
		{"summed over partitions", []stage.Record{rec(0, 1, 3), rec(1, 1, 3), rec(2, 1, 3)}, false},
		{"summed over partitions, behind", []stage.Record{rec(0, 1, 4), rec(1, 1, 4), rec(2, 1, 4)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := behindBy(tt.batch); got != tt.want {
				t.Errorf("behindBy = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPacer: while the stage is behind, the replay gets share of the live
// records as credit and waits without; caught up, or without a Write for
// the stale time, it does not wait.
func TestPacer(t *testing.T) {
	spent := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	p := newPacer(0.5, time.Hour, spent)
	ctx := context.Background()
	if !p.take(ctx, 1000) {
		t.Fatal("take before any Write waited")
	}
	p.wrote(100, false)
	if !p.take(ctx, 1000) {
		t.Fatal("take while caught up waited")
	}
	p.wrote(100, true) // 50 credit
	if !p.take(ctx, 80) {
		t.Fatal("take with credit waited")
	}
	// 50 - 80 = -30: the next take waits for credit.
	done := make(chan bool)
	go func() { done <- p.take(ctx, 10) }()
	waitWaiters(t, p, 1)
	select {
	case <-done:
		t.Fatal("take without credit did not wait")
	default:
	}
	p.wrote(40, true) // -30 + 20 = -10: still none
	waitWaiters(t, p, 1)
	select {
	case <-done:
		t.Fatal("take returned with credit below zero")
	default:
	}
	p.wrote(40, true) // +10
	if !<-done {
		t.Fatal("take failed")
	}
	// Caught up again: free at once.
	go func() { done <- p.take(ctx, 10) }()
	waitWaiters(t, p, 1)
	p.wrote(10, false)
	if !<-done {
		t.Fatal("take failed")
	}
	// Cancellation ends a wait.
	p.wrote(1, true)
	p.take(ctx, 100)
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- p.take(cctx, 1) }()
	waitWaiters(t, p, 1)
	cancel()
	if <-done {
		t.Fatal("take reported success after cancellation")
	}
	// Without a Write for the stale time, the stage is not behind.
	q := newPacer(0.5, 20*time.Millisecond, spent)
	q.wrote(1, true)
	q.take(ctx, 100)
	start := time.Now()
	if !q.take(ctx, 1) {
		t.Fatal("take failed")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("take did not wait for the stale time")
	}
}

// waitWaiters waits until n takes wait on p.
func waitWaiters(t *testing.T, p *pacer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		w := p.waiters
		p.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d takes waiting, want %d", w, n)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}
