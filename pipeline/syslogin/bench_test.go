package syslogin

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// discard is a Publisher that drops events and signals when it has seen
// target of them.
type discard struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (d *discard) Publish(_ context.Context, e *pipeline.Event, _ func(error)) error {
	if d.n.Add(1) == d.target {
		close(d.done)
	}
	return nil
}

// BenchmarkTCP measures a TCP listener end to end on loopback: framing,
// event fill, the syslog envelope parser, into a discarding publisher.
// One op is one record.
func BenchmarkTCP(b *testing.B) {
	for _, bc := range []struct {
		name string
		msg  string
	}{{"dfw-5424", line5424}, {"gateway-5424-sd", gatewayLine}} {
		b.Run(bc.name, func(b *testing.B) {
			pub := &discard{target: int64(b.N), done: make(chan struct{})}
			h := start(b, Config{Transport: "tcp"}, nil)
			h.l.pub = pub
			c, err := net.Dial("tcp", h.l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := []byte(bc.msg + "\n")
			chunk := bytes.Repeat(msg, 1024)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			go func() {
				for left := b.N; left > 0; {
					k := min(left, 1024)
					if _, err := c.Write(chunk[:k*len(msg)]); err != nil {
						return
					}
					left -= k
				}
			}()
			select {
			case <-pub.done:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d records after a minute", pub.n.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

const gatewayLine = `<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`
