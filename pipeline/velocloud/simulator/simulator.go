// Package simulator is a small VeloCloud Orchestrator (VCO) for tests and
// demos: an http.Handler serving the parts of the VCO Portal API (v1) that
// vpipe's VCO source uses, over a generated stream of enterprise events.
//
// It is written from the API documentation in shared/reference/apis.md §4
// (VCO v1 swagger 5.0.0 in OpenNMS/opennms-velocloud-plugin, openapi 3.3.2
// in adeleporte/go-vmware-velocloud, and kurtcms/vco-api-ent-event), not
// from a real VCO, and it is no more faithful than those documents:
//
//   - Transport: POST /portal/rest/<method> with the params object as the
//     body (REST-like), and POST /portal/ with a JSON-RPC 2.0 envelope.
//     Every other method or path is 404; any HTTP method but POST is 405.
//   - Auth: "Authorization: Token <token>" (API tokens, VCO 3.4 and later),
//     or a session cookie "velocloud.session" from
//     login/enterpriseLogin or login/operatorLogin (under /portal/rest, or
//     at /login/... as kurtcms calls them) with {"username","password"}. A
//     failed login answers 302 with a "velocloud.message" cookie and no
//     session, as the swagger describes. logout ends the session.
//     Requests without valid credentials are answered 401 with
//     {"error":{"code":"no_credentials","message":"Authorization Cookie not Received"}};
//     which status a real VCO uses for an expired session is not
//     documented.
//   - event/getEnterpriseEvents: {"enterpriseId", "interval": {"start",
//     "end"}, "filter": {"limit"}} with times as 13-digit ms epoch numbers
//     or RFC 3339 strings (a string without offset is UTC, as kurtcms
//     sends them). The answer is {"metaData": {"limit", "more"}, "data":
//     [...]}: the events whose eventTime is within [start, end] (both
//     ends inclusive: the documents do not say, and inclusive is the case
//     that makes a client deduplicate), sorted by eventTime (newest first
//     unless Config.Ascending), at most limit of them (default 2048, and
//     never more than Config.MaxLimit); more is true when some were left
//     out. The default window is the last 12 hours.
//   - Enterprise listing: enterprise/getEnterprise ({"enterpriseId"} or
//     {"id"}; {} for an enterprise user's own), network/getNetworkEnterprises
//     (operators) and enterpriseProxy/getEnterpriseProxyEnterprises
//     (partner users, who see the enterprises they manage).
//   - Rate limit (optional): beyond Config.RateLimit requests a second, a
//     client gets 429 for Config.Penalty (5 s by default, as the swagger's
//     description says of the real leaky bucket).
//
// Tests and demos add events with Insert or Generate, and inject failures
// (401, 429, 500, malformed JSON, an HTML page, a hang) with Fail.
package simulator

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Enterprise is one simulated VCO enterprise (customer).
type Enterprise struct {
	ID        int64
	Name      string
	LogicalID string // default: derived from ID
	// ProxyID is the partner (enterprise proxy, MSP) that manages the
	// enterprise; 0 for none.
	ProxyID int64
	// Edges are the Edge names events mention; default b1-edge1, b2-edge1.
	Edges []string
}

// User is a simulated VCO user that logs in with a password.
type User struct {
	Username, Password string
	// Role decides the login endpoint and what the user sees:
	// RoleOperator (operatorLogin, every enterprise), RolePartner
	// (enterpriseLogin, the enterprises of ProxyID) or RoleEnterprise
	// (enterpriseLogin, EnterpriseID only).
	Role         string
	EnterpriseID int64 // RoleEnterprise
	ProxyID      int64 // RolePartner
}

// Token is a simulated API token with the same scope rules as User.
type Token struct {
	Token        string
	Role         string
	EnterpriseID int64
	ProxyID      int64
}

