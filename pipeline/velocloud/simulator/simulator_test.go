package simulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/velocloud/simulator"
)

func post(t *testing.T, url, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestShapes: the documented request and answer shapes, over both
// transports.
func TestShapes(t *testing.T) {
	base := time.Date(2021, 10, 23, 6, 0, 0, 0, time.UTC)
	now := base.Add(time.Hour)
	sim := simulator.New(simulator.Config{
		Tokens: []simulator.Token{{Token: "op", Role: simulator.RoleOperator}, {Token: "ent", Role: simulator.RoleEnterprise, EnterpriseID: 2}},
		Users:  []simulator.User{{Username: "u", Password: "p", Role: simulator.RoleOperator}},
		Now:    func() time.Time { return now },
	})
	for i := range 3 {
		sim.Insert(2, simulator.Event{EventTime: base.Add(time.Duration(i) * time.Minute), Event: "EDGE_UP", Category: "EDGE", Severity: "NOTICE", Message: "m"})
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	type page struct {
		MetaData struct {
			Limit int  `json:"limit"`
			More  bool `json:"more"`
		} `json:"metaData"`
		Data []struct {
			ID        int64  `json:"id"`
			EventTime string `json:"eventTime"`
		} `json:"data"`
	}
	tests := []struct {
		name, path, token, body string
		status                  int
		events                  int
		more                    bool
	}{
		{"ms epoch", "/portal/rest/event/getEnterpriseEvents", "op", `{"enterpriseId":2,"interval":{"start":1634968800000,"end":1634968860000}}`, 200, 2, false},
		{"rfc3339", "/portal/rest/event/getEnterpriseEvents", "op", `{"enterpriseId":2,"interval":{"start":"2021-10-23T06:00:00Z","end":"2021-10-23T07:00:00.000Z"}}`, 200, 3, false},
		{"naive iso (kurtcms)", "/portal/rest/event/getEnterpriseEvents", "op", `{"enterpriseId":2,"interval":{"start":"2021-10-23T06:00:30","end":"2021-10-23T06:10:00"}}`, 200, 2, false},
		{"default window", "/portal/rest/event/getEnterpriseEvents", "op", `{"enterpriseId":2}`, 200, 3, false},
		{"limit", "/portal/rest/event/getEnterpriseEvents", "op", `{"enterpriseId":2,"interval":{"start":0},"filter":{"limit":2}}`, 200, 2, true},
		{"enterprise inferred", "/portal/rest/event/getEnterpriseEvents", "ent", `{"interval":{"start":0}}`, 200, 3, false},
		{"operator without enterpriseId", "/portal/rest/event/getEnterpriseEvents", "op", `{"interval":{"start":0}}`, 400, 0, false},
		{"other enterprise", "/portal/rest/event/getEnterpriseEvents", "ent", `{"enterpriseId":1,"interval":{"start":0}}`, 403, 0, false},
		{"no credentials", "/portal/rest/event/getEnterpriseEvents", "", `{"enterpriseId":2}`, 401, 0, false},
		{"bad time", "/portal/rest/event/getEnterpriseEvents", "op", `{"enterpriseId":2,"interval":{"start":"yesterday"}}`, 400, 0, false},
		{"unknown method", "/portal/rest/event/nope", "op", `{}`, 404, 0, false},
		{"unknown path", "/api/v9", "op", `{}`, 404, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, srv.URL, tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				var eb struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if json.Unmarshal(body, &eb) != nil || eb.Error.Message == "" {
					t.Errorf("error body %s", body)
				}
				return
			}
			var p page
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Data) != tc.events || p.MetaData.More != tc.more {
				t.Errorf("%d events, more %v; want %d, %v: %s", len(p.Data), p.MetaData.More, tc.events, tc.more, body)
			}
			for i := 1; i < len(p.Data); i++ {
				if p.Data[i].EventTime > p.Data[i-1].EventTime {
					t.Errorf("not newest first: %s", body)
				}
			}
		})
	}
	t.Run("json-rpc", func(t *testing.T) {
		_, body := post(t, srv.URL, "/portal/", "op", `{"jsonrpc":"2.0","id":15,"method":"event/getEnterpriseEvents","params":{"enterpriseId":2,"interval":{"start":0}}}`)
		var r struct {
			ID     int  `json:"id"`
			Result page `json:"result"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.ID != 15 || len(r.Result.Data) != 3 {
			t.Errorf("json-rpc answer %s (%v)", body, err)
		}
	})
	t.Run("login", func(t *testing.T) {
		resp, _ := post(t, srv.URL, "/portal/rest/login/operatorLogin", "", `{"username":"u","password":"x"}`)
		if resp.StatusCode != http.StatusFound || cookie(resp, "velocloud.message") == "" || cookie(resp, "velocloud.session") != "" {
			t.Errorf("failed login: %d %v", resp.StatusCode, resp.Cookies())
		}
		resp, _ = post(t, srv.URL, "/portal/rest/login/operatorLogin", "", `{"username":"u","password":"p"}`)
		if resp.StatusCode != 200 || cookie(resp, "velocloud.session") == "" {
			t.Errorf("login: %d %v", resp.StatusCode, resp.Cookies())
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/portal/rest/event/getEnterpriseEvents")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d", resp.StatusCode)
		}
	})
}

func cookie(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestRateLimit: beyond the rate, 429 with Retry-After for the penalty.
func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sim := simulator.New(simulator.Config{
		Tokens:    []simulator.Token{{Token: "op", Role: simulator.RoleOperator}},
		RateLimit: 1, RateBurst: 2, Penalty: 5 * time.Second,
		Now: func() time.Time { return now },
	})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	var codes []int
	for range 3 {
		resp, _ := post(t, srv.URL, "/portal/rest/network/getNetworkEnterprises", "op", `{}`)
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "5" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("codes %v, want 200 200 429", codes)
	}
	now = now.Add(4 * time.Second)
	if resp, _ := post(t, srv.URL, "/portal/rest/network/getNetworkEnterprises", "op", `{}`); resp.StatusCode != 429 {
		t.Errorf("within the penalty: %d", resp.StatusCode)
	}
	now = now.Add(2 * time.Second)
	if resp, _ := post(t, srv.URL, "/portal/rest/network/getNetworkEnterprises", "op", `{}`); resp.StatusCode != 200 {
		t.Errorf("after the penalty: %d", resp.StatusCode)
	}
	if sim.Stats().RateLimited != 2 {
		t.Errorf("stats: %+v", sim.Stats())
	}
}

// TestGenerate: the stream has every enterprise's events, some late.
func TestGenerate(t *testing.T) {
	sim := simulator.New(simulator.Config{})
	done := make(chan struct{})
	late := 0
	n := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		sim.Generate(ctx, simulator.GenerateConfig{Rate: 200, LateFraction: 0.5, MaxLateness: time.Minute, Seed: 1,
			OnInsert: func(_ int64, e simulator.Event) {
				n++
				if time.Since(e.EventTime) > time.Second {
					late++
				}
				if n == 300 {
					cancel()
				}
			}})
		close(done)
	}()
	<-done
	if late == 0 {
		t.Error("no late events")
	}
	for _, e := range sim.Enterprises() {
		evs := sim.Events(e.ID)
		if len(evs) < 90 {
			t.Errorf("%s: %d events", e.Name, len(evs))
		}
		for _, ev := range evs {
			if !json.Valid(ev.JSON()) || ev.Event == "" || ev.Severity == "" {
				t.Errorf("bad event %s", ev.JSON())
			}
		}
	}
}
