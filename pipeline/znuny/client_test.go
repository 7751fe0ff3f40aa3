package znuny_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/znuny"
	"github.com/vpipe/vpipe/pipeline/znuny/simulator"
)

const (
	user = "vpipe"
	pass = "s3cret+/&"
)

// start runs a simulator with one agent and returns it with a client of
// the given auth method.
func start(t *testing.T, auth string) (*simulator.Server, *znuny.Client) {
	t.Helper()
	sim := simulator.New(simulator.Options{Users: map[string]string{user: pass}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := znuny.New(znuny.Config{
		URL: srv.URL + sim.BasePath(), Auth: auth, Username: user, Password: pass,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestTicketGet(t *testing.T) {
	for _, auth := range []string{znuny.AuthSession, znuny.AuthBasic} {
		t.Run(auth, func(t *testing.T) {
			sim, c := start(t, auth)
			id, number := sim.CreateTicket(simulator.NewTicket{Title: "patch web01", DynamicFields: map[string]any{
				"VM": "web01", "Hosts": []string{"a", " ", "b"}, "Empty": nil,
			}})
			if _, err := sim.Lock(ctx(t), id, "agent1"); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				ts, err := c.TicketGet(ctx(t), id)
				if err != nil {
					t.Fatal(err)
				}
				if len(ts) != 1 {
					t.Fatalf("got %d tickets", len(ts))
				}
				tk := ts[0]
				if string(tk.TicketID) != id || string(tk.TicketNumber) != number || !tk.Locked() || tk.Owner != "agent1" || tk.Closed() {
					t.Errorf("ticket = %+v", tk)
				}
				for name, want := range map[string][]string{"VM": {"web01"}, "Hosts": {"a", "b"}, "Empty": nil} {
					f, ok := tk.Field(name)
					if !ok || !reflect.DeepEqual(f.Values(), want) {
						t.Errorf("field %s = %v, %v; want %v", name, f.Values(), ok, want)
					}
				}
				if _, ok := tk.Field("vm"); ok {
					t.Error("field names are case-sensitive")
				}
			}
			wantSessions := map[string]int{znuny.AuthSession: 1, znuny.AuthBasic: 0}[auth]
			if got := sim.Requests("SessionCreate"); got != wantSessions {
				t.Errorf("%d sessions created, want %d", got, wantSessions)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	sim, c := start(t, znuny.AuthSession)
	hidden, _ := sim.CreateTicket(simulator.NewTicket{Restricted: true})
	for _, tc := range []struct {
		name      string
		id        string
		permanent bool
		notFound  bool
		code      string
	}{
		{"unknown ticket", "999", true, true, "TicketGet.NotValidTicketID"},
		{"not an id", "12a", true, true, "TicketGet.NotValidTicketID"},
		{"access denied", hidden, true, false, "TicketGet.AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.TicketGet(ctx(t), tc.id)
			var ze *znuny.Error
			if !errors.As(err, &ze) || ze.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			if got := errors.Is(err, pipeline.ErrPermanent); got != tc.permanent {
				t.Errorf("permanent = %v", got)
			}
			if got := errors.Is(err, znuny.ErrNotFound); got != tc.notFound {
				t.Errorf("not found = %v", got)
			}
		})
	}
}

func TestSessionExpiryLogsInAgain(t *testing.T) {
	sim, c := start(t, znuny.AuthSession)
	id, _ := sim.CreateTicket(simulator.NewTicket{})
	if _, err := c.TicketGet(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	sim.ExpireSessions()
	if _, err := c.TicketGet(ctx(t), id); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if got := sim.Requests("SessionCreate"); got != 2 {
		t.Errorf("%d sessions created, want 2", got)
	}
}

func TestWrongPasswordIsRetryable(t *testing.T) {
	for _, auth := range []string{znuny.AuthSession, znuny.AuthBasic} {
		t.Run(auth, func(t *testing.T) {
			sim := simulator.New(simulator.Options{Users: map[string]string{user: "other"}})
			srv := httptest.NewServer(sim)
			defer srv.Close()
			c, err := znuny.New(znuny.Config{URL: srv.URL + sim.BasePath(), Auth: auth, Username: user, Password: pass}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.TicketGet(ctx(t), "1")
			var ze *znuny.Error
			if !errors.As(err, &ze) || !ze.AuthFail() || errors.Is(err, pipeline.ErrPermanent) {
				t.Fatalf("err = %v: want a retryable AuthFail", err)
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestRetriesHTTPErrors(t *testing.T) {
	sim, c := start(t, znuny.AuthBasic)
	id, _ := sim.CreateTicket(simulator.NewTicket{})
	sim.FailNext(503, 502)
	if _, err := c.TicketGet(ctx(t), id); err != nil {
		t.Fatalf("after two 503/502: %v", err)
	}
	sim.FailNext(503, 503, 503, 503)
	_, err := c.TicketGet(ctx(t), id)
	var ze *znuny.Error
	if !errors.As(err, &ze) || ze.StatusCode != 503 || errors.Is(err, pipeline.ErrPermanent) {
		t.Fatalf("err = %v: want a retryable 503 after the retries", err)
	}
}

func TestNetworkErrorHidesCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := znuny.New(znuny.Config{URL: "http://" + addr + "/otrs", Auth: znuny.AuthBasic, Username: user, Password: pass, MaxRetries: -1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TicketGet(ctx(t), "1")
	if err == nil || errors.Is(err, pipeline.ErrPermanent) {
		t.Fatalf("err = %v: want a retryable network error", err)
	}
	if strings.Contains(err.Error(), "Password") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the credentials: %v", err)
	}
}

func TestTicketSearch(t *testing.T) {
	sim, c := start(t, znuny.AuthSession)
	a, _ := sim.CreateTicket(simulator.NewTicket{})
	b, nb := sim.CreateTicket(simulator.NewTicket{})
	sim.CreateTicket(simulator.NewTicket{})
	for _, id := range []string{a, b} {
		if _, err := sim.Lock(ctx(t), id, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    znuny.Search
		want []string
	}{
		{"locked", znuny.Search{Locks: []string{"lock"}, StateType: []string{"open", "new"}}, []string{a, b}},
		{"by number", znuny.Search{TicketNumber: nb}, []string{b}},
		{"none", znuny.Search{TicketNumber: "0"}, nil},
		{"limit", znuny.Search{Locks: []string{"lock"}, Limit: 1}, []string{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.TicketSearch(ctx(t), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  znuny.Config
		want string // substring of the error; "" valid
	}{
		{"ok", znuny.Config{URL: "https://h/otrs/nph-genericinterface.pl/Webservice/X", Username: "u", Password: "p"}, ""},
		{"no url", znuny.Config{Username: "u", Password: "p"}, "url: missing"},
		{"query", znuny.Config{URL: "https://h/x?UserLogin=a", Username: "u", Password: "p"}, "must not carry a query"},
		{"auth", znuny.Config{URL: "https://h/x", Auth: "token", Username: "u", Password: "p"}, `auth: "token"`},
		{"no credentials", znuny.Config{URL: "https://h/x"}, "password: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestScalar(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"42"`, "42"}, {`42`, "42"}, {`null`, ""}, {`true`, "true"}, {`-1.5`, "-1.5"},
	} {
		var s znuny.Scalar
		if err := s.UnmarshalJSON([]byte(tc.in)); err != nil || string(s) != tc.want {
			t.Errorf("%s → %q, %v", tc.in, s, err)
		}
	}
	var s znuny.Scalar
	if err := s.UnmarshalJSON([]byte(`{}`)); err == nil {
		t.Error("an object must not decode")
	}
}
