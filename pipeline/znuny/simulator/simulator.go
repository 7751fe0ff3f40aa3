// Package simulator is a small OTRS / Znuny help desk for tests and demos:
// it serves the GenericTicketConnectorREST operations vpipe uses
// (SessionCreate, TicketGet with dynamic fields, TicketSearch) from an
// in-memory set of tickets, with Znuny's answer shapes (errors as HTTP 200
// with an "Error" member; dynamic fields as an array sorted by name), and it
// plays the web service's invoker: locking, unlocking or closing a ticket
// through its test API posts the webhook a Znuny invoker bound to
// TicketLockUpdate would post. Contract: shared/reference/apis.md §5.
//
// Routes (GenericInterface under BasePath, test API under /simulator/):
//
//	POST {base}/Session                          {"UserLogin","Password"} → {"SessionID"}
//	GET  {base}/Ticket/{id[,id...]}              TicketGet; DynamicFields=1 adds DynamicField
//	GET  {base}/Ticket                           TicketSearch: TicketNumber, Locks, StateType, Queues, Limit
//	GET  /simulator/tickets                      every ticket, as TicketGet writes it
//	POST /simulator/tickets                      create: {"Title","Queue","State","StateType","Owner","DynamicFields":{name: value}}
//	POST /simulator/tickets/{id}/lock            {"Owner": "agent"} (optional) → {"Invocations":[...]}
//	POST /simulator/tickets/{id}/unlock
//	POST /simulator/tickets/{id}/state           {"State": "closed successful", "StateType": "closed"}
//	PUT  /simulator/tickets/{id}/dynamic-fields/{name}  {"Value": ...}
//
// GenericInterface requests authenticate with SessionID, or UserLogin and
// Password as parameters (query or JSON body), or HTTP Basic.
package simulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultWebservice is the web service name Znuny ships
// (development/webservices/GenericTicketConnectorREST.yml).
const DefaultWebservice = "GenericTicketConnectorREST"

// Events the invoker can fire (Znuny ticket events).
const (
	EventLockUpdate  = "TicketLockUpdate"
	EventStateUpdate = "TicketStateUpdate"
	// EventDynamicFieldUpdate is followed by the field's name:
	// TicketDynamicFieldUpdate_<Name>.
	EventDynamicFieldUpdate = "TicketDynamicFieldUpdate_"
)

// Payload shapes the invoker can post (Invoker.Shape).
const (
	// ShapeGeneric is Znuny's Ticket::Generic invoker
	// (Kernel/GenericInterface/Invoker/Ticket/Generic.pm):
	// {"Ticket": {ticket fields, DynamicField_<Name> keys}, "Event": {"TicketID": "7"}}.
	ShapeGeneric = "generic"
	// ShapePlain is {"TicketID": 7}.
	ShapePlain = "plain"
	// ShapeOTNSX is what OTNSX's otnsx-activate-middleware.sh posts:
	// {"TicketNR": 2024..., "TicketID": 7}.
	ShapeOTNSX = "otnsx"
	// ShapeTest is OTRS's Test::Test invoker: {"TicketNumber": "2024..."}.
	ShapeTest = "test"
)

// DefaultSignatureHeader carries the HMAC-SHA256 of the body,
// "sha256=<hex>", when Invoker.HMACSecret is set.
const DefaultSignatureHeader = "X-Vpipe-Signature"

