package syslog

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/vpipe/vpipe/pipeline"
)

// The two RFC 5424 benchmark lines, from testdata/nsxt-dfw.log and
// testdata/nsxt-gateway-fw.log.
const (
	dfwLine     = "<13>1 2024-05-15T19:41:25.001Z vcf-w1c1-esxi05.corporate.rjet.com FIREWALL-PKTLOG - - - INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow"
	gatewayLine = `<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`
	bsdLine     = `<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: VCF Open xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3`
)

var benchLines = []struct{ name, line string }{
	{"dfw", dfwLine},
	{"gateway", gatewayLine},
}

// BenchmarkParse compares Parser.Parse with go-syslog's RFC 5424 machine on
// the same lines. Parse includes copying the line into the event, as the
// listener does.
func BenchmarkParse(b *testing.B) {
	for _, bl := range benchLines {
		b.Run("vpipe/"+bl.name, func(b *testing.B) {
			p := NewParser(Options{})
			var e pipeline.Event
			line := []byte(bl.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				e.Reset()
				e.Original = append(e.Original[:0], line...)
				p.Parse(&e)
			}
			if e.Error != "" {
				b.Fatal(e.Error)
			}
		})
		b.Run("gosyslog/"+bl.name, func(b *testing.B) {
			m := rfc5424.NewParser(rfc5424.WithBestEffort())
			line := []byte(bl.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Parse(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("vpipe/rfc3164", func(b *testing.B) {
		p := NewParser(Options{Now: func() time.Time { return fixedNow }})
		var e pipeline.Event
		line := []byte(bsdLine)
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			e.Reset()
			e.Original = append(e.Original[:0], line...)
			p.Parse(&e)
		}
	})
}

// BenchmarkScanner frames a stream of ~250-byte messages, non-transparent
// and octet-counted, from memory.
func BenchmarkScanner(b *testing.B) {
	msg := gatewayLine[:250]
	var nl, oc []byte
	for len(nl) < 4<<20 {
		nl = append(nl, msg...)
		nl = append(nl, '\n')
		oc = strconv.AppendInt(oc, int64(len(msg)), 10)
		oc = append(oc, ' ')
		oc = append(oc, msg...)
	}
	for _, bc := range []struct {
		name string
		in   []byte
	}{{"non-transparent", nl}, {"octet-counting", oc}} {
		b.Run(bc.name, func(b *testing.B) {
			r := bytes.NewReader(bc.in)
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(bc.in)
				s := NewScanner(r, 0)
				n := 0
				for s.Scan() {
					n += len(s.Frame())
				}
				if n == 0 || s.Err() != nil {
					b.Fatal("no frames")
				}
			}
		})
	}
}
