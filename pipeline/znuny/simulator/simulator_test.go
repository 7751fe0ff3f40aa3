package simulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/znuny/simulator"
)

// receiver records the webhooks posted to it and answers 202.
type receiver struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, string(b))
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"accepted":1}`)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestInvokerShapes: each payload shape is one the ticket webhook parser
// reads, names the ticket, and is signed and authorised as configured.
func TestInvokerShapes(t *testing.T) {
	for _, shape := range []string{simulator.ShapeGeneric, simulator.ShapePlain, simulator.ShapeOTNSX, simulator.ShapeTest} {
		t.Run(shape, func(t *testing.T) {
			rcv := &receiver{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			sim := simulator.New(simulator.Options{Invoker: simulator.Invoker{
				URL: srv.URL, Shape: shape, BasicAuthUser: "znuny", BasicAuthPassword: "tok", HMACSecret: []byte("k"),
			}})
			id, number := sim.CreateTicket(simulator.NewTicket{DynamicFields: map[string]any{"VM": "web01"}})
			invs, err := sim.Lock(ctx(t), id, "agent1")
			if err != nil || len(invs) != 1 || invs[0].Status != http.StatusAccepted || invs[0].Event != simulator.EventLockUpdate {
				t.Fatalf("lock: %+v, %v", invs, err)
			}
			if again, _ := sim.Lock(ctx(t), id, ""); len(again) != 0 {
				t.Errorf("locking a locked ticket fired %d invocations", len(again))
			}
			req, body := rcv.reqs[0], rcv.body[0]
			if u, p, _ := req.BasicAuth(); u != "znuny" || p != "tok" || !ticket.Verify([]byte("k"), []byte(body), req.Header.Get(simulator.DefaultSignatureHeader)) {
				t.Errorf("headers %v", req.Header)
			}
			if !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
				t.Errorf("content type %q", req.Header.Get("Content-Type"))
			}
			var ev *pipeline.Event
			if err := ticket.Webhook([]byte(body), time.Now(), func(e *pipeline.Event) { ev = e }); err != nil {
				t.Fatalf("parse %s: %v", body, err)
			}
			got := map[string]string{}
			for _, l := range ev.Labels {
				got[l.Key] = l.Value
			}
			if got[ticket.LabelTicketID] != id && got[ticket.LabelTicketNumber] != number {
				t.Errorf("body %s names neither ticket %s nor number %s", body, id, number)
			}
			if shape == simulator.ShapeGeneric && (got[ticket.LabelLock] != "lock" || ev.User.Name != "agent1") {
				t.Errorf("generic body %s: labels %v, owner %q", body, got, ev.User.Name)
			}
		})
	}
}

// TestTestAPI drives the simulator over HTTP as cmd/znunysim users do.
func TestTestAPI(t *testing.T) {
	rcv := &receiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	sim := simulator.New(simulator.Options{Invoker: simulator.Invoker{URL: hook.URL}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		return out
	}
	created := call("POST", "/simulator/tickets", `{"Title":"t","DynamicFields":{"VM":"web01"}}`)
	id, _ := created["TicketID"].(string)
	for _, tc := range []struct{ method, path, body, event string }{
		{"POST", "/simulator/tickets/" + id + "/lock", `{"Owner":"agent1"}`, simulator.EventLockUpdate},
		{"PUT", "/simulator/tickets/" + id + "/dynamic-fields/VM", `{"Value":"db01"}`, "TicketDynamicFieldUpdate_VM"},
		{"POST", "/simulator/tickets/" + id + "/state", `{"State":"closed successful","StateType":"closed"}`, simulator.EventStateUpdate},
		{"POST", "/simulator/tickets/" + id + "/unlock", ``, simulator.EventLockUpdate},
	} {
		out := call(tc.method, tc.path, tc.body)
		invs, _ := out["Invocations"].([]any)
		if len(invs) != 1 || invs[0].(map[string]any)["Event"] != tc.event {
			t.Errorf("%s %s: invocations %v", tc.method, tc.path, out)
		}
	}
	list := call("GET", "/simulator/tickets", "")
	ts, _ := list["Ticket"].([]any)
	tk := ts[0].(map[string]any)
	if tk["Lock"] != "unlock" || tk["StateType"] != "closed" || tk["DynamicField"].([]any)[0].(map[string]any)["Value"] != "db01" {
		t.Errorf("ticket %v", tk)
	}
	if len(sim.Invocations()) != 4 {
		t.Errorf("%d invocations", len(sim.Invocations()))
	}
}
