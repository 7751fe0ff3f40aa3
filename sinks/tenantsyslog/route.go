package tenantsyslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpipe/vpipe/pipeline/backoff"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

// Item states. An item is one message for one destination. The writer
// (Write or the replayer) creates it; the route's sender takes it from a
// queue. Transitions are CAS, so the writer can take back an item the
// sender has not started on.
const (
	stQueued    int32 = iota // waiting in a route queue
	stTaken                  // the sender is writing it
	stSent                   // written to the destination
	stFailed                 // the write failed or the route refused it
	stClaimed                // the writer took it back before the sender did
	stAbandoned              // the writer stopped waiting while it was being written
)

// item is one message for one route.
type item struct {
	state atomic.Int32
	refs  atomic.Int32 // the writer's and the queue's: released to the pool at 0
	msg   []byte
	w     *waiter
	r     *route
	rec   int // live: index of the record in the batch
	// replay: the parked record's partition and offset.
	part int
	off  int64
	// The id of the event, for the parked record's header.
	eventID []byte
	// Where the item was parked (set by the parker).
	parkPart int
	parkOff  int64
	parked   bool
}

var itemPool = sync.Pool{New: func() any { return new(item) }}

func newItem(r *route, w *waiter) *item {
	it := itemPool.Get().(*item)
	it.state.Store(stQueued)
	it.refs.Store(1)
	it.msg = it.msg[:0]
	it.eventID = it.eventID[:0]
	it.w, it.r = w, r
	it.rec, it.part, it.off = 0, 0, 0
	it.parkPart, it.parkOff, it.parked = 0, 0, false
	return it
}

func (it *item) release() {
	if it.refs.Add(-1) == 0 {
		it.w, it.r = nil, nil
		if cap(it.msg) > 64<<10 {
			it.msg = nil // do not keep rare huge buffers
		}
		itemPool.Put(it)
	}
}

// claim takes back an item still queued; it reports success.
func (it *item) claim() bool {
	if it.state.CompareAndSwap(stQueued, stClaimed) {
		it.w.finish()
		return true
	}
	return false
}

// waiter counts the items of one batch still owed an outcome.
type waiter struct {
	n    atomic.Int64
	done chan struct{}
}

// newWaiter returns a waiter holding one count for the writer, so that
// it cannot complete while items are still being added; the writer's
// finish releases it.
func newWaiter() *waiter {
	w := &waiter{done: make(chan struct{})}
	w.n.Store(1)
	return w
}

func (w *waiter) add(n int) { w.n.Add(int64(n)) }

func (w *waiter) finish() {
	if w.n.Add(-1) == 0 {
		close(w.done)
	}
}

// Route modes: how the live side treats a destination's new events.
const (
	modeLive    int32 = iota // queued and sent
	modeParking              // parked: the destination is down or slow, or parked events wait for replay
)

// parkPos is where a route's last parked event went.
type parkPos struct {
	part int
	off  int64
	set  bool
}

// route is one destination of one tenant (or of the catch-all): its
// queues, its sender goroutine and its connection. See the package
// documentation for the modes.
type route struct {
	key    string // tenant + "\x00" + destination name
	tenant string
	// The parked record's key and destination header.
	keyBytes, destBytes []byte
	dest                tenants.Destination
	f                   *formatter
	m                   routeMetrics
	log                 *slog.Logger
	tlsConf             *tls.Config
	octet               bool
	queueCap            int
	limiter             *bucket

	mode atomic.Int32 // written under mu
	up   atomic.Bool

	// busy is when the sender began what it is blocked in (a write, a
	// connection attempt, a wait for the rate limit or a backoff), in unix
	// nanoseconds; 0 while it is not blocked.
	busy atomic.Int64

	// unacked counts the items queued for the park loop and not yet
	// acknowledged; a route that replaces this one shares the counter.
	unacked *atomic.Int64

	mu       sync.Mutex
	live     []*item
	replay   []*item
	lastPark parkPos
	replayed map[int]int64 // per parked partition, the last offset replayed
	wake     chan struct{}

	// Used by Write only (one goroutine at a time).
	batch []*item
	wgen  uint64  // the Write that last touched the route
	ww    *waiter // this Write's items of this route
	wmode int32   // the mode admit gave this Write
	wlate bool    // some of this Write's items were not sent in time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	conn   atomic.Pointer[net.Conn]
}

