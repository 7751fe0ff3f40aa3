package tenantsyslog

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline/stage"
)

// pacer gives live events precedence over replayed ones. While the stage
// is behind (the records of its last batch have more than a batch waiting
// behind them in their partitions), the replay may read
// Config.ReplayShare parked records per live record the stage handles;
// otherwise it reads as fast as its destinations take the events. The
// replay and the live path share the same cores: a backlog replayed flat
// out while the stage is behind would slow every tenant's live events for
// one tenant's sake. Once the stage has caught up, spare capacity goes to
// the replay. A destination that gets more than ReplayShare of the live
// events therefore catches up with its backlog (and goes live) only once
// the stage is no longer behind; until then its events are parked.
type pacer struct {
	share float64
	most  float64       // the most credit kept: a burst after a quiet spell
	stale time.Duration // without a Write this long, the stage is not behind
	spent prometheus.Counter

	mu      sync.Mutex
	credit  float64
	behind  bool
	last    time.Time     // the last Write
	waiters int           // takes waiting
	changed chan struct{} // closed (and replaced) when credit grows while some wait
}

func newPacer(share float64, stale time.Duration, spent prometheus.Counter) *pacer {
	return &pacer{share: share, most: max(1, share*4096), stale: stale, spent: spent, changed: make(chan struct{})}
}

// behindBy reports whether the records of batch have more than a batch
// waiting behind them: the sum over its partitions of the high watermark
// minus the next offset, as the fetch responses reported it.
func behindBy(batch []stage.Record) bool {
	type part struct {
		topic string
		p     int
		lag   int64
	}
	var parts [8]part
	seen := parts[:0]
	var lag int64
next:
	for i := range batch {
		m := &batch[i].Msg
		l := max(0, m.HighWaterMark-m.Offset-1)
		for j := range seen {
			if seen[j].p == m.Partition && seen[j].topic == m.Topic {
				seen[j].lag = l // later records come later in their partition
				continue next
			}
		}
		seen = append(seen, part{m.Topic, m.Partition, l})
	}
	for _, p := range seen {
		lag += p.lag
	}
	return lag > int64(len(batch))
}

// wrote records a live batch of n records: the replay's credit grows by
// share × n while the stage is behind.
func (p *pacer) wrote(n int, behind bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.behind = time.Now(), behind
	if behind {
		p.credit = min(p.most, p.credit+p.share*float64(n))
	}
	if p.waiters > 0 {
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// free reports whether the replay may send now. p.mu is held.
func (p *pacer) free() bool {
	return !p.behind || time.Since(p.last) > p.stale || p.credit > 0
}

// take waits until the replay may read n more records. The credit may go
// below zero (n larger than what is left): the next take then waits
// longer, so the share holds on average. It returns false when ctx ends.
func (p *pacer) take(ctx context.Context, n int) bool {
	p.mu.Lock()
	if p.free() {
		p.spend(n)
		p.mu.Unlock()
		return true
	}
	start := time.Now()
	p.waiters++
	defer func() {
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
		p.spent.Add(time.Since(start).Seconds())
	}()
	t := time.NewTimer(p.stale)
	defer t.Stop()
	for {
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			t.Reset(p.stale)
		case <-ctx.Done():
			return false
		}
		p.mu.Lock()
		if p.free() {
			p.spend(n)
			p.mu.Unlock()
			return true
		}
	}
}

// paced waits until the pacer lets the replay read n records; false when
// ctx ended.
func (s *Sink) paced(ctx context.Context, n int) bool {
	return s.pace == nil || s.pace.take(ctx, n)
}

// spend takes n from the credit while the stage is behind. p.mu is held.
func (p *pacer) spend(n int) {
	if p.behind && time.Since(p.last) <= p.stale {
		p.credit -= float64(n)
	}
}