// User roles.
const (
	RoleOperator   = "operator"
	RolePartner    = "partner"
	RoleEnterprise = "enterprise"
)

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	// Enterprises served; default three: Acme Corp (1), Globex (2),
	// Initech (3).
	Enterprises []Enterprise
	Users       []User
	Tokens      []Token
	// SessionTTL is how long a login session lasts (default 24h, VCO's
	// default cookie lifetime).
	SessionTTL time.Duration
	// MaxLimit caps filter.limit (default 2048, the documented default
	// limit).
	MaxLimit int
	// Ascending sorts answers oldest first; the default is newest first.
	// The documents say "sorted by eventTime" without a direction.
	Ascending bool
	// RateLimit, when positive, is the requests a second a client may
	// make (a token bucket of RateBurst, default 10); beyond it the client
	// gets 429 for Penalty (default 5s).
	RateLimit float64
	RateBurst int
	Penalty   time.Duration
	// Now is the server's clock (default time.Now).
	Now func() time.Time
}

// Failure kinds for Fail.
const (
	FailUnauthorized = "unauthorized" // 401, and the caller's session is ended
	FailRateLimit    = "rate_limit"   // 429 with Retry-After
	FailServer       = "server"       // 500 with an error body
	FailMalformed    = "malformed"    // 200 with a JSON body cut short
	FailHTML         = "html"         // 200 with an HTML page, as a misconfigured proxy answers
	FailTimeout      = "timeout"      // no answer until the client gives up (or Delay passes)
)

// Failure is an injected failure of the next event/getEnterpriseEvents
// requests.
type Failure struct {
	Kind  string
	Count int // how many requests fail this way (default 1)
	// Delay is how long FailTimeout holds the request (default: until the
	// client goes away).
	Delay time.Duration
}

// Stats counts what the server saw.
type Stats struct {
	Requests      int // every request
	EventRequests int // event/getEnterpriseEvents answered 200 with events
	Logins        int // successful logins
	LoginFailures int
	Unauthorized  int // requests answered 401
	RateLimited   int // requests answered 429
	Injected      int // failures injected by Fail
	Full          int // event answers with more: true
	Served        int // events served, duplicates included
}

// Server is a simulated VCO. It is safe for concurrent use.
type Server struct {
	cfg Config

	mu          sync.Mutex
	enterprises []Enterprise
	store       map[int64]*eventLog
	nextID      int64
	sessions    map[string]session
	failures    []Failure
	buckets     map[string]*bucket
	stats       Stats
}

type session struct {
	user    User
	expires time.Time
}

type principal struct {
	role         string
	enterpriseID int64
	proxyID      int64
	session      string
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if len(cfg.Enterprises) == 0 {
		cfg.Enterprises = []Enterprise{{ID: 1, Name: "Acme Corp"}, {ID: 2, Name: "Globex"}, {ID: 3, Name: "Initech"}}
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 2048
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 10
	}
	if cfg.Penalty <= 0 {
		cfg.Penalty = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:      cfg,
		store:    map[int64]*eventLog{},
		nextID:   1000,
		sessions: map[string]session{},
		buckets:  map[string]*bucket{},
	}
	for _, e := range cfg.Enterprises {
		s.AddEnterprise(e)
	}
	return s
}

// Enterprises returns the simulated enterprises.
func (s *Server) Enterprises() []Enterprise {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Enterprise(nil), s.enterprises...)
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Fail makes the next event/getEnterpriseEvents requests fail as f says.
// Failures queue up in order.
func (s *Server) Fail(f Failure) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	s.failures = append(s.failures, f)
	s.mu.Unlock()
}

// ExpireSessions ends every login session, as a VCO restart or the
// cookie lifetime would.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "only POST is supported")
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	path := r.URL.Path
	switch {
	case path == "/portal/" || path == "/portal":
		s.serveJSONRPC(w, r, body)
	case strings.HasPrefix(path, "/portal/rest/"):
		s.serveMethod(w, r, strings.TrimPrefix(path, "/portal/rest/"), body, false, nil)
	case path == "/login/enterpriseLogin" || path == "/login/operatorLogin":
		s.serveMethod(w, r, strings.TrimPrefix(path, "/"), body, false, nil)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such path "+path)
	}
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20)); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return buf.Bytes(), nil
}

// rpcRequest is a JSON-RPC 2.0 call (kurtcms vco_api_client.py call_api).
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

