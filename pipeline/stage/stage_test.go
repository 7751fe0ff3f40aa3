package stage_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/sinks/filesink"
)

// TestFileStage runs the trivial file stage end to end: every produced
// event is in the file exactly once, the metrics say so, and the group's
// offsets are committed to the end of each partition.
func TestFileStage(t *testing.T) {
	const n = 1000
	addr := brokertest.Start(t, "in", "dlq")
	produceEvents(t, addr, "in", 0, n)

	path := filepath.Join(t.TempDir(), "events.ndjson")
	sink, err := filesink.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	reg := prometheus.NewRegistry()
	cfg := testConfig(addr, "file", "in")
	stop := start(t, cfg, sink, stage.NewMetrics(reg))

	waitFor(t, 30*time.Second, "every event in the file", func() bool { return len(readFile(t, path)) >= n })
	hw := highWatermarks(t, addr, "in")
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool {
		c := committed(t, addr, "vpipe-file", "in")
		for p, end := range hw {
			if c[p] != end {
				return false
			}
		}
		return true
	})
	stop()

	lines := readFile(t, path)
	if len(lines) != n {
		t.Errorf("%d lines, want %d", len(lines), n)
	}
	checkAll(t, countIDs(t, lines), n)
	if got := metrictest.Sum(t, reg, "vpipe_stage_consumed_total", "stage", "file"); got != n {
		t.Errorf("consumed = %v, want %d", got, n)
	}
	if got := metrictest.Sum(t, reg, "vpipe_stage_delivered_total", "stage", "file"); got != n {
		t.Errorf("delivered = %v, want %d", got, n)
	}
	if got := metrictest.Sum(t, reg, "vpipe_stage_lag", "stage", "file"); got != 0 {
		t.Errorf("lag = %v, want 0", got)
	}
	if got := metrictest.Sum(t, reg, "vpipe_stage_write_seconds", "stage", "file"); got == 0 {
		t.Errorf("write_seconds has no observations")
	}
}

