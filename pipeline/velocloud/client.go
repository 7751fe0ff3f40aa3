package velocloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Auth is how a Client authenticates to the VCO Portal API
// (shared/reference/apis.md §4.2). Token wins when both are set.
type Auth struct {
	// Token is an API token (VCO 3.4 and later), sent as
	// "Authorization: Token <Token>".
	Token string
	// Username and Password log in for a session cookie
	// ("velocloud.session"), renewed when the VCO stops accepting it.
	Username, Password string
	// Operator logs in with login/operatorLogin (operator users) instead
	// of login/enterpriseLogin (enterprise and partner users).
	Operator bool
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the VCO's base URL, e.g. https://vco.example.com; the API is
	// under /portal/rest.
	URL  string
	Auth Auth
	// Timeout bounds each request, the answer's body included (default
	// 30s).
	Timeout time.Duration
	// HTTPClient, if set, carries the requests (TLS settings, proxies);
	// its own Timeout and redirect policy are not used.
	HTTPClient *http.Client
	// MaxBodyBytes bounds an answer's size (default 256 MiB).
	MaxBodyBytes int64
	// Observe, if set, is called after each API request with its method,
	// result (see Result) and duration; OnLogin after each login attempt
	// with its result.
	Observe func(method, result string, d time.Duration)
	OnLogin func(result string)
}

// Client calls the VCO Portal API (v1) over its REST-like transport:
// POST <URL>/portal/rest/<method> with the params object as the JSON body.
// It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	base string
	hc   *http.Client

	mu      sync.Mutex
	session string // the velocloud.session cookie value
	gen     int    // incremented by every login
}

// NewClient checks cfg and returns a Client. It does not contact the VCO.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vco url %q: want http(s)://host", cfg.URL)
	}
	if cfg.Auth.Token == "" && (cfg.Auth.Username == "" || cfg.Auth.Password == "") {
		return nil, errors.New("vco auth: need a token, or a username and a password")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 256 << 20
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	hc.Timeout = 0 // each request has its own deadline
	// A failed login answers 302; the client must see it, not follow it.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Jar = nil
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), hc: hc}, nil
}

// Host is the VCO's host name from the URL, the observer.hostname of its
// events.
func (c *Client) Host() string {
	u, _ := url.Parse(c.cfg.URL)
	return u.Hostname()
}

// Errors a Client returns, to check with errors.Is. An *APIError carries
// the details.
var (
	// ErrUnauthorized: the VCO refused the credentials (401, or a failed
	// login).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: the VCO answered 429.
	ErrRateLimited = errors.New("rate limited")
	// ErrMalformed: an answer that is not the documented JSON.
	ErrMalformed = errors.New("malformed answer")
	// errNotJSON marks a malformed answer that is not JSON at all.
	errNotJSON = errors.New("not json")
)

// APIError is a VCO answer other than success.
type APIError struct {
	Method  string
	Status  int    // HTTP status
	Code    string // the error body's code, when there is one
	Message string // the error body's message, or the start of the body
	// RetryAfter is the wait a 429 asked for (Retry-After), if any.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("vco %s: http %d", e.Method, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrUnauthorized) and ErrRateLimited hold.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// Results of a request, for metrics (a bounded set).
const (
	ResultOK          = "ok"
	ResultAuth        = "auth"         // 401, failed login
	ResultForbidden   = "forbidden"    // 403
	ResultRateLimited = "rate_limited" // 429
	ResultServer      = "server_error" // 5xx
	ResultClient      = "client_error" // other 4xx
	ResultMalformed   = "malformed"    // not the documented JSON
	ResultTimeout     = "timeout"
	ResultNetwork     = "network"
	ResultCanceled    = "canceled"
)

// Result classifies err (nil: ResultOK).
func Result(err error) string {
	var ae *APIError
	var ne net.Error
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, context.Canceled):
		return ResultCanceled
	case errors.Is(err, ErrMalformed):
		return ResultMalformed
	case errors.Is(err, ErrUnauthorized):
		return ResultAuth
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusUnauthorized:
			return ResultAuth
		case ae.Status == http.StatusForbidden:
			return ResultForbidden
		case ae.Status == http.StatusTooManyRequests:
			return ResultRateLimited
		case ae.Status >= 500:
			return ResultServer
		}
		return ResultClient
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ResultTimeout
	}
	return ResultNetwork
}

