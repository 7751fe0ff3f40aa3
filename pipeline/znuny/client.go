// Package znuny is a client of the OTRS / Znuny GenericInterface ticket
// connector (the GenericTicketConnectorREST web service shipped with
// Znuny, development/webservices/GenericTicketConnectorREST.yml): session
// creation, TicketGet with dynamic fields and TicketSearch. Its simulator,
// for tests and demos, is the simulator subpackage. API contract:
// shared/reference/apis.md §5.
//
// Routes, relative to the web service URL
// (https://host/otrs/nph-genericinterface.pl/Webservice/<Name>; Znuny 7
// serves /znuny/nph-genericinterface.pl/... as well, check the install):
//
//	POST /Session            SessionCreate {"UserLogin","Password"} → {"SessionID"}
//	GET  /Ticket/:TicketID   TicketGet (TicketID a comma-separated list), DynamicFields=1
//	GET  /Ticket             TicketSearch (TicketNumber, Locks, StateType, Queues, Limit)
//
// Znuny answers operation errors with HTTP 200 and an "Error" member; the
// client turns them into *Error.
package znuny

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Authentication methods (Config.Auth).
const (
	// AuthSession creates a session once (POST /Session) and sends its
	// SessionID with every request; a session that Znuny no longer accepts
	// (it expired: SessionMaxIdleTime, 2 hours by default) is created
	// again. The password crosses the wire once per session.
	AuthSession = "session"
	// AuthBasic sends UserLogin and Password with every request (query
	// parameters, the only form every GenericInterface version reads), and
	// the same credentials as an HTTP Basic Authorization header for a
	// reverse proxy or a Znuny that reads it (UNCONFIRMED which versions do).
	AuthBasic = "basic"
)

// Config configures a Client. Zero fields take the defaults named;
// Validate reports every remaining problem.
type Config struct {
	// URL is the web service's base URL, e.g.
	// https://helpdesk.example.com/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST.
	// Required.
	URL string
	// Auth is session (default) or basic.
	Auth string
	// Username and Password of the agent the web service acts as. It needs
	// read access ("ro") to the queues of the tickets vpipe reads. Required.
	Username, Password string
	// TLS configures HTTPS: nil verifies the server against the system
	// roots. Set InsecureSkipVerify only on an explicit request.
	TLS *tls.Config
	// Transport, if set, replaces the HTTP transport (TLS is then ignored).
	Transport http.RoundTripper
	// Timeout bounds one HTTP request. Default 30s.
	Timeout time.Duration
	// MaxRetries is how often a request failing with an HTTP error, a
	// network error or 429 is retried before the error is returned.
	// Default 3; -1 disables retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries; Retry-After is honoured up to MaxBackoff. Defaults 200ms and
	// 10s.
	MinBackoff, MaxBackoff time.Duration
}

// Defaults for Config.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultMaxRetries = 3
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// WithDefaults returns c with its unset fields given their defaults.
func (c Config) WithDefaults() Config {
	if c.Auth == "" {
		c.Auth = AuthSession
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}

// Validate reports every problem of c (after WithDefaults) at once, each
// with its field name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		bad("url", "missing")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url", "%v", err)
	} else if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		bad("url", "%q: want https://host/.../nph-genericinterface.pl/Webservice/<name>", c.URL)
	} else if u.RawQuery != "" {
		bad("url", "%q: must not carry a query", c.URL)
	}
	switch c.Auth {
	case AuthSession, AuthBasic:
	default:
		bad("auth", "%q is not one of session, basic", c.Auth)
	}
	if c.Username == "" {
		bad("username", "missing")
	}
	if c.Password == "" {
		bad("password", "missing")
	}
	if c.Timeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		bad("timeouts", "negative, or max_backoff below min_backoff")
	}
	if c.MaxRetries < -1 {
		bad("max_retries", "must be -1 (none) or more")
	}
	return errors.Join(errs...)
}

// Client calls one Znuny web service. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	m    *Metrics
	log  *slog.Logger

	mu      sync.Mutex
	session string // AuthSession: the current SessionID, "" before the first
}