// Options configure a Server.
type Options struct {
	// Webservice is the web service name in BasePath. Default
	// GenericTicketConnectorREST.
	Webservice string
	// Users are the agents that may log in: login → password. Default
	// {"vpipe": "vpipe"}.
	Users map[string]string
	// SessionIdleTime ends a session unused for this long (Znuny's
	// SessionMaxIdleTime, default 2h).
	SessionIdleTime time.Duration
	// Invoker, when its URL is set, is called on ticket events.
	Invoker Invoker
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Invoker configures the outbound webhook, as a web service's Requester
// with an invoker bound to ticket events would.
type Invoker struct {
	URL   string // e.g. http://127.0.0.1:8080/v1/webhooks/ticket
	Shape string // generic (default), plain, otnsx, test
	// Events that fire it. Default TicketLockUpdate, TicketStateUpdate and
	// TicketDynamicFieldUpdate_<any field>.
	Events []string
	// BasicAuthUser and BasicAuthPassword, if set, are sent as HTTP Basic
	// authentication: the only authentication Znuny's HTTP::REST
	// requester offers (Authentication AuthType BasicAuth).
	BasicAuthUser, BasicAuthPassword string
	// BearerToken, if set, is sent as "Authorization: Bearer <token>", as a
	// script or a proxy in front of the help desk would.
	BearerToken string
	// HMACSecret, if set, signs the body: SignatureHeader: sha256=<hex>.
	HMACSecret      []byte
	SignatureHeader string
	// Client sends the requests; default a client with a 10s timeout.
	Client *http.Client
}

// Invocation is one webhook the invoker posted, with vpipe's answer.
type Invocation struct {
	Event    string
	TicketID string
	Body     string
	Status   int    // the HTTP status; 0 when the request failed
	Answer   string // the answer body
	Error    string // why the request failed
}

// Server is the simulated help desk; an http.Handler. Safe for concurrent
// use.
type Server struct {
	opts Options
	base string

	mu          sync.Mutex
	tickets     map[int64]*ticket
	nextID      int64
	sessions    map[string]*session
	failNext    []int // statuses to answer the next GenericInterface requests with
	invocations []Invocation
	requests    map[string]int // GenericInterface requests by operation
}

type ticket struct {
	ID            int64
	Number        string
	Title         string
	Queue         string
	State         string
	StateType     string
	Lock          string
	Owner         string
	Restricted    bool
	Created       time.Time
	Changed       time.Time
	UnlockTimeout int64
	Fields        map[string]any
}

type session struct {
	user string
	last time.Time
}

// New returns a Server with no tickets.
func New(opts Options) *Server {
	if opts.Webservice == "" {
		opts.Webservice = DefaultWebservice
	}
	if opts.Users == nil {
		opts.Users = map[string]string{"vpipe": "vpipe"}
	}
	if opts.SessionIdleTime == 0 {
		opts.SessionIdleTime = 2 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	iv := &opts.Invoker
	if iv.Shape == "" {
		iv.Shape = ShapeGeneric
	}
	if iv.Events == nil {
		iv.Events = []string{EventLockUpdate, EventStateUpdate, EventDynamicFieldUpdate}
	}
	if iv.SignatureHeader == "" {
		iv.SignatureHeader = DefaultSignatureHeader
	}
	if iv.Client == nil {
		iv.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Server{
		opts:     opts,
		base:     "/otrs/nph-genericinterface.pl/Webservice/" + opts.Webservice,
		tickets:  map[int64]*ticket{},
		nextID:   1,
		sessions: map[string]*session{},
		requests: map[string]int{},
	}
}

// BasePath is the web service's path: append it to the server's address
// to get the URL a client is configured with.
func (s *Server) BasePath() string { return s.base }

// NewTicket describes a ticket to create.
type NewTicket struct {
	Title     string
	Queue     string // default "Raw"
	State     string // default "open"
	StateType string // default "open"
	Owner     string // default "root@localhost"
	// Restricted tickets are answered TicketGet.AccessDenied, as Znuny
	// answers for a queue the agent may not read.
	Restricted bool
	// DynamicFields are the ticket's dynamic field values: a string, a
	// []string (multiselect) or nil.
	DynamicFields map[string]any
}

// CreateTicket adds an unlocked ticket and returns its TicketID and
// TicketNumber. It fires no event.
func (s *Server) CreateTicket(nt NewTicket) (id, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	t := &ticket{
		ID: s.nextID, Title: nt.Title, Queue: nt.Queue, State: nt.State, StateType: nt.StateType,
		Lock: "unlock", Owner: nt.Owner, Restricted: nt.Restricted, Created: now, Changed: now,
		Fields: map[string]any{},
	}
	s.nextID++
	t.Number = fmt.Sprintf("%s%06d", now.UTC().Format("20060102"), 100000+t.ID)
	if t.Queue == "" {
		t.Queue = "Raw"
	}
	if t.State == "" {
		t.State = "open"
	}
	if t.StateType == "" {
		t.StateType = "open"
	}
	if t.Owner == "" {
		t.Owner = "root@localhost"
	}
	for k, v := range nt.DynamicFields {
		t.Fields[k] = v
	}
	s.tickets[t.ID] = t
	return strconv.FormatInt(t.ID, 10), t.Number
}

// Lock locks the ticket for owner (empty: the current owner), as an agent
// clicking "Lock" does (TicketLockSet sets UnlockTimeout to now), and fires
// TicketLockUpdate. It returns the invocations the event caused.
func (s *Server) Lock(ctx context.Context, id, owner string) ([]Invocation, error) {
	return s.change(ctx, id, EventLockUpdate, func(t *ticket, now time.Time) bool {
		if owner != "" {
			t.Owner = owner
		}
		if t.Lock == "lock" {
			return false
		}
		t.Lock = "lock"
		t.UnlockTimeout = now.Unix()
		return true
	})
}

// Unlock unlocks the ticket and fires TicketLockUpdate.
func (s *Server) Unlock(ctx context.Context, id string) ([]Invocation, error) {
	return s.change(ctx, id, EventLockUpdate, func(t *ticket, _ time.Time) bool {
		if t.Lock == "unlock" {
			return false
		}
		t.Lock = "unlock"
		return true
	})
}

// SetState sets the ticket's state and state type ("closed successful",
// "closed"; "merged", "merged") and fires TicketStateUpdate.
func (s *Server) SetState(ctx context.Context, id, state, stateType string) ([]Invocation, error) {
	return s.change(ctx, id, EventStateUpdate, func(t *ticket, _ time.Time) bool {
		if t.State == state && t.StateType == stateType {
			return false
		}
		t.State, t.StateType = state, stateType
		return true
	})
}

// SetDynamicField sets (value nil: clears) a dynamic field and fires
// TicketDynamicFieldUpdate_<name>.
func (s *Server) SetDynamicField(ctx context.Context, id, name string, value any) ([]Invocation, error) {
	return s.change(ctx, id, EventDynamicFieldUpdate+name, func(t *ticket, _ time.Time) bool {
		if value == nil {
			delete(t.Fields, name)
		} else {
			t.Fields[name] = value
		}
		return true
	})
}

// Fire posts the webhook of event for the ticket without changing it, as a
// re-sent invocation (a retry of the scheduler, a duplicate delivery).
func (s *Server) Fire(ctx context.Context, id, event string) ([]Invocation, error) {
	return s.change(ctx, id, event, func(*ticket, time.Time) bool { return true })
}

// change applies fn to the ticket and, when it changed something, fires
// event through the invoker.
func (s *Server) change(ctx context.Context, id, event string, fn func(*ticket, time.Time) bool) ([]Invocation, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("ticket id %q: %w", id, err)
	}
	s.mu.Lock()
	t := s.tickets[n]
	if t == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("no ticket %s", id)
	}
	now := s.opts.Now()
	changed := fn(t, now)
	if changed {
		t.Changed = now
	}
	var body []byte
	if changed && s.fires(event) {
		body = s.payloadLocked(t)
	}
	s.mu.Unlock()
	if body == nil {
		return nil, nil
	}
	inv := s.post(ctx, event, id, body)
	s.mu.Lock()
	s.invocations = append(s.invocations, inv)
	s.mu.Unlock()
	if inv.Error != "" {
		return []Invocation{inv}, fmt.Errorf("invoker: %s", inv.Error)
	}
	return []Invocation{inv}, nil
}

func (s *Server) fires(event string) bool {
	iv := &s.opts.Invoker
	if iv.URL == "" {
		return false
	}
	for _, e := range iv.Events {
		if e == event || e == EventDynamicFieldUpdate && strings.HasPrefix(event, EventDynamicFieldUpdate) {
			return true
		}
	}
	return false
}

// payloadLocked is the body the invoker posts for t.
func (s *Server) payloadLocked(t *ticket) []byte {
	id := strconv.FormatInt(t.ID, 10)
	var v any
	switch s.opts.Invoker.Shape {
	case ShapePlain:
		v = map[string]any{"TicketID": t.ID}
	case ShapeOTNSX:
		// The shell script splices the numbers in unquoted.
		return fmt.Appendf(nil, `{"TicketNR":%s,"TicketID":%d}`, t.Number, t.ID)
	case ShapeTest:
		v = map[string]any{"TicketNumber": t.Number}
	default:
		deep := s.ticketMap(t, false)
		for k, fv := range t.Fields {
			deep["DynamicField_"+k] = fv
		}
		deep["Article"] = []any{}
		v = map[string]any{"Ticket": deep, "Event": map[string]any{"TicketID": id}}
	}
	b, _ := json.Marshal(v)
	return b
}

// post sends one invocation and records vpipe's answer.
func (s *Server) post(ctx context.Context, event, id string, body []byte) Invocation {
	iv := &s.opts.Invoker
	inv := Invocation{Event: event, TicketID: id, Body: string(body)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, iv.URL, bytes.NewReader(body))
	if err != nil {
		inv.Error = err.Error()
		return inv
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	if iv.BasicAuthPassword != "" {
		req.SetBasicAuth(iv.BasicAuthUser, iv.BasicAuthPassword)
	}
	if iv.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+iv.BearerToken)
	}
	if len(iv.HMACSecret) > 0 {
		req.Header.Set(iv.SignatureHeader, Sign(iv.HMACSecret, body))
	}
	resp, err := iv.Client.Do(req)
	if err != nil {
		inv.Error = err.Error()
		return inv
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	inv.Status, inv.Answer = resp.StatusCode, string(ans)
	if resp.StatusCode/100 != 2 {
		inv.Error = fmt.Sprintf("%d: %s", resp.StatusCode, bytes.TrimSpace(ans))
	}
	return inv
}

// Sign returns the signature header value of body: "sha256=" and the hex
// HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Invocations returns every webhook posted so far.
func (s *Server) Invocations() []Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.invocations)
}