func newRoute(parent context.Context, tenant, name string, d tenants.Destination, queueCap int, m *Metrics, log *slog.Logger) (*route, error) {
	f, err := newFormatter(d, tenant, name)
	if err != nil {
		return nil, err
	}
	if tenant == tenants.CatchAllID {
		f.tenantID, f.tenantName = "", ""
	}
	r := &route{
		key: tenant + "\x00" + d.Name, tenant: tenant, dest: d, f: f,
		keyBytes: []byte(tenant), destBytes: []byte(d.Name),
		m:        m.forRoute(tenant, d.Name),
		log:      log.With("tenant", tenant, "destination", d.Name),
		octet:    d.Framing != FramingNewline,
		queueCap: queueCap,
		replayed: map[int]int64{},
		unacked:  new(atomic.Int64),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if d.RateLimit > 0 {
		r.limiter = newBucket(d.RateLimit, d.Burst)
	}
	switch d.Transport {
	case "udp", "tcp":
	case "tls":
		if r.tlsConf, err = tlsConfig(d); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("transport %q: want udp, tcp or tls", d.Transport)
	}
	if d.MinBackoff <= 0 {
		r.dest.MinBackoff = 500 * time.Millisecond
	}
	if d.MaxBackoff < r.dest.MinBackoff {
		r.dest.MaxBackoff = max(r.dest.MinBackoff, 30*time.Second)
	}
	if d.WriteTimeout <= 0 {
		r.dest.WriteTimeout = 10 * time.Second
	}
	if d.DialTimeout <= 0 {
		r.dest.DialTimeout = 5 * time.Second
	}
	r.ctx, r.cancel = context.WithCancel(parent)
	r.m.parking.Set(0)
	r.m.up.Set(0)
	// Not known to be down: the first events queue while the sender
	// connects, and are parked if it cannot.
	r.up.Store(true)
	go r.run()
	return r, nil
}

func tlsConfig(d tenants.Destination) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(d.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", d.Address, err)
	}
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: d.TLS.InsecureSkipVerify}
	if d.TLS.ServerName != "" {
		c.ServerName = d.TLS.ServerName
	}
	if d.TLS.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	if d.TLS.CAFile != "" {
		pem, err := os.ReadFile(d.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate", d.TLS.CAFile)
		}
		c.RootCAs = pool
	}
	if d.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(d.TLS.CertFile, d.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// inherit takes over the parking state of the route it replaces (same
// tenant and destination name, changed settings), so that events parked
// before the change are still replayed before new ones are sent.
func (r *route) inherit(old *route) {
	old.mu.Lock()
	lp, mode := old.lastPark, old.mode.Load()
	rep := make(map[int]int64, len(old.replayed))
	for k, v := range old.replayed {
		rep[k] = v
	}
	old.mu.Unlock()
	r.mu.Lock()
	r.lastPark, r.replayed = lp, rep
	r.unacked = old.unacked
	if mode != modeLive {
		r.setMode(modeParking)
	}
	r.mu.Unlock()
}

// stop ends the sender; queued items fail (their writers park them).
func (r *route) stop() {
	r.cancel()
	if c := r.conn.Load(); c != nil {
		(*c).Close()
	}
	<-r.done
}

// setMode sets the mode; r.mu is held.
func (r *route) setMode(m int32) {
	r.mode.Store(m)
	if m == modeParking {
		r.m.parking.Set(1)
	} else {
		r.m.parking.Set(0)
	}
	if m == modeLive {
		r.signal()
	}
}

func (r *route) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// toParking switches to parking mode and takes back the live items still
// queued (their writer parks them). r.mu is held.
func (r *route) toParking() {
	if r.mode.Load() != modeParking {
		r.setMode(modeParking)
	}
	for _, it := range r.live {
		it.claim()
		it.release()
	}
	clear(r.live)
	r.live = r.live[:0]
	r.updateDepth()
}

func (r *route) updateDepth() { r.m.depth.Set(float64(len(r.live) + len(r.replay))) }

// caughtUp reports whether every event this process parked for the route
// has been acknowledged and replayed. r.mu is held.
func (r *route) caughtUp() bool {
	if r.unacked.Load() > 0 {
		return false
	}
	if !r.lastPark.set {
		return true
	}
	off, ok := r.replayed[r.lastPark.part]
	return ok && off >= r.lastPark.off
}

// admit decides, once per Write, how the route takes this batch's events:
// a parking route whose endpoint is up goes live once every event parked
// before is replayed; until then the batch's events are parked behind
// them. Write never waits for the replay: what it parks now is parked
// after what it parked before (the park loop parks batches in order, and
// the route stays parking while any of its parks is unacknowledged), and
// what the replay sends goes out before any live event (the sender takes
// replayed items first), so the order holds however the two interleave.
// Called by Write only.
func (r *route) admit() int32 {
	if r.mode.Load() != modeParking || !r.up.Load() {
		return r.mode.Load()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode.Load() == modeParking && r.caughtUp() {
		r.setMode(modeLive)
		r.log.Info("destination back: parked events replayed, sending live again")
	}
	return r.mode.Load()
}

// stalled reports whether the sender has been blocked for at least d.
func (r *route) stalled(now time.Time, d time.Duration) bool {
	b := r.busy.Load()
	return b != 0 && now.UnixNano()-b >= int64(d)
}

func (r *route) setBusy(on bool) {
	if on {
		r.busy.Store(time.Now().UnixNano())
	} else {
		r.busy.Store(0)
	}
}

// enqueueLive queues items (all or none). It fails when the route
// switched to parking meanwhile, is down, or cannot hold them all; the
// caller then parks them.
func (r *route) enqueueLive(items []*item) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode.Load() != modeLive {
		return false
	}
	if !r.up.Load() || len(r.live)+len(items) > r.queueCap {
		r.toParking()
		return false
	}
	for _, it := range items {
		it.refs.Add(1)
	}
	r.live = append(r.live, items...)
	r.updateDepth()
	r.signal()
	return true
}

// enqueueReplay queues replayed items (all or none). It fails when the
// endpoint is down or the queue is full.
func (r *route) enqueueReplay(items []*item) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up.Load() || len(r.replay)+len(items) > max(r.queueCap, 1024) {
		return false
	}
	for _, it := range items {
		it.refs.Add(1)
	}
	r.replay = append(r.replay, items...)
	r.updateDepth()
	r.signal()
	return true
}

