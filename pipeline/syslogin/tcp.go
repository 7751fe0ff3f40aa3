package syslogin

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// serveTCP accepts connections until the listener is closed, then waits
// for every connection to finish.
func (l *Listener) serveTCP(pubCtx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.stopping.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				l.stop()
				return err
			}
			// Out of file descriptors and the like: back off as
			// net/http does, and keep the connections already open.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			l.log.Error("accept failed; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-pubCtx.Done():
				t.Stop()
			}
			continue
		}
		delay = 0
		if !l.track(c) {
			continue
		}
		wg.Go(func() { l.serveConn(pubCtx, c) })
	}
}

// track registers a new connection, or rejects it when MaxConnections are
// open or the listener is stopping.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	full := len(l.conns) >= l.cfg.MaxConnections
	ok := !full && !l.stopping.Load()
	if ok {
		l.conns[c] = struct{}{}
	}
	l.mu.Unlock()
	if ok {
		l.m.open.Inc()
		return true
	}
	c.Close()
	if full {
		l.m.reject(reasonMaxConns)
		if ok, n := l.rejectLog.allow(); ok {
			l.log.Warn("connection rejected: too many open connections",
				"peer", c.RemoteAddr().String(), "max_connections", l.cfg.MaxConnections, "rejected_unlogged", n)
		}
	}
	return false
}

func (l *Listener) untrack(c net.Conn) {
	c.Close()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.m.open.Dec()
}

// errStopping ends a connection's reads once the listener stops.
var errStopping = errors.New("listener stopping")

// connReader reads a connection for a Scanner: it renews the idle
// deadline before each read, stops once the listener stops, and counts the
// bytes.
type connReader struct {
	r        io.Reader // the TCP connection, or the TLS connection over it
	raw      net.Conn  // the TCP connection, which holds the deadlines
	idle     time.Duration
	stopping *atomic.Bool
	bytes    prometheus.Counter
	n        int64
}

func (r *connReader) Read(p []byte) (int, error) {
	var deadline time.Time
	if r.idle > 0 {
		deadline = time.Now().Add(r.idle)
	}
	// Set the deadline before looking at stopping: Close stores stopping
	// before it sets a past deadline, so one of the two is seen here.
	r.raw.SetReadDeadline(deadline)
	if r.stopping.Load() {
		return 0, errStopping
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.n += int64(n)
		r.bytes.Add(float64(n))
	}
	return n, err
}

// serveConn reads one connection until it ends, publishing each frame.
func (l *Listener) serveConn(pubCtx context.Context, c net.Conn) {
	defer l.untrack(c)
	peerStr := c.RemoteAddr().String()
	peer := []byte(peerStr)
	rd := &connReader{r: c, raw: c, idle: l.cfg.IdleTimeout, stopping: &l.stopping, bytes: l.m.receivedBytes}
	if l.cfg.Transport == "tls" {
		tc, ok := l.handshake(c, peerStr)
		if !ok {
			return
		}
		rd.r = tc
	}
	l.log.Debug("connection opened", "peer", peerStr)

	sc := syslog.NewScanner(rd, l.cfg.MaxFrame)
	sc.SetFraming(l.framing)
	var e pipeline.Event
	var discarded int64
	var pubErr error
	for sc.Scan() {
		l.m.received.Inc()
		ferr := sc.FrameErr()
		if pubErr = l.handle(pubCtx, &e, sc.Frame(), peer, ferr); pubErr != nil {
			break
		}
		if ferr != nil {
			l.log.Debug("damaged frame", "peer", peerStr, "offset", sc.Offset(), "err", ferr)
		}
		if d := sc.Discarded(); d != discarded {
			l.m.discarded.Add(float64(d - discarded))
			discarded = d
		}
	}
	if d := sc.Discarded(); d != discarded {
		l.m.discarded.Add(float64(d - discarded))
	}
	err := sc.Err()
	switch {
	case pubErr != nil:
		if pubCtx.Err() != nil {
			l.m.close(reasonShutdown)
			return
		}
		l.m.close(reasonPublishFailed)
		l.log.Warn("closing connection: publish failed", "peer", peerStr, "offset", rd.n, "err", pubErr)
	case err == nil:
		l.m.close(reasonEOF)
		l.log.Debug("connection closed by peer", "peer", peerStr, "bytes", rd.n)
	case l.stopping.Load():
		l.m.close(reasonShutdown)
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.m.close(reasonIdle)
		l.log.Info("closing idle connection", "peer", peerStr, "idle_timeout", l.cfg.IdleTimeout, "offset", rd.n)
	default:
		l.m.close(reasonReadError)
		l.log.Warn("connection read failed", "peer", peerStr, "offset", rd.n, "err", err)
	}
}

// handshake runs the TLS server handshake (RFC 5425 §4.2) under
// HandshakeTimeout. A failure is logged and counted by reason and affects
// only this connection.
func (l *Listener) handshake(c net.Conn, peer string) (*tls.Conn, bool) {
	tc := tls.Server(c, l.cfg.TLS)
	c.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	err := tc.Handshake()
	if err == nil {
		c.SetDeadline(time.Time{})
		if l.stopping.Load() {
			return nil, false
		}
		return tc, true
	}
	if l.stopping.Load() {
		return nil, false
	}
	reason := handshakeReason(err)
	l.m.reject(reason)
	l.log.Warn("TLS handshake failed", "peer", peer, "reason", reason, "err", err)
	return nil, false
}

func handshakeReason(err error) string {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return reasonTLSTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return reasonTLSEOF
	case errors.As(err, &rh):
		return reasonTLSNotTLS
	case errors.As(err, &cv), strings.Contains(err.Error(), "certificate"):
		return reasonTLSCert
	}
	return reasonTLSError
}