// call POSTs params to method and hands the answer's body to decode
// (whose error counts as the request's result). With password auth it
// logs in first when there is no session, and once more when the VCO
// answers 401 (an expired session), then repeats the request.
func (c *Client) call(ctx context.Context, method string, params any, decode func([]byte) error) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("vco %s: encode params: %w", method, err)
	}
	for attempt := 0; ; attempt++ {
		session, gen, err := c.currentSession(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := c.post(ctx, method, body, session)
		if err == nil {
			err = decode(out)
		}
		if c.cfg.Observe != nil {
			c.cfg.Observe(method, Result(err), time.Since(start))
		}
		if err != nil && errors.Is(err, ErrUnauthorized) && c.cfg.Auth.Token == "" && attempt == 0 {
			c.dropSession(gen)
			continue
		}
		return err
	}
}

// currentSession returns the session cookie to send (logging in when
// password auth has none) and its generation.
func (c *Client) currentSession(ctx context.Context) (string, int, error) {
	if c.cfg.Auth.Token != "" {
		return "", 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == "" {
		if err := c.login(ctx); err != nil {
			return "", c.gen, err
		}
	}
	return c.session, c.gen, nil
}

// dropSession forgets the session of generation gen, unless another
// request already replaced it.
func (c *Client) dropSession(gen int) {
	c.mu.Lock()
	if c.gen == gen {
		c.session = ""
	}
	c.mu.Unlock()
}

// login logs in (c.mu held): login/operatorLogin or login/enterpriseLogin
// with {"username","password"}; success sets the velocloud.session
// cookie, failure answers 302 with a velocloud.message cookie
// (apis.md §4.2).
func (c *Client) login(ctx context.Context) error {
	method := "login/enterpriseLogin"
	if c.cfg.Auth.Operator {
		method = "login/operatorLogin"
	}
	body, _ := json.Marshal(map[string]string{"username": c.cfg.Auth.Username, "password": c.cfg.Auth.Password})
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/portal/rest/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("vco login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.hc.Do(req)
	result := ResultOK
	defer func() {
		if c.cfg.Observe != nil {
			c.cfg.Observe(method, result, time.Since(start))
		}
		if c.cfg.OnLogin != nil {
			c.cfg.OnLogin(result)
		}
	}()
	if err != nil {
		result = Result(err)
		return fmt.Errorf("vco login: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var session, message string
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case "velocloud.session":
			session = ck.Value
		case "velocloud.message":
			message, _ = url.QueryUnescape(ck.Value)
		}
	}
	if session != "" && resp.StatusCode < 400 {
		c.session = session
		c.gen++
		return nil
	}
	ae := &APIError{Method: method, Status: resp.StatusCode, Message: message}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		result = ResultRateLimited
		ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
		return ae
	case resp.StatusCode >= 500:
		result = ResultServer
		return ae
	}
	result = ResultAuth
	if ae.Message == "" {
		ae.Message = "no session cookie in the answer"
	}
	return fmt.Errorf("vco login as %q refused: %w: %w", c.cfg.Auth.Username, ErrUnauthorized, ae)
}

// post sends one request and returns the body of a 200 answer.
func (c *Client) post(ctx context.Context, method string, body []byte, session string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/portal/rest/"+method, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("vco %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if t := c.cfg.Auth.Token; t != "" {
		req.Header.Set("Authorization", "Token "+t)
	} else {
		req.AddCookie(&http.Cookie{Name: "velocloud.session", Value: session})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vco %s: %w", method, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= c.cfg.MaxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	data := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("vco %s: read answer: %w", method, err)
	}
	if int64(len(data)) > c.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("vco %s: answer larger than %d bytes: %w", method, c.cfg.MaxBodyBytes, ErrMalformed)
	}
	if resp.StatusCode == http.StatusOK {
		if ae := errorBody(method, resp.StatusCode, data); ae != nil {
			return nil, ae
		}
		return data, nil
	}
	ae := errorBody(method, resp.StatusCode, data)
	if ae == nil {
		ae = &APIError{Method: method, Status: resp.StatusCode, Message: snippet(data)}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	// A redirect to the login page is how some VCO versions refuse a
	// missing session (kurtcms checks for it).
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		ae.Status = http.StatusUnauthorized
	}
	return nil, ae
}

