package forensics

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/sinks/nsx"
	nsxsim "github.com/vpipe/vpipe/sinks/nsx/simulator"
)

// webhookReceiver is a real HTTP server that keeps the bodies posted to it.
type webhookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []WebhookBody
	keys   []string
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	w := &webhookReceiver{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body WebhookBody
		if err := json.Unmarshal(b, &body); err != nil || r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(rw, "bad request", http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.bodies = append(w.bodies, body)
		w.keys = append(w.keys, r.Header.Get("Idempotency-Key"))
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookReceiver) changes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for i, b := range w.bodies {
		if b.ID != w.keys[i] {
			return []string{"idempotency key " + w.keys[i] + " is not the id " + b.ID}
		}
		if len(out) == 0 || out[len(out)-1] != b.Change {
			out = append(out, b.Change)
		}
	}
	return out
}

// pipelineUnderTest is the group-membership source and the forensics
// stage, as `vpipe run` wires them, on the embedded broker.
type pipelineUnderTest struct {
	stop func()
}

// TestQuarantineEndToEnd is issue 9's test: tag a multi-NIC VM in the NSX
// simulator so that it joins the quarantine group → a snapshot exists in
// vcsim and one mirror session covers all its vNICs; restart the source
// and the stage; untag → the session is gone, the snapshot is kept; every
// action is audited and posted to the group's webhook.
func TestQuarantineEndToEnd(t *testing.T) {
	ctx := context.Background()
	vcs := startVCSim(t)
	uuid := vcs.setNICs(t, "DC0_H0_VM0", []string{"10", "11", "12"}, false)

	sim := nsxsim.New(nsxsim.Options{})
	nsxSrv := httptest.NewServer(sim)
	t.Cleanup(nsxSrv.Close)
	sim.AddVM(nsxsim.VM{ExternalID: uuid, DisplayName: "DC0_H0_VM0"})
	nc, err := nsx.New(nsx.Config{URL: nsxSrv.URL, Username: "admin", Password: "VMware1!VMware1!"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PutGroup(ctx, "default", nsx.Group{ID: "quarantine", DisplayName: "Quarantine",
		Expression: []nsx.Condition{nsx.TagCondition(nsx.Tag{Scope: "av", Tag: "infected"})}}); err != nil {
		t.Fatal(err)
	}
	group := nsxgroups.PolicyPath("default", "quarantine")

	audit, addr := startAudit(t)
	hook := newWebhookReceiver(t)
	pub, err := kafkaout.New(kafkaout.Config{Brokers: []string{addr}, TopicPrefix: "vpipe."}, kafkaout.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pub.Close(ctx)
	})

	start := func() *pipelineUnderTest {
		ctx, cancel := context.WithCancel(context.Background())
		src, err := nsxgroups.New(nsxgroups.Config{
			Name: "nsx1", Manager: "nsx.example", Groups: []nsxgroups.Group{{ID: group, Name: "Quarantine"}},
			Interval: 100 * time.Millisecond,
		}, nsxgroups.Deps{Lister: nsxgroups.PolicyLister(nc), Publisher: pub,
			OpenCheckpoints: func(ctx context.Context) (nsxgroups.Checkpointer, error) {
				return checkpoint.Open(ctx, []string{addr}, "vpipe.checkpoints")
			}})
		if err != nil {
			t.Fatal(err)
		}
		sink, err := New(Config{
			Groups: map[string]GroupOptions{group: {Webhook: &Webhook{
				URL: hook.srv.URL, Header: http.Header{"Authorization": {"Bearer t0ken"}},
			}}},
			Snapshot: &SnapshotOptions{Memory: true},
			Mirror:   &MirrorOptions{Destination: "192.0.2.50", SamplingRate: 1, SnapshotLength: 256},
		}, Deps{VCenter: vcs.vc, Audit: audit})
		if err != nil {
			t.Fatal(err)
		}
		runner, err := stage.New(stage.Config{
			Name: "forensics", Brokers: []string{addr}, Topics: []string{"vpipe.nsx"}, DLQTopic: "vpipe.dlq",
			BatchSize: 50, BatchWait: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond, RebalanceTimeout: 10 * time.Second,
			ShutdownTimeout: 3 * time.Second,
		}, sink, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { src.Run(ctx) })
		wg.Go(func() { runner.Run(ctx) })
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				wg.Wait()
			})
		}
		t.Cleanup(stop)
		return &pipelineUnderTest{stop: stop}
	}
	tag := func(on bool) {
		var tags []nsxsim.Tag
		if on {
			tags = []nsxsim.Tag{{Scope: "av", Tag: "infected"}}
		}
		sim.SetTags(uuid, tags)
	}
	mirrored := func() []string {
		ss := vcs.sessions(t, uuid)
		if len(ss) != 1 {
			return nil
		}
		s := ss[0].Session
		rx, tx := sortedPorts(s.SourcePortReceived), sortedPorts(s.SourcePortTransmitted)
		if !slices.Equal(rx, tx) || s.SessionType != SessionTypeEncapsulatedRemoteMirrorSource ||
			s.DestinationPort == nil || !slices.Equal(s.DestinationPort.IpAddress, []string{"192.0.2.50"}) || s.MirroredPacketLength != 256 {
			t.Fatalf("session %+v", s)
		}
		return rx
	}
	allPorts := []string{"10", "11", "12"}

	p := start()
	steps := []struct {
		name    string
		act     func()
		restart bool
		wait    func() bool
		what    string
	}{
		{name: "tagged: joins, snapshot and mirror of every vNIC", act: func() { tag(true) },
			wait: func() bool { return slices.Equal(mirrored(), allPorts) && len(vcs.snapshots(t, uuid)) == 1 },
			what: "a snapshot and a session covering ports 10, 11, 12"},
		{name: "restart between join and leave", restart: true,
			wait: func() bool { return slices.Equal(mirrored(), allPorts) }, what: "the session to stay"},
		{name: "untagged: leaves, session gone, snapshot kept", act: func() { tag(false) },
			wait: func() bool { return mirrored() == nil && slices.Equal(hook.changes(), []string{"joined", "left"}) },
			what: "the session to go and the leave to be posted"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.restart {
				p.stop()
				p = start()
			}
			if st.act != nil {
				st.act()
			}
			waitFor(t, 30*time.Second, st.what, st.wait)
			snaps := vcs.snapshots(t, uuid)
			if len(snaps) != 1 || !IsVpipeSnapshot(&snaps[0]) {
				t.Fatalf("snapshots %+v, want exactly vpipe's one", snaps)
			}
		})
	}
	p.stop()

	// The audit trail: snapshot, mirror, webhook on join; mirror removal
	// and webhook on leave. Redeliveries repeat an action's audit event
	// with its id, never a new action.
	events := readAudit(t, addr, 5, false)
	type act struct{ action, outcome, changed string }
	var got []act
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		if e.Label(LabelNSXGroup) != group || e.Label(LabelTrigger) == "" || e.VMware.VCenter.ObjectRef == "" {
			t.Fatalf("audit event without its cause: %+v", e)
		}
		got = append(got, act{e.Action, e.Outcome, e.Label(LabelChanged)})
	}
	want := []act{
		{ActionSnapshotCreate, "success", "true"}, {ActionMirrorCreate, "success", "true"}, {ActionWebhookPost, "success", "true"},
		{ActionMirrorRemove, "success", "true"}, {ActionWebhookPost, "success", "true"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail\n got %+v\nwant %+v", got, want)
	}
}
