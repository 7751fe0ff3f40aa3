// Package simulator serves the part of the VMware Cloud Director API that
// pipeline/vcd uses, from a fixture: API-token login, the OpenAPI lists of
// organisations, Org VDCs, VDC groups and edge gateways with VCD's paging,
// and the legacy Org VDC query. VCD has no public simulator; this one is
// written from the contracts in shared/reference/apis.md §6 and serves the
// tests and demos (cmd/vcdsim). It is not a VCD: no writes, no filters, no
// XML.
package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/pipeline/vcd"
)

// Fixture is what the simulator serves, in the API's own JSON shapes.
type Fixture struct {
	Orgs         []vcd.Org         `json:"orgs"`
	VDCs         []vcd.VDC         `json:"vdcs"`
	VDCGroups    []vcd.VDCGroup    `json:"vdcGroups"`
	EdgeGateways []vcd.EdgeGateway `json:"edgeGateways"`
	// Tokens maps each API token to the organisation it belongs to;
	// "System" is the provider, who sees everything.
	Tokens map[string]string `json:"tokens"`
}

// LoadFixture reads a fixture from a JSON file.
func LoadFixture(path string) (*Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f Fixture
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", path, err)
	}
	return &f, nil
}

// Options change how the simulator behaves.
type Options struct {
	// NoVDCList answers 404 on GET /cloudapi/1.0.0/vdcs, the Org VDC list
	// path no public source confirms, so that clients use the legacy
	// query API.
	NoVDCList bool
	// LinkHeaders adds a Link rel="nextPage" header to list pages, except
	// on edgeGateways (VCD omits it on some endpoints).
	LinkHeaders bool
}

// Server is the simulator, an http.Handler. Safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	fixture  *Fixture
	sessions map[string]string // access token → org
	down     bool

	logins   atomic.Int64
	requests atomic.Int64
}

// New returns a simulator serving f.
func New(f *Fixture, opts Options) *Server {
	return &Server{opts: opts, fixture: f, sessions: map[string]string{}}
}

// SetFixture replaces what the simulator serves.
func (s *Server) SetFixture(f *Fixture) {
	s.mu.Lock()
	s.fixture = f
	s.mu.Unlock()
}

// SetDown makes every request fail with 503 (true) or work again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// ExpireSessions invalidates every access token: the next request gets 401
// and the client must log in again.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
}

// Logins is the number of successful logins.
func (s *Server) Logins() int64 { return s.logins.Load() }

// Requests is the number of authenticated API requests answered (logins
// excluded).
func (s *Server) Requests() int64 { return s.requests.Load() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		apiError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "the simulator is down")
		return
	}
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/oauth/provider/token":
		s.login(w, r, "System")
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/oauth/tenant/") && strings.HasSuffix(p, "/token"):
		org := strings.TrimSuffix(strings.TrimPrefix(p, "/oauth/tenant/"), "/token")
		if org == "" || strings.Contains(org, "/") || strings.EqualFold(org, "system") {
			apiError(w, http.StatusNotFound, "NOT_FOUND", "no such organization")
			return
		}
		s.login(w, r, org)
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/cloudapi/1.0.0/"):
		s.list(w, r, strings.TrimPrefix(p, "/cloudapi/1.0.0/"))
	case r.Method == http.MethodGet && p == "/api/query":
		s.query(w, r)
	default:
		apiError(w, http.StatusNotFound, "NOT_FOUND", "not simulated: "+r.Method+" "+p)
	}
}

// login implements the API-token grant (VCD 10.3.1+).
func (s *Server) login(w http.ResponseWriter, r *http.Request, org string) {
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "grant_type must be refresh_token")
		return
	}
	token := r.PostForm.Get("refresh_token")
	s.mu.Lock()
	owner, ok := s.fixture.Tokens[token]
	if !ok || token == "" || !strings.EqualFold(owner, org) {
		s.mu.Unlock()
		apiError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid API token")
		return
	}
	var b [16]byte
	rand.Read(b[:])
	access := hex.EncodeToString(b[:])
	s.sessions[access] = owner
	s.mu.Unlock()
	s.logins.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": 2592000, "refresh_token": nil,
	})
}

// session returns the organisation of the request's bearer token.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (org string, ok bool) {
	auth := r.Header.Get("Authorization")
	bearer, found := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	org, ok = s.sessions[bearer]
	s.mu.Unlock()
	if !found || !ok {
		apiError(w, http.StatusUnauthorized, "UNAUTHORIZED", "no valid session")
		return "", false
	}
	if !strings.Contains(r.Header.Get("Accept"), "version=") {
		apiError(w, http.StatusNotAcceptable, "NOT_ACCEPTABLE", "the Accept header must carry version=")
		return "", false
	}
	s.requests.Add(1)
	return org, true
}

