// Package simulator is an in-memory NSX for tests and demos: it serves the
// NSX-T / NSX 4.x endpoints vpipe uses to tag VMs (Manager API fabric VMs
// with add_tags / remove_tags / update_tags, Policy API realized-state VMs,
// tags, search and groups with tag-based membership), the NSX-V security
// tag XML API and security group membership, NSX session auth
// (JSESSIONID + X-XSRF-TOKEN), basic auth, VMware Cloud on AWS' CSP token
// exchange and SDDC lookup with its NSX reverse proxy, and an optional
// per-client rate limit answering 429.
//
// It follows the API contracts in shared/reference/apis.md §1–2 (NSX-T
// REST API reference, vsphere-automation-sdk-go metadata, nsxraml for
// NSX-V). Error bodies have NSX's ApiError shape (NSX-V: <error>); the
// codes are those public sources show (98 bad credentials, 102 rate limit,
// 210 NSX-V duplicate tag, 600 object not found); other codes and the
// message texts are approximations. Like the real list API,
// GET /policy/api/v1/infra/realized-state/virtual-machines honours a
// cursor but does not return one (terraform-provider-nsxt's note).
//
// A Server is an http.Handler: serve it with net/http or httptest. Its
// methods are safe for concurrent use.
package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Tag is an NSX tag.
type Tag struct {
	Scope string `json:"scope"`
	Tag   string `json:"tag"`
}

// VM is a virtual machine in the simulator's inventory.
type VM struct {
	ExternalID  string // the vCenter instance UUID
	DisplayName string
	MoRef       string // vCenter managed object id, e.g. "vm-42" (NSX-V accepts it as vmId)
	BiosUUID    string
	Tags        []Tag // NSX-T tags
	// SecurityTags are the names of the NSX-V security tags attached.
	SecurityTags []string
}

// Options configures a Server. Zero values take the defaults named.
type Options struct {
	// Users maps user names to passwords for basic and session auth.
	// Default {"admin": "VMware1!VMware1!"}.
	Users map[string]string
	// RefreshTokens are the CSP API tokens the token exchange accepts
	// (VMC). Default none.
	RefreshTokens []string
	// TokenTTL is the access tokens' lifetime (expires_in). Default 30m.
	TokenTTL time.Duration
	// SessionIdle ends sessions idle this long (401 afterwards). Default
	// 0: never.
	SessionIdle time.Duration
	// RateLimit is the requests per second one client (user, session or
	// token) may make; more answer 429 with Retry-After: 1, as NSX's
	// client_api_rate_limit does (default there 100). 0: no limit.
	RateLimit int
	// OrgID and SDDCID are the VMC ids served by
	// GET /vmc/api/orgs/{org}/sddcs/{sddc}. Defaults "org-1", "sddc-1".
	OrgID, SDDCID string
	// Log receives a line per request at debug level; nil discards.
	Log *slog.Logger
}

// Server is the simulated NSX.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux

	mu        sync.Mutex
	vms       map[string]*VM // by external id
	order     []string       // external ids in insertion order
	groups    map[string]*group
	sectags   map[string]*secTag        // by objectId
	secgroups map[string]*SecurityGroup // NSX-V security groups by objectId
	tagSeq    int
	sessions  map[string]*session // by JSESSIONID
	tokens    map[string]time.Time
	faults    []fault
	window    map[string]*rateWindow
	stats     Stats
}

type group struct {
	Domain      string          `json:"-"`
	ID          string          `json:"id"`
	DisplayName string          `json:"display_name,omitempty"`
	Expression  []condition     `json:"expression,omitempty"`
	Extra       json.RawMessage `json:"-"`
}

type condition struct {
	ResourceType        string `json:"resource_type"`
	MemberType          string `json:"member_type,omitempty"`
	Key                 string `json:"key,omitempty"`
	Operator            string `json:"operator,omitempty"`
	ScopeOperator       string `json:"scope_operator,omitempty"`
	Value               string `json:"value,omitempty"`
	ConjunctionOperator string `json:"conjunction_operator,omitempty"`
}

type secTag struct {
	ID          string
	Name        string
	Description string
	Universal   bool
}

type session struct {
	user, xsrf string
	last       time.Time
}

type fault struct {
	status     int
	retryAfter time.Duration
}

type rateWindow struct {
	second int64
	n      int
}

