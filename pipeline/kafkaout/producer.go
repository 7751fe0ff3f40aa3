// Package kafkaout is vpipe's Kafka producer: it encodes events, routes
// them to their topic with their key (pipeline.TopicFor, pipeline.AppendKey)
// and writes them with github.com/segmentio/kafka-go, acks=all, batched for
// throughput, with bounded memory and a dead-letter topic for records Kafka
// will never take.
package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Config configures a Producer. Zero fields take the defaults named.
type Config struct {
	Brokers     []string // bootstrap brokers; required
	TopicPrefix string   // prepended to every topic name, e.g. "vpipe."
	// Compression is none, gzip, snappy, lz4 (default) or zstd.
	Compression string
	// BatchSize is the most records in one produce request per partition
	// (default 4096); BatchBytes the most bytes (default 1 MiB, Kafka's
	// default message.max.bytes).
	BatchSize  int
	BatchBytes int64
	// Linger is how long a partition's batch waits to fill (default 2ms).
	Linger time.Duration
	// MaxBuffered bounds the records accepted but not yet acknowledged
	// (default 65536). A full buffer blocks Publish: that is the
	// backpressure that stops TCP readers and fills UDP queues.
	MaxBuffered int
	// MaxRecordBytes is the largest encoded record produced; a larger one
	// goes to the DLQ (default 1 MiB less 1 KiB for the batch overhead).
	MaxRecordBytes int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries of a failed produce (defaults 100ms and 5s). Retries go on
	// until the record is acknowledged or the producer is closed.
	MinBackoff, MaxBackoff time.Duration
	// Transport, when set, replaces kafka-go's default transport (TLS, SASL).
	Transport kafka.RoundTripper
}

func (c *Config) setDefaults() {
	if c.Compression == "" {
		c.Compression = "lz4"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.Linger <= 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 65536
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1<<20 - 1024
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
}

// Compression returns the kafka-go codec for a configured name.
func Compression(name string) (compress.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", name)
}

// ErrClosed is returned by Publish once Close has begun.
var ErrClosed = errors.New("producer closed")

// DLQ record headers.
const (
	HeaderReason = "vpipe-reason" // why the record is in the DLQ
	HeaderTopic  = "vpipe-topic"  // the topic it was meant for
	// HeaderTruncated holds the original length when the DLQ value had to
	// be cut to fit.
	HeaderTruncated = "vpipe-truncated-from"
	// HeaderSchema carries pipeline.SchemaVersion on every event record, so
	// a consumer can tell schema versions apart without decoding.
	HeaderSchema = "vpipe-schema"
)

// schemaHeaders is shared, read-only, by every event record.
var schemaHeaders = []kafka.Header{{Key: HeaderSchema, Value: []byte(pipeline.SchemaVersion)}}

// Producer implements pipeline.Publisher on kafka-go. Records of one key
// keep their order unless a produce fails and is retried. Safe for
// concurrent use.
type Producer struct {
	cfg     Config
	w       *kafka.Writer
	m       *Metrics
	log     *slog.Logger
	topics  map[string]string // dataset topic -> prefixed name
	dlq     string
	queue   chan *item
	slots   chan struct{}
	stop    chan struct{} // closed when Close begins
	hard    chan struct{} // closed when Close's deadline passed
	stopped chan struct{} // closed when the dispatcher has returned
	// free holds finished items for reuse with their buffers, so that a
	// steady stream allocates nothing (a sync.Pool empties at every GC).
	free chan *item

	retryMu sync.Mutex
	retry   []*item
	retryC  chan struct{} // signalled when retry gains items

	readyErr atomic.Pointer[error]
	closing  sync.Once
}

// item is one record in flight.
type item struct {
	msg      kafka.Message
	buf      []byte
	done     func(error)
	enqueued time.Time
	attempts int
	topic    string // the unprefixed topic, for metrics
}

// New starts a producer. It does not wait for the brokers: Ready says
// whether they are reachable. m nil creates unregistered metrics; log nil
// discards logs.
func New(cfg Config, m *Metrics, log *slog.Logger) (*Producer, error) {
	cfg.setDefaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka producer: no brokers")
	}
	codec, err := Compression(cfg.Compression)
	if err != nil {
		return nil, err
	}
	p := &Producer{
		cfg:     cfg,
		m:       m,
		log:     log.With("component", "kafkaout"),
		topics:  make(map[string]string, len(pipeline.AllTopics)),
		dlq:     cfg.TopicPrefix + pipeline.TopicDLQ,
		queue:   make(chan *item, cfg.MaxBuffered),
		slots:   make(chan struct{}, cfg.MaxBuffered),
		stop:    make(chan struct{}),
		hard:    make(chan struct{}),
		stopped: make(chan struct{}),
		retryC:  make(chan struct{}, 1),
		free:    make(chan *item, cfg.MaxBuffered),
	}
	for _, t := range pipeline.AllTopics {
		p.topics[t] = cfg.TopicPrefix + t
	}
	notReady := errors.New("no produce acknowledged yet")
	p.readyErr.Store(&notReady)
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{}, // the Java client's partitioner
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		Completion:   p.complete,
		Compression:  codec,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   cfg.BatchBytes,
		BatchTimeout: cfg.Linger,
		// kafka-go retries a batch itself a few times; after that the
		// Completion callback sees the error and this producer retries
		// with its own backoff for as long as it runs.
		MaxAttempts:            3,
		WriteBackoffMin:        cfg.MinBackoff,
		WriteBackoffMax:        cfg.MaxBackoff,
		AllowAutoTopicCreation: true,
		Transport:              cfg.Transport,
	}
	go p.dispatch()
	return p, nil
}

