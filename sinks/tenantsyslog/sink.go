// Package tenantsyslog is the sink of the tenant-forward stage: it sends
// each firewall event to the syslog destinations of the tenant its log
// label resolves to (pipeline/tenants), and only to them.
//
// # Destinations
//
// UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425) with a CA, a client
// certificate and a server name; messages in RFC 5424 with an SD-ELEMENT of
// the parsed fields, RFC 3164, or the event's JSON; octet-counting or
// newline framing; per-destination rate limit; reconnection with
// exponential backoff.
//
// # Isolation and parking
//
// Every destination has its own bounded queue and sender goroutine. Write
// queues each destination's events at once and waits for the senders, at
// most Config.DeliverTimeout, and less for a destination whose sender has
// been blocked for Config.StallTimeout (in a write, a connection attempt
// or its rate limit). A destination that is down, whose queue is full, or
// that has not sent its events in time is switched to parking: its unsent
// events, and its new ones from then on, go to the parked topic (keyed by
// tenant, acks=all, lz4), so Write returns within DeliverTimeout whatever
// one tenant's endpoint does, and the stage commits offsets without losing
// anything. The events of parking destinations are parked while the
// others are formatted and sent. Parks run on a goroutine of their own,
// one batch after the other, retried until acknowledged: WritePipelined
// (stage.PipelinedSink) returns without waiting for its batch's park, and
// the stage commits the batch once it is acknowledged.
//
// The Replayer consumes the parked topic (its own consumer group) and
// sends parked events to their destination in order once it is up. A
// destination that is down or slow during replay does not hold up the
// others sharing its partition: the replayer remembers where that
// destination's parked events start, goes on with the others, and reads
// that destination's part again with its own reader when it is back
// (committing no further than that point meanwhile). While the stage is
// behind with live events, the replay reads at most Config.ReplayShare
// parked records per live one (pace.go): a backlog must not slow the
// other tenants' live traffic on the same cores.
//
// A parking destination goes live again only after the replay has sent
// every event it parked (in this process: exactly; across processes: once
// the replay group committed past its last parked record); until then its
// new events are parked behind the others, so a tenant receives its
// events in the order they were parked, and Write never waits for a
// replay. A process that starts while the parked topic holds a backlog
// parks the new events of the destinations that may have some in it
// until the replay has sent it (recover.go), so the order holds across a
// crash too.
//
// # Delivery
//
// Delivered means written to the socket, as for any syslog sender; an
// event written just before an endpoint dies may be lost in its kernel
// buffers, and TCP cannot tell (RELP could). Events parked while their
// write was still in progress may arrive twice (vpipe_tenant_resent_total);
// after a crash, events between the last commit and the crash are sent
// again (at-least-once).
package tenantsyslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

// Unknown-label policies (Config.Unknown).
const (
	UnknownDrop     = "drop"      // count and commit
	UnknownCatchAll = "catch_all" // send to Config.CatchAll
)

// Config configures a Sink and its Replayer. Zero values take the
// defaults named.
type Config struct {
	// Brokers is the Kafka bootstrap list. Required.
	Brokers []string
	// ParkedTopic is the parked topic, with its prefix ("vpipe.parked").
	// Required.
	ParkedTopic string
	// ReplayGroupID is the replayer's consumer group (default
	// "vpipe-tenant-forward-replay").
	ReplayGroupID string
	// QueueSize bounds each destination's queue (default 4096 events).
	QueueSize int
	// DeliverTimeout is the longest Write waits for destinations before
	// parking what they have not sent (default 1s). StallTimeout ends the
	// wait for one destination early: one whose sender has been blocked
	// this long in a write, a connection attempt or the rate limit is
	// slow, and its events are parked (default 100ms).
	DeliverTimeout time.Duration
	StallTimeout   time.Duration
	// Unknown is UnknownDrop (default) or UnknownCatchAll.
	Unknown string
	// CatchAll are the provider's destinations for what resolves to no
	// tenant destination.
	CatchAll []tenants.Destination
	// ReplayBatchSize is the most parked records the replayer handles at
	// once (default 500); ReplayTimeout how long it waits for a destination
	// before leaving its events to a catch-up reader (default 1s).
	ReplayBatchSize int
	ReplayTimeout   time.Duration
	// ReplayShare is how many parked records the replay may read per
	// live record the stage handles while the stage is behind (default
	// 0.1; negative: no pacing). See pacer.
	ReplayShare float64
	// WatchInterval is how often a destination waiting for another
	// process's replay checks its progress (default 1s).
	WatchInterval time.Duration
	// Transport, if set, carries the parked topic's produce requests
	// (TLS, SASL); Dialer the replayer's.
	Transport kafka.RoundTripper
	Dialer    *kafka.Dialer
}

