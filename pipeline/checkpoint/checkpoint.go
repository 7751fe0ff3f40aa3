// Package checkpoint keeps the positions of vpipe's sources (the last
// vCenter event key, a VCO time window, an NSX group's members) on a
// compacted Kafka topic, `<prefix>checkpoints` (DESIGN.md, "Topics and
// keys"), so that a restarted process, or another process that takes the
// source over, resumes where the last one confirmed. It works on any Kafka
// cluster, the embedded broker included, and needs no other storage.
//
// One record per Put, keyed by the source id; the topic is compacted, so
// the latest value of each key is what survives. Open reads the topic once
// into memory; Get answers from memory; Put writes synchronously (acks=all)
// and then updates memory.
package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Store is the set of checkpoints of one topic. Safe for concurrent use.
//
// Get sees what this Store read at Open and what it Put since; it does not
// follow Puts of other processes made after Open. A source is polled by
// one process at a time: the process that takes it over Opens its own
// Store (so it reads the previous owner's last Put).
type Store struct {
	topic string
	w     *kafka.Writer

	mu     sync.RWMutex
	vals   map[string]entry
	closed bool
}

// entry is a key's latest value (nil: deleted) and when it was written,
// to choose between records of one key found in more than one partition
// (after the partition count changed).
type entry struct {
	value []byte
	time  time.Time
}

// Partitions and replication of the topic when Open has to create it. A
// single partition keeps one key's records in order whatever the
// partitioner; checkpoints are few and small.
const (
	createPartitions = 1
	maxReplication   = 3
)

// Open connects to brokers, creates topic (compacted) when it does not
// exist, and reads every record in it up to its current end, keeping the
// latest value of each key. It returns when that is done or ctx ends. The
// caller must Close the Store.
func Open(ctx context.Context, brokers []string, topic string) (*Store, error) {
	if len(brokers) == 0 {
		return nil, errors.New("checkpoint: no brokers")
	}
	if topic == "" {
		return nil, errors.New("checkpoint: no topic")
	}
	parts, err := ensureTopic(ctx, brokers, topic)
	if err != nil {
		return nil, fmt.Errorf("checkpoint topic %s: %w", topic, err)
	}
	s := &Store{
		topic: topic,
		vals:  map[string]entry{},
		w: &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: time.Millisecond, // Put is synchronous: do not linger
			MaxAttempts:  3,
		},
	}
	for _, p := range parts {
		if err := s.readPartition(ctx, p); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("checkpoint topic %s partition %d: %w", topic, p.ID, err)
		}
	}
	return s, nil
}

// Get returns the latest value stored under key, and whether there is one.
// The slice must not be modified.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.vals[key]
	return e.value, e.value != nil
}

// Put stores value under key: it returns nil once every in-sync replica
// has the record (acks=all), and only then does Get return value. An empty
// (or nil) value deletes the key: it is written as a tombstone, which
// compaction removes later.
// Put blocks; it returns ctx's error if ctx ends first, in which case the
// record may or may not have been written. Put retries a failed write a
// few times; its error is retryable.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return errors.New("checkpoint: store closed")
	}
	now := time.Now()
	if len(value) == 0 {
		value = nil
	}
	msg := kafka.Message{Key: []byte(key), Value: value, Time: now}
	if err := s.w.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("write checkpoint %q to %s: %w", key, s.topic, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var v []byte
	if value != nil {
		v = append(make([]byte, 0, len(value)), value...)
	}
	s.vals[key] = entry{value: v, time: now}
	return nil
}

// Close releases the Store's connections. Get keeps answering from memory;
// Put fails.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.w.Close()
}

// ensureTopic returns topic's partitions, creating the topic compacted
// when it does not exist.
func ensureTopic(ctx context.Context, brokers []string, topic string) ([]kafka.Partition, error) {
	var d kafka.Dialer
	var lastErr error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = err
			continue
		}
		parts, err := partitionsOf(ctx, conn, topic)
		if err == nil && len(parts) > 0 {
			conn.Close()
			return parts, nil
		}
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			conn.Close()
			lastErr = err
			continue
		}
		err = createTopic(ctx, &d, conn, topic)
		conn.Close()
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			lastErr = fmt.Errorf("create: %w", err)
			continue
		}
		return waitPartitions(ctx, &d, b, topic)
	}
	return nil, lastErr
}

func partitionsOf(ctx context.Context, conn *kafka.Conn, topic string) ([]kafka.Partition, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn.ReadPartitions(topic)
}

// createTopic creates topic on the controller, compacted.
func createTopic(ctx context.Context, d *kafka.Dialer, conn *kafka.Conn, topic string) error {
	ctrl, err := conn.Controller()
	if err != nil {
		return err
	}
	brokers, err := conn.Brokers()
	if err != nil {
		return err
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return err
	}
	defer cc.Close()
	if dl, ok := ctx.Deadline(); ok {
		cc.SetDeadline(dl)
	}
	return cc.CreateTopics(kafka.TopicConfig{
		Topic:             topic,
		NumPartitions:     createPartitions,
		ReplicationFactor: min(len(brokers), maxReplication),
		ConfigEntries:     []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	})
}

// waitPartitions waits until the metadata of a new topic lists its
// partitions.
func waitPartitions(ctx context.Context, d *kafka.Dialer, broker, topic string) ([]kafka.Partition, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		conn, err := d.DialContext(ctx, "tcp", broker)
		if err == nil {
			parts, perr := partitionsOf(ctx, conn, topic)
			conn.Close()
			if perr == nil && len(parts) > 0 {
				return parts, nil
			}
			err = perr
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for new topic: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// readPartition reads partition p from its first to its last offset (as
// they were when it started) into s.vals.
func (s *Store) readPartition(ctx context.Context, p kafka.Partition) error {
	var d kafka.Dialer
	conn, err := d.DialLeader(ctx, "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), s.topic, p.ID)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return err
	}
	if last <= first {
		return nil
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		return err
	}
	empty := 0
	for off := first; off < last; {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := conn.ReadBatch(1, 16<<20)
		n := 0
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			n++
			off = m.Offset + 1
			s.apply(m)
			if off >= last {
				break
			}
		}
		if err := batch.Close(); err != nil {
			return err
		}
		if n > 0 {
			empty = 0
			continue
		}
		// Nothing readable up to last: the rest are control records or
		// were removed by compaction.
		if empty++; empty == 3 {
			return nil
		}
	}
	return nil
}

// apply keeps m if it is newer than what s holds for its key. A tombstone
// is kept as a nil value, so that an older record of the key in another
// partition does not come back.
func (s *Store) apply(m kafka.Message) {
	k := string(m.Key)
	if cur, ok := s.vals[k]; ok && m.Time.Before(cur.time) {
		return
	}
	s.vals[k] = entry{value: m.Value, time: m.Time}
}
