package nsxgroups

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/parsers/vmware"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/runtest"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

const topicAudit = "vpipe.audit"

func TestManages(t *testing.T) {
	l := ListerFunc(func(context.Context, string) ([]Member, error) { return nil, nil })
	src, err := New(Config{Name: "n", Manager: "nsx.corp.example", Aliases: []string{"nsx-mgr-01", "NSX-MGR-02.corp.example.", "10.0.0.11", " "},
		Groups: []Group{{ID: quarantine}}}, Deps{Lister: l, Publisher: noPublisher{}, OpenCheckpoints: func(context.Context) (Checkpointer, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want bool
	}{
		{"nsx.corp.example", true},
		{"NSX.corp.example.", true},
		{"nsx", true},                         // bare name of the manager's FQDN
		{"nsx-mgr-01", true},                  // an alias as written
		{"nsx-mgr-01.corp.example", true},     // the FQDN of a bare alias
		{"nsx-mgr-02", true},                  // the bare name of an FQDN alias
		{"nsx-mgr-02.other.example", false},   // same first label, another domain
		{"10.0.0.11", true},                   // an address alias
		{"10", false},                         // not the bare name of an address
		{"nsx-mgr-03.corp.example", false},    // another node
		{"corp.example", false},               // not a suffix match
		{"", false},                           // nothing
		{"nsx.corp.example.evil.test", false}, // not a prefix match
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := src.Manages(tt.host); got != tt.want {
				t.Fatalf("Manages(%q) = %t", tt.host, got)
			}
		})
	}
}

// parseLine runs a syslog line through the real record chain of ingest.
func parseLine(line string) *pipeline.Event {
	p := record.New(syslog.Options{}, vmware.New(), nil)
	e := &pipeline.Event{Original: []byte(line), Created: time.Now(), LogSource: "192.0.2.21:51514"}
	p.ParseRecord(e)
	return e
}

const auditSD = `[nsx@6876 audit="true" comp="nsx-manager" level="INFO" subcomp="policy" update="true" username="vpipe"] `

func auditLine(host, op, status string) string {
	return `<182>1 2024-05-15T10:00:00.000Z ` + host + ` NSX 2326 POLICY ` + auditSD +
		`UserName="vpipe", ModuleName="PolicyRealizedState", Operation="` + op + `", Operation status="` + status + `"`
}

// auditEvent is an audit event as a stage writes it on <prefix>audit.
func auditEvent(outcome string, labels ...string) *pipeline.Event {
	e := &pipeline.Event{Dataset: pipeline.DatasetAudit, Outcome: outcome, Timestamp: time.Now(), ID: "a1"}
	for i := 0; i+1 < len(labels); i += 2 {
		e.AddLabel(labels[i], labels[i+1])
	}
	return e
}

func TestHintOf(t *testing.T) {
	member := &pipeline.Event{}
	(&Membership{Source: "s", Group: quarantine, VMExternalID: "u", Joined: true}).Fill(member)
	tests := []struct {
		name  string
		e     *pipeline.Event
		ok    bool
		kind  string
		hosts []string
	}{
		{"tag-sync added a tag", auditEvent("success", "vpipe_stage", "tag-sync", labelAdded, "av|infected", LabelNSXManager, "nsx.example"),
			true, HintVpipeAudit, []string{"nsx.example"}},
		{"tag-sync removed a tag, manager not said", auditEvent("success", "vpipe_stage", "tag-sync", labelRemoved, "av|infected"),
			true, HintVpipeAudit, nil},
		{"tag-sync dry run", auditEvent("success", labelAdded, "av|infected", labelDryRun, "true"), false, "", nil},
		{"tag-sync failure", auditEvent("failure", labelAdded, "av|infected"), false, "", nil},
		{"jit access added", auditEvent("success", "vpipe_stage", "jit-access", labelChange, "added", LabelNSXManager, "nsx.example"),
			true, HintVpipeAudit, []string{"nsx.example"}},
		{"jit access removed", auditEvent("success", labelChange, "removed"), true, HintVpipeAudit, nil},
		{"jit access tag already there", auditEvent("success", labelChange, "present"), false, "", nil},
		{"jit access kept for another ticket", auditEvent("success", labelChange, "kept"), false, "", nil},
		{"forensics snapshot", auditEvent("success", "vpipe_stage", "forensics"), false, "", nil},
		{"NSX audit tag call", parseLine(auditLine("nsx-mgr-01", "TagVirtualMachine", "success")),
			true, HintNSXAudit, []string{"nsx-mgr-01", "192.0.2.21"}},
		{"NSX audit group call", parseLine(auditLine("nsx-mgr-01", "PatchGroupForDomain", "success")),
			true, HintNSXAudit, []string{"nsx-mgr-01", "192.0.2.21"}},
		{"NSX audit failed tag call", parseLine(auditLine("nsx-mgr-01", "TagVirtualMachine", "failure")), false, "", nil},
		{"NSX audit other write", parseLine(auditLine("nsx-mgr-01", "CreateTransportZone", "success")), false, "", nil},
		{"a membership change", member, false, "", nil},
		{"a firewall line", parseLine(`<14>1 2024-05-15T19:41:25.001Z esx01 FIREWALL-PKTLOG - - - INET match PASS 1 IN 52 TCP 10.0.0.1/1->10.0.0.2/2 S`), false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := HintOf(tt.e)
			if ok != tt.ok || h.Kind != tt.kind || !slices.Equal(h.Hosts, tt.hosts) {
				t.Fatalf("HintOf = %+v, %t; want kind %q hosts %q, %t", h, ok, tt.kind, tt.hosts, tt.ok)
			}
		})
	}
}