// Stats counts what the server did.
type Stats struct {
	Requests  int // API requests handled (auth endpoints included)
	Throttled int // answered 429 by the rate limit
	Faults    int // answered with an injected fault
	Logins    int // sessions created and tokens issued
	TagWrites int // successful tag changes (any API)
}

// New returns an empty simulator.
func New(opts Options) *Server {
	if opts.Users == nil {
		opts.Users = map[string]string{"admin": "VMware1!VMware1!"}
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 30 * time.Minute
	}
	if opts.OrgID == "" {
		opts.OrgID = "org-1"
	}
	if opts.SDDCID == "" {
		opts.SDDCID = "sddc-1"
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:     opts,
		log:      log.With("component", "nsxsim"),
		vms:      map[string]*VM{},
		groups:   map[string]*group{},
		sectags:  map[string]*secTag{},
		sessions: map[string]*session{},
		tokens:   map[string]time.Time{},
		window:   map[string]*rateWindow{},
	}
	s.routes()
	return s
}

// ProxyPath is the path prefix under which the simulator serves the NSX API
// as VMC's reverse proxy does; GET /vmc/api/orgs/{org}/sddcs/{sddc}
// answers with base URL + ProxyPath(org, sddc).
func ProxyPath(org, sddc string) string {
	return "/vmc/reverse-proxy/api/orgs/" + org + "/sddcs/" + sddc + "/sks-nsxt-manager"
}

// AddVM adds vm to the inventory, or replaces the VM with its ExternalID.
func (s *Server) AddVM(vm VM) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := vm
	v.Tags = slices.Clone(vm.Tags)
	v.SecurityTags = slices.Clone(vm.SecurityTags)
	if _, ok := s.vms[v.ExternalID]; !ok {
		s.order = append(s.order, v.ExternalID)
	}
	s.vms[v.ExternalID] = &v
	for _, name := range v.SecurityTags {
		s.secTagByNameLocked(name, true)
	}
}

// VM returns a copy of the VM with external id id.
func (s *Server) VM(id string) (VM, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[id]
	if !ok {
		return VM{}, false
	}
	c := *v
	c.Tags = slices.Clone(v.Tags)
	c.SecurityTags = slices.Clone(v.SecurityTags)
	return c, true
}

// VMs returns copies of every VM, in the order they were added.
func (s *Server) VMs() []VM {
	s.mu.Lock()
	ids := slices.Clone(s.order)
	s.mu.Unlock()
	out := make([]VM, 0, len(ids))
	for _, id := range ids {
		if v, ok := s.VM(id); ok {
			out = append(out, v)
		}
	}
	return out
}

// SetTags replaces the NSX-T tags of a VM behind the API's back (as a
// person in the NSX UI would).
func (s *Server) SetTags(id string, tags []Tag) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[id]
	if ok {
		v.Tags = slices.Clone(tags)
	}
	return ok
}

// RenameVM changes a VM's display name.
func (s *Server) RenameVM(id, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[id]
	if ok {
		v.DisplayName = name
	}
	return ok
}

// RemoveVM removes a VM from the inventory.
func (s *Server) RemoveVM(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.vms, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
}

// FailNext makes the next n API requests (not auth endpoints) answer
// status with NSX's error body, and a Retry-After header when retryAfter
// is positive (whole seconds).
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, retryAfter: retryAfter})
	}
}

// SetRateLimit changes Options.RateLimit.
func (s *Server) SetRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RateLimit = perSecond
}

