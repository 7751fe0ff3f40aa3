package tenantsyslog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// ReplayerConfig tunes the replayer's consumer group; zero values take
// the defaults named.
type ReplayerConfig struct {
	// SessionTimeout is how long the group waits for a silent member
	// (default 10s); HeartbeatInterval a tenth of it; RebalanceTimeout
	// how long a rebalance waits for members (default 10s).
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	// FetchMaxWait is how long the broker holds a fetch open waiting for
	// new parked records (default 1s; kafka-go leaves only a quarter of
	// it for the round trip, so short values cause reconnections). Tick
	// is how often catch-ups start and commits happen while nothing new is
	// parked (default 250ms).
	FetchMaxWait time.Duration
	Tick         time.Duration
	// ShutdownTimeout bounds the last commit and the closing of the
	// consumer (default 5s).
	ShutdownTimeout time.Duration
}

// Replayer sends parked events to their destinations when these are up,
// in order per destination, committing the parked topic's offsets in its
// consumer group only up to what is sent (or counted as dropped). A
// destination that is down or slow gets a catch-up reader of its own from
// its first unsent parked record when it is up again, while the others
// go on (package documentation).
type Replayer struct {
	s   *Sink
	cfg ReplayerConfig
	log *slog.Logger

	mu    sync.Mutex
	parts map[int]*pstate
	wg    sync.WaitGroup // catch-ups
}

// pstate is the replayer's view of one partition of the parked topic.
type pstate struct {
	part int
	ctx  context.Context // of the catch-ups; cancelled when the state is dropped
	stop context.CancelFunc

	mu        sync.Mutex
	next      int64 // the next offset the group loop will decide
	done      int64 // the group loop handled everything below, but for pending
	committed int64
	pending   map[string]*pend // by record key (tenant + "\x00" + destination)
}

// forget drops every pending entry (the partition is dropped).
func (ps *pstate) forget() {
	ps.mu.Lock()
	clear(ps.pending)
	ps.mu.Unlock()
	ps.stop()
}

// pend is where a destination's unsent parked records start in a
// partition; a catch-up reader sends them when the destination is up.
type pend struct {
	from    int64
	running bool
}

// Replayer returns the replayer of the sink's parked topic. Run it as a
// stage runner, once.
func (s *Sink) Replayer(cfg ReplayerConfig) *Replayer {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = cfg.SessionTimeout / 10
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = 10 * time.Second
	}
	if cfg.FetchMaxWait <= 0 {
		cfg.FetchMaxWait = time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	rp := &Replayer{s: s, cfg: cfg, log: s.log.With("component", "tenant-replay"), parts: map[int]*pstate{}}
	return rp
}

// Run replays until ctx ends, then commits what was sent and leaves the
// group. It returns nil; Kafka and destination failures are retried.
func (rp *Replayer) Run(ctx context.Context) error {
	c := rp.s.cfg
	// The backlog must be known before the group loop reads it (recover.go).
	for attempt := 0; ; attempt++ {
		err := rp.s.recover(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		d := backoff.Delay(attempt, 100*time.Millisecond, 5*time.Second)
		rp.log.Warn("replay waits for the parked topic", "error", err, "backoff", d)
		if !backoff.Wait(ctx, d) {
			return nil
		}
	}
	errLog := rp.log.With("component", "tenant-replay-kafka")
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers:               c.Brokers,
		GroupID:               c.ReplayGroupID,
		GroupTopics:           []string{c.ParkedTopic},
		Dialer:                c.Dialer,
		MinBytes:              1,
		MaxBytes:              16 << 20,
		MaxWait:               rp.cfg.FetchMaxWait,
		QueueCapacity:         max(100, c.ReplayBatchSize),
		HeartbeatInterval:     rp.cfg.HeartbeatInterval,
		SessionTimeout:        rp.cfg.SessionTimeout,
		RebalanceTimeout:      rp.cfg.RebalanceTimeout,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		ReadLagInterval:       -1,
		StartOffset:           kafka.FirstOffset,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			errLog.Warn(fmt.Sprintf(format, args...))
		}),
	})
	rp.log.Info("replay started", "topic", c.ParkedTopic, "group", c.ReplayGroupID)
	var msgs []kafka.Message
	for ctx.Err() == nil {
		msgs = rp.fetch(ctx, rd, msgs[:0])
		if rd.Stats().Rebalances > 0 {
			rp.dropAll()
		}
		// Every record read counts against the pacer, sent or skipped:
		// reading costs the live path as much.
		if len(msgs) > 0 && rp.s.paced(ctx, len(msgs)) {
			rp.handle(ctx, msgs)
		}
		rp.startCatchups(ctx)
		rp.commit(ctx, rd)
	}
	rp.dropAll()
	rp.wg.Wait()
	rp.commit(ctx, rd)
	done := make(chan struct{})
	go func() { rd.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(rp.cfg.ShutdownTimeout):
		rp.log.Warn("replay consumer did not close in time")
	}
	rp.log.Info("replay stopped")
	return nil
}