func (s *Server) serveJSONRPC(w http.ResponseWriter, r *http.Request, body []byte) {
	var req rpcRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Method == "" {
		writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": nil,
			"error": map[string]any{"code": -32600, "message": "Invalid Request"}})
		return
	}
	s.serveMethod(w, r, req.Method, req.Params, true, req.ID)
}

// serveMethod answers one API method, REST-like or (rpc) JSON-RPC.
func (s *Server) serveMethod(w http.ResponseWriter, r *http.Request, method string, params []byte, rpc bool, id json.RawMessage) {
	if len(bytes.TrimSpace(params)) == 0 {
		params = []byte("{}")
	}
	switch method {
	case "login/enterpriseLogin", "login/operatorLogin":
		s.login(w, method == "login/operatorLogin", params)
		return
	}
	p, ok := s.authenticate(r)
	if !ok {
		s.count(func(st *Stats) { st.Unauthorized++ })
		writeError(w, http.StatusUnauthorized, "no_credentials", "Authorization Cookie not Received")
		return
	}
	if !s.allow(p) {
		s.count(func(st *Stats) { st.RateLimited++ })
		return429(w, s.cfg.Penalty)
		return
	}
	var result any
	var status int
	var err error
	switch method {
	case "logout":
		if p.session != "" {
			s.mu.Lock()
			delete(s.sessions, p.session)
			s.mu.Unlock()
		}
		result, status = map[string]any{}, http.StatusOK
	case "event/getEnterpriseEvents":
		if !s.injected(w, r, p) {
			return
		}
		var raw []byte
		raw, status, err = s.events(p, params)
		if err == nil {
			result = json.RawMessage(raw)
		}
	case "enterprise/getEnterprise":
		result, status, err = s.getEnterprise(p, params)
	case "network/getNetworkEnterprises":
		result, status, err = s.listEnterprises(p, RoleOperator)
	case "enterpriseProxy/getEnterpriseProxyEnterprises":
		result, status, err = s.listEnterprises(p, RolePartner)
	default:
		status, err = http.StatusNotFound, fmt.Errorf("unknown method %s", method)
	}
	if err != nil {
		code := "invalid_request"
		if status == http.StatusForbidden {
			code = "forbidden"
		}
		if rpc {
			writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": id,
				"error": map[string]any{"code": -32603, "message": err.Error()}})
			return
		}
		writeError(w, status, code, err.Error())
		return
	}
	if rpc {
		writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
		return
	}
	writeJSON(w, status, result)
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// login answers login/enterpriseLogin and login/operatorLogin.
func (s *Server) login(w http.ResponseWriter, operator bool, params []byte) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	_ = json.Unmarshal(params, &req)
	s.mu.Lock()
	var found *User
	for i := range s.cfg.Users {
		u := &s.cfg.Users[i]
		if u.Username == req.Username && u.Password == req.Password && (u.Role == RoleOperator) == operator {
			found = u
			break
		}
	}
	if found == nil {
		s.stats.LoginFailures++
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "velocloud.message", Value: "Invalid%20username%20or%20password", Path: "/"})
		w.Header().Set("Location", "/")
		w.WriteHeader(http.StatusFound)
		return
	}
	var b [16]byte
	rand.Read(b[:])
	sid := hex.EncodeToString(b[:])
	s.sessions[sid] = session{user: *found, expires: s.cfg.Now().Add(s.cfg.SessionTTL)}
	s.stats.Logins++
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "velocloud.session", Value: sid, Path: "/", HttpOnly: true, MaxAge: int(s.cfg.SessionTTL / time.Second)})
	writeJSON(w, http.StatusOK, map[string]any{})
}

// authenticate finds the caller from its token or session cookie.
func (s *Server) authenticate(r *http.Request) (principal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Token ")
		if !ok {
			return principal{}, false
		}
		for _, t := range s.cfg.Tokens {
			if t.Token == tok {
				return principal{role: t.Role, enterpriseID: t.EnterpriseID, proxyID: t.ProxyID}, true
			}
		}
		return principal{}, false
	}
	c, err := r.Cookie("velocloud.session")
	if err != nil {
		return principal{}, false
	}
	sess, ok := s.sessions[c.Value]
	if !ok {
		return principal{}, false
	}
	if s.cfg.Now().After(sess.expires) {
		delete(s.sessions, c.Value)
		return principal{}, false
	}
	u := sess.user
	return principal{role: u.Role, enterpriseID: u.EnterpriseID, proxyID: u.ProxyID, session: c.Value}, true
}

