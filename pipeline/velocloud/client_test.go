package velocloud_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/velocloud"
	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
)

func client(t *testing.T, url string, auth velocloud.Auth, timeout time.Duration) *velocloud.Client {
	t.Helper()
	c, err := velocloud.NewClient(velocloud.ClientConfig{URL: url, Auth: auth, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientAuth: tokens and the three logins, a session that expires,
// and refused credentials.
func TestClientAuth(t *testing.T) {
	sim, url := startSim(t, simConfig())
	tests := []struct {
		name    string
		auth    velocloud.Auth
		wantErr error
	}{
		{"operator token", velocloud.Auth{Token: testToken}, nil},
		{"operator login", velocloud.Auth{Username: testOperator, Password: testPassword, Operator: true}, nil},
		{"enterprise login", velocloud.Auth{Username: "ent@example.com", Password: testPassword}, nil},
		{"wrong token", velocloud.Auth{Token: "nope"}, velocloud.ErrUnauthorized},
		{"wrong password", velocloud.Auth{Username: testOperator, Password: "nope", Operator: true}, velocloud.ErrUnauthorized},
		{"operator at the enterprise login", velocloud.Auth{Username: testOperator, Password: testPassword}, velocloud.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, url, tc.auth, 5*time.Second)
			_, err := c.EnterpriseEvents(context.Background(), 1, time.Now().Add(-time.Hour), time.Now(), 0)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil && velocloud.Result(err) != velocloud.ResultAuth {
				t.Errorf("Result = %s, want auth", velocloud.Result(err))
			}
		})
	}
	t.Run("session expires", func(t *testing.T) {
		c := client(t, url, velocloud.Auth{Username: testOperator, Password: testPassword, Operator: true}, 5*time.Second)
		ctx := context.Background()
		before := sim.Stats().Logins
		for i := range 3 {
			if _, err := c.EnterpriseEvents(ctx, 1, time.Now().Add(-time.Hour), time.Now(), 0); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			sim.ExpireSessions()
		}
		if got := sim.Stats().Logins - before; got != 3 {
			t.Errorf("%d logins, want 3 (one per expired session)", got)
		}
		// An injected 401 ends the session too: one more login, no error.
		if _, err := c.EnterpriseEvents(ctx, 1, time.Now().Add(-time.Hour), time.Now(), 0); err != nil {
			t.Fatal(err)
		}
		sim.Fail(simulator.Failure{Kind: simulator.FailUnauthorized})
		if _, err := c.EnterpriseEvents(ctx, 1, time.Now().Add(-time.Hour), time.Now(), 0); err != nil {
			t.Fatalf("after a 401: %v", err)
		}
	})
}

// TestClientErrors: every failure the simulator injects comes back
// classified, with what a caller needs to retry.
func TestClientErrors(t *testing.T) {
	sim, url := startSim(t, simConfig())
	tests := []struct {
		name    string
		fail    simulator.Failure
		result  string
		wantErr error
	}{
		{"401", simulator.Failure{Kind: simulator.FailUnauthorized}, velocloud.ResultAuth, velocloud.ErrUnauthorized},
		{"429", simulator.Failure{Kind: simulator.FailRateLimit}, velocloud.ResultRateLimited, velocloud.ErrRateLimited},
		{"500", simulator.Failure{Kind: simulator.FailServer}, velocloud.ResultServer, nil},
		{"malformed", simulator.Failure{Kind: simulator.FailMalformed}, velocloud.ResultMalformed, velocloud.ErrMalformed},
		{"timeout", simulator.Failure{Kind: simulator.FailTimeout}, velocloud.ResultTimeout, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, url, velocloud.Auth{Token: testToken}, 300*time.Millisecond)
			sim.Fail(tc.fail)
			_, err := c.EnterpriseEvents(context.Background(), 1, time.Now().Add(-time.Hour), time.Now(), 0)
			if err == nil {
				t.Fatal("no error")
			}
			if got := velocloud.Result(err); got != tc.result {
				t.Errorf("Result(%v) = %s, want %s", err, got, tc.result)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			var ae *velocloud.APIError
			if tc.name == "429" && (!errors.As(err, &ae) || ae.RetryAfter != time.Second) {
				t.Errorf("429: RetryAfter not read from the answer: %v", err)
			}
			// The next request works.
			if _, err := c.EnterpriseEvents(context.Background(), 1, time.Now().Add(-time.Hour), time.Now(), 0); err != nil {
				t.Errorf("next request: %v", err)
			}
		})
	}
}

// TestClientEvents: the documented request and answer, a full answer,
// and the bare array some VCOs send.
func TestClientEvents(t *testing.T) {
	sim, url := startSim(t, simConfig())
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var ids []int64
	for i := range 5 {
		e, _ := sim.Insert(2, simulator.Event{EventTime: base.Add(time.Duration(i) * time.Second), Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "up"})
		ids = append(ids, e.ID)
	}
	c := client(t, url, velocloud.Auth{Token: testToken}, 5*time.Second)
	ctx := context.Background()
	page, err := c.EnterpriseEvents(ctx, 2, base, base.Add(4*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 5 || page.More {
		t.Fatalf("%d events, more %v; want 5, false", len(page.Events), page.More)
	}
	var got []int64
	for _, raw := range page.Events {
		var v struct{ ID int64 }
		json.Unmarshal(raw, &v)
		got = append(got, v.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("ids %v, want %v", got, ids)
	}
	page, err = c.EnterpriseEvents(ctx, 2, base, base.Add(4*time.Second), 2)
	if err != nil || len(page.Events) != 2 || !page.More {
		t.Fatalf("limit 2: %d events, more %v, %v", len(page.Events), page.More, err)
	}
	// Enterprise 1 has none; an enterprise the token cannot see is 403.
	if page, err = c.EnterpriseEvents(ctx, 1, base, base.Add(4*time.Second), 0); err != nil || len(page.Events) != 0 {
		t.Errorf("enterprise 1: %d events, %v", len(page.Events), err)
	}
	ec := client(t, url, velocloud.Auth{Token: "enterprise-token"}, 5*time.Second)
	if _, err := ec.EnterpriseEvents(ctx, 2, base, base.Add(time.Second), 0); velocloud.Result(err) != velocloud.ResultForbidden {
		t.Errorf("other enterprise: %v, want forbidden", err)
	}

	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id": 1, "eventTime": "2021-10-23T06:48:57.000Z", "event": "EDGE_UP"}]`))
	}))
	defer bare.Close()
	page, err = client(t, bare.URL, velocloud.Auth{Token: "x"}, time.Second).EnterpriseEvents(ctx, 1, base, base, 0)
	if err != nil || len(page.Events) != 1 {
		t.Errorf("bare array: %d events, %v", len(page.Events), err)
	}
}

