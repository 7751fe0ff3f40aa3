package tenantsyslog_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/sinks/tenantsyslog"
)

const (
	childEnv   = "VPIPE_TENANTSYSLOG_CHILD"
	childAddr  = "VPIPE_TENANTSYSLOG_ADDR"
	childFile  = "VPIPE_TENANTSYSLOG_TENANTS"
	childHold  = "VPIPE_TENANTSYSLOG_HOLD_REPLAY" // set: the replayer starts on SIGUSR1
	childBatch = 100
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is the stage process of TestKillAndRestart: the runner and the
// replayer with the tenants of a tenants file, until SIGTERM.
func runChild() int {
	data, err := os.ReadFile(os.Getenv(childFile))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ts, err := config.ParseTenantsFile(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	reg, probs := tenants.Build(ts)
	if len(probs) > 0 {
		fmt.Fprintln(os.Stderr, probs)
		return 1
	}
	addr := os.Getenv(childAddr)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sink, err := tenantsyslog.New(sinkConfig(addr), nil, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sink.Close()
	sink.SetRegistry(reg)
	r, err := stage.New(stageConfig(addr, childBatch), sink, nil, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	hold := make(chan os.Signal, 1)
	if os.Getenv(childHold) != "" {
		signal.Notify(hold, syscall.SIGUSR1)
	} else {
		hold <- syscall.SIGUSR1
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Run(ctx) }()
	go func() {
		defer wg.Done()
		select {
		case <-hold:
		case <-ctx.Done():
			return
		}
		sink.Replayer(replayerConfig()).Run(ctx)
	}()
	wg.Wait()
	return 0
}

func startChild(t *testing.T, addr, file string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childAddr+"="+addr, childFile+"="+file)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() || testing.Verbose() {
			t.Logf("child %d output:\n%s", cmd.Process.Pid, out.String())
		}
	})
	return cmd
}

// TestKillAndRestart: the stage process is killed (SIGKILL) in the middle
// of a run in which one tenant's endpoint is down and the others are
// rate-limited (so events are being sent, parked and replayed at the
// moment of the kill); started again, it delivers every event: nothing
// is lost, duplicates are allowed and counted.
func TestKillAndRestart(t *testing.T) {
	per := scale(1500, 400)
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	var recvs []*receiver
	var yaml strings.Builder
	yaml.WriteString("list:\n")
	var labels []string
	for k := 0; k < 4; k++ {
		r := newReceiver(t, "tcp")
		r.framing = syslog.FramingOctetCounting // the default
		recvs = append(recvs, r)
		vdc := fmt.Sprintf("%08x-7471-4192-8d09-a8f7eeda85f9", 0xa93c9db9+k)
		labels = append(labels, vdc)
		fmt.Fprintf(&yaml, `  - id: t%d
    org_vdcs: [{name: vdc%d, id: %s}]
    syslog:
      - transport: tcp
        address: %s
        rate_limit: %d
        burst: 50
        min_backoff: 20ms
        max_backoff: 200ms
`, k, k, vdc, r.addr, per)
		if k < 3 {
			r.start()
		}
	}
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var evs []*pipeline.Event
	for i := 0; i < 4*per; i++ {
		evs = append(evs, fwEvent(i, pipeline.DatasetNSXVDFW, labels[i%4]))
	}
	produce(t, addr, "firewall", evs)

	child := startChild(t, addr, file)
	received := func() int { return recvs[0].distinct() + recvs[1].distinct() + recvs[2].distinct() }
	waitFor(t, 60*time.Second, "a third of the live tenants' events", func() bool { return received() >= per })
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	before := received()
	t.Logf("killed after %d of %d events", before, 3*per)

	startChild(t, addr, file)
	recvs[3].start()
	for k, r := range recvs {
		waitFor(t, 120*time.Second, fmt.Sprintf("t%d's events", k), func() bool { return r.distinct() == per })
	}
	dups := 0
	for k, r := range recvs {
		dups += r.count() - r.distinct()
		if at, ok := firstArrivalsInOrder(r.received()); !ok {
			t.Errorf("t%d's events arrived out of order: seq %d came after a later one", k, at)
		}
	}
	t.Logf("every event delivered in order; %d duplicates (at-least-once across the kill)", dups)
}

// firstArrivalsInOrder reports whether seqs, ignoring repeats of a seq
// already seen (duplicates after a crash are allowed), increase; if not,
// the first seq that came too late.
func firstArrivalsInOrder(seqs []int) (at int, ok bool) {
	seen := map[int]bool{}
	last := -1
	for _, s := range seqs {
		if seen[s] {
			continue
		}
		seen[s] = true
		if s < last {
			return s, false
		}
		last = s
	}
	return 0, true
}

// topicEnd is the number of records in topic: the sum of its partitions'
// end offsets.
func topicEnd(tb testing.TB, addr, topic string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	var reqs []kafka.OffsetRequest
	for p := 0; p < 4; p++ {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		tb.Fatalf("list offsets: %v", err)
	}
	var n int64
	for _, p := range res.Topics[topic] {
		if p.Error == nil {
			n += p.LastOffset
		}
	}
	return n
}

// TestRestartKeepsOrder: a tenant's endpoint is down while the stage
// process parks its events, and the process is killed (SIGKILL). More
// events come; the endpoint is back; a new process starts, whose replayer
// the test holds back. The new process knows nothing of what its
// predecessor parked, yet it must not send the tenant's new events before
// the parked ones: it finds the backlog in the parked topic and parks
// behind it. So while the replay is held, a tenant elsewhere gets its new
// events and this one none; once the replay runs, it gets all, in order.
// A healthy tenant whose records share the backlog's partition waits
// with it, and gets all its events in order too.
func TestRestartKeepsOrder(t *testing.T) {
	per := scale(1000, 300)
	addr := brokertest.Start(t, "firewall", "parked", "dlq")
	// The parked topic has 4 partitions (brokertest): t1 is chosen to
	// hash to t0's, t2 to another.
	part := func(id string) int {
		return kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(id)}, 0, 1, 2, 3)
	}
	ids := []string{"t0", "", ""}
	for i := 1; ids[1] == "" || ids[2] == ""; i++ {
		id := fmt.Sprintf("t%d", i)
		switch {
		case ids[1] == "" && part(id) == part("t0"):
			ids[1] = id
		case ids[2] == "" && part(id) != part("t0"):
			ids[2] = id
		}
	}
	var recvs []*receiver
	var labels []string
	var yaml strings.Builder
	yaml.WriteString("list:\n")
	for k, id := range ids {
		r := newReceiver(t, "tcp")
		r.framing = syslog.FramingOctetCounting
		recvs = append(recvs, r)
		vdc := fmt.Sprintf("%08x-7471-4192-8d09-a8f7eeda85f9", 0xb93c9db9+k)
		labels = append(labels, vdc)
		fmt.Fprintf(&yaml, `  - id: %s
    org_vdcs: [{name: vdc%d, id: %s}]
    syslog:
      - {transport: tcp, address: %s, min_backoff: 20ms, max_backoff: 200ms}
`, id, k, vdc, r.addr)
		if k > 0 {
			r.start()
		}
	}
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	n := len(ids)
	wave := func(from int) {
		var evs []*pipeline.Event
		for i := from; i < from+n*per; i++ {
			evs = append(evs, fwEvent(i, pipeline.DatasetNSXVDFW, labels[i%n]))
		}
		produce(t, addr, "firewall", evs)
	}
	wave(0)
	child := startChild(t, addr, file)
	waitFor(t, 60*time.Second, "t0's events parked and the others' sent", func() bool {
		return topicEnd(t, addr, "parked") >= int64(per) && recvs[1].distinct() == per && recvs[2].distinct() == per
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	wave(n * per)
	recvs[0].start()
	child = startChild(t, addr, file, childHold+"=1")
	waitFor(t, 60*time.Second, ids[2]+"'s new events", func() bool { return recvs[2].distinct() == 2*per })
	if got := recvs[0].count(); got > 0 {
		t.Errorf("t0 received %d events before the replay of its backlog", got)
	}
	if err := child.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for k, r := range recvs {
		waitFor(t, 60*time.Second, ids[k]+"'s events", func() bool { return r.distinct() == 2*per })
		if at, ok := firstArrivalsInOrder(r.received()); !ok {
			t.Errorf("%s's events arrived out of order: seq %d came after a later one", ids[k], at)
		}
	}
}