// ExpireSessions ends every session and access token, as a manager restart
// or a timeout does; clients must log in again.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
	clear(s.tokens)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.log.Debug("request", "method", r.Method, "url", r.URL.String())
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()
	if p := ProxyPath(s.opts.OrgID, s.opts.SDDCID); strings.HasPrefix(r.URL.Path, p+"/") {
		// VMC's reverse proxy takes CSP access tokens only.
		if !s.tokenOK(r) {
			writeAPIError(w, http.StatusUnauthorized, 98, "The credentials were incorrect or the account specified has been locked.")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, p)
		r2.URL.RawPath = ""
		r2.Header.Set("X-Vpipe-Sim-Principal", "csp")
		s.mux.ServeHTTP(w, r2)
		return
	}
	r.Header.Del("X-Vpipe-Sim-Principal")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/session/create", s.sessionCreate)
	m.HandleFunc("POST /api/session/destroy", s.api(s.sessionDestroy))
	m.HandleFunc("POST /csp/gateway/am/api/auth/api-tokens/authorize", s.cspAuthorize)
	m.HandleFunc("GET /vmc/api/orgs/{org}/sddcs/{sddc}", s.vmcSDDC)

	m.HandleFunc("GET /api/v1/fabric/virtual-machines", s.api(s.managerList))
	m.HandleFunc("POST /api/v1/fabric/virtual-machines", s.api(s.managerAction))
	m.HandleFunc("GET /policy/api/v1/infra/realized-state/virtual-machines", s.api(s.policyList))
	m.HandleFunc("POST /policy/api/v1/infra/realized-state/virtual-machines/{id}/tags", s.api(s.policyTags))
	m.HandleFunc("GET /policy/api/v1/infra/realized-state/enforcement-points/{ep}/virtual-machines", s.api(s.epList))
	m.HandleFunc("POST /policy/api/v1/infra/realized-state/enforcement-points/{ep}/virtual-machines", s.api(s.epAction))
	m.HandleFunc("GET /policy/api/v1/search/query", s.api(s.search))
	m.HandleFunc("PUT /policy/api/v1/infra/domains/{domain}/groups/{group}", s.api(s.groupPut))
	m.HandleFunc("PATCH /policy/api/v1/infra/domains/{domain}/groups/{group}", s.api(s.groupPut))
	m.HandleFunc("GET /policy/api/v1/infra/domains/{domain}/groups/{group}", s.api(s.groupGet))
	m.HandleFunc("GET /policy/api/v1/infra/domains/{domain}/groups/{group}/members/virtual-machines", s.api(s.groupMembers))

	m.HandleFunc("GET /api/2.0/services/securitytags/tag", s.nsxv(s.vList))
	m.HandleFunc("POST /api/2.0/services/securitytags/tag", s.nsxv(s.vCreate))
	m.HandleFunc("DELETE /api/2.0/services/securitytags/tag/{tag}", s.nsxv(s.vDelete))
	m.HandleFunc("GET /api/2.0/services/securitytags/tag/{tag}/vm", s.nsxv(s.vTagVMs))
	m.HandleFunc("GET /api/2.0/services/securitytags/tag/{tag}/vmDetail", s.nsxv(s.vTagVMDetail))
	m.HandleFunc("PUT /api/2.0/services/securitytags/tag/{tag}/vm/{vm}", s.nsxv(s.vAttach))
	m.HandleFunc("DELETE /api/2.0/services/securitytags/tag/{tag}/vm/{vm}", s.nsxv(s.vDetach))
	m.HandleFunc("GET /api/2.0/services/securitytags/vm/{vm}", s.nsxv(s.vVMTags))
	m.HandleFunc("GET /api/2.0/services/securitygroup/{id}/translation/virtualmachines", s.nsxv(s.vSecurityGroupVMs))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, 600, fmt.Sprintf("The requested URI : %s could not be found.", r.URL.Path))
	})
	s.mux = m
}

// api wraps an NSX-T handler with auth, the rate limit and injected faults.
func (s *Server) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		principal, status := s.authenticate(r)
		if status != 0 {
			if status == http.StatusUnauthorized {
				writeAPIError(w, status, 98, "The session has expired or is not valid. Log in again.")
			} else {
				writeAPIError(w, status, 98, "The credentials were incorrect or the account specified has been locked.")
			}
			return
		}
		if f, ok := s.gate(principal); !ok {
			if f.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
				writeAPIError(w, f.status, 102, fmt.Sprintf("Client '%s' exceeded request rate of %d per second.", principal, s.rateLimit()))
				return
			}
			if f.retryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(int(f.retryAfter.Seconds())))
			}
			writeFault(w, f.status)
			return
		}
		h(w, r)
	}
}

