package tenantsyslog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/vpipe/vpipe/pipeline/backoff"
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
		// more only delays the batch's acknowledgement, which the
		// batch's commit waits for.
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

// Retries of a failed park.
const (
	parkMinBackoff = 50 * time.Millisecond
	parkMaxBackoff = 5 * time.Second
)

// parkJob is a part of one batch to park, in record order. The park loop
// takes jobs in the order they were queued and finishes one (every item
// acknowledged) before it starts the next, so that a park that must be
// retried is never overtaken by a later batch's records of the same
// tenant.
type parkJob struct {
	items []*item
	done  chan struct{} // closed when the job is finished
	err   error         // set before done closes: not parked, the sink closed
}

// queuePark hands items (their ownership included) to the park loop and
// counts them as unacknowledged on their routes until it parked them, so
// that no route goes live before its parked events are acknowledged
// (route.caughtUp). It fails, releasing the items, when ctx ends or the
// sink closes first.
func (s *Sink) queuePark(ctx context.Context, items []*item) (*parkJob, error) {
	job := &parkJob{items: items, done: make(chan struct{})}
	for _, it := range items {
		it.r.unacked.Add(1)
	}
	select {
	case s.parks <- job:
		return job, nil
	case <-ctx.Done():
		s.finishJob(job, ctx.Err())
		return nil, ctx.Err()
	case <-s.ctx.Done():
		s.finishJob(job, errSinkClosed)
		return nil, errSinkClosed
	}
}

var errSinkClosed = errors.New("tenant-forward sink closed")

// wait returns when the job is finished or ctx ends.
func (j *parkJob) wait(ctx context.Context) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parkLoop parks the queued jobs in order until the sink closes.
func (s *Sink) parkLoop() {
	defer s.parking.Done()
	for {
		select {
		case job := <-s.parks:
			s.parkJob(job)
		case <-s.ctx.Done():
			for {
				select {
				case job := <-s.parks:
					s.finishJob(job, errSinkClosed)
				default:
					return
				}
			}
		}
	}
}

// parkJob parks job's items, retrying with backoff until Kafka
// acknowledged every one or the sink closes. A retry parks again, for
// each route, everything from its first unacknowledged item on, so that
// each of a route's records has a copy parked after every record before
// it, even when kafka-go wrote a later batch of the partition after
// failing an earlier one; such a later record is replayed twice, first
// out of order (the copies parked twice are counted as resent).
func (s *Sink) parkJob(job *parkJob) {
	todo := job.items
	var failed map[*route]bool
	for attempt := 0; ; attempt++ {
		err := s.parker.park(s.ctx, todo)
		if err == nil {
			break
		}
		if s.ctx.Err() != nil {
			s.finishJob(job, errSinkClosed)
			return
		}
		s.m.parkErrs.Inc()
		d := backoff.Delay(attempt, parkMinBackoff, parkMaxBackoff)
		s.log.Warn("park failed; retrying", "attempt", attempt+1, "backoff", d, "error", err)
		if !backoff.Wait(s.ctx, d) {
			s.finishJob(job, errSinkClosed)
			return
		}
		if failed == nil {
			failed = map[*route]bool{}
		}
		clear(failed)
		var again []*item
		for _, it := range job.items {
			if !it.parked {
				failed[it.r] = true
			}
			if failed[it.r] {
				if it.parked {
					it.r.m.resent.Inc()
				}
				again = append(again, it)
			}
		}
		todo = again
	}
	// Under s.mu, so that a route replacing one of these (SetRegistry)
	// either inherits where they were parked or is told itself.
	s.mu.Lock()
	snap := s.snap.Load()
	for _, it := range job.items {
		it.r.noteParked(it.parkPart, it.parkOff)
		if cur := snap.byKey[it.r.key]; cur != nil && cur != it.r {
			cur.noteParked(it.parkPart, it.parkOff)
		}
		it.r.m.parked.Inc()
	}
	s.mu.Unlock()
	s.finishJob(job, nil)
}

// finishJob releases the job's items and ends its wait; err nil when
// they were parked.
func (s *Sink) finishJob(job *parkJob, err error) {
	for _, it := range job.items {
		it.r.unacked.Add(-1)
		it.release()
	}
	clear(job.items)
	job.err = err
	close(job.done)
}