// Publish implements pipeline.Publisher.
func (p *Producer) Publish(ctx context.Context, e *pipeline.Event, done func(error)) error {
	select {
	case <-p.stop:
		return ErrClosed
	default:
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
		return ErrClosed
	}
	// A slot taken while Close began (select picks at random among ready
	// cases) is given back: the dispatcher may be about to see no record in
	// flight and return. Holding a slot past this check keeps it running.
	select {
	case <-p.stop:
		<-p.slots
		return ErrClosed
	default:
	}
	var it *item
	select {
	case it = <-p.free:
	default:
		it = &item{buf: make([]byte, 0, 2*len(e.Original)+1024)}
	}
	topic := pipeline.TopicFor(e.Dataset)
	buf := pipeline.AppendKey(it.buf[:0], e)
	klen := len(buf)
	buf = e.AppendJSON(buf)
	*it = item{buf: buf, done: done, enqueued: time.Now(), topic: topic}
	it.msg = kafka.Message{Topic: p.topics[topic], Key: buf[:klen:klen], Value: buf[klen:], Headers: schemaHeaders, WriterData: it}
	if len(buf) > p.cfg.MaxRecordBytes {
		p.toDLQ(it, e.Original, fmt.Sprintf("record too large: %d bytes encoded, limit %d", len(buf), p.cfg.MaxRecordBytes))
	}
	p.m.buffered.Inc()
	p.queue <- it // never blocks: a slot was taken above
	return nil
}

// toDLQ rewrites it into a dead-letter record carrying value and reason.
func (p *Producer) toDLQ(it *item, value []byte, reason string) {
	headers := []kafka.Header{
		{Key: HeaderReason, Value: []byte(reason)},
		{Key: HeaderTopic, Value: []byte(it.msg.Topic)},
		schemaHeaders[0],
	}
	if limit := p.cfg.MaxRecordBytes - 4096; len(value) > limit {
		headers = append(headers, kafka.Header{Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(value)), 10)})
		value = value[:limit]
	}
	key := it.msg.Key
	buf := append(it.buf[:0:0], key...)
	buf = append(buf, value...)
	it.buf = buf
	it.msg = kafka.Message{Topic: p.dlq, Key: buf[:len(key):len(key)], Value: buf[len(key):], Headers: headers, WriterData: it}
	it.topic = pipeline.TopicDLQ
	p.m.dlq.WithLabelValues(reasonClass(reason)).Inc()
	p.log.Warn("record sent to the dead-letter topic", "topic", string(headers[1].Value), "reason", reason, "dlq", p.dlq)
}