// countingLister lists a fixed membership and records when each poll
// started.
type countingLister struct {
	mu     sync.Mutex
	starts []time.Time
}

func (c *countingLister) Members(context.Context, string) ([]Member, error) {
	c.mu.Lock()
	c.starts = append(c.starts, time.Now())
	c.mu.Unlock()
	return nil, nil
}

func (c *countingLister) polls() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.starts)
}

// TestTriggerCoalesceGapRecheck: a burst of triggers polls at most twice
// (the poll it started and one pending), triggered polls start at least
// TriggerGap apart, and a triggered poll is followed by one Recheck poll,
// not more.
func TestTriggerCoalesceGapRecheck(t *testing.T) {
	l := &countingLister{}
	addr := brokertest.Start(t, topicCheckpoints)
	open := func(ctx context.Context) (Checkpointer, error) {
		return checkpoint.Open(ctx, []string{addr}, topicCheckpoints)
	}
	const gap, recheck = 150 * time.Millisecond, 400 * time.Millisecond
	src, err := New(Config{Name: "n", Groups: []Group{{ID: quarantine}}, Interval: time.Hour, TriggerGap: gap, Recheck: recheck},
		Deps{Lister: l, Publisher: noPublisher{}, OpenCheckpoints: open})
	if err != nil {
		t.Fatal(err)
	}
	defer runtest.Start(t, "source", src.Run)()
	waitFor(t, 10*time.Second, "the first poll", func() bool { return len(l.polls()) == 1 })
	for range 200 {
		src.TriggerAll()
	}
	// The burst's poll (and at most one pending), then the recheck: the
	// last poll a recheck interval after the one before it.
	waitFor(t, 10*time.Second, "a triggered poll and its recheck", func() bool {
		p := l.polls()
		return len(p) >= 3 && p[len(p)-1].Sub(p[len(p)-2]) >= recheck
	})
	p := l.polls()
	if len(p) > 4 {
		t.Fatalf("%d polls after a burst of 200 triggers, want at most 4 (first, triggered, pending, recheck)", len(p))
	}
	for i := 2; i < len(p); i++ {
		if d := p[i].Sub(p[i-1]); d < gap {
			t.Fatalf("poll %d started %s after the previous one, under the %s gap", i, d, gap)
		}
	}
	if d := p[1].Sub(p[0]); d < gap {
		t.Fatalf("the triggered poll started %s after the first, under the %s gap", d, gap)
	}
}

