// Command vcosim runs the VeloCloud Orchestrator simulator
// (pipeline/velocloud/simulator) for demos and manual tests: a few
// enterprises with a generated stream of events, token and password auth,
// an optional rate limit and late events.
//
//	go run ./cmd/vcosim -listen 127.0.0.1:8443 -token demo-token -rate 2 -late 0.1
//
// then point a vpipe VCO source at it:
//
//	sources:
//	  velocloud:
//	    - {name: sim, url: "http://127.0.0.1:8443", account: operator, token_env: VCO_TOKEN}
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
)

func main() { simcmd.Main("vcosim", run) }

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vcosim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `vcosim [flags]

Serves a simulated VCO Portal API (POST /portal/rest/<method> and JSON-RPC
POST /portal/): login/enterpriseLogin, login/operatorLogin, logout,
enterprise/getEnterprise, network/getNetworkEnterprises,
enterpriseProxy/getEnterpriseProxyEnterprises, event/getEnterpriseEvents.
The token is an operator's; -user/-password log in as an operator too.

Flags:`)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8443", "`address` to listen on (plain HTTP)")
	token := fs.String("token", "vcosim-token", "API `token` accepted with \"Authorization: Token\" (operator scope)")
	user := fs.String("user", "operator@example.com", "operator `username` for login/operatorLogin")
	password := fs.String("password", "vcosim", "its `password`")
	names := fs.String("enterprises", "Acme Corp,Globex,Initech", "comma-separated enterprise `names` (ids 1, 2, ...)")
	rate := fs.Float64("rate", 1, "events a second per enterprise")
	late := fs.Float64("late", 0.05, "`fraction` of events that arrive late")
	lateness := fs.Duration("lateness", 2*time.Minute, "how late a late event is, at most")
	backlog := fs.Int("backlog", 100, "events per enterprise generated over the last hour at start")
	rateLimit := fs.Float64("rate-limit", 0, "requests a second per client before 429 (0: no limit)")
	sessionTTL := fs.Duration("session-ttl", 24*time.Hour, "login session lifetime")
	if err := simcmd.Parse(fs, args); err != nil {
		return err
	}
	var ents []simulator.Enterprise
	for i, n := range strings.Split(*names, ",") {
		ents = append(ents, simulator.Enterprise{ID: int64(i + 1), Name: strings.TrimSpace(n)})
	}
	sim := simulator.New(simulator.Config{
		Enterprises: ents,
		Tokens:      []simulator.Token{{Token: *token, Role: simulator.RoleOperator}},
		Users:       []simulator.User{{Username: *user, Password: *password, Role: simulator.RoleOperator}},
		SessionTTL:  *sessionTTL,
		RateLimit:   *rateLimit,
	})
	now := time.Now()
	for _, e := range ents {
		if err := sim.Fill(e.ID, now.Add(-time.Hour), now, *backlog, uint64(e.ID)); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	log.Info("vcosim listening", "url", "http://"+ln.Addr().String(), "enterprises", len(ents),
		"rate", *rate, "late", *late, "rate_limit", *rateLimit)
	go sim.Generate(ctx, simulator.GenerateConfig{Rate: *rate, LateFraction: *late, MaxLateness: *lateness, Seed: uint64(now.UnixNano())})
	if err := simcmd.Serve(ctx, &http.Server{Handler: sim}, ln); err != nil {
		return err
	}
	st := sim.Stats()
	log.Info("vcosim stopped", "requests", st.Requests, "events_served", st.Served)
	return nil
}