// injected applies the next queued failure, if any; it reports whether
// the request should go on.
func (s *Server) injected(w http.ResponseWriter, r *http.Request, p principal) bool {
	s.mu.Lock()
	if len(s.failures) == 0 {
		s.mu.Unlock()
		return true
	}
	f := s.failures[0]
	if f.Count--; f.Count == 0 {
		s.failures = s.failures[1:]
	} else {
		s.failures[0] = f
	}
	s.stats.Injected++
	if f.Kind == FailUnauthorized {
		s.stats.Unauthorized++
		if p.session != "" {
			delete(s.sessions, p.session)
		}
	}
	if f.Kind == FailRateLimit {
		s.stats.RateLimited++
	}
	s.mu.Unlock()
	switch f.Kind {
	case FailUnauthorized:
		writeError(w, http.StatusUnauthorized, "no_credentials", "Authorization Cookie not Received")
	case FailRateLimit:
		return429(w, s.cfg.Penalty)
	case FailServer:
		writeError(w, http.StatusInternalServerError, "internal_error", "simulated server error")
	case FailMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"metaData": {"limit": 2048, "more": false}, "data": [{"id": 1, "eventTime": "2021-`))
	case FailHTML:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("<html><body>Please log in to the proxy</body></html>"))
	case FailTimeout:
		var after <-chan time.Time
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			after = t.C
		}
		select {
		case <-r.Context().Done():
		case <-after:
		}
		writeError(w, http.StatusGatewayTimeout, "timeout", "simulated timeout")
	default:
		return true
	}
	return false
}

func return429(w http.ResponseWriter, penalty time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((penalty+time.Second-1)/time.Second)))
	writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit exceeded")
}

// visible returns the enterprises p may see.
func (s *Server) visible(p principal) []Enterprise {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Enterprise
	for _, e := range s.enterprises {
		switch {
		case p.role == RoleOperator,
			p.role == RolePartner && e.ProxyID == p.proxyID,
			p.role == RoleEnterprise && e.ID == p.enterpriseID:
			out = append(out, e)
		}
	}
	return out
}

// enterpriseFor resolves the enterpriseId parameter: required for
// operators and partners, inferred for enterprise users (swagger).
func (s *Server) enterpriseFor(p principal, id int64) (Enterprise, int, error) {
	if id == 0 {
		if p.role != RoleEnterprise {
			return Enterprise{}, http.StatusBadRequest, errors.New("enterpriseId is required for operator and partner users")
		}
		id = p.enterpriseID
	}
	for _, e := range s.visible(p) {
		if e.ID == id {
			return e, http.StatusOK, nil
		}
	}
	return Enterprise{}, http.StatusForbidden, errors.New("Insufficient Permissions")
}

func (s *Server) getEnterprise(p principal, params []byte) (any, int, error) {
	var req struct {
		EnterpriseID int64 `json:"enterpriseId"`
		ID           int64 `json:"id"`
	}
	if err := json.Unmarshal(params, &req); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("invalid params: %v", err)
	}
	if req.EnterpriseID == 0 {
		req.EnterpriseID = req.ID
	}
	e, status, err := s.enterpriseFor(p, req.EnterpriseID)
	if err != nil {
		return nil, status, err
	}
	return enterpriseJSON(e), http.StatusOK, nil
}

func (s *Server) listEnterprises(p principal, role string) (any, int, error) {
	if p.role != role {
		return nil, http.StatusForbidden, errors.New("Insufficient Permissions")
	}
	out := []map[string]any{}
	for _, e := range s.visible(p) {
		out = append(out, enterpriseJSON(e))
	}
	return out, http.StatusOK, nil
}

