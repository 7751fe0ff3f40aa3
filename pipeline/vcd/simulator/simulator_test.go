package simulator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vpipe/vpipe/pipeline/vcd/simulator"
)

func login(t *testing.T, base, path, token string) string {
	t.Helper()
	resp, err := http.PostForm(base+path, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.AccessToken
}

// TestStatuses: the simulator answers what VCD answers to requests it
// does not take.
func TestStatuses(t *testing.T) {
	srv := httptest.NewServer(simulator.New(simulator.Demo(), simulator.Options{}))
	defer srv.Close()
	provider := login(t, srv.URL, "/oauth/provider/token", simulator.DemoToken)
	tenant := login(t, srv.URL, "/oauth/tenant/acme/token", "vcdsim-acme-token")
	if provider == "" || tenant == "" {
		t.Fatal("login failed")
	}
	tests := []struct {
		name, path, bearer, accept string
		want                       int
	}{
		{"ok", "/cloudapi/1.0.0/orgs", provider, "application/json;version=37.2", 200},
		{"no session", "/cloudapi/1.0.0/orgs", "", "application/json;version=37.2", 401},
		{"no version", "/cloudapi/1.0.0/orgs", provider, "application/json", 406},
		{"filter", "/cloudapi/1.0.0/vdcs?filter=name==x", provider, "application/json;version=37.2", 400},
		{"page too large", "/cloudapi/1.0.0/vdcs?pageSize=129", provider, "application/json;version=37.2", 400},
		{"not simulated", "/cloudapi/1.0.0/vApps", provider, "application/json;version=37.2", 404},
		{"query as provider", "/api/query?type=adminOrgVdc&format=records", provider, "application/*+json;version=37.2", 200},
		{"admin query as tenant", "/api/query?type=adminOrgVdc&format=records", tenant, "application/*+json;version=37.2", 403},
		{"tenant query", "/api/query?type=orgVdc&format=records", tenant, "application/*+json;version=37.2", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			req.Header.Set("Accept", tt.accept)
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != 200 && !strings.Contains(resp.Header.Get("Content-Type"), "json") {
				t.Errorf("error without a JSON body")
			}
		})
	}
}