// paging reads page and pageSize (default 25, at most 128).
func paging(w http.ResponseWriter, r *http.Request) (page, size int, ok bool) {
	page, size = 1, 25
	var err error
	if v := r.URL.Query().Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "page must be a positive integer")
			return 0, 0, false
		}
	}
	if v := r.URL.Query().Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 128 {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "pageSize must be 1..128")
			return 0, 0, false
		}
	}
	return page, size, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, what string) {
	org, ok := s.session(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("filter") != "" {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "the simulator does not implement filters")
		return
	}
	page, size, ok := paging(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	f := s.fixture
	s.mu.Unlock()
	provider := strings.EqualFold(org, "system")
	orgID := ""
	for _, o := range f.Orgs {
		if strings.EqualFold(o.Name, org) {
			orgID = uuidOf(o.ID)
		}
	}
	mine := func(ref string) bool { return provider || (orgID != "" && uuidOf(ref) == orgID) }
	var items []any
	switch what {
	case "orgs":
		for _, o := range f.Orgs {
			if mine(o.ID) {
				items = append(items, o)
			}
		}
	case "vdcs":
		if s.opts.NoVDCList {
			apiError(w, http.StatusNotFound, "NOT_FOUND", "no such path")
			return
		}
		for _, v := range f.VDCs {
			if mine(v.Org.ID) {
				items = append(items, v)
			}
		}
	case "vdcGroups":
		for _, g := range f.VDCGroups {
			if mine(g.OrgID) {
				items = append(items, g)
			}
		}
	case "edgeGateways":
		for _, g := range f.EdgeGateways {
			if mine(g.OrgRef.ID) {
				items = append(items, g)
			}
		}
	default:
		apiError(w, http.StatusNotFound, "NOT_FOUND", "not simulated: "+what)
		return
	}
	total := len(items)
	count := (total + size - 1) / size
	from := min((page-1)*size, total)
	to := min(from+size, total)
	if s.opts.LinkHeaders && what != "edgeGateways" && page < count {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page+1))
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>;rel=\"nextPage\";type=\"application/json\"", r.URL.Path, q.Encode()))
	}
	values := items[from:to]
	if values == nil {
		values = []any{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"resultTotal": total, "pageCount": count, "page": page, "pageSize": size,
		"associations": []any{}, "values": values,
	})
}

// query implements GET /api/query?type=adminOrgVdc|orgVdc&format=records.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	org, ok := s.session(w, r)
	if !ok {
		return
	}
	provider := strings.EqualFold(org, "system")
	q := r.URL.Query()
	typ := q.Get("type")
	switch {
	case typ == "adminOrgVdc" && !provider:
		apiError(w, http.StatusForbidden, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "adminOrgVdc needs the provider")
		return
	case typ != "adminOrgVdc" && typ != "orgVdc":
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "the simulator answers type=adminOrgVdc and orgVdc only")
		return
	case q.Get("format") != "records":
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "the simulator answers format=records only")
		return
	}
	page, size, ok := paging(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	f := s.fixture
	s.mu.Unlock()
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	type record struct {
		Name    string `json:"name"`
		Href    string `json:"href"`
		Org     string `json:"org,omitempty"`
		OrgName string `json:"orgName"`
	}
	var recs []record
	for _, v := range f.VDCs {
		orgName := v.Org.Name
		if !provider && !strings.EqualFold(orgName, org) {
			continue
		}
		rec := record{Name: v.Name, Href: base + "/api/vdc/" + uuidOf(v.ID), OrgName: orgName}
		if provider {
			rec.Org = base + "/api/org/" + uuidOf(v.Org.ID)
		}
		recs = append(recs, rec)
	}
	from := min((page-1)*size, len(recs))
	to := min(from+size, len(recs))
	w.Header().Set("Content-Type", "application/vnd.vmware.vcloud.query.records+json")
	json.NewEncoder(w).Encode(map[string]any{
		"name": typ, "page": page, "pageSize": size, "total": len(recs), "record": recs[from:to],
	})
}

func uuidOf(ref string) string {
	u, _ := tenants.NormalizeUUID(ref)
	return u
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"minorErrorCode": code, "message": msg, "stackTrace": nil})
}