// TestTriggerReader: with real parts (the NSX simulator, the embedded
// broker, kafka-go), sources polling every hour see a VM join within a
// second of the event that reveals the tag change: an audit event of
// vpipe's own tag change on vpipe.audit naming the manager, and an NSX
// audit log line parsed by the ingest chain onto vpipe.nsx, from a node
// known by an alias. A change on another manager polls nothing.
func TestTriggerReader(t *testing.T) {
	h := newHarness(t,
		simulator.VM{ExternalID: "uuid-a", DisplayName: "web-a"},
		simulator.VM{ExternalID: "uuid-b", DisplayName: "web-b"},
	)
	var runs sync.WaitGroup
	defer runs.Wait() // after cancel: deferred calls run last first
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics(nil)
	start := func(name, manager string, aliases ...string) *Source {
		open := func(ctx context.Context) (Checkpointer, error) {
			return checkpoint.Open(ctx, []string{h.addr}, topicCheckpoints)
		}
		src, err := New(Config{Name: name, Manager: manager, Aliases: aliases,
			Groups: []Group{{ID: quarantine, Name: "Quarantine"}}, Interval: time.Hour, TriggerGap: 50 * time.Millisecond, Recheck: -1},
			Deps{Lister: PolicyLister(h.client), Publisher: h.pub, OpenCheckpoints: open, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		runs.Go(func() { src.Run(ctx) })
		return src
	}
	ours := start("nsx1", "nsx.example", "nsx-mgr-01")
	// Another manager's source (here the same simulator behind another
	// name): it must not poll for nsx.example's changes.
	other := start("nsx2", "other.example")
	polls := func(name string) int { return int(counterValue(m.polls.WithLabelValues(name, "ok"))) }
	waitFor(t, 10*time.Second, "the first polls", func() bool { return polls("nsx1") == 1 && polls("nsx2") == 1 })

	tr, err := NewTriggerReader(TriggerConfig{Brokers: []string{h.addr}, Topics: []string{topicAudit, topicNSX}, MaxWait: 100 * time.Millisecond},
		Sources{ours, other}, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runs.Go(func() { tr.Run(ctx) })
	select {
	case <-tr.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("trigger reader not ready")
	}

	// joins reads the joins published so far by source name.
	joins := func() map[string][]string {
		msgs, _ := brokertestRead(h.addr)
		out := map[string][]string{}
		for _, e := range msgs {
			if mb, ok := FromEvent(e); ok && mb.Joined {
				out[mb.Source] = append(out[mb.Source], mb.VMName)
			}
		}
		return out
	}
	publish := func(e *pipeline.Event) {
		t.Helper()
		if err := h.pub.Publish(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
	}
	var latencies []time.Duration
	step := func(name, vm, vmName string, e *pipeline.Event) {
		t.Run(name, func(t *testing.T) {
			before, ourPolls := polls("nsx2"), polls("nsx1")
			h.tag(t, vm, true)
			at := time.Now()
			publish(e)
			waitFor(t, 5*time.Second, vm+" joining", func() bool { return slices.Contains(joins()["nsx1"], vmName) })
			d := time.Since(at)
			latencies = append(latencies, d)
			if d > time.Second {
				t.Errorf("join seen %s after the event, want within 1s", d)
			}
			// The poll is counted once checkpointed, after the join.
			waitFor(t, 5*time.Second, "the triggered poll done", func() bool { return polls("nsx1") == ourPolls+1 })
			if n := polls("nsx2"); n != before {
				t.Fatalf("the other manager's source polled %d times", n-before)
			}
		})
	}
	step("vpipe audit event naming the manager", "uuid-a", "web-a",
		auditEvent("success", "vpipe_stage", "tag-sync", labelAdded, "av|infected", LabelNSXManager, "NSX.example", "vm_external_id", "uuid-a"))
	step("NSX audit log line from a node alias", "uuid-b", "web-b",
		parseLine(auditLine("nsx-mgr-01.corp.example", "TagVirtualMachine", "success")))

	t.Run("another manager's change polls nothing", func(t *testing.T) {
		n1, n2 := polls("nsx1"), polls("nsx2")
		publish(auditEvent("success", labelAdded, "av|infected", LabelNSXManager, "nsx-elsewhere.example"))
		publish(parseLine(auditLine("nsx-elsewhere-01", "PatchGroupForDomain", "success")))
		waitFor(t, 5*time.Second, "both events read", func() bool {
			return counterValue(m.triggerEvents.WithLabelValues(HintVpipeAudit, "unmatched")) == 1 &&
				counterValue(m.triggerEvents.WithLabelValues(HintNSXAudit, "unmatched")) == 1
		})
		if polls("nsx1") != n1 || polls("nsx2") != n2 {
			t.Fatalf("polls went from %d/%d to %d/%d", n1, n2, polls("nsx1"), polls("nsx2"))
		}
	})
	t.Logf("event to join on the topic: %v", latencies)
}

// brokertestRead reads every event on the nsx topic so far.
func brokertestRead(addr string) ([]*pipeline.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msgs, err := brokertest.Read(ctx, addr, topicNSX, 0)
	var out []*pipeline.Event
	for _, msg := range msgs {
		e := &pipeline.Event{}
		if e.DecodeJSON(msg.Value) == nil {
			out = append(out, e)
		}
	}
	return out, err
}
