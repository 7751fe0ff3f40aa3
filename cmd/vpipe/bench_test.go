package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/broker"
)

// dfwLine is a real NSX 4.x DFW line (splunk-connect-for-syslog tests) with
// a VCD-style log label, about 250 bytes as the target names.
const dfwLine = `<13>1 2024-05-15T19:41:25.001Z vcf-w1c1-esxi05.corporate.rjet.com FIREWALL-PKTLOG - - - 5ff3a4d0 INET match PASS mainrs/1024 OUT 60 TCP 10.10.10.11/60517->10.10.10.10/443 S dcgrp2a55d8e4c1f7b1ad8a7e95c07fd43a`

// produced sums vpipe_producer_records_total.
func (p *proc) produced() float64 {
	mfs, _ := p.reg.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "vpipe_producer_records_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// BenchmarkE2ETCP sends b.N DFW lines over 4 TCP connections into a
// running vpipe (full parse, ECS JSON, acks=all into the embedded broker)
// and waits until Kafka acknowledged all of them.
func BenchmarkE2ETCP(b *testing.B) { benchE2E(b, false) }

// BenchmarkE2ETCPBlackhole is the same into a broker that acknowledges
// without storing: the figure for vpipe itself.
func BenchmarkE2ETCPBlackhole(b *testing.B) { benchE2E(b, true) }

func benchE2E(b *testing.B, blackhole bool) {
	cfg := testConfig(b.TempDir())
	cfg.Log.Level = "error"
	cfg.Syslog = cfg.Syslog[1:] // TCP only
	var p *proc
	var err error
	if blackhole {
		bk, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Blackhole: true})
		if err != nil {
			b.Fatal(err)
		}
		defer bk.Close()
		cfg.Kafka.Brokers = []string{bk.Addr()}
	}
	p, err = start(cfg, map[string]bool{roleIngest: true}, newLogger(os.Stderr, "error"))
	if err != nil {
		b.Fatal(err)
	}
	r := &running{p: p, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.done <- p.serve(ctx) }()
	defer func() {
		cancel()
		<-r.done
	}()
	addr := p.listeners[0].Addr().String()

	const conns = 4
	b.SetBytes(int64(len(dfwLine) + 1))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range conns {
		n := b.N / conns
		if c == 0 {
			n += b.N % conns
		}
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			w := bufio.NewWriterSize(conn, 256<<10)
			for range n {
				w.WriteString(dfwLine)
				w.WriteByte('\n')
			}
			w.Flush()
			conn.Close()
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for p.produced() < float64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%v of %d acknowledged", p.produced(), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(peakRSSMiB(), "peakRSS_MiB")
}

// peakRSSMiB reads the process's peak resident set size (VmHWM).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
