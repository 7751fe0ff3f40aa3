// Command znunysim runs the OTRS / Znuny help desk simulator
// (pipeline/znuny/simulator) for demos and manual tests: the
// GenericTicketConnectorREST operations vpipe uses (SessionCreate,
// TicketGet with dynamic fields, TicketSearch), a test API to create, lock,
// unlock and close tickets, and the web service invoker that posts the
// ticket webhook to vpipe on every lock change, as Znuny does.
//
//	go run ./cmd/znunysim -tickets testdata/jit/tickets.json \
//	    -invoker-url http://127.0.0.1:8080/v1/webhooks/ticket
//	curl -XPOST localhost:8081/simulator/tickets/1/lock -d '{"Owner":"agent1"}'
//
// then point stages.jit_access.znuny at it (deploy/znuny/README.md):
//
//	znuny:
//	  url: http://127.0.0.1:8081/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST
//	  username: vpipe
//	  password_env: ZNUNY_PASSWORD   # the -password-env value, "vpipe" by default
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
	"github.com/vpipe/vpipe/pipeline/znuny/simulator"
)

func main() { simcmd.Main("znunysim", run) }

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("znunysim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `znunysim [flags]

Serves a simulated Znuny web service under
/otrs/nph-genericinterface.pl/Webservice/<name>: POST /Session,
GET /Ticket/<id>[,<id>...] (TicketGet; DynamicFields=1), GET /Ticket
(TicketSearch). Answers as Znuny does, errors included (HTTP 200 with an
"Error" member).

Test API (JSON):
  GET  /simulator/tickets
  POST /simulator/tickets                    {"Title","Queue","State","StateType","Owner","DynamicFields":{...}}
  POST /simulator/tickets/<id>/lock          {"Owner":"agent1"}
  POST /simulator/tickets/<id>/unlock
  POST /simulator/tickets/<id>/state         {"State":"closed successful","StateType":"closed"}
  PUT  /simulator/tickets/<id>/dynamic-fields/<name>  {"Value":"web01"}
Each change fires the invoker (TicketLockUpdate, TicketStateUpdate,
TicketDynamicFieldUpdate_<name>) when -invoker-url is set; the answer lists
the invocations and vpipe's replies.

Flags:`)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8081", "`address` to listen on (plain HTTP)")
	webservice := fs.String("webservice", simulator.DefaultWebservice, "web service `name` in the URL")
	user := fs.String("user", "vpipe", "the agent's `login`")
	passwordEnv := fs.String("password-env", "ZNUNY_PASSWORD", "environment `variable` holding the agent's password (default password: vpipe)")
	tickets := fs.String("tickets", "", "JSON `file`: an array of tickets to create at start")
	idle := fs.Duration("session-idle", 2*time.Hour, "sessions end after this long unused (Znuny's SessionMaxIdleTime)")
	invURL := fs.String("invoker-url", "", "`URL` the invoker posts to, e.g. http://127.0.0.1:8080/v1/webhooks/ticket (empty: no invoker)")
	shape := fs.String("invoker-shape", simulator.ShapeGeneric, "webhook body: generic (Ticket::Generic), plain ({\"TicketID\"}), otnsx, test ({\"TicketNumber\"})")
	basicUser := fs.String("invoker-basic-user", "znuny", "HTTP Basic auth `user` of the invoker (what Znuny's HTTP::REST requester sends)")
	basicEnv := fs.String("invoker-basic-password-env", "", "environment `variable` holding its password: vpipe's bearer token")
	tokenEnv := fs.String("invoker-token-env", "", "environment `variable` holding a bearer token to send instead (as a script would)")
	secretEnv := fs.String("invoker-hmac-env", "", "environment `variable` holding the HMAC secret that signs the webhook")
	header := fs.String("invoker-signature-header", simulator.DefaultSignatureHeader, "signature header `name`")
	if err := simcmd.Parse(fs, args); err != nil {
		return err
	}
	switch *shape {
	case simulator.ShapeGeneric, simulator.ShapePlain, simulator.ShapeOTNSX, simulator.ShapeTest:
	default:
		fmt.Fprintf(stderr, "znunysim: -invoker-shape %q is not one of generic, plain, otnsx, test\n", *shape)
		return simcmd.ErrUsage
	}
	password := "vpipe"
	if v := strings.TrimSpace(os.Getenv(*passwordEnv)); v != "" {
		password = v
	}
	inv := simulator.Invoker{URL: *invURL, Shape: *shape, SignatureHeader: *header}
	if *basicEnv != "" {
		if inv.BasicAuthPassword = strings.TrimSpace(os.Getenv(*basicEnv)); inv.BasicAuthPassword == "" {
			return fmt.Errorf("-invoker-basic-password-env: %s is not set", *basicEnv)
		}
		inv.BasicAuthUser = *basicUser
	}
	if *tokenEnv != "" {
		if inv.BearerToken = strings.TrimSpace(os.Getenv(*tokenEnv)); inv.BearerToken == "" {
			return fmt.Errorf("-invoker-token-env: %s is not set", *tokenEnv)
		}
	}
	if *secretEnv != "" {
		s := strings.TrimSpace(os.Getenv(*secretEnv))
		if s == "" {
			return fmt.Errorf("-invoker-hmac-env: %s is not set", *secretEnv)
		}
		inv.HMACSecret = []byte(s)
	}
	sim := simulator.New(simulator.Options{
		Webservice: *webservice, Users: map[string]string{*user: password}, SessionIdleTime: *idle, Invoker: inv,
	})
	n, err := loadTickets(sim, *tickets)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	log.Info("znunysim listening", "url", "http://"+ln.Addr().String()+sim.BasePath(),
		"test_api", "http://"+ln.Addr().String()+"/simulator/tickets", "tickets", n, "user", *user, "invoker", *invURL)
	if err := simcmd.Serve(ctx, &http.Server{Handler: sim}, ln); err != nil {
		return err
	}
	log.Info("znunysim stopped", "invocations", len(sim.Invocations()))
	return nil
}

// loadTickets creates the tickets of a JSON file (an array of
// simulator.NewTicket objects).
func loadTickets(sim *simulator.Server, path string) (int, error) {
	if path == "" {
		return 0, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var ts []simulator.NewTicket
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ts); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	for _, t := range ts {
		sim.CreateTicket(t)
	}
	return len(ts), nil
}
