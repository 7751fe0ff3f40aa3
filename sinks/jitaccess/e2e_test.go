package jitaccess_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/parsers/vmware"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/httpin"
	"github.com/vpipe/vpipe/pipeline/stage"
	znsim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
	"github.com/vpipe/vpipe/sinks/jitaccess"
)

const (
	bearer = "ingest-token"
	secret = "hmac-secret"
)

// ingest starts vpipe's HTTP ingest with the ticket webhook and a bearer
// token, wrapped as wire_jit wraps it (Basic credentials carrying the
// token; with signed, the HMAC signature check), publishing to e's
// producer; it returns the webhook's URL.
func (e *env) ingest(signed bool) string {
	e.t.Helper()
	var h http.Handler = httpin.NewHandler(httpin.Config{BearerToken: bearer}, httpin.Deps{
		Parser:    record.New(syslog.Options{}, vmware.New(), nil),
		Publisher: e.prod,
		Webhooks:  map[string]httpin.WebhookParser{"ticket": ticket.Webhook},
	})
	h = ticket.BasicAuthAsBearer(h, "")
	if signed {
		var err error
		if h, err = ticket.RequireSignature(h, ticket.Signature{Secret: []byte(secret)}); err != nil {
			e.t.Fatal(err)
		}
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	return srv.URL + "/v1/webhooks/ticket"
}

// running is a started jit-access stage: the consumer runner and Run.
type running struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *running) stop() {
	r.cancel()
	r.wg.Wait()
}

// startStage runs the jit-access stage as wire_jit does: a consumer group
// on the tickets topic delivering to the sink, and the sink's loop.
func (e *env) startStage(s *jitaccess.Sink) *running {
	e.t.Helper()
	r, err := stage.New(stage.Config{
		Name: "jit-access", Brokers: []string{e.broker}, Topics: []string{prefix + pipeline.TopicTickets},
		DLQTopic: prefix + pipeline.TopicDLQ, BatchSize: 50, BatchWait: 20 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond, RebalanceTimeout: 10 * time.Second,
		FetchMaxWait: 500 * time.Millisecond, ShutdownTimeout: 3 * time.Second,
	}, s, nil, e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{cancel: cancel}
	run.wg.Go(func() { r.Run(ctx) })
	run.wg.Go(func() { s.Run(ctx) })
	e.t.Cleanup(run.stop)
	return run
}

// TestEndToEnd: the help desk's invoker posts the webhook to vpipe's HTTP
// ingest as Znuny does (Ticket::Generic body, Basic auth carrying the bearer
// token), the event goes through Kafka to the stage, and the tag follows
// the lock in NSX, across a restart of the stage in the middle of the
// story.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, znsim.Invoker{})
	e.znSim = znsim.New(znsim.Options{Users: map[string]string{agentUser: agentPass}, Invoker: znsim.Invoker{
		URL: e.ingest(false), Shape: znsim.ShapeGeneric, BasicAuthUser: "znuny", BasicAuthPassword: bearer,
	}})
	zsrv := httptest.NewServer(e.znSim)
	t.Cleanup(zsrv.Close)
	e.zn = mustClient(t, zsrv.URL+e.znSim.BasePath())
	vm := e.vms["web02"]

	first := e.startStage(e.sink(baseConfig(), e.store()))
	a := e.create("web02")
	e.lock(a) // the invoker's POST was answered 202: the event is in Kafka
	waitFor(t, 30*time.Second, "lock → tag", func() bool { return e.tagged(vm) })

	// The stage stops; the help desk goes on: b locks the same VM, a
	// unlocks. Ingest keeps taking the webhooks.
	first.stop()
	b := e.create(vm.InstanceUUID)
	e.lock(b)
	e.unlock(a)
	if !e.tagged(vm) {
		t.Fatal("the tag changed while the stage was stopped")
	}

	// A new process (its own grant store, read from Kafka) takes over.
	e.startStage(e.sink(baseConfig(), e.store()))
	waitFor(t, 30*time.Second, "a's unlock decided", func() bool {
		return slices.Contains(e.actions(a), "access.revoke/success") && slices.Contains(e.actions(b), "access.grant/success")
	})
	if !e.tagged(vm) {
		t.Fatal("a's unlock removed the tag b holds")
	}
	e.unlock(b)
	waitFor(t, 30*time.Second, "b's unlock → untag", func() bool { return !e.tagged(vm) })
	// At-least-once: a record the first process had not committed when it
	// stopped is decided again by the second, on the ticket's state then;
	// a decision that changes nothing is audited as access.none.
	for _, tc := range []struct {
		id     string
		change string // of the revoke
	}{{a, "kept"}, {b, "removed"}} {
		var trail []string
		var revoke *pipeline.Event
		for _, ev := range e.audits(tc.id) {
			if ev.Action != jitaccess.ActionNone {
				trail = append(trail, ev.Action+"/"+ev.Outcome)
			}
			if ev.Action == jitaccess.ActionRevoke {
				revoke = ev
			}
		}
		if !slices.Equal(trail, []string{"access.grant/success", "access.revoke/success"}) {
			t.Errorf("ticket %s: audit trail %v", tc.id, trail)
		} else if got := label(revoke, jitaccess.LabelChange); got != tc.change {
			t.Errorf("ticket %s: revoke %s, want %s: %s", tc.id, got, tc.change, revoke.Message)
		}
	}
	// Every webhook was keyed and accepted; none went to the DLQ.
	for _, inv := range e.znSim.Invocations() {
		if inv.Status != http.StatusAccepted {
			t.Errorf("invocation %s of ticket %s answered %d %s", inv.Event, inv.TicketID, inv.Status, inv.Answer)
		}
	}
	if dlq, _ := brokertest.Read(ctxFor(t, 5*time.Second), e.broker, prefix+pipeline.TopicDLQ, 0); len(dlq) > 0 {
		t.Errorf("%d records in the DLQ", len(dlq))
	}
}

