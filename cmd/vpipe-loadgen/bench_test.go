package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
)

// BenchmarkSend measures how fast the load generator sends generated lines
// (the default mix of DFW, gateway and vCenter lines) into a listener that
// discards them: the ceiling of what it can offer a receiver on this
// machine. Over UDP the receiver's socket drops what it cannot take; the
// figure is what left the sender.
func BenchmarkSend(b *testing.B) {
	certPEM, keyPEM := selfSigned(b)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name      string
		transport string
		framing   string
		conns     int
	}{
		{"tcp/1conn", "tcp", framingNewline, 1},
		{"tcp/4conns", "tcp", framingNewline, 4},
		{"tcp-octet/1conn", "tcp", framingOctet, 1},
		{"tls/1conn", "tls", framingNewline, 1},
		{"udp/1socket", "udp", "", 1},
		{"udp/4sockets", "udp", "", 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := plan{transport: bc.transport, framing: bc.framing, conns: bc.conns, count: uint64(b.N),
				src: newGenSource(generatedKinds, 8, 16, 1)}
			if bc.transport == "udp" {
				p.addr = discardUDP(b)
			} else {
				var sc *tls.Config
				if bc.transport == "tls" {
					sc = &tls.Config{Certificates: []tls.Certificate{cert}}
					p.tls = &tls.Config{InsecureSkipVerify: true}
				}
				p.addr = discardTCP(b, sc)
			}
			b.ResetTimer()
			r, err := send(context.Background(), p, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if r.Messages+r.Errors != uint64(b.N) {
				b.Fatalf("%d sent, %d errors of %d", r.Messages, r.Errors, b.N)
			}
			b.SetBytes(int64(r.Bytes) / int64(b.N))
			b.ReportMetric(r.MsgsPerSec, "msgs/s")
		})
	}
}

// discardTCP accepts connections (TLS when sc is set) and reads them into
// io.Discard until the benchmark ends.
func discardTCP(b *testing.B, sc *tls.Config) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if sc != nil {
				c = tls.Server(c, sc)
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// discardUDP reads datagrams and drops them until the benchmark ends.
func discardUDP(b *testing.B) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	return c.LocalAddr().String()
}