// New checks cfg (after its defaults) and returns a Client. m nil counts
// into unregistered metrics; log nil discards logs. New does not connect.
func New(cfg Config, m *Metrics, log *slog.Logger) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("znuny: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.TLS != nil {
			t.TLSClientConfig = cfg.TLS.Clone()
		}
		rt = t
	}
	return &Client{
		cfg:  cfg,
		base: strings.TrimRight(cfg.URL, "/"),
		hc:   &http.Client{Transport: rt, CheckRedirect: noRedirect},
		m:    m,
		log:  log.With("component", "znuny"),
	}, nil
}

// noRedirect keeps credentials in a query from following a redirect to
// another host: a redirect is answered as the error it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Operation names (Error.Op and the op label).
const (
	opSession = "SessionCreate"
	opGet     = "TicketGet"
	opSearch  = "TicketSearch"
)

// TicketGet reads the tickets with the given ids (TicketGet with
// DynamicFields=1, no articles), in the order Znuny returns them. An id
// Znuny does not know fails the whole call with an *Error for which
// errors.Is(err, ErrNotFound) holds; one the agent may not read, with
// TicketGet.AccessDenied (permanent). It blocks until Znuny answered, the
// retries are spent, or ctx ends.
func (c *Client) TicketGet(ctx context.Context, ids ...string) ([]Ticket, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	for _, id := range ids {
		if !ValidTicketID(id) {
			return nil, &Error{Op: opGet, Code: opGet + ".NotValidTicketID", Message: fmt.Sprintf("%q is not a ticket id", id)}
		}
	}
	q := url.Values{"DynamicFields": {"1"}, "AllArticles": {"0"}}
	var out struct{ Ticket []Ticket }
	if err := c.call(ctx, opGet, http.MethodGet, "/Ticket/"+strings.Join(ids, ","), q, nil, &out); err != nil {
		return nil, err
	}
	return out.Ticket, nil
}

// Search is a TicketSearch query; empty fields do not restrict.
type Search struct {
	TicketNumber string   // exact ticket number
	Locks        []string // lock names, e.g. "lock"
	StateType    []string // state types, e.g. "open", "new", "pending reminder"
	Queues       []string // queue names
	Limit        int      // most ids returned; 0: Znuny's default
}

// TicketSearch returns the ids of the tickets matching q that the agent
// may read (TicketSearch), as Znuny sorts them. It blocks like TicketGet.
func (c *Client) TicketSearch(ctx context.Context, s Search) ([]string, error) {
	q := url.Values{}
	if s.TicketNumber != "" {
		q.Set("TicketNumber", s.TicketNumber)
	}
	for k, vs := range map[string][]string{"Locks": s.Locks, "StateType": s.StateType, "Queues": s.Queues} {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	if s.Limit > 0 {
		q.Set("Limit", strconv.Itoa(s.Limit))
	}
	var out struct{ TicketID json.RawMessage }
	if err := c.call(ctx, opSearch, http.MethodGet, "/Ticket", q, nil, &out); err != nil {
		return nil, err
	}
	// Znuny answers {} for no match and {"TicketID":[...]} otherwise; be
	// lenient with a single id written as a scalar.
	raw := bytes.TrimSpace(out.TicketID)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ids []Scalar
	if raw[0] != '[' {
		raw = append(append([]byte{'['}, raw...), ']')
	}
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, &Error{Op: opSearch, Message: "decode TicketID: " + err.Error()}
	}
	res := make([]string, 0, len(ids))
	for _, id := range ids {
		res = append(res, string(id))
	}
	return res, nil
}

// SessionCreate logs in (POST /Session) and returns a new SessionID. The
// client calls it itself with AuthSession; it is exported for tools that
// want to check credentials.
func (c *Client) SessionCreate(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"UserLogin": c.cfg.Username, "Password": c.cfg.Password})
	var out struct{ SessionID string }
	if err := c.call(ctx, opSession, http.MethodPost, "/Session", nil, body, &out); err != nil {
		return "", err
	}
	if out.SessionID == "" {
		return "", &Error{Op: opSession, Message: "answer has no SessionID"}
	}
	return out.SessionID, nil
}

