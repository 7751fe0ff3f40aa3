package stage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Headers of a DLQ record. The record keeps the original key, value and
// headers; these say why and where it came from, so it can be inspected and
// replayed (to vpipe-topic) once the cause is fixed.
const (
	HeaderReason    = "vpipe-reason"    // the error text
	HeaderStage     = "vpipe-stage"     // Config.Name of the stage that gave up
	HeaderTopic     = "vpipe-topic"     // the record's topic
	HeaderPartition = "vpipe-partition" // its partition, decimal
	HeaderOffset    = "vpipe-offset"    // its offset, decimal
	// HeaderValueDropped is set, to the original value's length in bytes,
	// when the value was too large for the DLQ topic and was left out; the
	// original is still at vpipe-topic/partition/offset until retention
	// removes it.
	HeaderValueDropped = "vpipe-value-dropped"
)

// maxReasonLen caps the vpipe-reason header.
const maxReasonLen = 4096

// dlqBatchBytes is the DLQ producer's request size limit (kafka-go's
// default, and about Kafka's default message.max.bytes). A dead letter
// larger than this loses its value rather than wedging the partition.
const dlqBatchBytes = 1 << 20

// deadLetter is a record on its way to the DLQ.
type deadLetter struct {
	msg    *kafka.Message
	reason string // one of the Reason* constants: the metric label
	err    error
}

func (r *Runner) newDLQWriter() *kafka.Writer {
	w := &kafka.Writer{
		Addr:         kafka.TCP(r.cfg.Brokers...),
		Topic:        r.cfg.DLQTopic,
		Balancer:     &kafka.Hash{}, // keyed by the original key (DESIGN.md)
		RequiredAcks: kafka.RequireAll,
		BatchBytes:   dlqBatchBytes,
		BatchTimeout: time.Millisecond, // writes are synchronous: do not linger
		// AllowAutoTopicCreation stays off: a missing DLQ topic is a
		// deployment error, reported (and retried) rather than papered over
		// with a topic of default settings.
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			r.log.Warn("dlq producer: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
		}),
	}
	if d := r.cfg.Dialer; d != nil {
		w.Transport = &kafka.Transport{
			DialTimeout: d.Timeout,
			ClientID:    d.ClientID,
			TLS:         d.TLS,
			SASL:        d.SASLMechanism,
		}
	}
	return w
}

// sendDLQ writes dead to the DLQ topic, retrying until every record is
// acknowledged (acks=all) or ctx ends; it reports whether they all were.
// A record that reached neither the sink nor the DLQ is never committed.
func (r *Runner) sendDLQ(ctx context.Context, dead []deadLetter) bool {
	pending := make([]kafka.Message, len(dead))
	for i, d := range dead {
		pending[i] = r.dlqMessage(d)
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		err := r.dlq.WriteMessages(ctx, pending...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			failed := pending[:0]
			for i, werr := range werrs {
				if werr == nil {
					continue
				}
				m := pending[i]
				if errors.Is(werr, kafka.MessageSizeTooLarge) {
					dropValue(&m)
				}
				failed = append(failed, m)
			}
			pending = failed
		}
		r.m.dlqErrs.Inc()
		d := backoff.Delay(attempt, r.cfg.MinBackoff, r.cfg.MaxBackoff)
		r.log.Error("DLQ write failed; retrying (the batch is not committed until it succeeds)",
			"records", len(pending), "attempt", attempt+1, "backoff", d, "error", err)
		if !backoff.Wait(ctx, d) {
			return false
		}
	}
	for _, d := range dead {
		r.m.dlq[d.reason].Inc()
	}
	r.log.Warn("records sent to the DLQ", "records", len(dead), "topic", r.cfg.DLQTopic,
		"first_reason", dead[0].reason, "first_error", dead[0].err.Error())
	return true
}

// dlqMessage builds the DLQ record for d: the original key, value and
// headers (except vpipe-* headers that it sets itself) plus the vpipe-*
// headers.
func (r *Runner) dlqMessage(d deadLetter) kafka.Message {
	m := d.msg
	reason := d.err.Error()
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	h := make([]kafka.Header, 0, len(m.Headers)+5)
	for _, oh := range m.Headers {
		switch oh.Key {
		case HeaderReason, HeaderStage, HeaderTopic, HeaderPartition, HeaderOffset, HeaderValueDropped:
			continue
		}
		h = append(h, oh)
	}
	h = append(h,
		kafka.Header{Key: HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderStage, Value: []byte(r.cfg.Name)},
		kafka.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
	)
	out := kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
	if dlqSize(&out) > dlqBatchBytes {
		dropValue(&out)
	}
	return out
}

// dlqSize is an upper bound of m's encoded size in a record batch.
func dlqSize(m *kafka.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 16 + len(h.Key) + len(h.Value)
	}
	return n
}

// dropValue leaves m's value out, saying so in a header, when it is too
// large for the DLQ topic: the partition must not wedge on it.
func dropValue(m *kafka.Message) {
	if m.Value == nil {
		return
	}
	m.Headers = append(m.Headers, kafka.Header{Key: HeaderValueDropped, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
	m.Value = nil
}
