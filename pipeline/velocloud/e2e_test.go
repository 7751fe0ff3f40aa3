package velocloud_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/runtest"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/velocloud"
	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
	"github.com/vpipe/vpipe/sinks/ndjson"

	"github.com/prometheus/client_golang/prometheus"
)

// stageConfig is the ndjson stage with timeouts short enough for tests
// (as pipeline/stage's tests use).
func stageConfig(addr, prefix string) stage.Config {
	return stage.Config{
		Name:              "ndjson",
		Brokers:           []string{addr},
		Topics:            []string{prefix + pipeline.TopicVeloCloud},
		DLQTopic:          prefix + pipeline.TopicDLQ,
		BatchSize:         50,
		BatchWait:         20 * time.Millisecond,
		MinBackoff:        5 * time.Millisecond,
		MaxBackoff:        50 * time.Millisecond,
		SessionTimeout:    3 * time.Second,
		HeartbeatInterval: 300 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		FetchMaxWait:      time.Second,
		ShutdownTimeout:   3 * time.Second,
	}
}

// runStage runs the ndjson stage into dir until stop is called or the
// test ends.
func runStage(t testing.TB, addr, prefix, dir string) (stop func()) {
	t.Helper()
	sink, err := ndjson.Open(ndjson.Config{Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := stage.New(stageConfig(addr, prefix), sink, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopRunner := runtest.Start(t, "stage", r.Run)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopRunner()
			sink.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// fileEvent is one line of an enterprise's file (the VCO JSON).
type fileEvent struct {
	ID        int64     `json:"id"`
	EventTime time.Time `json:"eventTime"`
}

// readFile reads an enterprise's events.json; a missing file is empty.
func readFile(t testing.TB, dir, enterprise string) []fileEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ndjson.Sanitize(enterprise), "events.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	// A writer may be in the middle of a line: read complete ones.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []fileEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e fileEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", enterprise, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// filesComplete reports whether each enterprise's file has as many lines
// as the enterprise has events.
func filesComplete(t testing.TB, sim *simulator.Server, dir string) bool {
	for _, ent := range sim.Enterprises() {
		if len(readFile(t, dir, ent.Name)) < len(sim.Events(ent.ID)) {
			return false
		}
	}
	return true
}

// checkFiles checks each enterprise's file: every event of the VCO once,
// in the order of the enterprise's records in Kafka (the first time each
// appears there), non-late events in eventTime order; and no file
// anywhere else under root.
func checkFiles(t *testing.T, sim *simulator.Server, in *inserter, root, dir string, kafkaEvs []vcoEvent) {
	t.Helper()
	kafkaOrder := map[int64][]int64{}
	seen := map[int64]bool{}
	for _, e := range kafkaEvs {
		if !seen[e.VCOID] {
			seen[e.VCOID] = true
			kafkaOrder[e.Enterprise] = append(kafkaOrder[e.Enterprise], e.VCOID)
		}
	}
	files := 0
	for _, ent := range sim.Enterprises() {
		evs := readFile(t, dir, ent.Name)
		files++
		var ids []int64
		count := map[int64]int{}
		var last fileEvent
		for _, e := range evs {
			ids = append(ids, e.ID)
			if count[e.ID]++; count[e.ID] == 2 {
				t.Errorf("%q: event %d written twice", ent.Name, e.ID)
			}
			if in.isLate(e.ID) {
				continue
			}
			if e.EventTime.Before(last.EventTime) {
				t.Errorf("%q: event %d (%s) after %d (%s)", ent.Name, e.ID, e.EventTime, last.ID, last.EventTime)
			}
			last = e
		}
		for _, e := range sim.Events(ent.ID) {
			if count[e.ID] == 0 {
				t.Errorf("%q: event %d missing from the file", ent.Name, e.ID)
			}
		}
		if !slices.Equal(ids, kafkaOrder[ent.ID]) {
			t.Errorf("%q: file order differs from kafka's:\nfile  %v\nkafka %v", ent.Name, ids, kafkaOrder[ent.ID])
		}
	}
	var all []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			all = append(all, p)
		}
		return nil
	})
	for _, p := range all {
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) || filepath.Base(p) != "events.json" {
			t.Errorf("unexpected file %s", p)
		}
	}
	if len(all) != files {
		t.Errorf("%d files, want %d", len(all), files)
	}
}

// TestEndToEnd: VCO simulator → source → Kafka → ndjson stage → files,
// three enterprises (one named ../../etc, one not ASCII), events arriving
// over time and late ones; the source and the stage are restarted
// mid-run. Each file holds every event of its enterprise exactly once, in
// order, and Kafka has them all.
func TestEndToEnd(t *testing.T) {
	sim, url := startSim(t, simConfig(
		simulator.Enterprise{ID: 11, Name: "Acme Corp"},
		simulator.Enterprise{ID: 12, Name: "../../etc"},
		simulator.Enterprise{ID: 13, Name: "Café 東京"},
	))
	addr := startBroker(t)
	root := t.TempDir()
	dir := filepath.Join(root, "events")
	h := newHarness(t, addr, "vpipe.")
	in := newInserter(sim)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for run := range 2 {
		stopSource := runSource(t, sourceConfig("vco1", url), h.deps(t))
		stopStage := runStage(t, addr, "vpipe.", dir)
		for range 30 {
			<-tick.C
			in.insert(t, 5, time.Second)
		}
		if run == 0 {
			// Both stop mid-run; events keep arriving meanwhile.
			stopSource()
			stopStage()
			for range 5 {
				<-tick.C
				in.insert(t, 5, time.Second)
			}
			continue
		}
		waitFor(t, 60*time.Second, "every event in the files", func() bool { return filesComplete(t, sim, dir) })
		stopSource()
		stopStage()
	}
	n := total(sim)
	kafkaEvs := readEvents(t, addr, "vpipe.velocloud", n, 10*time.Second)
	if len(kafkaEvs) != n {
		t.Errorf("kafka has %d records, want %d", len(kafkaEvs), n)
	}
	checkOnce(t, sim, in, kafkaEvs)
	checkFiles(t, sim, in, root, dir, kafkaEvs)
}