// errorBody decodes the documented error body {"error":{"code","message"}}
// (code may be a string or a number); nil when data is not one.
func errorBody(method string, status int, data []byte) *APIError {
	t := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(t, []byte(`{"error"`)) && !bytes.HasPrefix(t, []byte(`{ "error"`)) {
		return nil
	}
	var eb struct {
		Error *struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &eb) != nil || eb.Error == nil {
		return nil
	}
	code := strings.Trim(string(eb.Error.Code), `"`)
	if status == http.StatusOK {
		// An error inside a 200: judge it by its code.
		status = http.StatusBadRequest
		if strings.Contains(strings.ToLower(code+eb.Error.Message), "credential") ||
			strings.Contains(strings.ToLower(eb.Error.Message), "cookie") {
			status = http.StatusUnauthorized
		}
	}
	return &APIError{Method: method, Status: status, Code: code, Message: eb.Error.Message}
}

func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// retryAfter reads a Retry-After header in seconds (0: absent or not
// seconds).
func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// EnterpriseInfo is an enterprise (customer) as the VCO lists it.
type EnterpriseInfo struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	LogicalID string `json:"logicalId"`
}

// GetEnterprise calls enterprise/getEnterprise for the enterprise id; id
// 0 asks for the caller's own enterprise (enterprise users).
func (c *Client) GetEnterprise(ctx context.Context, id int64) (EnterpriseInfo, error) {
	params := map[string]any{}
	if id != 0 {
		params["enterpriseId"] = id
	}
	var e EnterpriseInfo
	err := c.call(ctx, "enterprise/getEnterprise", params, func(data []byte) error {
		if err := json.Unmarshal(data, &e); err != nil || e.ID == 0 {
			return fmt.Errorf("vco enterprise/getEnterprise: %w: %s", ErrMalformed, snippet(data))
		}
		return nil
	})
	return e, err
}

// ListEnterprises lists the enterprises the caller manages: every
// enterprise of the network for an operator (network/getNetworkEnterprises),
// a partner's (MSP's) customers (enterpriseProxy/getEnterpriseProxyEnterprises).
func (c *Client) ListEnterprises(ctx context.Context, operator bool) ([]EnterpriseInfo, error) {
	method := "enterpriseProxy/getEnterpriseProxyEnterprises"
	if operator {
		method = "network/getNetworkEnterprises"
	}
	var out []EnterpriseInfo
	err := c.call(ctx, method, map[string]any{}, func(data []byte) error {
		if err := json.Unmarshal(data, &out); err != nil {
			return fmt.Errorf("vco %s: %w: %v", method, ErrMalformed, err)
		}
		return nil
	})
	return out, err
}

// EventsPage is one answer of event/getEnterpriseEvents.
type EventsPage struct {
	// Events are the data[] objects as the VCO wrote them; they alias the
	// answer's body.
	Events []json.RawMessage
	// More says the VCO left events out (metaData.more): the answer was
	// cut at Limit.
	More  bool
	Limit int
}

// EnterpriseEvents calls event/getEnterpriseEvents for [start, end] with
// filter.limit (0: the VCO's default, 2048); times go as ms epoch numbers
// (apis.md §4.3). The documented answer is {"metaData":{"limit","more"},
// "data":[...]}; a bare array is accepted too (some collectors see one).
func (c *Client) EnterpriseEvents(ctx context.Context, enterpriseID int64, start, end time.Time, limit int) (EventsPage, error) {
	type interval struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
	}
	params := struct {
		EnterpriseID int64          `json:"enterpriseId,omitempty"`
		Interval     interval       `json:"interval"`
		Filter       map[string]int `json:"filter,omitempty"`
	}{EnterpriseID: enterpriseID, Interval: interval{start.UnixMilli(), end.UnixMilli()}}
	if limit > 0 {
		params.Filter = map[string]int{"limit": limit}
	}
	const method = "event/getEnterpriseEvents"
	var out EventsPage
	err := c.call(ctx, method, params, func(data []byte) error {
		var err error
		out, err = decodeEvents(method, data, limit)
		return err
	})
	return out, err
}

