package tenantsyslog_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	kproduce "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/sinks/tenantsyslog"
)

// gatedTransport holds produce requests until open is closed, then fails
// the first fail of them.
type gatedTransport struct {
	open chan struct{}
	mu   sync.Mutex
	fail int
}

func (g *gatedTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	if _, ok := req.(*kproduce.Request); ok {
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		g.mu.Lock()
		fail := g.fail > 0
		g.fail--
		g.mu.Unlock()
		if fail {
			return nil, errors.New("produce refused by the test")
		}
	}
	return kafka.DefaultTransport.RoundTrip(ctx, addr, req)
}

// TestParkPipelined: WritePipelined does not wait for the park of its
// batch; its wait does, and the park loop retries a park that Kafka
// refused (past kafka-go's own attempts) until it is acknowledged. The
// dead tenant's parked records keep their order across batches, and each
// is counted parked once.
func TestParkPipelined(t *testing.T) {
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	const vdc = "a93c9db9-7471-3192-8d09-a8f7eeda85f9"
	dead := newReceiver(t, "tcp") // never started
	reg, _ := tenants.Build([]tenants.Tenant{
		{ID: "acme", NSXVOrgVDCs: []string{vdc}, Destinations: []tenants.Destination{dead.destination(nil)}},
	})
	gate := &gatedTransport{open: make(chan struct{}), fail: 5} // kafka-go tries 3 times a park call
	cfg := sinkConfig(addr)
	cfg.Transport = gate
	f := &forward{reg: prometheus.NewRegistry()}
	sink, err := tenantsyslog.New(cfg, tenantsyslog.NewMetrics(f.reg), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.SetRegistry(reg); err != nil {
		t.Fatal(err)
	}

	const batches, per = 3, 50
	ctx := context.Background()
	var waits []func(context.Context) error
	for b := 0; b < batches; b++ {
		batch := make([]stage.Record, per)
		for i := range batch {
			n := b*per + i
			batch[i] = stage.Record{
				Msg:   kafka.Message{Topic: "firewall", Offset: int64(n)},
				Event: fwEvent(n, pipeline.DatasetNSXVDFW, vdc),
			}
		}
		wait, err := sink.WritePipelined(ctx, batch)
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if wait == nil {
			t.Fatalf("batch %d: nothing to wait for, but its events are parked", b)
		}
		waits = append(waits, wait)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = waits[0](short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait while the parked topic holds every write: %v, want the context's deadline", err)
	}

	close(gate.open)
	for b, wait := range waits {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := wait(wctx)
		cancel()
		if err != nil {
			t.Fatalf("batch %d: wait: %v", b, err)
		}
	}
	if got := f.metric(t, "vpipe_tenant_parked_total", "tenant", "acme"); got != batches*per {
		t.Errorf("parked_total = %v, want %d", got, batches*per)
	}
	if got := f.metric(t, "vpipe_tenant_park_errors_total"); got < 1 {
		t.Errorf("park_errors_total = %v, want at least 1", got)
	}

	// The parked records, in partition order: every event, and the first
	// copy of each in sequence (a retry may park some twice).
	seqs := parkedSeqs(t, addr)
	seen := map[int]bool{}
	last := -1
	for _, s := range seqs {
		if seen[s] {
			continue
		}
		seen[s] = true
		if s <= last {
			t.Fatalf("parked seq %d after %d: %v", s, last, seqs)
		}
		last = s
	}
	if len(seen) != batches*per {
		t.Errorf("%d distinct events parked, want %d", len(seen), batches*per)
	}
}

// parkedSeqs reads the parked topic (one tenant: one partition) and
// returns the seq of each record in offset order.
func parkedSeqs(t *testing.T, addr string) []int {
	t.Helper()
	var seqs []int
	for p := 0; p < 4; p++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c := &kafka.Client{Addr: kafka.TCP(addr)}
		res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{"parked": {kafka.LastOffsetOf(p)}}})
		if err != nil {
			cancel()
			t.Fatalf("list offsets: %v", err)
		}
		var end int64
		for _, po := range res.Topics["parked"] {
			if po.Error == nil {
				end = po.LastOffset
			}
		}
		if end > 0 {
			rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "parked", Partition: p, MaxWait: 100 * time.Millisecond})
			for n := int64(0); n < end; n++ {
				m, err := rd.ReadMessage(ctx)
				if err != nil {
					rd.Close()
					cancel()
					t.Fatalf("read parked partition %d: %v", p, err)
				}
				if s, ok := seqOf(m.Value); ok {
					seqs = append(seqs, s)
				}
			}
			rd.Close()
		}
		cancel()
		if len(seqs) > 0 {
			break
		}
	}
	return seqs
}