// sessionID returns the current session, creating one when there is none.
func (c *Client) sessionID(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != "" {
		return c.session, nil
	}
	s, err := c.SessionCreate(ctx)
	if err != nil {
		return "", err
	}
	c.session = s
	c.log.Debug("znuny session created", "user", c.cfg.Username)
	return s, nil
}

// dropSession forgets sid if it is still the current session, so that the
// next request creates a new one.
func (c *Client) dropSession(sid string) {
	c.mu.Lock()
	if c.session == sid {
		c.session = ""
	}
	c.mu.Unlock()
}

// call sends one operation with retries and decodes its answer into out.
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, body []byte, out any) error {
	renewed := false
	for attempt := 0; ; attempt++ {
		params := url.Values{}
		for k, v := range q {
			params[k] = v
		}
		var sid string
		basic := false
		if op != opSession {
			switch c.cfg.Auth {
			case AuthSession:
				var err error
				if sid, err = c.sessionID(ctx); err != nil {
					return err
				}
				params.Set("SessionID", sid)
			case AuthBasic:
				params.Set("UserLogin", c.cfg.Username)
				params.Set("Password", c.cfg.Password)
				basic = true
			}
		}
		err := c.once(ctx, op, method, path, params, body, basic, out)
		if err == nil {
			return nil
		}
		var ze *Error
		isZ := errors.As(err, &ze)
		if isZ && ze.AuthFail() && sid != "" && !renewed {
			// The session expired or was removed: log in again, once.
			c.dropSession(sid)
			renewed = true
			c.m.retries.WithLabelValues("session").Inc()
			c.log.Info("znuny refused the session; creating a new one", "op", op, "code", ze.Code)
			continue
		}
		if isZ && !ze.Retryable() || isZ && ze.Code != "" || ctx.Err() != nil {
			return err
		}
		if c.cfg.MaxRetries < 0 || attempt >= c.cfg.MaxRetries {
			return err
		}
		d := backoff.Delay(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff)
		reason := resultNetwork
		if isZ {
			reason = resultHTTP
			if ze.RetryAfter > 0 {
				d = min(ze.RetryAfter, c.cfg.MaxBackoff)
			}
		}
		c.m.retries.WithLabelValues(reason).Inc()
		c.log.Warn("znuny request failed; retrying", "op", op, "attempt", attempt+1, "backoff", d, "error", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// maxAnswer bounds an answer body; a TicketGet of many tickets with their
// dynamic fields stays far below.
const maxAnswer = 32 << 20

// once sends one request and decodes its answer.
func (c *Client) once(ctx context.Context, op, method, path string, params url.Values, body []byte, basic bool, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := c.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("znuny %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if basic {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	c.m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.requests.WithLabelValues(op, resultNetwork).Inc()
		// *url.Error names the URL, whose query may hold the password or
		// the session: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("znuny %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		c.m.requests.WithLabelValues(op, resultNetwork).Inc()
		return fmt.Errorf("znuny %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		c.m.requests.WithLabelValues(op, resultHTTP).Inc()
		return &Error{Op: op, StatusCode: resp.StatusCode, Message: snippet(data), RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	var envelope struct {
		Error *struct {
			ErrorCode    string
			ErrorMessage string
		}
	}
	if err := json.Unmarshal(data, &envelope); err != nil {
		c.m.requests.WithLabelValues(op, resultDecode).Inc()
		return &Error{Op: op, Message: "answer is not JSON: " + snippet(data)}
	}
	if e := envelope.Error; e != nil {
		ze := &Error{Op: op, Code: e.ErrorCode, Message: e.ErrorMessage}
		if ze.Code == "" {
			ze.Code = op + ".Error"
		}
		if ze.AuthFail() {
			c.m.requests.WithLabelValues(op, resultAuthFail).Inc()
		} else {
			c.m.requests.WithLabelValues(op, resultAPI).Inc()
		}
		return ze
	}
	if err := json.Unmarshal(data, out); err != nil {
		c.m.requests.WithLabelValues(op, resultDecode).Inc()
		return &Error{Op: op, Message: "decode answer: " + err.Error()}
	}
	c.m.requests.WithLabelValues(op, resultOK).Inc()
	return nil
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
