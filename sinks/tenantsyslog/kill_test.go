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
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Run(ctx) }()
	go func() { defer wg.Done(); sink.Replayer(replayerConfig()).Run(ctx) }()
	wg.Wait()
	return 0
}

func startChild(t *testing.T, addr, file string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childAddr+"="+addr, childFile+"="+file)
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
	for _, r := range recvs {
		dups += r.count() - r.distinct()
	}
	t.Logf("every event delivered; %d duplicates (at-least-once across the kill)", dups)
}
