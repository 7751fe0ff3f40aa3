// Package stage runs vpipe's consumer stages: one Kafka consumer loop that
// every stage plugs its Sink into. The Runner fetches records in a consumer
// group, decodes them into events, hands them to the sink in batches,
// retries retryable failures with backoff, sends what cannot be handled to
// the DLQ topic, and commits offsets only once every record of a batch is
// in the sink or in the DLQ: at-least-once, and one bad record never
// wedges a partition.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Record is one consumed Kafka message with its decoded event. Both belong
// to the runner and are valid only during the Sink.Write call they are
// passed to (the runner reuses the events; strings in Event point into its
// scratch space, see pipeline.Event).
type Record struct {
	Msg   kafka.Message   // as fetched: topic, partition, offset, key, value, headers
	Event *pipeline.Event // decoded from Msg.Value with DecodeJSON
}

// Sink is where a stage delivers events.
type Sink interface {
	// Write delivers batch. It blocks until every record is durably
	// delivered (or deliberately dropped and counted) and only then
	// returns nil.
	//
	// Any other error is retried with backoff (up to Config.MaxRetries,
	// then the batch goes to the DLQ), unless errors.Is(err,
	// pipeline.ErrPermanent): then the runner writes a batch of more than
	// one record again one record at a time to find the poison ones, which
	// go to the DLQ. Write is therefore called again with records it has
	// already seen, some of which it may have delivered; after a crash or
	// a rebalance a whole batch may come again. A sink makes that harmless
	// (idempotent writes, keyed by event.id) or at least tolerates it.
	//
	// When ctx ends Write should return promptly; its error is then not
	// classified and nothing of the batch is committed.
	//
	// The runner owns batch, its messages and its events: Write must not
	// modify them nor keep them after it returns (copy what it needs).
	// Write is called from one goroutine at a time per Runner.
	Write(ctx context.Context, batch []Record) error
}

// PipelinedSink is a Sink whose write may return before all of a batch is
// durable, so that the runner fetches and delivers the next batch while the
// rest of this one completes in the background (sinks/tenantsyslog parks a
// slow tenant's events on Kafka that way, and delivers the others' events
// of the next batch meanwhile).
type PipelinedSink interface {
	Sink
	// WritePipelined is Write, except that along with a nil error it may
	// return a non-nil wait: the batch's records are then durable only
	// once wait returns nil. The runner commits the batch's offsets after
	// that and after the waits of every earlier batch, in order; it calls
	// wait once, from another goroutine, possibly while WritePipelined runs
	// for the next batch. wait blocks, retrying whatever it must, until the
	// records are durable or ctx ends; an error means ctx ended, and
	// nothing of the batch (nor after it) is committed. At most two batches
	// wait at a time: the runner does not return from handing over a third
	// before the first is committed.
	//
	// Errors and ownership are as for Write: what wait still needs,
	// WritePipelined copies before it returns. The runner falls back to
	// Write to find the poison records of a rejected batch.
	WritePipelined(ctx context.Context, batch []Record) (wait func(context.Context) error, err error)
}

// Runner consumes a stage's topics into its Sink. Create it with New and
// start it with Run.
type Runner struct {
	cfg     Config
	sink    Sink
	m       stageMetrics
	log     *slog.Logger
	dlq     *kafka.Writer
	started atomic.Bool

	// Owned by Run's goroutine, reused across batches.
	msgs      []kafka.Message
	events    []*pipeline.Event
	recs      []Record
	dead      []deadLetter
	last      []kafka.Message
	commits   *committer
	lags      map[topicPartition]int64
	fetchErrs int
}

type topicPartition struct {
	topic     string
	partition int
}

// New checks cfg (after applying its defaults) and returns a Runner that
// delivers to sink. m may be shared by several runners; nil creates
// unregistered metrics. log nil discards logs. New does not connect to
// Kafka: Run does.
func New(cfg Config, sink Sink, m *Metrics, log *slog.Logger) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stage %q: %w", cfg.Name, err)
	}
	if sink == nil {
		return nil, fmt.Errorf("stage %q: no sink", cfg.Name)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		cfg:  cfg,
		sink: sink,
		m:    m.forStage(cfg.Name),
		log:  log.With("component", "stage", "stage", cfg.Name),
		lags: map[topicPartition]int64{},
	}
	r.dlq = r.newDLQWriter()
	return r, nil
}