// TestExpiry: the tag comes off at the maximum duration though the ticket
// stays locked, stays off, and a new lock grants again.
func TestExpiry(t *testing.T) {
	e := newEnv(t, znsim.Invoker{})
	cfg := baseConfig()
	cfg.MaxDuration = 1500 * time.Millisecond
	s := e.sink(cfg, e.store())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	vm := e.vms["app01"]
	id := e.create("app01")
	e.lock(id)
	if err := e.write(s, ticketBody(id)); err != nil || !e.tagged(vm) {
		t.Fatalf("lock: %v", err)
	}
	waitFor(t, 15*time.Second, "expiry", func() bool { return !e.tagged(vm) })
	// Another webhook while still locked: refused, tag stays off.
	if err := e.write(s, ticketBody(id)); err != nil || e.tagged(vm) {
		t.Fatalf("after expiry: %v", err)
	}
	e.unlock(id)
	if err := e.write(s, ticketBody(id)); err != nil {
		t.Fatal(err)
	}
	e.lock(id)
	if err := e.write(s, ticketBody(id)); err != nil || !e.tagged(vm) {
		t.Fatalf("relock: %v", err)
	}
	want := []string{"access.grant/success", "access.expire/success", "access.deny/failure", "access.revoke/success", "access.grant/success"}
	if got := e.actions(id); !slices.Equal(got, want) {
		t.Fatalf("audit trail %v, want %v", got, want)
	}
	if ev := e.audits(id)[2]; !strings.Contains(ev.Reason, "access expired") {
		t.Errorf("deny reason %q", ev.Reason)
	}
}

// TestWebhookAuth: the ticket webhook refuses a missing or wrong bearer
// token and a missing or bad signature, and takes a good request.
func TestWebhookAuth(t *testing.T) {
	e := newEnv(t, znsim.Invoker{})
	url := e.ingest(true)
	body := `{"TicketID": 42}`
	for _, tc := range []struct {
		name, token, sig, body string
		want                   int
	}{
		{"good", bearer, ticket.Sign([]byte(secret), []byte(body)), body, http.StatusAccepted},
		{"token as basic auth password", "basic:" + bearer, ticket.Sign([]byte(secret), []byte(body)), body, http.StatusAccepted},
		{"wrong basic auth password", "basic:nope", ticket.Sign([]byte(secret), []byte(body)), body, http.StatusUnauthorized},
		{"missing token", "", ticket.Sign([]byte(secret), []byte(body)), body, http.StatusUnauthorized},
		{"wrong token", "nope", ticket.Sign([]byte(secret), []byte(body)), body, http.StatusUnauthorized},
		{"missing signature", bearer, "", body, http.StatusUnauthorized},
		{"bad signature", bearer, ticket.Sign([]byte("other"), []byte(body)), body, http.StatusUnauthorized},
		{"signature of another body", bearer, ticket.Sign([]byte(secret), []byte(`{"TicketID": 43}`)), body, http.StatusUnauthorized},
		{"no ticket", bearer, ticket.Sign([]byte(secret), []byte(`{"Lock":"lock"}`)), `{"Lock":"lock"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if pw, ok := strings.CutPrefix(tc.token, "basic:"); ok {
				req.SetBasicAuth("znuny", pw)
			} else if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.sig != "" {
				req.Header.Set(ticket.DefaultSignatureHeader, tc.sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	msgs := brokertest.ReadN(t, e.broker, prefix+pipeline.TopicTickets, 2, 10*time.Second)
	var ev pipeline.Event
	if len(msgs) != 2 || ev.DecodeJSON(msgs[0].Value) != nil || label(&ev, ticket.LabelTicketID) != "42" {
		t.Fatalf("tickets topic: %d records", len(msgs))
	}
}