// nsxv wraps an NSX-V handler: basic auth only, XML errors.
func (s *Server) nsxv(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || s.opts.Users[user] != pass || pass == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="NSX Manager"`)
			writeXMLError(w, http.StatusForbidden, 1, "The credentials were incorrect or the account specified has been locked.")
			return
		}
		if f, ok := s.gate(user); !ok {
			if f.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			} else if f.retryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(int(f.retryAfter.Seconds())))
			}
			writeXMLError(w, f.status, f.status, http.StatusText(f.status))
			return
		}
		h(w, r)
	}
}

func (s *Server) rateLimit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.RateLimit
}

// gate applies an injected fault or the rate limit; ok false says what to
// answer instead.
func (s *Server) gate(principal string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		s.stats.Faults++
		return f, false
	}
	if s.opts.RateLimit > 0 {
		now := time.Now().Unix()
		rw := s.window[principal]
		if rw == nil {
			rw = &rateWindow{}
			s.window[principal] = rw
		}
		if rw.second != now {
			rw.second, rw.n = now, 0
		}
		rw.n++
		if rw.n > s.opts.RateLimit {
			s.stats.Throttled++
			return fault{status: http.StatusTooManyRequests}, false
		}
	}
	return fault{}, true
}

// authenticate returns the client's principal, or the status to refuse it
// with: a valid CSP token (via the proxy), a session cookie with its XSRF
// token, or basic credentials.
func (s *Server) authenticate(r *http.Request) (string, int) {
	if r.Header.Get("X-Vpipe-Sim-Principal") == "csp" {
		return "csp", 0
	}
	if ck, err := r.Cookie("JSESSIONID"); err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		ss, ok := s.sessions[ck.Value]
		if !ok || s.opts.SessionIdle > 0 && time.Since(ss.last) > s.opts.SessionIdle {
			delete(s.sessions, ck.Value)
			return "", http.StatusUnauthorized
		}
		if r.Header.Get("X-XSRF-TOKEN") != ss.xsrf {
			return "", http.StatusForbidden
		}
		ss.last = time.Now()
		return ss.user, 0
	}
	if user, pass, ok := r.BasicAuth(); ok {
		if p, known := s.opts.Users[user]; known && p == pass {
			return user, 0
		}
		return "", http.StatusForbidden
	}
	if s.tokenOK(r) {
		return "csp", 0
	}
	return "", http.StatusForbidden
}

func (s *Server) tokenOK(r *http.Request) bool {
	tok := r.Header.Get("csp-auth-token")
	if tok == "" {
		tok, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

func (s *Server) sessionCreate(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeAPIError(w, http.StatusBadRequest, 255, "Malformed form body.")
		return
	}
	user, pass := r.PostForm.Get("j_username"), r.PostForm.Get("j_password")
	if p, ok := s.opts.Users[user]; !ok || p != pass || pass == "" {
		writeAPIError(w, http.StatusForbidden, 98, "The credentials were incorrect or the account specified has been locked.")
		return
	}
	id, xsrf := randomID(), randomUUID()
	s.mu.Lock()
	s.sessions[id] = &session{user: user, xsrf: xsrf, last: time.Now()}
	s.stats.Logins++
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil})
	w.Header().Set("x-xsrf-token", xsrf)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) sessionDestroy(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie("JSESSIONID"); err == nil {
		s.mu.Lock()
		delete(s.sessions, ck.Value)
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) cspAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeCSPError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	rt := r.PostForm.Get("refresh_token")
	if rt == "" || !slices.Contains(s.opts.RefreshTokens, rt) {
		writeCSPError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	tok := randomID()
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	s.stats.Logins++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id_token": "", "token_type": "bearer", "expires_in": int(s.opts.TokenTTL.Seconds()),
		"scope": "ALL_PERMISSIONS", "access_token": tok, "refresh_token": rt,
	})
}

func (s *Server) vmcSDDC(w http.ResponseWriter, r *http.Request) {
	if !s.tokenOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error_code": "unauthorized", "error_messages": []string{"Authentication required"}})
		return
	}
	org, sddc := r.PathValue("org"), r.PathValue("sddc")
	if org != s.opts.OrgID || sddc != s.opts.SDDCID {
		writeJSON(w, http.StatusNotFound, map[string]any{"error_code": "not_found", "error_messages": []string{"SDDC " + sddc + " not found"}})
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": sddc, "org_id": org, "name": "vpipe-sim",
		"resource_config": map[string]any{
			"nsx_api_public_endpoint_url": scheme + "://" + r.Host + ProxyPath(org, sddc),
		},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeAPIError writes NSX's ApiError body.
func writeAPIError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"httpStatus":    strings.ReplaceAll(strings.ToUpper(http.StatusText(status)), " ", "_"),
		"error_code":    code,
		"module_name":   "common-services",
		"error_message": msg,
	})
}

// writeFault writes an injected failure as NSX words it.
func writeFault(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusServiceUnavailable:
		writeAPIError(w, status, 503, "Some appliance components are not functioning properly.")
	case http.StatusTooManyRequests:
		writeAPIError(w, status, 102, "Client exceeded request rate.")
	default:
		writeAPIError(w, status, status, http.StatusText(status))
	}
}

func writeCSPError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "error": code, "message": "invalid refresh token"})
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