// Run joins the consumer group and delivers records until ctx ends; then
// it stops fetching, commits what the sink had already confirmed (under
// ShutdownTimeout), leaves the group and returns nil. Records fetched but
// not confirmed are not committed: the member that takes over the
// partition reads them again.
//
// Run blocks. It does not return on Kafka, sink or DLQ errors: it logs and
// retries them, so a stage whose destination is down stalls without losing
// anything. It may be called once.
func (r *Runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return fmt.Errorf("stage %q: Run called twice", r.cfg.Name)
	}
	defer r.dlq.Close()
	rd := kafka.NewReader(r.readerConfig())
	defer r.closeReader(rd)
	r.commits = r.newCommitter(rd)
	defer r.commits.close() // before closeReader: the last commit needs the reader
	r.log.Info("stage started", "topics", r.cfg.Topics, "group", r.cfg.GroupID, "dlq", r.cfg.DLQTopic)
	for ctx.Err() == nil {
		if msgs := r.fetch(ctx, rd); len(msgs) > 0 {
			r.handle(ctx, rd, msgs)
		}
	}
	return nil
}

func (r *Runner) readerConfig() kafka.ReaderConfig {
	errLog := r.log.With("component", "stage-kafka")
	return kafka.ReaderConfig{
		Brokers:           r.cfg.Brokers,
		GroupID:           r.cfg.GroupID,
		GroupTopics:       r.cfg.Topics,
		Dialer:            r.cfg.Dialer,
		QueueCapacity:     max(100, r.cfg.BatchSize),
		MaxWait:           r.cfg.FetchMaxWait,
		HeartbeatInterval: r.cfg.HeartbeatInterval,
		SessionTimeout:    r.cfg.SessionTimeout,
		RebalanceTimeout:  r.cfg.RebalanceTimeout,
		JoinGroupBackoff:  min(time.Second, r.cfg.MaxBackoff),
		// Pick up partitions added later, and topics created after the
		// stage started.
		WatchPartitionChanges: true,
		// kafka-go computes this lag only without a group; the runner keeps
		// its own (see updateLag).
		ReadLagInterval: -1,
		StartOffset:     kafka.FirstOffset,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			errLog.Warn(fmt.Sprintf(format, args...))
		}),
	}
}

// closeReader closes rd, which leaves the group so that the others take
// over its partitions at once. It waits at most ShutdownTimeout: a reader
// that cannot reach the broker is left to finish closing on its own.
func (r *Runner) closeReader(rd *kafka.Reader) {
	done := make(chan error, 1)
	go func() { done <- rd.Close() }()
	t := time.NewTimer(r.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			r.log.Warn("close consumer", "error", err)
		}
		r.log.Info("stage stopped")
	case <-t.C:
		r.log.Warn("stage stopped; consumer did not close in time", "timeout", r.cfg.ShutdownTimeout)
	}
}

// fetch returns the next batch: it waits for one record, then takes more
// until BatchSize or BatchWait. It returns nothing when ctx ends or the
// fetch failed (after a backoff).
func (r *Runner) fetch(ctx context.Context, rd *kafka.Reader) []kafka.Message {
	msgs := r.msgs[:0]
	m, err := rd.FetchMessage(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.fetchFailed(ctx, err)
		}
		return nil
	}
	r.fetchErrs = 0
	msgs = append(msgs, m)
	if r.cfg.BatchSize > 1 {
		wctx, cancel := context.WithTimeout(ctx, r.cfg.BatchWait)
		for len(msgs) < r.cfg.BatchSize {
			m, err := rd.FetchMessage(wctx)
			if err != nil {
				if wctx.Err() == nil {
					r.log.Warn("fetch", "error", err)
				}
				break
			}
			msgs = append(msgs, m)
		}
		cancel()
	}
	r.msgs = msgs
	return msgs
}

func (r *Runner) fetchFailed(ctx context.Context, err error) {
	d := backoff.Delay(r.fetchErrs, r.cfg.MinBackoff, r.cfg.MaxBackoff)
	r.fetchErrs++
	r.log.Warn("fetch failed; retrying", "attempt", r.fetchErrs, "backoff", d, "error", err)
	backoff.Wait(ctx, d)
}

// handle delivers one batch, sends what cannot be delivered to the DLQ and
// commits the batch. It returns without committing when ctx ends first.
func (r *Runner) handle(ctx context.Context, rd *kafka.Reader, msgs []kafka.Message) {
	r.m.consumed.Add(float64(len(msgs)))
	r.m.batchSize.Observe(float64(len(msgs)))
	r.lastPerPartition(msgs)
	r.updateLag(rd)

	recs, dead := r.recs[:0], r.dead[:0]
	for i := range msgs {
		e := r.event(i)
		if err := e.DecodeJSON(msgs[i].Value); err != nil {
			dead = append(dead, deadLetter{msg: &msgs[i], reason: ReasonDecode, err: fmt.Errorf("decode event: %w", err)})
			continue
		}
		recs = append(recs, Record{Msg: msgs[i], Event: e})
	}
	r.recs = recs
	dead, wait, ok := r.deliver(ctx, recs, dead)
	r.dead = dead
	if !ok {
		return
	}
	if len(dead) > 0 && !r.sendDLQ(ctx, dead) {
		return
	}
	r.commits.add(ctx, r.last, wait)
}