// enterpriseJSON is the swagger's enterprise object, in part.
func enterpriseJSON(e Enterprise) map[string]any {
	m := map[string]any{
		"id": e.ID, "created": "2020-02-25T14:13:13.000Z", "networkId": 1, "gatewayPoolId": 1,
		"name": e.Name, "domain": "", "prefix": nil, "logicalId": e.LogicalID,
		"accountNumber": fmt.Sprintf("ACC-%06d", e.ID), "description": nil,
		"timezone": "UTC", "locale": "en-US", "modified": "2024-11-21T14:32:30.000Z",
	}
	if e.ProxyID != 0 {
		m["enterpriseProxyId"] = e.ProxyID
	}
	return m
}

// events answers event/getEnterpriseEvents with the stored JSON of the
// matching events.
func (s *Server) events(p principal, params []byte) ([]byte, int, error) {
	var req struct {
		EnterpriseID int64 `json:"enterpriseId"`
		Interval     struct {
			Start json.RawMessage `json:"start"`
			End   json.RawMessage `json:"end"`
		} `json:"interval"`
		Filter struct {
			Limit int `json:"limit"`
		} `json:"filter"`
	}
	if err := json.Unmarshal(params, &req); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("invalid params: %v", err)
	}
	ent, status, err := s.enterpriseFor(p, req.EnterpriseID)
	if err != nil {
		return nil, status, err
	}
	now := s.cfg.Now()
	start, end := now.Add(-12*time.Hour), now
	if len(req.Interval.Start) > 0 {
		if start, err = parseTime(req.Interval.Start); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("interval.start: %v", err)
		}
	}
	if len(req.Interval.End) > 0 {
		if end, err = parseTime(req.Interval.End); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("interval.end: %v", err)
		}
	}
	limit := req.Filter.Limit
	if limit <= 0 {
		limit = 2048
	}
	limit = min(limit, s.cfg.MaxLimit)

	s.mu.Lock()
	log := s.store[ent.ID]
	items, more := log.query(start, end, limit, s.cfg.Ascending)
	buf := make([]byte, 0, 64+len(items)*400)
	buf = fmt.Appendf(buf, `{"metaData":{"limit":%d,"more":%t},"data":[`, limit, more)
	for i, it := range items {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it.json...)
	}
	buf = append(buf, "]}"...)
	s.stats.EventRequests++
	s.stats.Served += len(items)
	if more {
		s.stats.Full++
	}
	s.mu.Unlock()
	return buf, http.StatusOK, nil
}

// parseTime reads a VCO datetime: a 13-digit ms epoch number, or an RFC
// 3339 string (without offset: UTC).
func parseTime(raw json.RawMessage) (time.Time, error) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return time.Time{}, err
	}
	switch x := v.(type) {
	case json.Number:
		n = x
		ms, err := n.Int64()
		if err != nil {
			return time.Time{}, fmt.Errorf("want milliseconds since the epoch, got %s", n)
		}
		return time.UnixMilli(ms).UTC(), nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", x)
	}
	return time.Time{}, fmt.Errorf("want a number or a string, got %s", raw)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if raw, ok := v.(json.RawMessage); ok {
		w.Write(raw)
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError writes the swagger's error body {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// bucket is one client's token bucket for the optional rate limit.
type bucket struct {
	tokens  float64
	last    time.Time
	blocked time.Time // 429 until then
}

// allow applies the rate limit to p (clients are told apart by session or
// token scope).
func (s *Server) allow(p principal) bool {
	if s.cfg.RateLimit <= 0 {
		return true
	}
	key := p.session
	if key == "" {
		key = fmt.Sprintf("%s/%d/%d", p.role, p.enterpriseID, p.proxyID)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(s.cfg.RateBurst), last: now}
		s.buckets[key] = b
	}
	if now.Before(b.blocked) {
		return false
	}
	b.tokens = min(float64(s.cfg.RateBurst), b.tokens+now.Sub(b.last).Seconds()*s.cfg.RateLimit)
	b.last = now
	if b.tokens < 1 {
		b.blocked = now.Add(s.cfg.Penalty)
		return false
	}
	b.tokens--
	return true
}

// ClearFailures drops the failures Fail queued that have not happened.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	s.failures = nil
	s.mu.Unlock()
}