// TestTransientFailuresRetried: a sink that fails K times gets the batch
// again after a backoff; nothing is lost or sent to the DLQ.
func TestTransientFailuresRetried(t *testing.T) {
	const n, k = 200, 3
	addr := brokertest.Start(t, "in", "dlq")
	produceEvents(t, addr, "in", 0, n)

	sink := newMemSink(func(call int, _ []stage.Record) error {
		if call <= k {
			return fmt.Errorf("call %d: %w", call, errTransient)
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	start(t, testConfig(addr, "retry", "in"), sink, stage.NewMetrics(reg))
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return sink.distinct() == n })

	ids, _ := sink.snapshot()
	checkAll(t, ids, n)
	if got := metrictest.Sum(t, reg, "vpipe_stage_retries_total", "stage", "retry"); got != k {
		t.Errorf("retries = %v, want %d", got, k)
	}
	for _, reason := range []string{stage.ReasonDecode, stage.ReasonRejected, stage.ReasonRetries} {
		if got := metrictest.Sum(t, reg, "vpipe_stage_dlq_total", "stage", "retry", "reason", reason); got != 0 {
			t.Errorf("dlq{%s} = %v, want 0", reason, got)
		}
	}
}

// TestPoisonRecords: a record that is not JSON and one the sink rejects
// permanently both reach the DLQ with their original bytes and the
// vpipe-* headers; every other record is delivered, and records produced
// afterwards on the same partitions still flow.
func TestPoisonRecords(t *testing.T) {
	const n = 300
	addr := brokertest.Start(t, "in", "dlq")

	rejected := testEvent(n / 2)
	rejected.ID = "reject-me"
	rejectedMsg := kafka.Message{Key: []byte("k-rejected"), Value: rejected.AppendJSON(nil),
		Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-abc-def-01")}}}
	garbage := kafka.Message{Key: []byte("k-garbage"), Value: []byte("\x00\xffnot json at all{")}
	var msgs []kafka.Message
	for i := range n {
		switch i {
		case n / 3:
			msgs = append(msgs, garbage)
		case n / 2:
			msgs = append(msgs, rejectedMsg)
		}
		msgs = append(msgs, eventMessage(i))
	}
	produce(t, addr, "in", msgs...)

	sink := newMemSink(func(_ int, batch []stage.Record) error {
		for _, r := range batch {
			if r.Event.ID == "reject-me" {
				return pipeline.Permanent(errors.New("destination rejects reject-me"))
			}
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	start(t, testConfig(addr, "poison", "in"), sink, stage.NewMetrics(reg))
	waitFor(t, 30*time.Second, "the good events delivered", func() bool { return sink.distinct() >= n })

	dlq := brokertest.ReadN(t, addr, "dlq", 2, 30*time.Second)
	if len(dlq) != 2 {
		t.Fatalf("%d DLQ records, want 2", len(dlq))
	}
	byKey := map[string]kafka.Message{}
	for _, m := range dlq {
		byKey[string(m.Key)] = m
	}
	for _, tc := range []struct {
		name   string
		orig   kafka.Message
		reason string
	}{
		{"not json", garbage, "decode event"},
		{"rejected", rejectedMsg, "destination rejects reject-me"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := byKey[string(tc.orig.Key)]
			if !ok {
				t.Fatalf("no DLQ record with key %q", tc.orig.Key)
			}
			if !bytes.Equal(m.Value, tc.orig.Value) {
				t.Errorf("value = %q, want the original %q", m.Value, tc.orig.Value)
			}
			if r, _ := header(m, stage.HeaderReason); !strings.Contains(r, tc.reason) {
				t.Errorf("%s = %q, want it to contain %q", stage.HeaderReason, r, tc.reason)
			}
			if s, _ := header(m, stage.HeaderStage); s != "poison" {
				t.Errorf("%s = %q", stage.HeaderStage, s)
			}
			if s, _ := header(m, stage.HeaderTopic); s != "in" {
				t.Errorf("%s = %q", stage.HeaderTopic, s)
			}
			p, _ := header(m, stage.HeaderPartition)
			o, _ := header(m, stage.HeaderOffset)
			orig := readAt(t, addr, "in", p, o)
			if !bytes.Equal(orig.Value, tc.orig.Value) {
				t.Errorf("vpipe-partition/offset %s/%s point at %q, not the original", p, o, orig.Value)
			}
			for _, h := range tc.orig.Headers {
				if v, _ := header(m, h.Key); v != string(h.Value) {
					t.Errorf("original header %s = %q, want %q", h.Key, v, h.Value)
				}
			}
		})
	}

	ids, _ := sink.snapshot()
	checkAll(t, ids, n)
	if ids["reject-me"] != 0 {
		t.Errorf("the rejected record was delivered")
	}
	if got := metrictest.Sum(t, reg, "vpipe_stage_dlq_total", "stage", "poison", "reason", stage.ReasonDecode); got != 1 {
		t.Errorf("dlq{decode} = %v, want 1", got)
	}
	if got := metrictest.Sum(t, reg, "vpipe_stage_dlq_total", "stage", "poison", "reason", stage.ReasonRejected); got != 1 {
		t.Errorf("dlq{rejected} = %v, want 1", got)
	}

	// Not wedged: later records on every partition still arrive, and the
	// offsets move past the poison records.
	produceEvents(t, addr, "in", n, 2*n)
	waitFor(t, 30*time.Second, "later events delivered", func() bool { return sink.distinct() >= 2*n })
	hw := highWatermarks(t, addr, "in")
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool {
		c := committed(t, addr, "vpipe-poison", "in")
		for p, end := range hw {
			if c[p] != end {
				return false
			}
		}
		return true
	})
}

// TestMaxRetries: records whose sink keeps failing go to the DLQ after
// MaxRetries retries, with reason "retries".
func TestMaxRetries(t *testing.T) {
	addr := brokertest.Start(t, "in", "dlq")
	produceEvents(t, addr, "in", 0, 1)

	sink := newMemSink(func(int, []stage.Record) error { return errTransient })
	reg := prometheus.NewRegistry()
	cfg := testConfig(addr, "giveup", "in")
	cfg.MaxRetries = 2
	start(t, cfg, sink, stage.NewMetrics(reg))

	dlq := brokertest.ReadN(t, addr, "dlq", 1, 30*time.Second)
	if r, _ := header(dlq[0], stage.HeaderReason); !strings.Contains(r, "failed 3 times") || !strings.Contains(r, errTransient.Error()) {
		t.Errorf("reason = %q", r)
	}
	waitFor(t, 10*time.Second, "the DLQ metric", func() bool {
		return metrictest.Sum(t, reg, "vpipe_stage_dlq_total", "stage", "giveup", "reason", stage.ReasonRetries) == 1
	})
	if got := metrictest.Sum(t, reg, "vpipe_stage_retries_total", "stage", "giveup"); got != 2 {
		t.Errorf("retries = %v, want 2", got)
	}
}

// TestTwoRunnersShareGroup: two runners in one group split the partitions
// between them, each record delivered once; when one stops, the other takes
// over its partitions from where it committed. The rebalance may deliver
// again what the survivor had not yet committed (kafka-go has no
// revocation hook to commit it first): the batch being written and the two
// batches the committer may hold (see committer), so up to three batches
// of duplicates are allowed then.
func TestTwoRunnersShareGroup(t *testing.T) {
	const n = 1000
	addr := brokertest.Start(t, "in", "dlq")
	a, b := newMemSink(nil), newMemSink(nil)
	stopA := start(t, testConfig(addr, "shared", "in"), a, nil)
	start(t, testConfig(addr, "shared", "in"), b, nil)
	waitFor(t, 30*time.Second, "both members assigned partitions", func() bool {
		return assignedMembers(t, addr, "vpipe-shared") == 2
	})
	produceEvents(t, addr, "in", 0, n)
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return a.distinct()+b.distinct() >= n })

	idsA, partsA := a.snapshot()
	_, partsB := b.snapshot()
	if len(partsA) == 0 || len(partsB) == 0 {
		t.Fatalf("partitions: a %v, b %v; want both non-empty", partsA, partsB)
	}
	for p := range partsA {
		if partsB[p] {
			t.Errorf("partition %d consumed by both", p)
		}
	}

	for id, c := range idsA {
		if c != 1 {
			t.Errorf("%s delivered %d times before the rebalance", id, c)
		}
	}
	stopA() // a clean stop: commits, then leaves the group at once
	produceEvents(t, addr, "in", n, 2*n)
	waitFor(t, 30*time.Second, "b to deliver the later events", func() bool { return len(idsA)+b.distinct() >= 2*n })
	idsB, partsB := b.snapshot()
	if len(partsB) != 4 {
		t.Errorf("b consumed partitions %v after a left, want all 4", partsB)
	}
	all := map[string]int{}
	for _, ids := range []map[string]int{idsA, idsB} {
		for id, c := range ids {
			all[id] += c
		}
	}
	checkAll(t, all, 2*n)
	dups := 0
	for _, c := range all {
		dups += c - 1
	}
	if batch := testConfig("", "", "").BatchSize; dups > 3*batch {
		t.Errorf("%d duplicates, want at most three batches (%d each)", dups, batch)
	}
}

// assignedMembers returns how many members of group hold partitions, once
// the group is stable.
func assignedMembers(t *testing.T, addr, group string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(res.Groups) != 1 || res.Groups[0].GroupState != "Stable" {
		return 0
	}
	n := 0
	for _, m := range res.Groups[0].Members {
		for _, tp := range m.MemberAssignments.Topics {
			if len(tp.Partitions) > 0 {
				n++
				break
			}
		}
	}
	return n
}

// TestKillAndRestart runs the file stage in a child process, SIGKILLs it
// mid-run, and runs it again on the same group and file: every event is in
// the file and no line is torn. The duplicates are what was written but
// not committed when the process died (the batch being written and at most
// two confirmed batches whose commits had not returned: see committer),
// plus one batch for any rebalance the second process goes through; they
// must stay within one batch per partition.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const n, batch, partitions = 3000, 50, 4
	addr := brokertest.StartConfig(t, broker.Config{Listen: "127.0.0.1:0", Partitions: partitions, Topics: []string{"in", "dlq"}}).Addr()
	produceEvents(t, addr, "in", 0, n)
	path := filepath.Join(t.TempDir(), "events.ndjson")

	first := startChild(t, addr, path, batch)
	waitFor(t, 60*time.Second, "the first process to write a third of the events", func() bool {
		return lineCount(t, path) >= n/3
	})
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killedAt := lineCount(t, path)
	if killedAt >= n {
		t.Fatalf("the first process finished before it was killed; slow it down")
	}

	second := startChild(t, addr, path, batch)
	waitFor(t, 60*time.Second, "every event in the file", func() bool {
		return lineCount(t, path) >= n && len(countIDs(t, readFile(t, path))) >= n
	})
	// A clean stop: SIGTERM, and the child commits what it delivered.
	second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("second process: %v", err)
	}

	lines := readFile(t, path)
	ids := countIDs(t, lines)
	checkAll(t, ids, n)
	dups := len(lines) - len(ids)
	t.Logf("killed after %d lines; %d lines in the end, %d duplicates", killedAt, len(lines), dups)
	if dups > batch*partitions {
		t.Errorf("%d duplicates, want at most one batch (%d) per partition (%d)", dups, batch, partitions)
	}
}

