package kafkaout_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
)

func newProducer(t testing.TB, cfg kafkaout.Config) *kafkaout.Producer {
	t.Helper()
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "vpipe."
	}
	p, err := kafkaout.New(cfg, kafkaout.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// acks collects done callbacks.
type acks struct {
	mu   sync.Mutex
	n    int
	errs []error
	all  chan struct{}
	want int
}

func newAcks(want int) *acks { return &acks{want: want, all: make(chan struct{})} }

func (a *acks) done(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	if err != nil {
		a.errs = append(a.errs, err)
	}
	if a.n == a.want {
		close(a.all)
	}
}

func (a *acks) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-a.all:
	case <-time.After(d):
		a.mu.Lock()
		defer a.mu.Unlock()
		t.Fatalf("%d of %d acknowledgements after %v", a.n, a.want, d)
	}
	if len(a.errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(a.errs), a.errs[0])
	}
}

func firewallEvent(i int) *pipeline.Event {
	e := &pipeline.Event{
		Dataset:  pipeline.DatasetNSXDFW,
		Original: []byte(fmt.Sprintf("<13>1 2024-05-15T19:41:25.001Z esxi05 FIREWALL-PKTLOG - - - INET match PASS %d OUT 84 ICMP 10.0.0.1->10.0.0.2 label-%d", i, i%3)),
		Created:  time.Unix(1700000000, 0),
	}
	e.VMware.NSX.LogLabel = fmt.Sprintf("label-%d", i%3)
	e.Source.IP = netip.MustParseAddr("10.0.0.1")
	return e
}

func TestPublishRoutesAndKeys(t *testing.T) {
	addr := brokertest.Start(t)
	p := newProducer(t, kafkaout.Config{Brokers: []string{addr}})
	const n = 300
	a := newAcks(n + 2)
	ctx := context.Background()
	for i := range n {
		if err := p.Publish(ctx, firewallEvent(i), a.done); err != nil {
			t.Fatal(err)
		}
	}
	other := &pipeline.Event{Dataset: pipeline.DatasetSyslogGeneric, Original: []byte("hello"), LogSource: "192.0.2.7:514"}
	if err := p.Publish(ctx, other, a.done); err != nil {
		t.Fatal(err)
	}
	vc := &pipeline.Event{Dataset: pipeline.DatasetVCenterEvent, Original: []byte("{}")}
	vc.VMware.VCenter.Server, vc.VMware.VCenter.ObjectRef = "vc1", "vm-42"
	if err := p.Publish(ctx, vc, a.done); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 20*time.Second)

	fw := brokertest.ReadN(t, addr, "vpipe.firewall", n, 10*time.Second)
	if len(fw) != n {
		t.Fatalf("firewall topic: %d records, want %d", len(fw), n)
	}
	partOf := map[string]int{}
	for _, m := range fw {
		if len(m.Headers) != 1 || m.Headers[0].Key != kafkaout.HeaderSchema || string(m.Headers[0].Value) != pipeline.SchemaVersion {
			t.Fatalf("record headers %v, want the schema version", m.Headers)
		}
		k := string(m.Key)
		if !strings.HasPrefix(k, "label-") || !strings.Contains(string(m.Value), `"log_label":"`+k+`"`) {
			t.Fatalf("record keyed %q holds %s", k, m.Value)
		}
		if p, ok := partOf[k]; ok && p != m.Partition {
			t.Fatalf("key %q on partitions %d and %d", k, p, m.Partition)
		}
		partOf[k] = m.Partition
	}
	o := brokertest.ReadN(t, addr, "vpipe.other", 1, 10*time.Second)
	if string(o[0].Key) != "192.0.2.7" || !strings.Contains(string(o[0].Value), `"original":"hello"`) {
		t.Fatalf("other: key %q value %s", o[0].Key, o[0].Value)
	}
	v := brokertest.ReadN(t, addr, "vpipe.vcenter", 1, 10*time.Second)
	if string(v[0].Key) != "vc1/vm-42" {
		t.Fatalf("vcenter key %q", v[0].Key)
	}
}

