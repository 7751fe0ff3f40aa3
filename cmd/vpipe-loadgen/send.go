package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Framings of a TCP or TLS stream (RFC 6587): the -framing values, spelled
// as vpipe's listener configuration spells them.
const (
	framingNewline = "non-transparent" // record, then LF (§3.4.2)
	framingOctet   = "octet-counting"  // "LEN SP record" (§3.4.1)
)

// maxDatagram is the largest UDP payload over IPv4; a longer record is not
// sent over UDP and counts as an error.
const maxDatagram = 65507

// flushBytes is how much a TCP or TLS sender buffers before writing when
// it sends as fast as it can.
const flushBytes = 256 << 10

// chunk is how many sequence numbers a sender claims at once, so that the
// senders do not contend on the shared counter for every record.
const chunk = 64

// plan is what to send, where and how fast.
type plan struct {
	addr      string
	transport string // udp, tcp or tls
	framing   string // tcp and tls
	rate      float64
	count     uint64 // 0: no limit (but see the source's own limit)
	conns     int
	tls       *tls.Config
	report    time.Duration // progress lines on the progress writer; 0: none
	src       source
}

// result is what a run sent, the final report.
type result struct {
	Address     string            `json:"address"`
	Transport   string            `json:"transport"`
	Framing     string            `json:"framing,omitempty"`
	Connections int               `json:"connections"`
	TargetRate  float64           `json:"target_rate,omitempty"`
	Messages    uint64            `json:"messages"`
	Bytes       uint64            `json:"bytes"`
	Seconds     float64           `json:"seconds"`
	MsgsPerSec  float64           `json:"msgs_per_sec"`
	BytesPerSec float64           `json:"bytes_per_sec"`
	ByKind      map[string]uint64 `json:"by_kind"`
	// Errors counts records that were not sent (UDP send errors, records
	// too large for a datagram).
	Errors uint64 `json:"errors"`
	// Unconfirmed counts records that were in a TCP or TLS write that
	// failed: some of their bytes may have reached the receiver.
	Unconfirmed uint64 `json:"unconfirmed"`
	Reconnects  uint64 `json:"reconnects"`
}

// counters are a run's shared totals.
type counters struct {
	seq         atomic.Uint64 // next sequence number to claim
	sent, bytes atomic.Uint64
	errors      atomic.Uint64
	unconfirmed atomic.Uint64
	reconnects  atomic.Uint64
	mu          sync.Mutex
	byKind      map[string]uint64
}

// claim takes up to n sequence numbers below limit (0: no limit); got is 0
// when none are left.
func (c *counters) claim(n, limit uint64) (start, got uint64) {
	start = c.seq.Add(n) - n
	if limit == 0 {
		return start, n
	}
	if start >= limit {
		return start, 0
	}
	return start, min(n, limit-start)
}

func (c *counters) addKinds(k map[string]uint64) {
	c.mu.Lock()
	for kind, n := range k {
		c.byKind[kind] += n
	}
	c.mu.Unlock()
	clear(k)
}

// send runs p until its records are sent or ctx ends, and reports what it
// sent. It fails only when it cannot connect at the start; later failures
// are counted, and TCP and TLS senders reconnect.
func send(ctx context.Context, p plan, progress io.Writer) (*result, error) {
	limit := p.count
	if limit == 0 {
		limit = p.src.limit()
	}
	c := &counters{byKind: map[string]uint64{}}
	senders := make([]*sender, p.conns)
	for i := range senders {
		conn, err := dial(ctx, p)
		if err != nil {
			for _, s := range senders[:i] {
				s.conn.Close()
			}
			return nil, err
		}
		senders[i] = &sender{p: p, c: c, conn: conn, limit: limit, kinds: map[string]uint64{}}
		if p.rate > 0 {
			senders[i].rate = p.rate / float64(p.conns)
		}
	}
	start := time.Now()
	stopReport := reportProgress(p.report, c, start, progress)
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopReport()
	r := &result{
		Address: p.addr, Transport: p.transport, Connections: p.conns, TargetRate: p.rate,
		Messages: c.sent.Load(), Bytes: c.bytes.Load(), Seconds: elapsed.Seconds(),
		ByKind: c.byKind, Errors: c.errors.Load(), Unconfirmed: c.unconfirmed.Load(),
		Reconnects: c.reconnects.Load(),
	}
	if p.transport != "udp" {
		r.Framing = p.framing
	}
	if s := elapsed.Seconds(); s > 0 {
		r.MsgsPerSec = float64(r.Messages) / s
		r.BytesPerSec = float64(r.Bytes) / s
	}
	return r, nil
}

// reportProgress writes a line to w every interval until the returned
// function is called.
func reportProgress(interval time.Duration, c *counters, start time.Time, w io.Writer) (stop func()) {
	if interval <= 0 || w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		var last uint64
		lastT := start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n := c.sent.Load()
				fmt.Fprintf(w, "%6.1fs  sent %d  %s msgs/s  errors %d\n", now.Sub(start).Seconds(), n,
					human(float64(n-last)/now.Sub(lastT).Seconds()), c.errors.Load()+c.unconfirmed.Load())
				last, lastT = n, now
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// dial opens one connection of p's transport.
func dial(ctx context.Context, p plan) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	switch p.transport {
	case "udp":
		return d.DialContext(ctx, "udp", p.addr)
	case "tls":
		td := tls.Dialer{NetDialer: &d, Config: p.tls}
		c, err := td.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return nil, fmt.Errorf("tls to %s: %w", p.addr, err)
		}
		return c, nil
	default:
		return d.DialContext(ctx, "tcp", p.addr)
	}
}

