// Package syslogin holds the syslog listeners: UDP (RFC 5426), TCP
// (RFC 6587) and TLS (RFC 5425). Each received record becomes a
// pipeline.Event that a pipeline.RecordParser fills and a
// pipeline.Publisher puts on Kafka.
//
// Backpressure: Publish blocks while the producer is full; a TCP or TLS
// connection then simply stops reading, so the sender's TCP window closes
// and nothing is dropped. UDP cannot push back: datagrams go through a
// bounded queue, and when it is full they are dropped and counted
// (vpipe_ingest_dropped_total{reason="queue_full"}) so that the socket
// reader never blocks and the kernel buffer never overflows silently.
package syslogin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// Listener is one bound syslog listener. Listen binds it; Serve runs it.
type Listener struct {
	cfg     Config
	framing syslog.Framing
	name    string
	parser  pipeline.RecordParser
	pub     pipeline.Publisher
	m       *listenerMetrics
	log     *slog.Logger

	ln   net.Listener   // tcp, tls
	udp  []*net.UDPConn // udp
	addr net.Addr

	served    atomic.Bool
	closeOnce sync.Once
	stopping  atomic.Bool // the sockets are closed: Serve's context ended, a socket failed, or Close

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	cancelPub context.CancelFunc // set by Serve

	rejectLog rateLimit
	dropLog   rateLimit
}

// Listen binds a listener now, so that a bad address or a port in use is
// reported at start. name labels its metrics and logs; parser and pub are
// used from several goroutines at once. m may be shared by listeners; nil
// leaves the metrics unregistered.
func Listen(cfg Config, name string, parser pipeline.RecordParser, pub pipeline.Publisher, m *Metrics, log *slog.Logger) (*Listener, error) {
	cfg, framing, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("syslog listener %s: %w", name, err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		cfg: cfg, framing: framing, name: name, parser: parser, pub: pub,
		m:     m.forListener(name, cfg.Transport),
		log:   log.With("component", "syslogin", "listener", name),
		conns: map[net.Conn]struct{}{},
	}
	if cfg.Transport == "udp" {
		err = l.bindUDP()
	} else {
		l.ln, err = net.Listen("tcp", cfg.Address)
		if err == nil {
			l.addr = l.ln.Addr()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("syslog listener %s: %w", name, err)
	}
	return l, nil
}

// Addr returns the bound address (with the port chosen when the configured
// one was 0).
func (l *Listener) Addr() net.Addr { return l.addr }

// Close releases the sockets of a listener whose Serve was never called.
// On a running listener it stops Serve at once: records already received
// are dropped (counted, reason shutdown) instead of drained; cancel Serve's
// context for an orderly stop. It is safe to call more than once.
func (l *Listener) Close() error {
	err := l.stop()
	l.mu.Lock()
	cancel := l.cancelPub
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return err
}

// stop closes the sockets and ends the connections' reads; records
// already read are still published.
func (l *Listener) stop() error {
	var err error
	l.closeOnce.Do(func() {
		l.stopping.Store(true)
		if l.ln != nil {
			err = l.ln.Close()
		}
		for _, c := range l.udp {
			err = errors.Join(err, c.Close())
		}
		l.mu.Lock()
		for c := range l.conns {
			c.SetReadDeadline(time.Now())
		}
		l.mu.Unlock()
	})
	return err
}

// Serve receives records until ctx ends. It then stops accepting and
// reading, hands the records already received to the publisher (waiting
// at most DrainTimeout for it), and returns nil. It returns an error when
// the listener fails otherwise. Serve may be called once.
func (l *Listener) Serve(ctx context.Context) error {
	if !l.served.CompareAndSwap(false, true) {
		return fmt.Errorf("syslog listener %s: Serve called twice", l.name)
	}
	// Records already received are published with pubCtx, which outlives
	// ctx by DrainTimeout.
	pubCtx, cancelPub := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPub()
	l.mu.Lock()
	l.cancelPub = cancelPub
	l.mu.Unlock()
	if l.stopping.Load() {
		cancelPub() // Close came first
	}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		l.stop()
		t := time.NewTimer(l.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelPub()
		case <-finished:
		}
	}()
	l.log.Info("syslog listener serving", "transport", l.cfg.Transport, "address", l.addr.String())
	var err error
	if l.cfg.Transport == "udp" {
		err = l.serveUDP(pubCtx)
	} else {
		err = l.serveTCP(pubCtx)
	}
	if err != nil {
		l.log.Error("syslog listener failed", "err", err)
		return fmt.Errorf("syslog listener %s: %w", l.name, err)
	}
	l.log.Info("syslog listener stopped")
	return nil
}

// handle turns one received record (already counted as received) into an
// event and publishes it. peer is the sender's "ip:port"; ferr is the
// framing damage, if any. It returns the publisher's error.
func (l *Listener) handle(ctx context.Context, e *pipeline.Event, rec, peer []byte, ferr error) error {
	e.Reset()
	e.Original = append(e.Original[:0], rec...)
	e.LogSource = e.Intern(peer)
	e.Created = time.Now()
	l.parser.ParseRecord(e)
	if ferr != nil {
		l.m.frameError(ferr)
		e.Error = joinError(e, ferr.Error(), e.Error)
	}
	if err := l.pub.Publish(ctx, e, nil); err != nil {
		if ctx.Err() != nil {
			l.m.drop(reasonShutdown)
		} else {
			l.m.drop(reasonPublishFailed)
		}
		return err
	}
	return nil
}

// joinError returns "first; second" in e's scratch space, or first when
// second is empty.
func joinError(e *pipeline.Event, first, second string) string {
	if second == "" {
		return first
	}
	var buf [256]byte
	b := append(buf[:0], first...)
	b = append(b, "; "...)
	b = append(b, second...)
	return e.Intern(b)
}

// rateLimit lets a repeated log line through at most once a second and
// counts what it held back.
type rateLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many were held back since the
// last line.
func (r *rateLimit) allow() (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		return false, 0
	}
	r.last = now
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}