// noteParked records where an item of this route was parked.
func (r *route) noteParked(part int, off int64) {
	r.mu.Lock()
	if !r.lastPark.set || r.lastPark.part != part || off > r.lastPark.off {
		r.lastPark = parkPos{part: part, off: off, set: true}
	}
	r.mu.Unlock()
}

// markReplayed records that this process's replayer sent the parked
// event at offset off of partition part.
func (r *route) markReplayed(part int, off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replayedTo(part, off)
}

// markCommitted records that the replay group committed past offset off
// (possibly another process's replayer).
func (r *route) markCommitted(part int, off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replayedTo(part, off)
}

func (r *route) replayedTo(part int, off int64) {
	if prev, ok := r.replayed[part]; ok && off <= prev {
		return
	}
	r.replayed[part] = off
}

// waitingForReplay reports the position of the last parked event while
// the route waits for the replay to reach it.
func (r *route) waitingForReplay() (part int, off int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode.Load() == modeLive || !r.up.Load() || !r.lastPark.set || r.caughtUp() {
		return 0, 0, false
	}
	return r.lastPark.part, r.lastPark.off, true
}

// take waits for items to send: replayed ones first, live ones while the
// route is live; at most n items and about maxBytes. It returns none when
// ctx ends or broken is closed.
func (r *route) take(dst []*item, n, maxBytes int, broken <-chan struct{}) []*item {
	for {
		r.mu.Lock()
		bytes := 0
		dst, bytes = r.pop(&r.replay, dst, n, bytes, maxBytes)
		if r.mode.Load() == modeLive {
			dst, _ = r.pop(&r.live, dst, n, bytes, maxBytes)
		}
		r.updateDepth()
		r.mu.Unlock()
		if len(dst) > 0 {
			return dst
		}
		select {
		case <-r.wake:
		case <-broken:
			return dst
		case <-r.ctx.Done():
			return dst
		}
	}
}