// Requests returns how many GenericInterface requests each operation
// (SessionCreate, TicketGet, TicketSearch) has answered.
func (s *Server) Requests(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// ExpireSessions ends every session, as an idle timeout or a restart of
// Znuny does.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
}

// FailNext makes the next len(statuses) GenericInterface requests fail
// with those HTTP statuses (e.g. 503), in order.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	s.failNext = append(s.failNext, statuses...)
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/simulator/"); ok {
		s.serveTestAPI(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, s.base)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	if len(s.failNext) > 0 {
		code := s.failNext[0]
		s.failNext = s.failNext[1:]
		s.mu.Unlock()
		w.Header().Set("Retry-After", "0")
		http.Error(w, http.StatusText(code), code)
		return
	}
	s.mu.Unlock()
	params, err := requestParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case rest == "/Session" && r.Method == http.MethodPost:
		s.count("SessionCreate")
		s.sessionCreate(w, params)
	case strings.HasPrefix(rest, "/Ticket/") && r.Method == http.MethodGet:
		s.count("TicketGet")
		params["TicketID"] = []string{strings.TrimPrefix(rest, "/Ticket/")}
		s.ticketGet(w, r, params)
	case rest == "/Ticket" && r.Method == http.MethodGet:
		s.count("TicketSearch")
		s.ticketSearch(w, r, params)
	default:
		// Znuny answers a request no route matches with an HTTP error.
		http.Error(w, "no operation for "+r.Method+" "+rest, http.StatusInternalServerError)
	}
}