func TestTooLargeGoesToDLQ(t *testing.T) {
	addr := brokertest.Start(t)
	p := newProducer(t, kafkaout.Config{Brokers: []string{addr}, MaxRecordBytes: 10000})
	a := newAcks(2)
	big := &pipeline.Event{Dataset: pipeline.DatasetSyslogGeneric, Original: []byte(strings.Repeat("x", 20000)), LogSource: "192.0.2.1:1"}
	if err := p.Publish(context.Background(), big, a.done); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), firewallEvent(1), a.done); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 20*time.Second)
	d := brokertest.ReadN(t, addr, "vpipe.dlq", 1, 10*time.Second)[0]
	h := map[string]string{}
	for _, x := range d.Headers {
		h[x.Key] = string(x.Value)
	}
	if !strings.HasPrefix(h[kafkaout.HeaderReason], "record too large") || h[kafkaout.HeaderTopic] != "vpipe.other" {
		t.Fatalf("DLQ headers %v", h)
	}
	if h[kafkaout.HeaderTruncated] != "20000" || !strings.HasPrefix(string(d.Value), "xxxx") || len(d.Value) != 10000-4096 {
		t.Fatalf("DLQ value: %d bytes, truncated header %q", len(d.Value), h[kafkaout.HeaderTruncated])
	}
	brokertest.ReadN(t, addr, "vpipe.firewall", 1, 10*time.Second)
}

// freePort returns a loopback port nothing listens on (a race with other
// processes is possible but unlikely).
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBrokerDownAndBack publishes while no broker listens, then starts it:
// every record arrives, and readiness follows.
func TestBrokerDownAndBack(t *testing.T) {
	addr := freePort(t)
	p := newProducer(t, kafkaout.Config{Brokers: []string{addr}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	const n = 500
	a := newAcks(n)
	for i := range n {
		if err := p.Publish(context.Background(), firewallEvent(i), a.done); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Ready() == nil || strings.Contains(p.Ready().Error(), "no produce acknowledged yet") {
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v while the broker is down", p.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	brokertest.StartConfig(t, broker.Config{Listen: addr})
	a.wait(t, 30*time.Second)
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready() = %v after delivery", err)
	}
	if got := brokertest.ReadN(t, addr, "vpipe.firewall", n, 10*time.Second); len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
}

// TestBackpressure: with the broker down and the buffer full, Publish
// blocks until its context ends.
func TestBackpressure(t *testing.T) {
	p := newProducer(t, kafkaout.Config{Brokers: []string{freePort(t)}, MaxBuffered: 4})
	for i := range 4 {
		if err := p.Publish(context.Background(), firewallEvent(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, firewallEvent(5), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish on a full buffer = %v, want deadline exceeded", err)
	}
}

// TestCloseDeadline: records Kafka never acknowledged are failed to their
// publishers when Close's deadline passes, and Close says how many.
func TestCloseDeadline(t *testing.T) {
	p := newProducer(t, kafkaout.Config{Brokers: []string{freePort(t)}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	var failed atomic.Int32
	for i := range 10 {
		p.Publish(context.Background(), firewallEvent(i), func(err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "10 records not acknowledged") {
		t.Fatalf("Close = %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for failed.Load() != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 done callbacks reported failure", failed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Publish(context.Background(), firewallEvent(0), nil); !errors.Is(err, kafkaout.ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
}

// BenchmarkPublish measures encode + produce (acks=all) into the embedded
// broker.
func BenchmarkPublish(b *testing.B) {
	addr := brokertest.Start(b, "vpipe.firewall")
	p := newProducer(b, kafkaout.Config{Brokers: []string{addr}})
	evs := make([]*pipeline.Event, 64)
	for i := range evs {
		evs[i] = firewallEvent(i)
	}
	var wg sync.WaitGroup
	done := func(err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(evs[0].Original)))
	b.ResetTimer()
	wg.Add(b.N)
	for i := 0; i < b.N; i++ {
		if err := p.Publish(context.Background(), evs[i%len(evs)], done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