// fetch returns the next parked records: it waits up to Tick for one, then takes what arrives within a few milliseconds, up to the batch
// size.
func (rp *Replayer) fetch(ctx context.Context, rd *kafka.Reader, msgs []kafka.Message) []kafka.Message {
	fctx, cancel := context.WithTimeout(ctx, rp.cfg.Tick)
	m, err := rd.FetchMessage(fctx)
	cancel()
	if err != nil {
		return msgs
	}
	msgs = append(msgs, m)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	for len(msgs) < rp.s.cfg.ReplayBatchSize {
		m, err := rd.FetchMessage(wctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// state returns the partition's state, creating it at offset first.
func (rp *Replayer) state(ctx context.Context, part int, first int64) *pstate {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	ps := rp.parts[part]
	if ps == nil {
		cctx, stop := context.WithCancel(ctx)
		ps = &pstate{part: part, ctx: cctx, stop: stop, next: first, done: first, committed: first, pending: map[string]*pend{}}
		rp.parts[part] = ps
	}
	return ps
}

// drop forgets a partition (it moved to another member, or was read
// again from an earlier offset) and stops its catch-ups.
func (rp *Replayer) drop(ps *pstate) {
	rp.mu.Lock()
	if rp.parts[ps.part] == ps {
		delete(rp.parts, ps.part)
	}
	rp.mu.Unlock()
	ps.forget()
}

func (rp *Replayer) dropAll() {
	rp.mu.Lock()
	parts := rp.parts
	rp.parts = map[int]*pstate{}
	rp.mu.Unlock()
	for _, ps := range parts {
		ps.forget()
	}
}

// recordKey returns the key of the destination a parked record is for.
func parkedKey(m *kafka.Message) (tenant, dest string) {
	for _, h := range m.Headers {
		if h.Key == HeaderDestination {
			dest = string(h.Value)
		}
	}
	return string(m.Key), dest
}

// targets returns the routes a parked record goes to: its destination,
// or, when that is gone, the catch-all (counted as removed; none when
// unknown events are dropped).
func (rp *Replayer) targets(snap *snapshot, tenant, dest string) []*route {
	if r := snap.route(tenant, dest); r != nil {
		return []*route{r}
	}
	return rp.s.unresolvedRoutes(snap, reasonRemoved)
}

// sending is one replayed item of the group loop.
type sending struct {
	it  *item
	ps  *pstate
	key string
}

// handle sends a batch of parked records: each to its destination unless
// the destination has a catch-up pending in that partition (then the
// catch-up sends it) or is down (then it gets one). It waits at most
// ReplayTimeout; what is not sent by then is left to a catch-up.
func (rp *Replayer) handle(ctx context.Context, msgs []kafka.Message) {
	snap := rp.s.snap.Load()
	waiters := map[*route]*waiter{}
	var sends []sending
	groups := map[*route][]*item{}
	var order []*route
	seen := map[*pstate]int64{}
	for i := range msgs {
		m := &msgs[i]
		ps := rp.state(ctx, m.Partition, m.Offset)
		ps.mu.Lock()
		if m.Offset < ps.next {
			// Read again from an earlier offset: the group moved the
			// partition and back. Start over from here.
			ps.mu.Unlock()
			rp.drop(ps)
			ps = rp.state(ctx, m.Partition, m.Offset)
			ps.mu.Lock()
		}
		tenant, dest := parkedKey(m)
		key := tenant + "\x00" + dest
		if _, skip := ps.pending[key]; !skip {
			ts := rp.targets(snap, tenant, dest)
			for _, r := range ts {
				if !r.up.Load() {
					ps.pending[key] = &pend{from: m.Offset}
					break
				}
			}
			if _, down := ps.pending[key]; !down {
				for _, r := range ts {
					w := waiters[r]
					if w == nil {
						w = newWaiter()
						waiters[r] = w
					}
					it := newItem(r, w)
					it.msg = append(it.msg, m.Value...)
					it.part, it.off = m.Partition, m.Offset
					sends = append(sends, sending{it, ps, key})
					if len(groups[r]) == 0 {
						order = append(order, r)
					}
					groups[r] = append(groups[r], it)
				}
			}
		}
		ps.next = m.Offset + 1
		seen[ps] = m.Offset + 1
		ps.mu.Unlock()
	}
	var waits []routeWait
	for _, r := range order {
		g, w := groups[r], waiters[r]
		w.add(len(g))
		if r.enqueueReplay(g) {
			waits = append(waits, routeWait{r: r, w: w})
		} else {
			w.n.Add(-int64(len(g)))
			for _, it := range g {
				it.state.Store(stClaimed)
			}
		}
		w.finish()
	}
	// The wait starts once the events are queued: pacing is no reason to
	// leave them to a catch-up.
	waitRoutes(ctx, waits, time.Now().Add(rp.s.cfg.ReplayTimeout), rp.s.cfg.StallTimeout)
	for _, sd := range sends {
		if settle(sd.it) {
			sd.it.r.markReplayed(sd.it.part, sd.it.off)
			sd.it.r.m.replayed.Inc()
		} else {
			sd.ps.mu.Lock()
			if p, ok := sd.ps.pending[sd.key]; !ok || sd.it.off < p.from {
				sd.ps.pending[sd.key] = &pend{from: sd.it.off}
			}
			sd.ps.mu.Unlock()
		}
		sd.it.release()
	}
	for ps, end := range seen {
		ps.mu.Lock()
		ps.done = max(ps.done, end)
		ps.mu.Unlock()
	}
}

// commit commits, per partition, the first offset not yet handled: the
// group loop's position, or the start of a pending catch-up.
func (rp *Replayer) commit(ctx context.Context, rd *kafka.Reader) {
	rp.mu.Lock()
	parts := make([]*pstate, 0, len(rp.parts))
	for _, ps := range rp.parts {
		parts = append(parts, ps)
	}
	rp.mu.Unlock()
	var commits []kafka.Message
	var to []int64
	for _, ps := range parts {
		ps.mu.Lock()
		c := ps.done
		for _, p := range ps.pending {
			c = min(c, p.from)
		}
		if c > ps.committed {
			commits = append(commits, kafka.Message{Topic: rp.s.cfg.ParkedTopic, Partition: ps.part, Offset: c - 1})
			to = append(to, c)
		}
		ps.mu.Unlock()
	}
	if len(commits) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rp.cfg.ShutdownTimeout)
	defer cancel()
	if err := rd.CommitMessages(cctx, commits...); err != nil {
		rp.log.Warn("commit parked offsets; the records will be replayed again", "error", err)
		return
	}
	for _, ps := range parts {
		ps.mu.Lock()
		for j, m := range commits {
			if m.Partition == ps.part && to[j] > ps.committed {
				ps.committed = to[j]
			}
		}
		ps.mu.Unlock()
	}
}

// startCatchups starts a catch-up reader for every pending destination
// that is up again.
func (rp *Replayer) startCatchups(ctx context.Context) {
	snap := rp.s.snap.Load()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, ps := range rp.parts {
		ps.mu.Lock()
		for key, p := range ps.pending {
			if p.running {
				continue
			}
			tenant, dest := splitKey(key)
			up := true
			for _, r := range rp.peekTargets(snap, tenant, dest) {
				up = up && r.up.Load()
			}
			if !up {
				continue
			}
			p.running = true
			rp.wg.Add(1)
			go rp.catchUp(ps, key, p)
		}
		ps.mu.Unlock()
	}
}

// peekTargets is targets without counting.
func (rp *Replayer) peekTargets(snap *snapshot, tenant, dest string) []*route {
	if r := snap.route(tenant, dest); r != nil {
		return []*route{r}
	}
	return snap.catchAll
}

func splitKey(key string) (tenant, dest string) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:]
		}
	}
	return key, ""
}