// dispatch hands queued records to the kafka-go writer in order, and the
// records of failed batches again after a backoff.
func (p *Producer) dispatch() {
	defer close(p.stopped)
	batch := make([]kafka.Message, 0, p.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case it := <-p.queue:
			batch = append(batch, it.msg)
		case <-p.retryC:
			batch = p.takeRetries(batch)
		case <-p.stop:
			if !p.drainPending(batch) {
				return
			}
			continue
		}
	fill:
		for len(batch) < p.cfg.BatchSize {
			select {
			case it := <-p.queue:
				batch = append(batch, it.msg)
			default:
				break fill
			}
		}
		p.submit(batch)
	}
}

// drainPending reports whether records remain to be written after Close
// began, appending the next queued one to batch when there is one.
func (p *Producer) drainPending(batch []kafka.Message) bool {
	if len(p.slots) == 0 {
		return false
	}
	select {
	case it := <-p.queue:
		p.submit(append(batch, it.msg))
	case <-p.retryC:
		p.submit(p.takeRetries(batch))
	case <-time.After(10 * time.Millisecond):
		// Records are in flight inside the writer; wait for them.
	}
	return true
}

// submit passes msgs to the writer, retrying while the cluster cannot even
// be asked for metadata (the writer then returns before queueing).
func (p *Producer) submit(msgs []kafka.Message) {
	if len(msgs) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		err := p.w.WriteMessages(context.Background(), msgs...)
		if err == nil {
			return
		}
		p.setReady(err)
		p.m.errors.WithLabelValues("all", "metadata").Inc()
		if attempt == 0 {
			p.log.Warn("kafka unreachable; holding records and retrying", "records", len(msgs), "err", err)
		}
		if !p.wait(backoff.Delay(attempt, p.cfg.MinBackoff, p.cfg.MaxBackoff)) {
			for i := range msgs {
				p.finish(msgs[i].WriterData.(*item), fmt.Errorf("producer closed before kafka acknowledged: %w", err))
			}
			return
		}
	}
}

// complete is kafka-go's Completion callback for one partition batch.
func (p *Producer) complete(msgs []kafka.Message, err error) {
	if len(msgs) == 0 {
		return
	}
	if err == nil {
		p.setReady(nil)
		first := msgs[0].WriterData.(*item)
		p.m.batchSize.Observe(float64(len(msgs)))
		p.m.latency.Observe(time.Since(first.enqueued).Seconds())
		for i := range msgs {
			p.finish(msgs[i].WriterData.(*item), nil)
		}
		return
	}
	p.setReady(err)
	permanent := isPermanent(err)
	var again []*item
	for i := range msgs {
		it := msgs[i].WriterData.(*item)
		p.m.errors.WithLabelValues(it.topic, errorClass(err)).Inc()
		switch {
		case permanent && it.msg.Topic != p.dlq:
			p.toDLQ(it, it.msg.Value, "kafka rejected the record: "+err.Error())
			again = append(again, it)
		case permanent:
			p.log.Error("dead-letter topic rejected a record; it is lost", "err", err, "bytes", len(it.msg.Value))
			p.m.dropped.WithLabelValues("dlq_rejected").Inc()
			p.finish(it, fmt.Errorf("kafka rejected the record and its dead letter: %w", err))
		case p.closedHard():
			p.finish(it, fmt.Errorf("producer closed before kafka acknowledged: %w", err))
		default:
			it.attempts++
			again = append(again, it)
		}
	}
	if len(again) == 0 {
		return
	}
	if !permanent {
		p.log.Warn("produce failed; will retry", "topic", msgs[0].Topic, "records", len(msgs), "err", err)
	}
	p.retryMu.Lock()
	p.retry = append(p.retry, again...)
	p.retryMu.Unlock()
	go func() {
		if permanent || p.wait(backoff.Delay(again[0].attempts-1, p.cfg.MinBackoff, p.cfg.MaxBackoff)) {
			select {
			case p.retryC <- struct{}{}:
			default:
			}
			return
		}
		p.failRetries(err)
	}()
}

