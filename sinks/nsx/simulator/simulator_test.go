package simulator_test

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

func newServer(t *testing.T) (*simulator.Server, *httptest.Server) {
	t.Helper()
	sim := simulator.New(simulator.Options{Users: map[string]string{"admin": "pw"}})
	sim.AddVM(simulator.VM{ExternalID: "uuid-1", DisplayName: "web 01", MoRef: "vm-1", Tags: []simulator.Tag{{Scope: "app", Tag: "web"}}})
	sim.AddVM(simulator.VM{ExternalID: "uuid-2", DisplayName: "db-01", MoRef: "vm-2"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func do(t *testing.T, method, u, body, ctype string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "pw")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// apiError is NSX's ApiError.
type apiError struct {
	HTTPStatus   string `json:"httpStatus"`
	ErrorCode    int    `json:"error_code"`
	ErrorMessage string `json:"error_message"`
	ModuleName   string `json:"module_name"`
}

func TestErrorBodies(t *testing.T) {
	sim, srv := newServer(t)
	sim.SetRateLimit(1)
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   int
	}{
		{"unknown vm", func() *http.Request {
			r, _ := http.NewRequest("POST", srv.URL+"/api/v1/fabric/virtual-machines?action=add_tags",
				strings.NewReader(`{"external_id":"nope","tags":[]}`))
			r.SetBasicAuth("admin", "pw")
			return r
		}, 404, 600},
		{"bad credentials", func() *http.Request {
			r, _ := http.NewRequest("GET", srv.URL+"/api/v1/fabric/virtual-machines", nil)
			r.SetBasicAuth("admin", "wrong")
			return r
		}, 403, 98},
		{"rate limit", func() *http.Request {
			r, _ := http.NewRequest("GET", srv.URL+"/api/v1/fabric/virtual-machines", nil)
			r.SetBasicAuth("admin", "pw")
			return r
		}, 429, 102},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			for range 3 { // the rate limit answers past the first request of a second
				var err error
				resp, err = http.DefaultClient.Do(tt.req())
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == tt.status {
					break
				}
				resp.Body.Close()
			}
			defer resp.Body.Close()
			var e apiError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || e.ErrorCode != tt.code || e.ErrorMessage == "" || e.ModuleName == "" {
				t.Errorf("%d %+v; want %d with error_code %d", resp.StatusCode, e, tt.status, tt.code)
			}
			if tt.status == 429 && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
}

func TestSearchAndPaging(t *testing.T) {
	sim, srv := newServer(t)
	q := url.Values{"query": {`resource_type:VirtualMachine AND display_name:"web 01"`}}
	_, _, b := do(t, "GET", srv.URL+"/policy/api/v1/search/query?"+q.Encode(), "", "")
	if !strings.Contains(string(b), `"external_id":"uuid-1"`) || strings.Contains(string(b), "uuid-2") {
		t.Errorf("search by quoted name: %s", b)
	}
	q = url.Values{"query": {`resource_type:VirtualMachine AND external_id:uuid\-2`}}
	_, _, b = do(t, "GET", srv.URL+"/policy/api/v1/search/query?"+q.Encode(), "", "")
	if !strings.Contains(string(b), `"external_id":"uuid-2"`) {
		t.Errorf("search by escaped id: %s", b)
	}
	// The realized-state list honours a cursor but returns none.
	_, _, b = do(t, "GET", srv.URL+"/policy/api/v1/infra/realized-state/virtual-machines?page_size=1&cursor=1", "", "")
	var l struct {
		Results []struct {
			ExternalID string `json:"external_id"`
		} `json:"results"`
		Cursor *string `json:"cursor"`
	}
	json.Unmarshal(b, &l)
	if len(l.Results) != 1 || l.Results[0].ExternalID != "uuid-2" || l.Cursor != nil {
		t.Errorf("policy list page 2: %s", b)
	}
	_ = sim
}

func TestGroupMembership(t *testing.T) {
	sim, srv := newServer(t)
	group := `{"display_name":"web or db","expression":[
		{"resource_type":"Condition","member_type":"VirtualMachine","key":"Tag","operator":"EQUALS","value":"APP|Web"},
		{"resource_type":"ConjunctionOperator","conjunction_operator":"OR"},
		{"resource_type":"Condition","member_type":"VirtualMachine","key":"Tag","operator":"EQUALS","value":"|db"}]}`
	if st, _, b := do(t, "PUT", srv.URL+"/policy/api/v1/infra/domains/default/groups/g1", group, "application/json"); st != 200 {
		t.Fatalf("put group: %d %s", st, b)
	}
	members := func() string {
		_, _, b := do(t, "GET", srv.URL+"/policy/api/v1/infra/domains/default/groups/g1/members/virtual-machines", "", "")
		return string(b)
	}
	if m := members(); !strings.Contains(m, "uuid-1") || strings.Contains(m, "uuid-2") {
		t.Errorf("members (case-insensitive tag match): %s", m)
	}
	sim.SetTags("uuid-2", []simulator.Tag{{Scope: "any", Tag: "db"}})
	if m := members(); !strings.Contains(m, "uuid-2") {
		t.Errorf("\"|db\" matches any scope: %s", m)
	}
}

func TestNSXVSecurityTags(t *testing.T) {
	sim, srv := newServer(t)
	body := `<securityTag><objectTypeName>SecurityTag</objectTypeName><type><typeName>SecurityTag</typeName></type><name>quarantine</name></securityTag>`
	st, _, b := do(t, "POST", srv.URL+"/api/2.0/services/securitytags/tag", body, "application/xml")
	id := string(b)
	if st != 201 || !strings.HasPrefix(id, "securitytag-") {
		t.Fatalf("create: %d %s", st, b)
	}
	st, _, b = do(t, "POST", srv.URL+"/api/2.0/services/securitytags/tag", body, "application/xml")
	var e struct {
		ErrorCode int    `xml:"errorCode"`
		Details   string `xml:"details"`
	}
	if xml.Unmarshal(b, &e); st != 400 || e.ErrorCode != 210 {
		t.Errorf("duplicate: %d %s; want 400 with errorCode 210", st, b)
	}
	for _, vmID := range []string{"vm-1", "uuid-2"} { // MoRef or instance UUID
		if st, _, b := do(t, "PUT", srv.URL+"/api/2.0/services/securitytags/tag/"+id+"/vm/"+vmID, "", ""); st != 200 {
			t.Fatalf("attach to %s: %d %s", vmID, st, b)
		}
	}
	_, _, b = do(t, "GET", srv.URL+"/api/2.0/services/securitytags/tag/"+id+"/vmDetail", "", "")
	if !strings.Contains(string(b), "<instanceUUID>uuid-1</instanceUUID>") || !strings.Contains(string(b), "<instanceUUID>uuid-2</instanceUUID>") {
		t.Errorf("vmDetail: %s", b)
	}
	do(t, "DELETE", srv.URL+"/api/2.0/services/securitytags/tag/"+id+"/vm/uuid-1", "", "")
	if vm, _ := sim.VM("uuid-1"); len(vm.SecurityTags) != 0 {
		t.Errorf("after detach: %v", vm.SecurityTags)
	}
	if st, _, _ := do(t, "GET", srv.URL+"/api/2.0/services/securitytags/vm/nope", "", ""); st != 404 {
		t.Errorf("tags of an unknown VM: %d", st)
	}
}
