package syslogin

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// packet is one datagram waiting in the UDP queue.
type packet struct {
	data []byte
	peer netip.AddrPort
	err  error // syslog.ErrFrameTooLong when truncated to MaxFrame
}

// pooledCap is the largest packet buffer kept for reuse, so that a burst
// of large datagrams does not pin memory.
const pooledCap = 8 << 10

var packets = sync.Pool{New: func() any { return new(packet) }}

func releasePacket(p *packet) {
	if cap(p.data) > pooledCap {
		p.data = nil
	}
	p.err = nil
	packets.Put(p)
}

// bindUDP binds Sockets UDP sockets to Address: the first one picks the
// port when it is 0, the others join it with SO_REUSEPORT.
func (l *Listener) bindUDP() error {
	reuse := l.cfg.Sockets > 1
	for i := range l.cfg.Sockets {
		addr := l.cfg.Address
		if i > 0 {
			addr = l.addr.String()
		}
		c, err := listenUDP(addr, reuse)
		if err != nil {
			for _, c := range l.udp {
				c.Close()
			}
			l.udp = nil
			return err
		}
		if i == 0 {
			l.addr = c.LocalAddr()
		}
		l.udp = append(l.udp, c)
		if l.cfg.ReadBuffer > 0 {
			if err := c.SetReadBuffer(l.cfg.ReadBuffer); err != nil {
				l.log.Warn("cannot set SO_RCVBUF", "bytes", l.cfg.ReadBuffer, "err", err)
			} else if got, ok := readBuffer(c); ok && got < l.cfg.ReadBuffer {
				if i == 0 {
					l.log.Warn("SO_RCVBUF capped by the kernel (raise net.core.rmem_max)", "requested", l.cfg.ReadBuffer, "effective", got)
				}
			}
		}
	}
	return nil
}

// serveUDP runs one reader per socket, feeding a bounded queue, and
// Workers goroutines that parse and publish from it. When the sockets are
// closed, the queue is drained before it returns.
func (l *Listener) serveUDP(pubCtx context.Context) error {
	queue := make(chan *packet, l.cfg.QueueSize)
	var readers, workers sync.WaitGroup
	errs := make([]error, len(l.udp))
	for i, c := range l.udp {
		readers.Go(func() { errs[i] = l.readUDP(c, queue) })
	}
	for range l.cfg.Workers {
		workers.Go(func() { l.workUDP(pubCtx, queue) })
	}
	readers.Wait()
	close(queue)
	workers.Wait()
	return errors.Join(errs...)
}

// readUDP reads datagrams (RFC 5426 §3.1: one message per datagram) into
// the queue without ever blocking on it.
func (l *Listener) readUDP(c *net.UDPConn, queue chan<- *packet) error {
	buf := make([]byte, maxDatagram+1)
	for {
		n, peer, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.stopping.Load() {
				return nil
			}
			// Stop the other sockets too, so that Serve reports it.
			l.stop()
			return err
		}
		l.m.receivedBytes.Add(float64(n))
		if n == 0 {
			continue
		}
		l.m.received.Inc()
		p := packets.Get().(*packet)
		if n > l.cfg.MaxFrame {
			l.m.discarded.Add(float64(n - l.cfg.MaxFrame))
			n, p.err = l.cfg.MaxFrame, syslog.ErrFrameTooLong
		}
		p.data = append(p.data[:0], buf[:n]...)
		p.peer = peer
		select {
		case queue <- p:
		default:
			releasePacket(p)
			l.m.queueFull.Inc()
			if ok, suppressed := l.dropLog.allow(); ok {
				l.log.Warn("UDP queue full: dropping datagrams", "queue_size", l.cfg.QueueSize, "dropped_unlogged", suppressed)
			}
		}
	}
}

// workUDP parses and publishes queued datagrams until the queue is closed
// and empty.
func (l *Listener) workUDP(pubCtx context.Context, queue <-chan *packet) {
	var e pipeline.Event
	var peer [64]byte
	for p := range queue {
		err := l.handle(pubCtx, &e, p.data, p.peer.AppendTo(peer[:0]), p.err)
		releasePacket(p)
		if err != nil && pubCtx.Err() == nil {
			if ok, suppressed := l.dropLog.allow(); ok {
				l.log.Warn("publish failed: dropping datagram", "err", err, "dropped_unlogged", suppressed)
			}
		}
	}
}