// takeRetries moves the records waiting for a retry into batch.
func (p *Producer) takeRetries(batch []kafka.Message) []kafka.Message {
	p.retryMu.Lock()
	for _, it := range p.retry {
		batch = append(batch, it.msg)
	}
	p.retry = p.retry[:0]
	p.retryMu.Unlock()
	return batch
}

// failRetries ends every record waiting for a retry with err.
func (p *Producer) failRetries(err error) {
	p.retryMu.Lock()
	items := p.retry
	p.retry = nil
	p.retryMu.Unlock()
	for _, it := range items {
		p.finish(it, fmt.Errorf("producer closed before kafka acknowledged: %w", err))
	}
}

// finish ends one record's life: it reports to its publisher and frees its
// buffer slot.
func (p *Producer) finish(it *item, err error) {
	if err == nil {
		p.m.produced.WithLabelValues(it.topic).Inc()
	} else {
		p.m.dropped.WithLabelValues("undelivered").Inc()
	}
	if it.done != nil {
		it.done(err)
	}
	it.done = nil
	it.msg = kafka.Message{}
	if cap(it.buf) <= 64<<10 {
		select {
		case p.free <- it:
		default:
		}
	}
	p.m.buffered.Dec()
	<-p.slots
}

// Ready returns nil when the last exchange with Kafka succeeded, else the
// error it failed with.
func (p *Producer) Ready() error {
	if e := p.readyErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (p *Producer) setReady(err error) {
	if err == nil {
		if p.readyErr.Load() != nil {
			p.readyErr.Store(nil)
		}
		return
	}
	err = fmt.Errorf("kafka: %w", err)
	p.readyErr.Store(&err)
}

// Probe asks the brokers for metadata, updating Ready. A process that is
// idle calls it periodically so that readiness follows the cluster.
func (p *Producer) Probe(ctx context.Context) error {
	var err error
	for _, b := range p.cfg.Brokers {
		var conn *kafka.Conn
		d := kafka.Dialer{Timeout: 2 * time.Second}
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			_, err = conn.Brokers()
			conn.Close()
			if err == nil {
				break
			}
		}
	}
	if err != nil || p.Ready() != nil && len(p.slots) == 0 {
		p.setReady(err)
	}
	return err
}

// closedHard reports whether Close's deadline passed.
func (p *Producer) closedHard() bool {
	select {
	case <-p.hard:
		return true
	default:
		return false
	}
}

// wait sleeps for d; it returns false early when Close's deadline passed.
func (p *Producer) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.hard:
		return false
	}
}

// Close stops accepting records, waits until every accepted record is
// acknowledged (or DLQ'd) or ctx ends, then closes the writer. Records
// still unacknowledged at the deadline are reported to their publishers as
// failed, counted and logged.
func (p *Producer) Close(ctx context.Context) error {
	p.closing.Do(func() { close(p.stop) })
	select {
	case <-p.stopped:
		p.w.Close()
		return nil
	case <-ctx.Done():
	}
	pending := len(p.slots)
	close(p.hard)
	p.failRetries(ctx.Err())
	// Batches inside the writer end with an error once its own retries
	// run out; do not wait for them.
	go p.w.Close()
	p.log.Error("closed with records kafka had not acknowledged", "records", pending)
	return fmt.Errorf("kafka producer: %d records not acknowledged before the deadline", pending)
}

// isPermanent says whether Kafka will never accept the records err is about.
func isPermanent(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidMessageSize,
			kafka.InvalidTimestamp, kafka.InvalidRecord, kafka.RecordListTooLarge:
			return true
		}
	}
	var tl kafka.MessageTooLargeError
	return errors.As(err, &tl)
}

// errorClass is a bounded label value for an error.
func errorClass(err error) string {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Title()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "network"
}

// reasonClass turns a DLQ reason into a bounded label value.
func reasonClass(reason string) string {
	switch {
	case len(reason) >= 16 && reason[:16] == "record too large":
		return "too_large"
	default:
		return "rejected"
	}
}
