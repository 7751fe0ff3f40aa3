package tenantsyslog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Headers of a parked record. Its key is the tenant id (so one tenant's
// parked events stay in order on one partition) and its value the
// formatted message, as the destination would have received it.
const (
	HeaderDestination = "vpipe-destination" // the destination name
	HeaderEventID     = "vpipe-event-id"    // event.id of the message's event
)

// parker writes items to the parked topic, acks=all, and records where
// each one went.
type parker struct {
	w       *kafka.Writer
	msgs    []kafka.Message
	headers []kafka.Header // the messages' headers, two each, in one allocation
}

func newParker(brokers []string, topic string, transport kafka.RoundTripper) *parker {
	p := &parker{}
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{}, // the Java client's partitioner, as kafkaout
		RequiredAcks: kafka.RequireAll,
		// lz4: a parked record is a syslog message, which compresses
		// well; less for the brokers to store and the replay to fetch.
		Compression: kafka.Lz4,
		// Batches of at most 1024 records or 1 MiB, one in flight per
		// partition, written in order, so a tenant's records keep their
		// order. (kafka-go allocates BatchSize messages for every batch:
		// 65536 cost 16 MiB a park call, cleared, and the caches of the
		// cores that the live path shares.)
		BatchSize:  1024,
		BatchBytes: 1 << 20,
		// A park call hands over all its records at once: lingering for
		// more only delays the batch's acknowledgement, which Write
		// waits for.
		BatchTimeout:           10 * time.Microsecond,
		MaxAttempts:            3,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		AllowAutoTopicCreation: true,
		Transport:              transport,
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				return
			}
			for i := range msgs {
				if it, ok := msgs[i].WriterData.(*item); ok {
					it.parkPart, it.parkOff, it.parked = msgs[i].Partition, msgs[i].Offset, true
				}
			}
		},
	}
	return p
}

// park writes items in order and waits for Kafka's acknowledgement. On
// error some items may be parked (their parked field is set) and others
// not.
func (p *parker) park(ctx context.Context, items []*item) error {
	msgs, hs := p.msgs[:0], p.headers[:0]
	for _, it := range items {
		hs = append(hs, kafka.Header{Key: HeaderDestination, Value: it.r.destBytes}, kafka.Header{Key: HeaderEventID, Value: it.eventID})
	}
	for i, it := range items {
		msgs = append(msgs, kafka.Message{
			Key: it.r.keyBytes, Value: it.msg, Headers: hs[2*i : 2*i+2 : 2*i+2], WriterData: it,
		})
	}
	err := p.w.WriteMessages(ctx, msgs...)
	clear(msgs)
	clear(hs)
	p.msgs, p.headers = msgs[:0], hs[:0]
	if err != nil {
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) {
			return fmt.Errorf("park %d of %d events: %w", werrs.Count(), len(items), werrs)
		}
		return fmt.Errorf("park %d events: %w", len(items), err)
	}
	return nil
}

func (p *parker) close() error { return p.w.Close() }