// pop moves items from the front of *q to dst, skipping claimed ones.
func (r *route) pop(q *[]*item, dst []*item, n, bytes, maxBytes int) ([]*item, int) {
	k := 0
	for k < len(*q) && len(dst) < n && (bytes < maxBytes || len(dst) == 0) {
		it := (*q)[k]
		k++
		if !it.state.CompareAndSwap(stQueued, stTaken) {
			it.release() // claimed by its writer
			continue
		}
		dst = append(dst, it)
		bytes += len(it.msg)
	}
	if k > 0 {
		rest := copy(*q, (*q)[k:])
		clear((*q)[rest:])
		*q = (*q)[:rest]
	}
	return dst, bytes
}

// failQueued fails every queued item (the route is down or stopping).
func (r *route) failQueued() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range []*[]*item{&r.live, &r.replay} {
		for _, it := range *q {
			if it.state.CompareAndSwap(stQueued, stFailed) {
				r.m.failed.Inc()
				it.w.finish()
			}
			it.release()
		}
		clear(*q)
		*q = (*q)[:0]
	}
	r.updateDepth()
}

// setUp records whether the route has a working connection.
func (r *route) setUp(up bool) {
	r.up.Store(up)
	if up {
		r.m.up.Set(1)
	} else {
		r.m.up.Set(0)
	}
}

// run is the sender: it keeps a connection, takes queued items and writes
// them, and reconnects with backoff when the destination fails.
func (r *route) run() {
	defer close(r.done)
	var (
		conn    net.Conn
		broken  chan struct{}
		attempt int
		taken   []*item
		buf     []byte
		ends    []int
		wasUp   = true // log the first failure
	)
	closeConn := func() {
		if conn != nil {
			conn.Close()
			r.conn.Store(nil)
			conn = nil
		}
	}
	defer func() {
		closeConn()
		r.setUp(false)
		r.failQueued()
	}()
	for r.ctx.Err() == nil {
		if conn == nil {
			r.setBusy(true)
			c, err := r.dial()
			if err != nil {
				r.m.connErr.Inc()
				r.setUp(false)
				if wasUp {
					r.log.Warn("destination unreachable; parking its events", "error", err)
					wasUp = false
				}
				r.mu.Lock()
				r.toParking()
				r.mu.Unlock()
				r.failQueued()
				if !r.sleep(backoff.Delay(attempt, r.dest.MinBackoff, r.dest.MaxBackoff)) {
					return
				}
				attempt++
				continue
			}
			r.setBusy(false)
			conn, attempt = c, 0
			r.conn.Store(&c)
			r.m.connOK.Inc()
			broken = make(chan struct{})
			if r.dest.Transport != "udp" {
				go watchClose(c, broken)
			}
			if !wasUp {
				r.log.Info("destination reachable")
			}
			wasUp = true
			r.setUp(true)
		}
		if r.limiter != nil {
			for {
				k, wait := r.limiter.reserve(512)
				if k > 0 {
					taken = r.take(taken[:0], k, 256<<10, broken)
					r.limiter.refund(k - len(taken))
					break
				}
				r.setBusy(true)
				ok := r.sleep(wait)
				r.setBusy(false)
				if !ok {
					return
				}
			}
		} else {
			taken = r.take(taken[:0], 512, 256<<10, broken)
		}
		if len(taken) == 0 {
			select {
			case <-broken:
				r.log.Warn("destination closed the connection; reconnecting")
				closeConn()
				r.setUp(false)
			default:
			}
			continue
		}
		var sent int
		var err error
		r.setBusy(true)
		if r.dest.Transport == "udp" {
			sent, err = r.writeDatagrams(conn, taken)
		} else {
			buf, ends = buf[:0], ends[:0]
			for _, it := range taken {
				buf = appendFrame(buf, it.msg, r.octet)
				ends = append(ends, len(buf))
			}
			conn.SetWriteDeadline(time.Now().Add(r.dest.WriteTimeout))
			var n int
			n, err = conn.Write(buf)
			for sent < len(ends) && ends[sent] <= n {
				sent++
			}
		}
		r.setBusy(false)
		for i, it := range taken {
			r.resolve(it, i < sent)
		}
		if err != nil {
			r.log.Warn("write to destination failed; parking its events", "error", err, "written", sent, "failed", len(taken)-sent)
			wasUp = false
			closeConn()
			r.setUp(false)
			r.mu.Lock()
			r.toParking()
			r.mu.Unlock()
			r.failQueued()
		}
	}
}