// decodeEvents reads an event/getEnterpriseEvents answer. It splits the
// data array in one pass without decoding the events (ParseEvent does
// that); metaData is decoded with encoding/json.
func decodeEvents(method string, data []byte, limit int) (EventsPage, error) {
	bad := func(format string, args ...any) (EventsPage, error) {
		return EventsPage{}, fmt.Errorf("vco %s: %w: %s", method, ErrMalformed, fmt.Sprintf(format, args...))
	}
	s := jsonScanner{b: data}
	s.ws()
	if s.peek() == '[' {
		evs, err := s.array()
		if err != nil {
			return bad("%v", err)
		}
		if s.ws(); s.i != len(data) {
			return bad("data after the array at byte %d", s.i)
		}
		return EventsPage{Events: evs, More: limit > 0 && len(evs) >= limit, Limit: limit}, nil
	}
	if s.peek() != '{' {
		// Not JSON at all (an HTML error page of a proxy, say): a
		// problem of the path to the VCO, not of this window's events.
		return EventsPage{}, fmt.Errorf("vco %s: %w: %w: %s", method, ErrMalformed, errNotJSON, snippet(data))
	}
	s.i++
	out := EventsPage{Limit: limit}
	var haveData, haveMeta bool
	for {
		s.ws()
		if s.peek() == '}' && !haveData && !haveMeta {
			s.i++
			break
		}
		key, err := s.str()
		if err != nil {
			return bad("%v", err)
		}
		if s.ws(); s.peek() != ':' {
			return bad("want ':' at byte %d", s.i)
		}
		s.i++
		s.ws()
		switch string(key) {
		case `"data"`:
			if s.peek() == 'n' {
				if _, err := s.value(); err != nil {
					return bad("%v", err)
				}
				break
			}
			if out.Events, err = s.array(); err != nil {
				return bad("data: %v", err)
			}
			haveData = true
		case `"metaData"`:
			v, err := s.value()
			if err != nil {
				return bad("metaData: %v", err)
			}
			var md struct {
				Limit int  `json:"limit"`
				More  bool `json:"more"`
			}
			if err := json.Unmarshal(v, &md); err != nil {
				return bad("metaData: %v", err)
			}
			out.More = md.More
			if md.Limit > 0 {
				out.Limit = md.Limit
			}
			haveMeta = true
		default:
			if _, err := s.value(); err != nil {
				return bad("%v", err)
			}
		}
		s.ws()
		if s.peek() == ',' {
			s.i++
			continue
		}
		if s.peek() != '}' {
			return bad("want ',' or '}' at byte %d", s.i)
		}
		s.i++
		break
	}
	if s.ws(); s.i != len(data) {
		return bad("data after the object at byte %d", s.i)
	}
	if !haveData && !haveMeta {
		return bad("no data member: %s", snippet(data))
	}
	return out, nil
}

// jsonScanner finds the extent of JSON values without decoding them. It
// checks structure (nesting, strings, where values and separators go),
// not the spelling of numbers and literals: the events are parsed
// properly later.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// str returns the string at s.i, quotes included.
func (s *jsonScanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, fmt.Errorf("want a string at byte %d", s.i)
	}
	start := s.i
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return s.b[start:s.i], nil
		}
	}
	return nil, fmt.Errorf("unterminated string at byte %d", start)
}

// value returns the value at s.i.
func (s *jsonScanner) value() ([]byte, error) {
	start := s.i
	switch c := s.peek(); c {
	case '"':
		return s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, err := s.str(); err != nil {
					return nil, err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return s.b[start:s.i], nil
				}
			}
			s.i++
		}
		return nil, fmt.Errorf("unterminated %c at byte %d", c, start)
	case 0:
		return nil, fmt.Errorf("want a value at byte %d (end of answer)", s.i)
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if s.i == start {
				return nil, fmt.Errorf("want a value at byte %d", s.i)
			}
			return s.b[start:s.i], nil
		case '"', '{', '[', ':':
			return nil, fmt.Errorf("unexpected %q at byte %d", s.b[s.i], s.i)
		}
		s.i++
	}
	return s.b[start:s.i], nil
}

// array returns the elements of the array at s.i.
func (s *jsonScanner) array() ([]json.RawMessage, error) {
	if s.peek() != '[' {
		return nil, fmt.Errorf("want an array at byte %d", s.i)
	}
	s.i++
	out := make([]json.RawMessage, 0, 64)
	s.ws()
	if s.peek() == ']' {
		s.i++
		return out, nil
	}
	for {
		s.ws()
		v, err := s.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, nil
		default:
			return nil, fmt.Errorf("want ',' or ']' at byte %d", s.i)
		}
	}
}