func (c *Config) setDefaults() {
	if c.ReplayGroupID == "" {
		c.ReplayGroupID = "vpipe-tenant-forward-replay"
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4096
	}
	if c.DeliverTimeout <= 0 {
		c.DeliverTimeout = time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 100 * time.Millisecond
	}
	if c.Unknown == "" {
		c.Unknown = UnknownDrop
	}
	if c.ReplayBatchSize <= 0 {
		c.ReplayBatchSize = 500
	}
	if c.ReplayTimeout <= 0 {
		c.ReplayTimeout = time.Second
	}
	if c.ReplayShare == 0 {
		c.ReplayShare = 0.1
	}
	if c.WatchInterval <= 0 {
		c.WatchInterval = time.Second
	}
}

// snapshot is what Write routes with: a registry and the routes of its
// tenants. Immutable once published.
type snapshot struct {
	reg      *tenants.Registry
	routes   [][]*route        // by tenant index
	catchAll []*route          // nil unless Unknown is catch_all
	byKey    map[string]*route // tenant + "\x00" + destination, catch-all included
}

func (s *snapshot) route(tenant, dest string) *route { return s.byKey[tenant+"\x00"+dest] }

// Sink implements stage.Sink for the tenant-forward stage. Create it with
// New, give it tenants with SetRegistry, and Close it after the stage
// runners stopped.
type Sink struct {
	cfg    Config
	m      *Metrics
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex // SetRegistry, Close, and noting where parks went
	snap     atomic.Pointer[snapshot]
	parker   *parker
	parks    chan *parkJob // to the park loop
	parking  sync.WaitGroup
	pace     *pacer // nil: the replay is not paced
	watching sync.WaitGroup
	closed   bool

	backlog    atomic.Pointer[backlog] // nil until recover read it (recover.go)
	recovering sync.Mutex              // held while reading it

	unresolved [5][2]prometheus.Counter // by reason, result

	// Owned by Write (the runner calls it from one goroutine at a time).
	gen        uint64 // Write's count, to mark the routes a batch touches
	workers    []*worker
	parkWorker *worker    // formats the events of parking destinations
	routes     [][]*route // each record's destinations
	live       []*item
	touched    []*route
	waits      []routeWait
	late       []*item // parked after the wait: not sent in time
}

