package stage

import (
	"context"
	"sync"

	"github.com/segmentio/kafka-go"
)

// committer commits confirmed offsets on its own goroutine, so that the
// next batch is fetched and delivered while the commit of the last one is
// on the wire. At most one commit is in flight and one batch waits behind
// it: handing over a second waiting batch blocks until the commit in flight
// returned. A crash therefore redelivers at most the batch being written
// and the two batches the commits had not yet covered (before, only the
// batch being written); a clean stop commits everything.
type committer struct {
	r  *Runner
	rd *kafka.Reader

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a commit returned
	pending  map[topicPartition]kafka.Message
	inFlight bool

	wake chan struct{} // signalled when pending gains offsets
	stop chan struct{} // closed by close
	done chan struct{} // closed when the loop returned
}

func (r *Runner) newCommitter(rd *kafka.Reader) *committer {
	c := &committer{
		r: r, rd: rd,
		pending: map[topicPartition]kafka.Message{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	go c.loop()
	return c
}

// add merges the last message of each partition of a confirmed batch into
// the next commit. It blocks while a commit is in flight and another batch
// already waits.
func (c *committer) add(last []kafka.Message) {
	c.mu.Lock()
	for c.inFlight && len(c.pending) > 0 {
		c.cond.Wait()
	}
	for _, m := range last {
		k := topicPartition{m.Topic, m.Partition}
		if p, ok := c.pending[k]; !ok || m.Offset > p.Offset {
			c.pending[k] = m
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
			c.flush()
		case <-c.stop:
			c.flush()
			return
		}
	}
}

// flush commits what is pending. A failed commit is logged and counted,
// not retried: a later commit of the same partition covers it, and
// otherwise the records are delivered again (at-least-once). It runs under
// ShutdownTimeout.
func (c *committer) flush() {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	msgs := make([]kafka.Message, 0, len(c.pending))
	for _, m := range c.pending {
		msgs = append(msgs, m)
	}
	clear(c.pending)
	c.inFlight = true
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.r.cfg.ShutdownTimeout)
	err := c.rd.CommitMessages(ctx, msgs...)
	cancel()
	if err != nil {
		c.r.m.commitErrs.Inc()
		c.r.log.Warn("commit offsets; the records will be delivered again", "error", err)
	}
	c.mu.Lock()
	c.inFlight = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// close commits what is pending and stops the loop.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}