// catchUp sends one destination's parked records of one partition, from
// p.from, with its own reader, until it reaches the group loop's position;
// then the group loop sends that destination's records again. It stops
// early (leaving p.from where it got) when the destination goes down.
func (rp *Replayer) catchUp(ps *pstate, key string, p *pend) {
	defer rp.wg.Done()
	ctx := ps.ctx
	tenant, dest := splitKey(key)
	c := rp.s.cfg
	ps.mu.Lock()
	from := p.from
	ps.mu.Unlock()
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.Brokers, Topic: c.ParkedTopic, Partition: ps.part, Dialer: c.Dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: rp.cfg.FetchMaxWait, ReadLagInterval: -1,
	})
	defer rd.Close()
	stopped := func() {
		ps.mu.Lock()
		p.running = false
		ps.mu.Unlock()
	}
	if err := rd.SetOffset(from); err != nil {
		stopped()
		return
	}
	rp.log.Info("catching up a destination's parked events", "tenant", tenant, "destination", dest, "partition", ps.part, "from", from)
	var msgs []kafka.Message
	for {
		ps.mu.Lock()
		if ctx.Err() != nil || ps.pending[key] != p {
			ps.mu.Unlock()
			return
		}
		if p.from >= ps.next {
			delete(ps.pending, key)
			ps.mu.Unlock()
			rp.log.Info("destination caught up with its parked events", "tenant", tenant, "destination", dest, "partition", ps.part)
			return
		}
		limit := ps.next
		want := min(int64(256), limit-p.from)
		ps.mu.Unlock()
		if !rp.s.paced(ctx, int(want)) {
			stopped()
			return
		}
		msgs = msgs[:0]
		var last int64 = -1
		for read := int64(0); read < want; read++ {
			m, err := rd.FetchMessage(ctx)
			if err != nil {
				stopped()
				return
			}
			if m.Offset >= limit {
				// Offsets skipped a gap: this record is the group loop's.
				// Read it again next round.
				if err := rd.SetOffset(m.Offset); err != nil {
					stopped()
					return
				}
				last = m.Offset - 1
				break
			}
			last = m.Offset
			if t, d := parkedKey(&m); t == tenant && d == dest {
				msgs = append(msgs, m)
			}
		}
		snap := rp.s.snap.Load()
		sentThrough, ok := rp.sendAll(ctx, snap, tenant, dest, msgs)
		ps.mu.Lock()
		switch {
		case ok:
			p.from = max(p.from, last+1)
		case sentThrough >= 0:
			p.from = max(p.from, sentThrough+1)
		}
		ps.mu.Unlock()
		if !ok {
			stopped()
			return
		}
	}
}