// New returns a sink with an empty registry (every event unresolved until
// SetRegistry) and starts its catch-all senders. m nil creates unregistered
// metrics; log nil discards. The caller must Close it.
func New(cfg Config, m *Metrics, log *slog.Logger) (*Sink, error) {
	cfg.setDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("tenant-forward sink: no brokers")
	}
	if cfg.ParkedTopic == "" {
		return nil, errors.New("tenant-forward sink: no parked topic")
	}
	if cfg.Unknown != UnknownDrop && cfg.Unknown != UnknownCatchAll {
		return nil, fmt.Errorf("tenant-forward sink: unknown %q: want drop or catch_all", cfg.Unknown)
	}
	if cfg.Unknown == UnknownCatchAll && len(cfg.CatchAll) == 0 {
		return nil, errors.New("tenant-forward sink: unknown is catch_all but no catch-all destination")
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg: cfg, m: m, log: log.With("component", "tenant-forward"),
		parker: newParker(cfg.Brokers, cfg.ParkedTopic, cfg.Transport),
		// Room for the jobs (two a batch) of the batches the stage may
		// have outstanding (stage.PipelinedSink) and the one it writes.
		parks: make(chan *parkJob, 8),
	}
	for range min(4, max(1, runtime.GOMAXPROCS(0))) {
		s.workers = append(s.workers, &worker{envelope: syslog.NewParser(syslog.Options{}), msgOf: -1})
	}
	s.parkWorker = &worker{envelope: syslog.NewParser(syslog.Options{}), msgOf: -1}
	if cfg.ReplayShare > 0 {
		s.pace = newPacer(cfg.ReplayShare, cfg.DeliverTimeout+500*time.Millisecond, m.paced)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	reasons := []string{ReasonNoLabel, ReasonUnknown, ReasonAmbiguous, ReasonNoDestination, ReasonRemoved}
	for i, r := range reasons {
		s.unresolved[i][0] = m.unresolved.WithLabelValues(r, ResultCatchAll)
		s.unresolved[i][1] = m.unresolved.WithLabelValues(r, ResultDropped)
	}
	empty, _ := tenants.Build(nil)
	if err := s.SetRegistry(empty); err != nil {
		s.Close()
		return nil, err
	}
	s.watching.Add(1)
	go s.watch()
	s.parking.Add(1)
	go s.parkLoop()
	return s, nil
}

// SetRegistry makes reg the registry Write resolves with. Destinations
// that did not change keep their sender, queue and parking state; new ones
// start; removed ones stop (what they had queued is parked by its writer
// and later replayed to the catch-all or dropped, counted as removed). A
// destination whose settings changed is replaced and inherits its parking
// state. It is safe to call concurrently with Write. A destination that
// cannot be set up (unreadable TLS files) is logged and left out: its
// events resolve to no destination.
func (s *Sink) SetRegistry(reg *tenants.Registry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("tenant-forward sink: closed")
	}
	old := s.snap.Load()
	next := &snapshot{reg: reg, routes: make([][]*route, reg.Len()), byKey: map[string]*route{}}
	keep := map[*route]bool{}
	get := func(tenant, name string, d tenants.Destination) *route {
		key := tenant + "\x00" + d.Name
		var prev *route
		if old != nil {
			prev = old.byKey[key]
		}
		if prev != nil && prev.dest == d && prev.f.tenantName == name {
			keep[prev] = true
			next.byKey[key] = prev
			return prev
		}
		r, err := newRoute(s.ctx, tenant, name, d, s.cfg.QueueSize, s.m, s.log)
		if err != nil {
			s.log.Error("destination not started; its events resolve to no destination", "tenant", tenant, "destination", d.Name, "error", err)
			return nil
		}
		if prev != nil {
			r.inherit(prev)
		} else if b := s.backlog.Load(); b != nil {
			s.markBacklog(b, r)
		}
		next.byKey[key] = r
		return r
	}
	for i := 0; i < reg.Len(); i++ {
		t := reg.Tenant(i)
		for _, d := range t.Destinations {
			if r := get(t.ID, t.Name, d); r != nil {
				next.routes[i] = append(next.routes[i], r)
			}
		}
	}
	if s.cfg.Unknown == UnknownCatchAll {
		for _, d := range s.cfg.CatchAll {
			if r := get(tenants.CatchAllID, "", d); r != nil {
				next.catchAll = append(next.catchAll, r)
			}
		}
	}
	s.snap.Store(next)
	if old != nil {
		for _, r := range old.byKey {
			if !keep[r] {
				r.stop()
				if next.byKey[r.key] == nil {
					s.m.forget(r.tenant, r.dest.Name)
				}
			}
		}
	}
	return nil
}

// Write sends each event of batch to its tenant's destinations (or the
// catch-all, or counts it as dropped), then waits for the destinations,
// at most DeliverTimeout, and parks what they have not sent. It returns
// nil once every event is sent, parked or counted, retrying the parked
// topic until it acknowledges; an error (retryable) when ctx ends first,
// or when the parked topic's backlog cannot be read at the first batch
// (recover.go). Write keeps nothing of batch.
func (s *Sink) Write(ctx context.Context, batch []stage.Record) error {
	wait, err := s.WritePipelined(ctx, batch)
	if err != nil || wait == nil {
		return err
	}
	return wait(ctx)
}