// resolve records the outcome of writing a taken item.
func (r *route) resolve(it *item, ok bool) {
	if ok {
		if it.state.CompareAndSwap(stTaken, stSent) {
			r.m.sent.Inc()
		} else {
			// The writer parked it meanwhile: it will come again.
			r.m.sent.Inc()
			r.m.resent.Inc()
		}
	} else {
		it.state.CompareAndSwap(stTaken, stFailed)
		r.m.failed.Inc()
	}
	it.w.finish()
	it.release()
}

func (r *route) writeDatagrams(conn net.Conn, items []*item) (int, error) {
	for i, it := range items {
		conn.SetWriteDeadline(time.Now().Add(r.dest.WriteTimeout))
		if _, err := conn.Write(it.msg); err != nil {
			return i, err
		}
	}
	return len(items), nil
}

// watchClose closes broken when the peer closes the connection or it
// fails: a syslog receiver never sends, so any read result means the
// connection is gone, and the next write would only fill a dead socket.
func watchClose(c net.Conn, broken chan struct{}) {
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			close(broken)
			return
		}
	}
}

func (r *route) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.dest.DialTimeout)
	defer cancel()
	nd := &net.Dialer{}
	switch r.dest.Transport {
	case "udp":
		return nd.DialContext(ctx, "udp", r.dest.Address)
	case "tcp":
		c, err := nd.DialContext(ctx, "tcp", r.dest.Address)
		if err != nil {
			return nil, err // a *net.OpError names the address
		}
		if r.dest.SendBuffer > 0 {
			c.(*net.TCPConn).SetWriteBuffer(r.dest.SendBuffer)
		}
		return c, nil
	}
	td := &tls.Dialer{NetDialer: nd, Config: r.tlsConf}
	c, err := td.DialContext(ctx, "tcp", r.dest.Address)
	if err != nil {
		return nil, fmt.Errorf("tls to %s: %w", r.dest.Address, err)
	}
	if r.dest.SendBuffer > 0 {
		if tc, ok := c.(*tls.Conn).NetConn().(*net.TCPConn); ok {
			tc.SetWriteBuffer(r.dest.SendBuffer)
		}
	}
	return c, nil
}

// sleep waits d or until the route stops; it reports whether d passed.
func (r *route) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// bucket is a token bucket: rate tokens a second, at most burst stored.
// Used by the sender goroutine only.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) *bucket {
	b := float64(max(burst, 1))
	return &bucket{rate: rate, burst: b, tokens: b, last: time.Now()}
}

// reserve takes up to n whole tokens; with none available it returns how
// long until one is.
func (b *bucket) reserve(n int) (int, time.Duration) {
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	k := min(n, int(b.tokens))
	if k == 0 {
		return 0, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	}
	b.tokens -= float64(k)
	return k, 0
}

// refund gives back tokens reserved but not used.
func (b *bucket) refund(n int) {
	if n > 0 {
		b.tokens = min(b.burst, b.tokens+float64(n))
	}
}