func (s *Server) count(op string) {
	s.mu.Lock()
	s.requests[op]++
	s.mu.Unlock()
}

// requestParams merges the query and a JSON object body, as Znuny's
// HTTP::REST transport does; a repeated query parameter is an array.
func requestParams(r *http.Request) (map[string][]string, error) {
	p := map[string][]string{}
	for k, vs := range r.URL.Query() {
		p[k] = vs
	}
	if r.Body == nil {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %w", err)
	}
	for k, v := range obj {
		switch v := v.(type) {
		case string:
			p[k] = []string{v}
		case float64:
			p[k] = []string{strconv.FormatFloat(v, 'f', -1, 64)}
		case []any:
			for _, it := range v {
				p[k] = append(p[k], fmt.Sprint(it))
			}
		}
	}
	return p, nil
}

func first(p map[string][]string, k string) string {
	if v := p[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// writeJSON answers 200 with v, as Znuny answers operations (errors too).
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code, msg string) {
	writeJSON(w, map[string]any{"Error": map[string]string{"ErrorCode": code, "ErrorMessage": msg}})
}

func (s *Server) sessionCreate(w http.ResponseWriter, p map[string][]string) {
	user, pass := first(p, "UserLogin"), first(p, "Password")
	if user == "" || pass == "" {
		writeError(w, "SessionCreate.MissingParameter", "SessionCreate: UserLogin or CustomerUserLogin and Password parameters are required!")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if want, ok := s.opts.Users[user]; !ok || want != pass {
		writeError(w, "SessionCreate.AuthFail", "SessionCreate: Authorization failing!")
		return
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.sessions[id] = &session{user: user, last: s.opts.Now()}
	writeJSON(w, map[string]string{"SessionID": id})
}

// authenticate returns the agent of the request, or "" after answering
// <op>.AuthFail.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, op string, p map[string][]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if sid := first(p, "SessionID"); sid != "" {
		if ses := s.sessions[sid]; ses != nil && now.Sub(ses.last) < s.opts.SessionIdleTime {
			ses.last = now
			return ses.user
		}
		delete(s.sessions, sid)
		writeError(w, op+".AuthFail", op+": Authorization failing!")
		return ""
	}
	user, pass := first(p, "UserLogin"), first(p, "Password")
	if user == "" {
		user, pass, _ = r.BasicAuth()
	}
	if want, ok := s.opts.Users[user]; user != "" && ok && want == pass {
		return user
	}
	writeError(w, op+".AuthFail", op+": Authorization failing!")
	return ""
}

func (s *Server) ticketGet(w http.ResponseWriter, r *http.Request, p map[string][]string) {
	if s.authenticate(w, r, "TicketGet", p) == "" {
		return
	}
	raw := first(p, "TicketID")
	if raw == "" {
		writeError(w, "TicketGet.MissingParameter", "TicketGet: TicketID parameter is missing or not valid!")
		return
	}
	withFields := first(p, "DynamicFields") == "1"
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, part := range strings.Split(raw, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		t := s.tickets[n]
		if err != nil || t == nil {
			writeError(w, "TicketGet.NotValidTicketID", fmt.Sprintf("TicketGet: Could not get Ticket data in Kernel::GenericInterface::Operation::Ticket::TicketGet::Run() for TicketID %s", part))
			return
		}
		if t.Restricted {
			writeError(w, "TicketGet.AccessDenied", "TicketGet: User does not have access to the ticket!")
			return
		}
		out = append(out, s.ticketMap(t, withFields))
	}
	writeJSON(w, map[string]any{"Ticket": out})
}

// ticketMap writes t as TicketGet does: ids as strings (they come from the
// database), dynamic fields as an array sorted by name.
func (s *Server) ticketMap(t *ticket, withFields bool) map[string]any {
	const layout = "2006-01-02 15:04:05"
	m := map[string]any{
		"TicketID":      strconv.FormatInt(t.ID, 10),
		"TicketNumber":  t.Number,
		"Title":         t.Title,
		"State":         t.State,
		"StateType":     t.StateType,
		"StateID":       "4",
		"Lock":          t.Lock,
		"LockID":        map[string]string{"unlock": "1", "lock": "2", "tmp_lock": "3"}[t.Lock],
		"Queue":         t.Queue,
		"QueueID":       "2",
		"Owner":         t.Owner,
		"OwnerID":       "1",
		"Priority":      "3 normal",
		"PriorityID":    "3",
		"Type":          "Unclassified",
		"TypeID":        "1",
		"Responsible":   "root@localhost",
		"ResponsibleID": "1",
		"CustomerID":    "",
		"Created":       t.Created.UTC().Format(layout),
		"Changed":       t.Changed.UTC().Format(layout),
		"UnlockTimeout": strconv.FormatInt(t.UnlockTimeout, 10),
		"ArchiveFlag":   "n",
		"Age":           int64(s.opts.Now().Sub(t.Created) / time.Second),
	}
	if withFields && len(t.Fields) > 0 {
		names := make([]string, 0, len(t.Fields))
		for k := range t.Fields {
			names = append(names, k)
		}
		sort.Strings(names)
		dfs := make([]map[string]any, 0, len(names))
		for _, n := range names {
			dfs = append(dfs, map[string]any{"Name": n, "Value": t.Fields[n]})
		}
		m["DynamicField"] = dfs
	}
	return m
}

func (s *Server) ticketSearch(w http.ResponseWriter, r *http.Request, p map[string][]string) {
	if s.authenticate(w, r, "TicketSearch", p) == "" {
		return
	}
	limit := 10000
	if l, err := strconv.Atoi(first(p, "Limit")); err == nil && l > 0 {
		limit = l
	}
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	s.mu.Lock()
	var ids []int64
	for _, t := range s.tickets {
		if t.Restricted {
			continue
		}
		if n := first(p, "TicketNumber"); n != "" && n != t.Number {
			continue
		}
		if !in(p["Locks"], t.Lock) || !in(p["StateType"], t.StateType) || !in(p["Queues"], t.Queue) {
			continue
		}
		ids = append(ids, t.ID)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	if len(ids) == 0 {
		writeJSON(w, map[string]any{})
		return
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	writeJSON(w, map[string]any{"TicketID": out})
}

// serveTestAPI serves /simulator/... for demos and cmd/znunysim.
func (s *Server) serveTestAPI(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
	}
	str := func(k string) string { v, _ := body[k].(string); return v }
	answer := func(invs []Invocation, err error) {
		if err != nil && invs == nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if invs == nil {
			invs = []Invocation{}
		}
		writeJSON(w, map[string]any{"Invocations": invs})
	}
	switch {
	case len(parts) == 1 && parts[0] == "tickets" && r.Method == http.MethodGet:
		s.mu.Lock()
		out := make([]map[string]any, 0, len(s.tickets))
		for _, t := range s.tickets {
			out = append(out, s.ticketMap(t, true))
		}
		s.mu.Unlock()
		sort.Slice(out, func(i, j int) bool {
			a, _ := strconv.Atoi(out[i]["TicketID"].(string))
			b, _ := strconv.Atoi(out[j]["TicketID"].(string))
			return a < b
		})
		writeJSON(w, map[string]any{"Ticket": out})
	case len(parts) == 1 && parts[0] == "tickets" && r.Method == http.MethodPost:
		fields, _ := body["DynamicFields"].(map[string]any)
		restricted, _ := body["Restricted"].(bool)
		id, number := s.CreateTicket(NewTicket{
			Title: str("Title"), Queue: str("Queue"), State: str("State"), StateType: str("StateType"),
			Owner: str("Owner"), Restricted: restricted, DynamicFields: fields,
		})
		writeJSON(w, map[string]string{"TicketID": id, "TicketNumber": number})
	case len(parts) == 3 && parts[0] == "tickets" && r.Method == http.MethodPost:
		switch parts[2] {
		case "lock":
			answer(s.Lock(r.Context(), parts[1], str("Owner")))
		case "unlock":
			answer(s.Unlock(r.Context(), parts[1]))
		case "state":
			answer(s.SetState(r.Context(), parts[1], str("State"), str("StateType")))
		default:
			http.NotFound(w, r)
		}
	case len(parts) == 4 && parts[0] == "tickets" && parts[2] == "dynamic-fields" && r.Method == http.MethodPut:
		answer(s.SetDynamicField(r.Context(), parts[1], parts[3], body["Value"]))
	default:
		http.NotFound(w, r)
	}
}