// WritePipelined is Write without waiting for the park: it returns once
// the events are sent, or handed to the park loop, or counted, with a
// wait (stage.PipelinedSink) that returns once the parked topic
// acknowledged this batch's parked events, and those of every batch
// before; nil when it parked none. The park loop retries a failed park
// until it succeeds or the sink closes, so wait fails only when its ctx
// ends or the sink closed; the events may still be parked then (the
// stage delivers the batch again: duplicates, never a loss).
func (s *Sink) WritePipelined(ctx context.Context, batch []stage.Record) (func(context.Context) error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	snap := s.snap.Load()
	now := time.Now()
	s.gen++
	if s.pace != nil {
		s.pace.wrote(len(batch), behindBy(batch))
	}

	// Resolve every record, and decide for each destination it touches
	// whether this batch's events are sent or parked.
	routes, touched := s.routes[:0], s.touched[:0]
	for i := range batch {
		rs := s.routesFor(snap, batch[i].Event)
		routes = append(routes, rs)
		for _, r := range rs {
			if r.wgen != s.gen {
				r.wgen = s.gen
				touched = append(touched, r)
			}
		}
	}
	parking := false
	for _, r := range touched {
		r.wmode = r.admit()
		r.wlate = false
		r.ww = newWaiter()
		parking = parking || r.wmode == modeParking
	}

	// The events of parking destinations are formatted (by a worker of
	// their own) and handed to the park loop while the others are
	// formatted and sent: the park's round trip overlaps the sending.
	var early chan parkResult
	if parking {
		early = make(chan parkResult, 1)
		go func() {
			pw := s.parkWorker
			pw.prepare(batch, routes, 0, len(batch), true)
			items := s.parkItems(pw.items)
			clear(pw.items)
			pw.items = pw.items[:0]
			if items == nil {
				early <- parkResult{}
				return
			}
			job, err := s.queuePark(ctx, items)
			early <- parkResult{job, err}
		}()
	}
	live := s.format(batch, routes, false, s.live[:0])
	for _, it := range live {
		it.w = it.r.ww
		it.r.batch = append(it.r.batch, it)
	}
	waits := s.waits[:0]
	for _, r := range touched {
		if len(r.batch) > 0 {
			r.ww.add(len(r.batch))
			if r.enqueueLive(r.batch) {
				waits = append(waits, routeWait{r, r.ww})
			} else {
				r.ww.n.Add(-int64(len(r.batch)))
				for _, it := range r.batch {
					it.state.Store(stClaimed)
				}
			}
			clear(r.batch)
			r.batch = r.batch[:0]
		}
		r.ww.finish()
	}
	waitRoutes(ctx, waits, now.Add(s.cfg.DeliverTimeout), s.cfg.StallTimeout)
	clear(waits)
	s.waits = waits[:0]

	// Then park what the live destinations did not send in time: the
	// park loop owns those items now, the writer releases the others.
	late := s.late[:0]
	for _, it := range live {
		if settle(it) {
			it.release()
		} else {
			late = append(late, it)
			it.r.wlate = true
		}
	}
	for _, r := range touched {
		if r.wlate {
			r.mu.Lock()
			r.toParking()
			r.mu.Unlock()
		}
	}
	var last *parkJob
	var err error
	if early != nil {
		res := <-early
		last, err = res.job, res.err
	}
	if items := s.parkItems(late); items != nil {
		if err != nil {
			for _, it := range items {
				it.release()
			}
		} else if job, jerr := s.queuePark(ctx, items); jerr != nil {
			err = jerr
		} else {
			last = job
		}
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	clear(routes)
	clear(touched)
	clear(live)
	clear(late)
	s.routes, s.touched, s.live, s.late = routes[:0], touched[:0], live[:0], late[:0]
	if err != nil || last == nil {
		return nil, err
	}
	return last.wait, nil
}

// parkResult is a queued park job, or why it could not be queued.
type parkResult struct {
	job *parkJob
	err error
}

// parkItems copies items for a park job; nil when there are none.
func (s *Sink) parkItems(items []*item) []*item {
	if len(items) == 0 {
		return nil
	}
	return slices.Clone(items)
}

// settle decides an item after the wait: true when it was sent; false
// when it must be parked (taking it back from the queue, or abandoning a
// write still in progress).
func settle(it *item) bool {
	for {
		switch it.state.Load() {
		case stSent:
			return true
		case stQueued:
			if it.claim() {
				return false
			}
		case stTaken:
			if it.state.CompareAndSwap(stTaken, stAbandoned) {
				return false
			}
		default: // failed, claimed, abandoned
			return false
		}
	}
}

// routeWait is a route with a waiter for some of its items.
type routeWait struct {
	r *route
	w *waiter
}

// waitRoutes waits for the items of each route until deadline, giving up
// early on a route whose sender has been blocked for stall (a slow or
// unreachable endpoint): its unsent items are then parked, or left to a
// catch-up, and the batch does not wait for it. Once every route left is
// blocked, a quarter of stall is enough: while other routes still send,
// waiting for a blocked one costs nothing, but when it alone holds the
// batch, it holds every tenant's events.
func waitRoutes(ctx context.Context, waits []routeWait, deadline time.Time, stall time.Duration) {
	poll := max(stall/8, 2*time.Millisecond)
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for len(waits) > 0 {
		now := time.Now()
		if ctx.Err() != nil || !now.Before(deadline) {
			return
		}
		k, blocked := 0, true
		for _, rw := range waits {
			select {
			case <-rw.w.done:
				continue
			default:
			}
			if rw.r.stalled(now, stall) {
				continue
			}
			blocked = blocked && rw.r.stalled(now, stall/4)
			waits[k] = rw
			k++
		}
		waits = waits[:k]
		if k == 0 || blocked {
			return
		}
		d := min(deadline.Sub(now), poll)
		if t == nil {
			t = time.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case <-waits[0].w.done:
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// routesFor resolves ev to its destinations, counting unresolved events.
func (s *Sink) routesFor(snap *snapshot, ev *pipeline.Event) []*route {
	idx, res := snap.reg.Resolve(ev.Dataset, ev.TenantLabel())
	var reason int
	switch res {
	case tenants.Resolved:
		if rs := snap.routes[idx]; len(rs) > 0 {
			return rs
		}
		reason = reasonNoDestination
	case tenants.NoLabel:
		reason = reasonNoLabel
	case tenants.Unknown:
		reason = reasonUnknown
	default:
		reason = reasonAmbiguous
	}
	return s.unresolvedRoutes(snap, reason)
}

// Indexes of the reasons in Sink.unresolved.
const (
	reasonNoLabel = iota
	reasonUnknown
	reasonAmbiguous
	reasonNoDestination
	reasonRemoved
)

// unresolvedRoutes counts an unresolved event by reason (reasonNoLabel,
// ...) and returns the catch-all routes, if any.
func (s *Sink) unresolvedRoutes(snap *snapshot, reason int) []*route {
	if len(snap.catchAll) > 0 {
		s.unresolved[reason][0].Inc()
		return snap.catchAll
	}
	s.unresolved[reason][1].Inc()
	return nil
}

// format formats, for the destinations of each record that are parking
// (or, with parking false, those that are not), an item, and appends them
// to dst in record order. A large batch is split over the workers.
func (s *Sink) format(batch []stage.Record, routes [][]*route, parking bool, dst []*item) []*item {
	nw := 1
	if len(batch) >= 2*minShare {
		nw = min(len(s.workers), len(batch)/minShare)
	}
	if nw == 1 {
		s.workers[0].prepare(batch, routes, 0, len(batch), parking)
	} else {
		var wg sync.WaitGroup
		share := (len(batch) + nw - 1) / nw
		for k := 1; k < nw; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.workers[k].prepare(batch, routes, k*share, min(len(batch), (k+1)*share), parking)
			}()
		}
		s.workers[0].prepare(batch, routes, 0, share, parking)
		wg.Wait()
	}
	for _, w := range s.workers[:nw] {
		dst = append(dst, w.items...)
		clear(w.items)
		w.items = w.items[:0]
	}
	return dst
}

// minShare is the smallest part of a batch worth a worker of its own.
const minShare = 256

// worker formats a part of a batch. Each has its own scratch, so that
// workers run in parallel.
type worker struct {
	envelope *syslog.Parser
	scratch  pipeline.Event
	items    []*item // in record order
	msgOf    int     // the record whose MSG is in scratch, -1 when none
	msg      []byte
}

// prepare formats an item for each destination of records from..to-1
// (routes[i] are record i's destinations) that this batch parks, or, with
// parking false, sends. Sent items get their waiter later, in order.
func (wk *worker) prepare(batch []stage.Record, routes [][]*route, from, to int, parking bool) {
	for i := from; i < to; i++ {
		for _, r := range routes[i] {
			if (r.wmode == modeParking) == parking {
				it := wk.format(r, &batch[i], i)
				if parking {
					it.state.Store(stClaimed)
				}
				wk.items = append(wk.items, it)
			}
		}
	}
	wk.msgOf = -1
}

// format renders record i for destination r.
func (wk *worker) format(r *route, rec *stage.Record, i int) *item {
	ev := rec.Event
	var msg []byte
	if r.f.format != FormatJSON {
		msg = wk.message(ev, i)
	}
	it := newItem(r, nil)
	it.rec = i
	var cut bool
	it.msg, cut = r.f.appendMessage(it.msg, ev, msg)
	if cut {
		r.m.truncated.Inc()
	}
	it.eventID = append(it.eventID, ev.ID...)
	return it
}

// message returns the syslog MSG part of record i's ev.Original, parsing
// a copy of the record's envelope (the runner's event must not be
// modified); the last record's is kept for its other destinations.
func (wk *worker) message(ev *pipeline.Event, i int) []byte {
	sc := &wk.scratch
	if wk.msgOf != i {
		sc.Reset()
		sc.Original = append(sc.Original, ev.Original...)
		wk.msg = wk.envelope.Parse(sc)
		wk.msgOf = i
	}
	return wk.msg
}

// watch lets routes that wait for the replay of another process learn
// its progress from the replay group's committed offsets, every
// WatchInterval.
func (s *Sink) watch() {
	defer s.watching.Done()
	t := time.NewTicker(s.cfg.WatchInterval)
	defer t.Stop()
	client := &kafka.Client{Addr: kafka.TCP(s.cfg.Brokers...), Transport: s.cfg.Transport}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		snap := s.snap.Load()
		type wait struct {
			r    *route
			part int
			off  int64
		}
		var waits []wait
		parts := map[int]bool{}
		for _, r := range snap.byKey {
			if p, off, ok := r.waitingForReplay(); ok {
				waits = append(waits, wait{r, p, off})
				parts[p] = true
			}
		}
		if len(waits) == 0 {
			continue
		}
		req := &kafka.OffsetFetchRequest{GroupID: s.cfg.ReplayGroupID, Topics: map[string][]int{s.cfg.ParkedTopic: nil}}
		for p := range parts {
			req.Topics[s.cfg.ParkedTopic] = append(req.Topics[s.cfg.ParkedTopic], p)
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WatchInterval)
		res, err := client.OffsetFetch(ctx, req)
		cancel()
		if err != nil || res.Error != nil {
			continue
		}
		committed := map[int]int64{}
		for _, p := range res.Topics[s.cfg.ParkedTopic] {
			if p.Error == nil {
				committed[p.Partition] = p.CommittedOffset
			}
		}
		for _, w := range waits {
			if c, ok := committed[w.part]; ok && c > w.off {
				w.r.markCommitted(w.part, c-1)
			}
		}
	}
}

// Close stops the senders (what they still had queued fails) and the
// parked topic's producer. Call it after the stage runners returned.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	if snap := s.snap.Load(); snap != nil {
		for _, r := range snap.byKey {
			r.stop()
		}
	}
	s.watching.Wait()
	s.parking.Wait()
	return s.parker.close()
}
