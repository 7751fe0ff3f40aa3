package velocloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/runtest"
	"github.com/vpipe/vpipe/pipeline/velocloud"
	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
)

const (
	testToken    = "operator-token"
	testOperator = "op@example.com"
	testPassword = "s3cret"
)

// simConfig is a simulator with an operator token and operator,
// partner and enterprise users.
func simConfig(ents ...simulator.Enterprise) simulator.Config {
	return simulator.Config{
		Enterprises: ents,
		Tokens: []simulator.Token{
			{Token: testToken, Role: simulator.RoleOperator},
			{Token: "enterprise-token", Role: simulator.RoleEnterprise, EnterpriseID: 1},
		},
		Users: []simulator.User{
			{Username: testOperator, Password: testPassword, Role: simulator.RoleOperator},
			{Username: "msp@example.com", Password: testPassword, Role: simulator.RolePartner, ProxyID: 9},
			{Username: "ent@example.com", Password: testPassword, Role: simulator.RoleEnterprise, EnterpriseID: 1},
		},
		Penalty: time.Second,
	}
}

// startSim serves sim over HTTP until the test ends.
func startSim(t testing.TB, cfg simulator.Config) (*simulator.Server, string) {
	t.Helper()
	sim := simulator.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// sourceConfig is a source with timings short enough for tests.
func sourceConfig(name, url string) velocloud.Config {
	return velocloud.Config{
		Name:             name,
		Client:           velocloud.ClientConfig{URL: url, Auth: velocloud.Auth{Token: testToken}, Timeout: 5 * time.Second},
		Account:          velocloud.AccountOperator,
		Interval:         100 * time.Millisecond,
		Lookback:         3 * time.Second,
		Backfill:         time.Hour,
		MinWindow:        10 * time.Millisecond,
		MinBackoff:       10 * time.Millisecond,
		MaxBackoff:       200 * time.Millisecond,
		RateLimitBackoff: 200 * time.Millisecond,
		MaxAttempts:      3,
		ShutdownTimeout:  10 * time.Second,
	}
}

// newProducer is a producer to the broker at addr; closed when the test
// ends.
func newProducer(t testing.TB, addr, prefix string) *kafkaout.Producer {
	t.Helper()
	p, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: prefix, Linger: time.Millisecond},
		kafkaout.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// openCheckpoints opens the checkpoint store of prefix on the broker.
func openCheckpoints(t testing.TB, addr, prefix string) *checkpoint.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := checkpoint.Open(ctx, []string{addr}, prefix+pipeline.TopicCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runSource runs a source until stop is called or the test ends.
func runSource(t testing.TB, cfg velocloud.Config, deps velocloud.Deps) (stop func()) {
	t.Helper()
	src, err := velocloud.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return runtest.Start(t, "source", src.Run)
}

// harness is a broker, a producer and a checkpoint store for one topic
// prefix.
type harness struct {
	addr, prefix string
	prod         *kafkaout.Producer
	reg          *prometheus.Registry
	metrics      *velocloud.Metrics
	logs         *logBuffer
}

func newHarness(t testing.TB, addr, prefix string) *harness {
	reg := prometheus.NewRegistry()
	return &harness{addr: addr, prefix: prefix, prod: newProducer(t, addr, prefix), reg: reg,
		metrics: velocloud.NewMetrics(reg), logs: &logBuffer{}}
}

func (h *harness) deps(t testing.TB) velocloud.Deps {
	return velocloud.Deps{Publisher: h.prod, Checkpoints: openCheckpoints(t, h.addr, h.prefix), Metrics: h.metrics, Log: h.logs.logger(t)}
}

func startBroker(t testing.TB) string {
	return brokertest.Start(t)
}

// vcoEvent is what the tests check of a published record.
type vcoEvent struct {
	Key        string
	ID         string // event.id
	VCOID      int64
	Enterprise int64
	OrgID      string
	OrgName    string
	Time       time.Time
	Error      string
}

// readEvents reads at least n records of topic (within timeout) and
// decodes them, in partition and offset order.
func readEvents(t testing.TB, addr, topic string, n int, timeout time.Duration) []vcoEvent {
	t.Helper()
	msgs := brokertest.ReadN(t, addr, topic, n, timeout)
	return decode(t, msgs)
}

// readMessages reads at least n records of topic.
func readMessages(t testing.TB, addr, topic string, n int) []kafka.Message {
	t.Helper()
	return brokertest.ReadN(t, addr, topic, n, 30*time.Second)
}

func decode(t testing.TB, msgs []kafka.Message) []vcoEvent {
	t.Helper()
	out := make([]vcoEvent, 0, len(msgs))
	for _, m := range msgs {
		var e pipeline.Event
		if err := e.DecodeJSON(m.Value); err != nil {
			t.Fatalf("decode %s: %v", m.Value, err)
		}
		out = append(out, vcoEvent{
			Key: string(m.Key), ID: e.ID, VCOID: e.VMware.VeloCloud.EventID, Enterprise: e.VMware.VeloCloud.EnterpriseID,
			OrgID: e.Organization.ID, OrgName: e.Organization.Name, Time: e.Timestamp, Error: e.Error,
		})
	}
	return out
}

// countTopic returns how many records topic holds now.
func countTopic(t testing.TB, addr, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := brokertest.Read(ctx, addr, topic, 0)
	if err != nil {
		return 0
	}
	return len(msgs)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// logBuffer collects JSON log lines, and copies them to the test log
// with -v.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewJSONHandler(io.MultiWriter(l, tbWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewJSONHandler(l, nil))
}

// lines returns the logged records whose msg contains s.
func (l *logBuffer) lines(s string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && strings.Contains(m["msg"].(string), s) {
			out = append(out, m)
		}
	}
	return out
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// inserter adds events to the simulator over time, some of them late,
// and remembers which.
type inserter struct {
	sim  *simulator.Server
	mu   sync.Mutex
	late map[int64]bool
	n    int
}

func newInserter(sim *simulator.Server) *inserter {
	return &inserter{sim: sim, late: map[int64]bool{}}
}

// insert adds one event per enterprise at now, and, every lateEvery
// calls, one more per enterprise whose eventTime is lateBy ago (older
// than the source's last poll).
func (in *inserter) insert(t testing.TB, lateEvery int, lateBy time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.n++
	now := time.Now()
	for _, ent := range in.sim.Enterprises() {
		if _, err := in.sim.Insert(ent.ID, simulator.Event{EventTime: now, Event: "EDGE_UP", Category: "EDGE",
			Severity: "NOTICE", Message: "Edge [b1-edge1] is up " + strconv.Itoa(in.n), EdgeName: "b1-edge1"}); err != nil {
			t.Error(err)
		}
		if lateEvery > 0 && in.n%lateEvery == 0 {
			e, err := in.sim.Insert(ent.ID, simulator.Event{EventTime: now.Add(-lateBy), Event: "LINK_DEAD", Category: "NETWORK",
				Severity: "WARNING", Message: "Link GE3 is now DEAD", Detail: `{"interface": "GE3"}`, EdgeName: "b1-edge1"})
			if err != nil {
				t.Error(err)
			}
			in.late[e.ID] = true
		}
	}
}

func (in *inserter) isLate(id int64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.late[id]
}

// total is the number of events in the simulator.
func total(sim *simulator.Server) int {
	n := 0
	for _, e := range sim.Enterprises() {
		n += len(sim.Events(e.ID))
	}
	return n
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}