const (
	childEnv   = "VPIPE_STAGE_TEST_CHILD"
	childAddr  = "VPIPE_STAGE_TEST_ADDR"
	childPath  = "VPIPE_STAGE_TEST_PATH"
	childBatch = "VPIPE_STAGE_TEST_BATCH"
)

// startChild runs the file stage in a child process (this test binary,
// see TestMain and runChild).
func startChild(t *testing.T, addr, path string, batch int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", childAddr+"="+addr, childPath+"="+path, childBatch+"="+strconv.Itoa(batch))
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

// runChild is the child process of TestKillAndRestart: the file stage,
// paced so that the parent can kill it mid-run, until SIGTERM.
func runChild() int {
	batch, _ := strconv.Atoi(os.Getenv(childBatch))
	sink, err := filesink.Open(os.Getenv(childPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sink.Close()
	cfg := testConfig(os.Getenv(childAddr), "killme", "in")
	cfg.BatchSize = batch
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r, err := stage.New(cfg, pacedSink{sink, 5 * time.Millisecond}, nil, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// pacedSink waits after each write before it confirms it, so that a run
// lasts long enough to be killed in the middle, most likely between a
// batch's write and its commit: the case that makes duplicates.
type pacedSink struct {
	stage.Sink
	pace time.Duration
}

func (s pacedSink) Write(ctx context.Context, batch []stage.Record) error {
	if err := s.Sink.Write(ctx, batch); err != nil {
		return err
	}
	if !backoff.Wait(ctx, s.pace) {
		return ctx.Err()
	}
	return nil
}

// readFile returns the lines of the file at path (none if it is missing).
func readFile(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines
}

// lineCount returns the number of lines in the file at path (0 if it is
// missing).
func lineCount(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// countIDs decodes every line and counts the event ids.
func countIDs(t testing.TB, lines [][]byte) map[string]int {
	t.Helper()
	ids := map[string]int{}
	var e pipeline.Event
	for i, l := range lines {
		e.Reset()
		if err := e.DecodeJSON(l); err != nil {
			t.Fatalf("line %d %q: %v", i+1, l, err)
		}
		ids[strings.Clone(e.ID)]++
	}
	return ids
}

// checkAll fails unless ids holds every id of events 0..n-1.
func checkAll(t testing.TB, ids map[string]int, n int) {
	t.Helper()
	missing := 0
	for i := range n {
		if ids[eventID(i)] == 0 {
			if missing < 5 {
				t.Errorf("%s missing", eventID(i))
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events missing", missing, n)
	}
}

// readAt reads the message at offset of partition of topic.
func readAt(t *testing.T, addr, topic, partition, offset string) kafka.Message {
	t.Helper()
	p, err1 := strconv.Atoi(partition)
	o, err2 := strconv.ParseInt(offset, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("partition %q offset %q: %v", partition, offset, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(o); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read %s/%d/%d: %v", topic, p, o, err)
	}
	return m
}