// sender sends over one connection (one UDP socket, or one TCP or TLS
// stream).
type sender struct {
	p     plan
	c     *counters
	conn  net.Conn
	limit uint64
	rate  float64 // records per second of this sender; 0: as fast as it can

	scratch []byte
	buf     []byte            // TCP/TLS: framed records not yet written
	pending uint64            // records in buf
	kinds   map[string]uint64 // per kind, flushed to counters
}

func (s *sender) run(ctx context.Context) {
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
		s.c.addKinds(s.kinds)
	}()
	if s.rate <= 0 {
		for ctx.Err() == nil && s.batch(ctx, chunk) {
			if len(s.buf) >= flushBytes {
				s.flush(ctx)
			}
		}
		s.flush(ctx)
		return
	}
	// Paced: on each tick send what is due since the start, so that the
	// rate holds on average whatever the tick's jitter.
	period := time.Duration(float64(time.Second) / s.rate)
	period = min(max(period, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	start := time.Now()
	var sent uint64
	for {
		var due uint64
		if target := uint64(s.rate*time.Since(start).Seconds()) + 1; target > sent {
			due = target - sent
		}
		for due > 0 {
			n := min(due, chunk)
			if !s.batch(ctx, n) {
				s.flush(ctx)
				return
			}
			due -= n
			sent += n
		}
		s.flush(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// batch claims up to n records and sends (UDP) or buffers (TCP, TLS)
// them; false means nothing is left to send.
func (s *sender) batch(ctx context.Context, n uint64) bool {
	start, got := s.c.claim(n, s.limit)
	if got == 0 {
		return false
	}
	for seq := start; seq < start+got; seq++ {
		var kind string
		s.scratch, kind = s.p.src.next(s.scratch[:0], seq)
		s.kinds[kind]++
		if s.p.transport == "udp" {
			s.datagram(ctx)
			continue
		}
		if s.p.framing == framingOctet {
			s.buf = strconv.AppendInt(s.buf, int64(len(s.scratch)), 10)
			s.buf = append(s.buf, ' ')
			s.buf = append(s.buf, s.scratch...)
		} else {
			s.buf = append(s.buf, s.scratch...)
			s.buf = append(s.buf, '\n')
		}
		s.pending++
	}
	return true
}

// datagram sends s.scratch as one UDP datagram.
func (s *sender) datagram(ctx context.Context) {
	if len(s.scratch) > maxDatagram {
		s.c.errors.Add(1)
		return
	}
	if _, err := s.conn.Write(s.scratch); err != nil {
		// A connected UDP socket reports an ICMP port unreachable of an
		// earlier datagram on a later send: count it and go on.
		s.c.errors.Add(1)
		return
	}
	s.c.sent.Add(1)
	s.c.bytes.Add(uint64(len(s.scratch)))
}

// flush writes the buffered TCP or TLS records. On failure they count as
// unconfirmed and the sender reconnects (with backoff, until ctx ends).
func (s *sender) flush(ctx context.Context) {
	if len(s.buf) == 0 {
		return
	}
	if s.conn == nil && !s.reconnect(ctx) {
		s.c.unconfirmed.Add(s.pending)
		s.buf, s.pending = s.buf[:0], 0
		return
	}
	if ctx.Err() != nil {
		// The run is over: give the last write a bounded time.
		s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	_, err := s.conn.Write(s.buf)
	if err != nil {
		s.c.unconfirmed.Add(s.pending)
		s.conn.Close()
		s.conn = nil
	} else {
		s.c.sent.Add(s.pending)
		s.c.bytes.Add(uint64(len(s.buf)))
	}
	s.buf, s.pending = s.buf[:0], 0
}

// reconnect dials again with exponential backoff until it succeeds or ctx
// ends.
func (s *sender) reconnect(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		c, err := dial(ctx, s.p)
		if err == nil {
			s.conn = c
			s.c.reconnects.Add(1)
			return true
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return false
}

// human writes n with a k or M suffix.
func human(n float64) string {
	switch {
	case n >= 1e6:
		return strconv.FormatFloat(n/1e6, 'f', 2, 64) + "M"
	case n >= 1e3:
		return strconv.FormatFloat(n/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(n, 'f', 0, 64)
}

// summary is the one-paragraph text form of r.
func (r *result) summary() string {
	how := r.Transport
	if r.Framing != "" {
		how += ", " + r.Framing + " framing"
	}
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var ks []byte
	for i, k := range kinds {
		if i > 0 {
			ks = append(ks, ", "...)
		}
		ks = fmt.Appendf(ks, "%s %d", k, r.ByKind[k])
	}
	s := fmt.Sprintf("sent %d messages (%s) to %s over %s, %d connection(s), in %.3fs: %s msgs/s, %s/s",
		r.Messages, bytesHuman(float64(r.Bytes)), r.Address, how, r.Connections, r.Seconds,
		human(r.MsgsPerSec), bytesHuman(r.BytesPerSec))
	if r.TargetRate > 0 {
		s += fmt.Sprintf(" (target %s msgs/s)", human(r.TargetRate))
	}
	s += "\n  by kind: " + string(ks)
	s += fmt.Sprintf("\n  not sent: %d; unconfirmed (in a failed TCP/TLS write): %d; reconnects: %d\n", r.Errors, r.Unconfirmed, r.Reconnects)
	return s
}

func bytesHuman(n float64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(n/(1<<30), 'f', 2, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(n/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(n/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(n, 'f', 0, 64) + " B"
}