// TestClientEnterprises: what each account lists.
func TestClientEnterprises(t *testing.T) {
	_, url := startSim(t, simConfig(
		simulator.Enterprise{ID: 1, Name: "Acme"},
		simulator.Enterprise{ID: 2, Name: "Globex", ProxyID: 9},
		simulator.Enterprise{ID: 3, Name: "Initech", ProxyID: 9},
	))
	ctx := context.Background()
	names := func(es []velocloud.EnterpriseInfo) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	op := client(t, url, velocloud.Auth{Token: testToken}, time.Second)
	all, err := op.ListEnterprises(ctx, true)
	if err != nil || !slices.Equal(names(all), []string{"Acme", "Globex", "Initech"}) {
		t.Errorf("operator: %v, %v", names(all), err)
	}
	msp := client(t, url, velocloud.Auth{Username: "msp@example.com", Password: testPassword}, time.Second)
	mine, err := msp.ListEnterprises(ctx, false)
	if err != nil || !slices.Equal(names(mine), []string{"Globex", "Initech"}) {
		t.Errorf("partner: %v, %v", names(mine), err)
	}
	if _, err := msp.ListEnterprises(ctx, true); velocloud.Result(err) != velocloud.ResultForbidden {
		t.Errorf("partner listing the network: %v, want forbidden", err)
	}
	ent := client(t, url, velocloud.Auth{Username: "ent@example.com", Password: testPassword}, time.Second)
	own, err := ent.GetEnterprise(ctx, 0)
	if err != nil || own.ID != 1 || own.Name != "Acme" {
		t.Errorf("enterprise: %+v, %v", own, err)
	}
	if _, err := velocloud.NewClient(velocloud.ClientConfig{URL: "ftp://x", Auth: velocloud.Auth{Token: "t"}}); err == nil {
		t.Error("ftp url accepted")
	}
	if _, err := velocloud.NewClient(velocloud.ClientConfig{URL: url, Auth: velocloud.Auth{Username: "u"}}); err == nil {
		t.Error("username without password accepted")
	}
}

// TestClientAnswers: answer bodies the client accepts, and the broken
// ones it reports as malformed (never as an empty page).
func TestClientAnswers(t *testing.T) {
	ev := `{"id": 1, "eventTime": "2021-10-23T06:48:57.000Z", "message": "a ] } \" [ {", "detail": "{\"k\": [1]}"}`
	tests := []struct {
		name   string
		body   string
		events int
		more   bool
		ok     bool
	}{
		{"documented", `{"metaData": {"limit": 2048, "more": false}, "data": [` + ev + `, ` + ev + `]}`, 2, false, true},
		{"more", `{"metaData":{"limit":1,"more":true},"data":[` + ev + `]}`, 1, true, true},
		{"pretty", "{\n  \"data\": [\n    " + ev + "\n  ],\n  \"metaData\": {\"more\": false}\n}\n", 1, false, true},
		{"extra members", `{"metaData":{"more":false},"nextPageLink":null,"data":[],"x":{"y":[1,2]}}`, 0, false, true},
		{"bare array", `[` + ev + `]`, 1, false, true},
		{"empty array", `[]`, 0, false, true},
		{"null data", `{"metaData":{"more":false},"data":null}`, 0, false, true},
		{"truncated", `{"metaData":{"more":false},"data":[` + ev[:30], 0, false, false},
		{"truncated string", `{"data":["abc`, 0, false, false},
		{"no data", `{"result": 1}`, 0, false, false},
		{"empty object", `{}`, 0, false, false},
		{"not json", `<html>502 Bad Gateway</html>`, 0, false, false},
		{"empty", ``, 0, false, false},
		{"trailing garbage", `{"data":[]} x`, 0, false, false},
		{"bad metaData", `{"metaData":{"more":"yes"},"data":[]}`, 0, false, false},
		{"missing comma", `{"data":[1 2]}`, 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			page, err := client(t, srv.URL, velocloud.Auth{Token: "x"}, time.Second).EnterpriseEvents(context.Background(), 1, time.Now(), time.Now(), 0)
			if !tc.ok {
				if !errors.Is(err, velocloud.ErrMalformed) {
					t.Fatalf("err = %v, want malformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != tc.events || page.More != tc.more {
				t.Errorf("%d events, more %v; want %d, %v", len(page.Events), page.More, tc.events, tc.more)
			}
			for _, e := range page.Events {
				if !json.Valid(e) {
					t.Errorf("event %s is not one JSON value", e)
				}
			}
		})
	}
}
