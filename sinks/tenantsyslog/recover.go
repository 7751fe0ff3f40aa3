package tenantsyslog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
)

// Restarts. Which destinations are parking lives in memory: a process
// that starts while the parked topic holds events not yet replayed (its
// predecessor crashed, or stopped with a destination down) does not know
// whom they are for, and if it sent those destinations' new events live,
// the replay would deliver the older parked ones after them.
//
// So before its first batch the sink reads where the replay group stands
// in each partition of the parked topic and where each partition ends. A
// partition with records past the group's offset holds a backlog, and
// every destination whose tenant's records go to that partition (the
// parker's murmur2 of the tenant id) starts parking behind a mark at the
// backlog's last offset: its new events are parked after the backlog, and
// it goes live as any parking destination does, once the replay has sent
// everything up to its mark. Its first new event, parked after the
// backlog, replaces the mark, so a destination that had nothing in the
// backlog waits only for that event's replay, not for the other
// destinations' backlog (which may be waiting for a dead endpoint). When
// another process replays the partition, its commits pass the mark
// (Sink.watch).

// backlog is the parked topic's state when the sink started. It does not
// change once built.
type backlog struct {
	ids  []int         // the partitions, sorted, as the parker's balancer sees them
	ends map[int]int64 // partitions with a backlog: where it ends
}

// partition returns the parked partition of a tenant's records.
func (b *backlog) partition(keyBytes []byte) int {
	if len(b.ids) == 0 {
		return -1
	}
	return kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: keyBytes}, b.ids...)
}

// recover reads the backlog once; until it succeeds, Write and the
// replayer do not start. Destinations of partitions with a backlog start
// parking.
func (s *Sink) recover(ctx context.Context) error {
	if s.backlog.Load() != nil {
		return nil
	}
	s.recovering.Lock()
	defer s.recovering.Unlock()
	if s.backlog.Load() != nil {
		return nil
	}
	b, err := s.readBacklog(ctx)
	if err != nil {
		return fmt.Errorf("read the parked topic's backlog: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backlog.Store(b)
	for p, end := range b.ends {
		s.log.Info("parked events from before this start wait for replay; the destinations of their partition park behind them",
			"partition", p, "end", end)
	}
	if snap := s.snap.Load(); snap != nil {
		for _, r := range snap.byKey {
			s.markBacklog(b, r)
		}
	}
	return nil
}

func (s *Sink) readBacklog(ctx context.Context) (*backlog, error) {
	topic := s.cfg.ParkedTopic
	client := &kafka.Client{Addr: kafka.TCP(s.cfg.Brokers...), Transport: s.cfg.Transport}
	b := &backlog{ends: map[int]int64{}}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(md.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %s: %d topics", topic, len(md.Topics))
	}
	if err := md.Topics[0].Error; err != nil {
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return b, nil // nothing was ever parked
		}
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		b.ids = append(b.ids, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	slices.Sort(b.ids)
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.cfg.ReplayGroupID, Topics: map[string][]int{topic: b.ids}})
	if err != nil {
		return nil, err
	}
	committed := map[int]int64{}
	switch {
	case errors.Is(of.Error, kafka.GroupIdNotFound):
		// The replay never committed (the embedded broker says so; Kafka
		// answers -1 for each partition).
	case of.Error != nil:
		return nil, fmt.Errorf("committed offsets of %s: %w", s.cfg.ReplayGroupID, of.Error)
	}
	for _, p := range of.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("committed offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		from, ok := committed[p.Partition]
		if !ok || from < p.FirstOffset {
			from = p.FirstOffset // none committed, or removed by retention
		}
		if p.LastOffset > from {
			b.ends[p.Partition] = p.LastOffset
		}
	}
	return b, nil
}

// markBacklog makes a destination whose partition holds a backlog park
// behind its last offset, unless it already waits for a later one (a
// route that inherited its predecessor's state). s.mu is held (recover,
// SetRegistry).
func (s *Sink) markBacklog(b *backlog, r *route) {
	p := b.partition(r.keyBytes)
	end, ok := b.ends[p]
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastPark.set && r.lastPark.part == p && r.lastPark.off >= end-1 {
		return
	}
	r.lastPark = parkPos{part: p, off: end - 1, set: true}
	if r.mode.Load() != modeParking {
		r.setMode(modeParking)
	}
}
