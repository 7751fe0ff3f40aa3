package stage

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// committer commits confirmed offsets on its own goroutine, so that the
// next batch is fetched and delivered while the commit of the last one is
// on the wire, and, for a PipelinedSink, while the last batch completes.
// Batches are committed in the order they were handed over, each once its
// wait (if any) returned nil. At most two batches are outstanding (waiting
// for their confirmation or in the commit on the wire): handing over a
// third blocks until the first is committed. A crash therefore redelivers
// at most the batch being written and the two before it; a clean stop
// commits everything confirmed within ShutdownTimeout.
type committer struct {
	r  *Runner
	rd *kafka.Reader

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a batch left the queue or a commit returned
	queue    []handover // handed over, not yet merged into a commit
	inFlight int        // batches in the commit on the wire
	failed   bool       // a wait failed: nothing more is committed

	ctx    context.Context // the waits' context: ends ShutdownTimeout after close
	cancel context.CancelFunc
	wake   chan struct{} // signalled when the queue grew
	stop   chan struct{} // closed by close
	done   chan struct{} // closed when the loop returned
}

// handover is one delivered batch: the last message of each partition,
// and the sink's confirmation when it was pipelined.
type handover struct {
	last []kafka.Message
	wait func(context.Context) error
}

// maxOutstanding is how many handed-over batches may wait for their
// confirmation or commit.
const maxOutstanding = 2

func (r *Runner) newCommitter(rd *kafka.Reader) *committer {
	c := &committer{
		r: r, rd: rd,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.cond = sync.NewCond(&c.mu)
	go c.loop()
	return c
}

// add hands over a delivered batch: last holds the last message of each of
// its partitions (copied), wait its confirmation or nil. It blocks while
// maxOutstanding batches are outstanding, or until ctx ends: the batch is
// then not committed (it is delivered again).
func (c *committer) add(ctx context.Context, last []kafka.Message, wait func(context.Context) error) {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	for len(c.queue)+c.inFlight >= maxOutstanding && !c.failed && ctx.Err() == nil {
		c.cond.Wait()
	}
	if c.failed || ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, handover{last: slices.Clone(last), wait: wait})
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
			c.drain()
		case <-c.stop:
			c.drain()
			return
		}
	}
}

// drain confirms the queued batches in order and commits them: the first
// once its wait returned, together with the batches after it that need no
// confirmation. A failed wait (its context ended) drops that batch and
// every later one: they are delivered again (at-least-once).
func (c *committer) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.failed {
			c.mu.Unlock()
			return
		}
		head := c.queue[0]
		c.mu.Unlock()
		if head.wait != nil {
			if err := head.wait(c.ctx); err != nil {
				c.r.log.Warn("sink did not confirm a batch; it will be delivered again", "error", err)
				c.mu.Lock()
				c.failed, c.queue = true, nil
				c.cond.Broadcast()
				c.mu.Unlock()
				return
			}
		}
		pending := map[topicPartition]kafka.Message{}
		c.mu.Lock()
		n := 1
		for n < len(c.queue) && c.queue[n].wait == nil {
			n++
		}
		for _, b := range c.queue[:n] {
			for _, m := range b.last {
				k := topicPartition{m.Topic, m.Partition}
				if p, ok := pending[k]; !ok || m.Offset > p.Offset {
					pending[k] = m
				}
			}
		}
		c.queue = c.queue[n:]
		c.inFlight = n
		c.mu.Unlock()
		c.commit(pending)
		c.mu.Lock()
		c.inFlight = 0
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// commit commits the offsets of pending. A failed commit is logged and
// counted, not retried: a later commit of the same partition covers it,
// and otherwise the records are delivered again (at-least-once). It runs
// under ShutdownTimeout.
func (c *committer) commit(pending map[topicPartition]kafka.Message) {
	msgs := make([]kafka.Message, 0, len(pending))
	for _, m := range pending {
		msgs = append(msgs, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.r.cfg.ShutdownTimeout)
	err := c.rd.CommitMessages(ctx, msgs...)
	cancel()
	if err != nil {
		c.r.m.commitErrs.Inc()
		c.r.log.Warn("commit offsets; the records will be delivered again", "error", err)
	}
}

// close commits what is confirmed within ShutdownTimeout and stops the
// loop.
func (c *committer) close() {
	t := time.AfterFunc(c.r.cfg.ShutdownTimeout, c.cancel)
	defer t.Stop()
	defer c.cancel()
	close(c.stop)
	<-c.done
}