// event returns the reusable event for position i of a batch (DecodeJSON
// resets it).
func (r *Runner) event(i int) *pipeline.Event {
	for len(r.events) <= i {
		r.events = append(r.events, new(pipeline.Event))
	}
	return r.events[i]
}

// deliver writes recs to the sink and appends the records it could not
// deliver to dead. wait, if not nil, is a pipelined sink's confirmation
// of recs (PipelinedSink). ok is false when ctx ended first.
func (r *Runner) deliver(ctx context.Context, recs []Record, dead []deadLetter) (_ []deadLetter, wait func(context.Context) error, ok bool) {
	if len(recs) == 0 {
		return dead, nil, true
	}
	wait, err := r.write(ctx, recs, true)
	switch {
	case err == nil:
		return dead, wait, true
	case ctx.Err() != nil:
		return dead, nil, false
	case errors.Is(err, pipeline.ErrPermanent) && len(recs) > 1:
		r.log.Warn("sink rejected a batch; writing its records one by one", "records", len(recs), "error", err)
		for i := range recs {
			_, err := r.write(ctx, recs[i:i+1], false)
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return dead, nil, false
			}
			dead = append(dead, undelivered(&recs[i].Msg, err))
		}
		return dead, nil, true
	}
	for i := range recs {
		dead = append(dead, undelivered(&recs[i].Msg, err))
	}
	return dead, nil, true
}

func undelivered(m *kafka.Message, err error) deadLetter {
	reason := ReasonRetries
	if errors.Is(err, pipeline.ErrPermanent) {
		reason = ReasonRejected
	}
	return deadLetter{msg: m, reason: reason, err: err}
}

// write calls the sink until it succeeds, fails permanently, exceeds
// MaxRetries or ctx ends; with pipelined, through WritePipelined when the
// sink has it, whose wait it returns.
func (r *Runner) write(ctx context.Context, recs []Record, pipelined bool) (wait func(context.Context) error, err error) {
	ps, _ := r.sink.(PipelinedSink)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		if pipelined && ps != nil {
			wait, err = ps.WritePipelined(ctx, recs)
		} else {
			err = r.sink.Write(ctx, recs)
		}
		r.m.writeTime.Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			r.m.delivered.Add(float64(len(recs)))
			if attempt > 0 {
				r.log.Info("sink write succeeded after retries", "records", len(recs), "retries", attempt)
			}
			return wait, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, pipeline.ErrPermanent):
			return nil, err
		case r.cfg.MaxRetries > 0 && attempt >= r.cfg.MaxRetries:
			return nil, fmt.Errorf("sink failed %d times: %w", attempt+1, err)
		}
		d := backoff.Delay(attempt, r.cfg.MinBackoff, r.cfg.MaxBackoff)
		r.m.retries.Inc()
		r.log.Warn("sink write failed; retrying", "records", len(recs), "attempt", attempt+1, "backoff", d, "error", err)
		if !backoff.Wait(ctx, d) {
			return nil, ctx.Err()
		}
	}
}

// lastPerPartition sets r.last to the last message of each partition in
// msgs: what commit and updateLag need.
func (r *Runner) lastPerPartition(msgs []kafka.Message) {
	last := r.last[:0]
next:
	for i := range msgs {
		m := &msgs[i]
		for j := range last {
			if last[j].Partition == m.Partition && last[j].Topic == m.Topic {
				if m.Offset > last[j].Offset {
					last[j] = *m
				}
				continue next
			}
		}
		last = append(last, *m)
	}
	r.last = last
}

// updateLag sets the lag gauge from the high watermarks the fetched
// messages carry, summed over the partitions this process consumed since
// its last rebalance. (kafka-go's Reader.Stats().Lag holds one partition's
// lag only, whichever reported last.)
func (r *Runner) updateLag(rd *kafka.Reader) {
	if rd.Stats().Rebalances > 0 {
		clear(r.lags)
	}
	for i := range r.last {
		m := &r.last[i]
		r.lags[topicPartition{m.Topic, m.Partition}] = max(0, m.HighWaterMark-m.Offset-1)
	}
	var sum int64
	for _, l := range r.lags {
		sum += l
	}
	r.m.lag.Set(float64(sum))
}