// sendAll sends a catch-up's records to their targets and waits for all
// of them. ok is true when every one was sent; otherwise sentThrough is
// the offset up to which everything was (-1: none).
func (rp *Replayer) sendAll(ctx context.Context, snap *snapshot, tenant, dest string, msgs []kafka.Message) (sentThrough int64, ok bool) {
	if len(msgs) == 0 {
		return -1, true
	}
	ts := rp.targets(snap, tenant, dest)
	if len(ts) == 0 {
		return -1, true // dropped, counted
	}
	for {
		w := newWaiter()
		var items []*item
		for _, r := range ts {
			g := make([]*item, 0, len(msgs))
			for i := range msgs {
				it := newItem(r, w)
				it.msg = append(it.msg, msgs[i].Value...)
				it.part, it.off = msgs[i].Partition, msgs[i].Offset
				g = append(g, it)
			}
			w.add(len(g))
			if !r.enqueueReplay(g) {
				w.n.Add(-int64(len(g)))
				for _, it := range g {
					it.state.Store(stClaimed)
				}
			}
			items = append(items, g...)
		}
		w.finish()
		select {
		case <-w.done:
		case <-ctx.Done():
		}
		sentThrough, ok = int64(-1), true
		full := false
		for i, it := range items {
			sent := settle(it)
			if it.state.Load() == stClaimed && !sent {
				full = true
			}
			if sent {
				it.r.markReplayed(it.part, it.off)
				it.r.m.replayed.Inc()
			}
			if ok && !sent {
				ok = false
			}
			if ok && i < len(msgs) {
				sentThrough = it.off
			}
			it.release()
		}
		if ok || ctx.Err() != nil {
			return sentThrough, ok
		}
		down := false
		for _, r := range ts {
			down = down || !r.up.Load()
		}
		if down || !full {
			return sentThrough, false
		}
		// A full replay queue: wait a little and send the batch again.
		if !backoff.Wait(ctx, 50*time.Millisecond) {
			return sentThrough, false
		}
	}
}