// TestKillAndRestart runs the source and the stage in a child process
// (this test binary, see runChild), SIGKILLs it mid-run, and runs it
// again: no event is lost and no line is written twice, though Kafka may
// hold some events twice (the window published again after the kill).
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	sim, url := startSim(t, simConfig(
		simulator.Enterprise{ID: 21, Name: "a/b"},
		simulator.Enterprise{ID: 22, Name: ""},
		simulator.Enterprise{ID: 23, Name: "Globex"},
	))
	addr := startBroker(t)
	root := t.TempDir()
	dir := filepath.Join(root, "events")
	in := newInserter(sim)
	ctx, stopInserting := context.WithCancel(context.Background())
	defer stopInserting()
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				in.insert(t, 7, time.Second)
			}
		}
	})
	lines := func() int {
		n := 0
		for _, ent := range sim.Enterprises() {
			n += len(readFile(t, dir, ent.Name))
		}
		return n
	}
	first := startChild(t, addr, url, dir)
	waitFor(t, 60*time.Second, "the first process to write 300 lines", func() bool { return lines() >= 300 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killedAt := lines()
	second := startChild(t, addr, url, dir)
	waitFor(t, 60*time.Second, "the second process to write more", func() bool { return lines() >= killedAt+300 })
	stopInserting()
	wg.Wait()
	waitFor(t, 60*time.Second, "every event in the files", func() bool { return filesComplete(t, sim, dir) })
	second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("second process: %v", err)
	}
	n := total(sim)
	kafkaEvs := readEvents(t, addr, "vpipe.velocloud", n, 10*time.Second)
	t.Logf("killed after %d lines; %d events; kafka holds %d records (%d published twice)", killedAt, n, len(kafkaEvs), len(kafkaEvs)-n)
	checkFiles(t, sim, in, root, dir, kafkaEvs)
	got := map[int64]bool{}
	for _, e := range kafkaEvs {
		got[e.VCOID] = true
	}
	if len(got) != n {
		t.Errorf("kafka has %d distinct events, want %d", len(got), n)
	}
}

const (
	childEnv  = "VPIPE_VCO_TEST_CHILD"
	childAddr = "VPIPE_VCO_TEST_ADDR"
	childURL  = "VPIPE_VCO_TEST_URL"
	childDir  = "VPIPE_VCO_TEST_DIR"
)

// startChild runs the source and the stage in a child process.
func startChild(t *testing.T, addr, url, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childAddr+"="+addr, childURL+"="+url, childDir+"="+dir)
	var out syncBuffer
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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runChild is the child process of TestKillAndRestart: the VCO source and
// the ndjson stage, wired as vpipe run wires them, until SIGTERM; then it
// stops the source, flushes the producer and stops the stage.
func runChild() int {
	addr, url, dir := os.Getenv(childAddr), os.Getenv(childURL), os.Getenv(childDir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	prod, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: "vpipe.", Linger: time.Millisecond},
		kafkaout.NewMetrics(prometheus.NewRegistry()), log)
	if err != nil {
		return fail(err)
	}
	src, err := velocloud.New(sourceConfig("vco1", url), velocloud.Deps{
		Publisher: prod,
		OpenCheckpoints: func(ctx context.Context) (velocloud.Checkpoints, error) {
			s, err := checkpoint.Open(ctx, []string{addr}, "vpipe."+pipeline.TopicCheckpoints)
			if err != nil {
				return nil, err
			}
			return pacedCheckpoints{s, 30 * time.Millisecond}, nil
		},
		Log: log,
	})
	if err != nil {
		return fail(err)
	}
	sink, err := ndjson.Open(ndjson.Config{Dir: dir}, nil, log)
	if err != nil {
		return fail(err)
	}
	defer sink.Close()
	r, err := stage.New(stageConfig(addr, "vpipe."), pacedSink{sink, 10 * time.Millisecond}, nil, log)
	if err != nil {
		return fail(err)
	}
	srcCtx, stopSource := context.WithCancel(context.Background())
	stageCtx, stopStage := context.WithCancel(context.Background())
	defer stopStage()
	var srcWG, stageWG sync.WaitGroup
	srcWG.Go(func() { src.Run(srcCtx) })
	stageWG.Go(func() { r.Run(stageCtx) })
	<-ctx.Done()
	stopSource()
	srcWG.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	perr := prod.Close(cctx)
	stopStage()
	stageWG.Wait()
	if perr != nil {
		return fail(perr)
	}
	return 0
}

// pacedCheckpoints waits before each checkpoint write, so that a kill
// likely lands between Kafka's acknowledgement of a window and its
// checkpoint: the case that publishes events twice.
type pacedCheckpoints struct {
	*checkpoint.Store
	pace time.Duration
}

func (p pacedCheckpoints) Put(ctx context.Context, key string, value []byte) error {
	t := time.NewTimer(p.pace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.Store.Put(ctx, key, value)
}

// pacedSink waits after each write before it confirms it, so that a kill
// likely lands between a batch's write and its commit: the case that
// delivers records twice.
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
