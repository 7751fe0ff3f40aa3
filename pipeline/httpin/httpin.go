// Package httpin is vpipe's HTTP ingest server. It takes JSON events (one
// object, an array, or NDJSON) and raw syslog lines over POST, publishes
// them to Kafka, and answers 202 only once Kafka acknowledged every event
// of the request, so that a client that got 202 may forget its events. It
// also serves the process's liveness and readiness probes.
//
// Routes:
//
//	POST /v1/events  Content-Type application/json (one object or an array
//	                 of objects) or application/x-ndjson, application/jsonl
//	                 (one object per line, LF or CRLF; blank lines skipped)
//	POST /v1/syslog  Content-Type text/plain or application/octet-stream (or
//	                 none): one syslog record per line, LF or CRLF, through
//	                 the RecordParser as if it came over TCP
//	GET  /healthz    200 while the process runs
//	GET  /readyz     200 while Kafka is reachable, else 503 with the reason
//
// Each JSON object becomes one event whose event.original is the object's
// exact bytes: an object in vpipe's own encoding keeps its fields, any
// other becomes an http.generic event with its "message" (see fillJSON).
//
// A request is accepted or rejected as a whole: the body is read and
// validated completely (JSON syntax per RFC 8259, UTF-8) before its first
// event is published. Answers are JSON: 202 {"accepted":N} once Kafka
// acknowledged all N events; otherwise {"error":"..."} with 400 (malformed
// JSON or invalid UTF-8, naming the line or element and the byte offset in
// the body), 401 (bearer token missing or wrong, with WWW-Authenticate),
// 404, 405 (with Allow), 408 (the body came slower than AckTimeout), 413 (body or event count over the limit), 415
// (Content-Type or Content-Encoding not supported), or 503 with
// Retry-After (Kafka not ready, or not every event acknowledged: then
// "accepted" says how many were, and a retry may duplicate those).
//
// The caller owns the http.Server (set its ReadHeaderTimeout, ReadTimeout
// and IdleTimeout) and serves /metrics beside this handler.
package httpin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/pipeline"
)

// Routes, also the route label of the metrics.
const (
	RouteEvents  = "/v1/events"
	RouteSyslog  = "/v1/syslog"
	RouteHealthz = "/healthz"
	RouteReadyz  = "/readyz"
	routeOther   = "other"
)

// Config sets the server's limits. The zero value is usable: zero fields
// take their documented defaults. The YAML configuration (pipeline/config)
// sets MaxBodyBytes and BearerToken; the others are for embedders and
// tests.
type Config struct {
	// MaxBodyBytes is the largest request body accepted; a larger one is
	// answered 413. Default 10 MiB.
	MaxBodyBytes int64
	// MaxEvents is the most events (objects or lines) one request may
	// carry; more are answered 413. Default 10000.
	MaxEvents int
	// MaxConcurrent is how many ingest requests read and publish at once;
	// further ones wait for a turn (within AckTimeout). It bounds the
	// memory held by bodies to about MaxConcurrent × MaxBodyBytes.
	// Default 16.
	MaxConcurrent int
	// BearerToken, when not empty, must be presented on the ingest routes
	// as "Authorization: Bearer <token>" (RFC 6750); the probes need none.
	BearerToken string
	// AckTimeout bounds the time from a request's headers to Kafka
	// acknowledging its last event: waiting for a turn, reading the body
	// (408 when it is not in by then) and publishing; a request that takes
	// longer is answered 503. Default 30s.
	AckTimeout time.Duration
	// RetryAfter is the delay suggested in the Retry-After header of 503
	// answers, rounded up to whole seconds. Default 5s.
	RetryAfter time.Duration
}

// Defaults of Config's fields.
const (
	DefaultMaxBodyBytes  = 10 << 20
	DefaultMaxEvents     = 10000
	DefaultMaxConcurrent = 16
	DefaultAckTimeout    = 30 * time.Second
	DefaultRetryAfter    = 5 * time.Second
)

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = DefaultRetryAfter
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d is negative", c.MaxBodyBytes))
	}
	if c.MaxEvents < 0 {
		errs = append(errs, fmt.Errorf("max_events: %d is negative", c.MaxEvents))
	}
	if c.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("max_concurrent: %d is negative", c.MaxConcurrent))
	}
	if c.AckTimeout < 0 {
		errs = append(errs, fmt.Errorf("ack_timeout: %s is negative", c.AckTimeout))
	}
	if c.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry_after: %s is negative", c.RetryAfter))
	}
	if strings.TrimSpace(c.BearerToken) != c.BearerToken {
		errs = append(errs, errors.New("bearer_token: has leading or trailing white space"))
	}
	return errors.Join(errs...)
}

// Deps are what the server works with.
type Deps struct {
	// Parser turns each /v1/syslog line into an event. Required.
	Parser pipeline.RecordParser
	// Publisher puts the events on Kafka. Required.
	Publisher pipeline.Publisher
	// Ready returns nil while Kafka is reachable, else why not. It is
	// called on every ingest request and probe, so it must be cheap (as
	// kafkaout's Producer.Ready is). Nil means always ready.
	Ready func() error
	// Log receives failures (component=httpin). Nil discards them.
	Log *slog.Logger
	// Metrics are counted into; nil counts into unregistered metrics.
	Metrics *Metrics
	// Webhooks are served at POST /v1/webhooks/<name>: each turns a
	// vendor's webhook body into events. Nil serves none.
	Webhooks map[string]WebhookParser
}

// Handler is the HTTP ingest server's http.Handler. It is safe for
// concurrent use.
type Handler struct {
	cfg        Config
	parser     pipeline.RecordParser
	pub        pipeline.Publisher
	ready      func() error
	log        *slog.Logger
	m          *Metrics
	auth       bool
	token      [sha256.Size]byte // SHA-256 of cfg.BearerToken
	retryAfter string
	slots      chan struct{}
	notReady   atomic.Bool // the last Ready call failed; for logging changes only
	pool       sync.Pool   // *request
	webhooks   map[string]WebhookParser
}

// NewHandler returns the server for cfg. Fields of cfg that are zero or
// negative take their defaults (check a configuration with Validate
// first). d.Parser and d.Publisher must not be nil.
func NewHandler(cfg Config, d Deps) *Handler {
	if d.Parser == nil || d.Publisher == nil {
		panic("httpin.NewHandler: Deps.Parser and Deps.Publisher are required")
	}
	cfg.setDefaults()
	h := &Handler{
		cfg:        cfg,
		parser:     d.Parser,
		pub:        d.Publisher,
		ready:      d.Ready,
		log:        d.Log,
		m:          d.Metrics,
		auth:       cfg.BearerToken != "",
		token:      sha256.Sum256([]byte(cfg.BearerToken)),
		retryAfter: strconv.FormatInt(int64((cfg.RetryAfter+time.Second-1)/time.Second), 10),
		slots:      make(chan struct{}, cfg.MaxConcurrent),
	}
	if h.ready == nil {
		h.ready = func() error { return nil }
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "httpin")
	if h.m == nil {
		h.m = NewMetrics(nil)
	}
	h.webhooks = d.Webhooks
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	switch route := r.URL.Path; route {
	case RouteEvents, RouteSyslog:
		h.ingest(w, r, route, start)
	case RouteHealthz:
		if h.allow(w, r, route, start, http.MethodGet, http.MethodHead) {
			h.reply(w, route, http.StatusOK, []byte(`{"status":"ok"}`), start)
		}
	case RouteReadyz:
		if !h.allow(w, r, route, start, http.MethodGet, http.MethodHead) {
			return
		}
		if err := h.checkReady(); err != nil {
			w.Header().Set("Retry-After", h.retryAfter)
			h.reject(w, r, route, http.StatusServiceUnavailable, "not_ready", "not ready: "+err.Error(), -1, start)
			return
		}
		h.reply(w, route, http.StatusOK, []byte(`{"status":"ready"}`), start)
	default:
		if name, ok := strings.CutPrefix(route, RouteWebhooks); ok && h.webhooks[name] != nil {
			h.ingest(w, r, RouteWebhooks, start)
			return
		}
		h.reject(w, r, routeOther, http.StatusNotFound, "not_found", "not found; routes are POST /v1/events, POST /v1/syslog, POST /v1/webhooks/{"+h.webhookNames()+"}, GET /healthz, GET /readyz", -1, start)
	}
}

// allow answers 405 unless r's method is one of methods.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, route string, start time.Time, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	h.reject(w, r, route, http.StatusMethodNotAllowed, "method", "method "+r.Method+" not allowed; use "+methods[0], -1, start)
	return false
}

// splitFunc appends a body's records to spans, failing with a *bodyError.
type splitFunc func(spans []span, body []byte, limit int) ([]span, error)

// splitter chooses how to split a body of route by its Content-Type.
func splitter(route, contentType string) (splitFunc, error) {
	if contentType == "" {
		if route == RouteSyslog {
			return splitLines, nil
		}
		return nil, errors.New("missing Content-Type; use application/json or application/x-ndjson")
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("bad Content-Type %q: %w", contentType, err)
	}
	if route == RouteSyslog {
		switch mt {
		case "text/plain", "application/octet-stream":
			return splitLines, nil
		}
		return nil, fmt.Errorf("unsupported Content-Type %q; use text/plain with one syslog record per line", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, fmt.Errorf("unsupported charset %q; JSON must be UTF-8", cs)
	}
	switch mt {
	case "application/json":
		return splitJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl", "application/jsonlines", "application/x-jsonlines":
		return splitNDJSON, nil
	}
	return nil, fmt.Errorf("unsupported Content-Type %q; use application/json (an object or an array of objects) or application/x-ndjson (one object per line)", mt)
}

// request is the state of one ingest request, pooled.
type request struct {
	body    bytes.Buffer
	spans   []span
	ev      pipeline.Event
	scratch []byte
	acks    acks
	webhook []*pipeline.Event // events a WebhookParser made; spans index them
}

// maxPooledBody is the largest body (or event) buffer kept for reuse.
const maxPooledBody = 1 << 20

func (h *Handler) ingest(w http.ResponseWriter, r *http.Request, route string, start time.Time) {
	if !h.allow(w, r, route, start, http.MethodPost) {
		return
	}
	if h.auth {
		if code := h.authorize(r); code != "" {
			challenge := `Bearer realm="vpipe"`
			if code != "missing" {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			h.reject(w, r, route, http.StatusUnauthorized, "unauthorized", code+" bearer token", -1, start)
			return
		}
	}
	split, err := splitter(route, r.Header.Get("Content-Type"))
	if err != nil {
		h.reject(w, r, route, http.StatusUnsupportedMediaType, "content_type", err.Error(), -1, start)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		h.reject(w, r, route, http.StatusUnsupportedMediaType, "content_type", "unsupported Content-Encoding "+strconv.Quote(ce), -1, start)
		return
	}
	if err := h.checkReady(); err != nil {
		w.Header().Set("Retry-After", h.retryAfter)
		h.reject(w, r, route, http.StatusServiceUnavailable, "not_ready", "not ready: "+err.Error(), -1, start)
		return
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.reject(w, r, route, http.StatusRequestEntityTooLarge, "too_large", h.tooLarge(), -1, start)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.AckTimeout)
	defer cancel()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		w.Header().Set("Retry-After", h.retryAfter)
		h.reject(w, r, route, http.StatusServiceUnavailable, "busy", "busy: no turn within "+h.cfg.AckTimeout.String(), -1, start)
		return
	}

	q, _ := h.pool.Get().(*request)
	if q == nil {
		q = new(request)
		q.acks.init()
	}
	reusable := h.serve(ctx, w, r, route, split, start, q)
	if !reusable {
		return // a done callback may still run: leave q to the collector
	}
	q.spans = q.spans[:0]
	if q.body.Cap() > maxPooledBody {
		q.body = bytes.Buffer{}
	}
	if cap(q.ev.Original) > maxPooledBody {
		q.ev = pipeline.Event{}
	}
	q.body.Reset()
	h.pool.Put(q)
}

// serve reads, validates and publishes the body and answers. It returns
// false when q may still be used by a done callback.
func (h *Handler) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, route string, split splitFunc, start time.Time, q *request) bool {
	if r.ContentLength > 0 {
		q.body.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	// A client that sends its body slowly must not hold its turn longer
	// than the request may take, whatever the server's ReadTimeout. The
	// deadline is lifted once the body is in, so that it cannot cancel
	// r's context while the request waits for Kafka.
	rc := http.NewResponseController(w)
	deadline, _ := ctx.Deadline()
	rc.SetReadDeadline(deadline) // an error means not supported: no bound
	_, err := q.body.ReadFrom(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	rc.SetReadDeadline(time.Time{})
	if err != nil {
		switch _, tooLarge := errors.AsType[*http.MaxBytesError](err); {
		case tooLarge:
			h.reject(w, r, route, http.StatusRequestEntityTooLarge, "too_large", h.tooLarge(), -1, start)
		case errors.Is(err, os.ErrDeadlineExceeded):
			h.reject(w, r, route, http.StatusRequestTimeout, "read_timeout", "the body did not arrive within "+h.cfg.AckTimeout.String(), -1, start)
		default:
			h.reject(w, r, route, http.StatusBadRequest, "read_error", "read body: "+err.Error(), -1, start)
		}
		return true
	}
	body := q.body.Bytes()
	if route == RouteWebhooks {
		split = h.webhookSplit(r.URL.Path, q, time.Now())
	}
	if q.spans, err = split(q.spans[:0], body, h.cfg.MaxEvents); err != nil {
		var be *bodyError
		errors.As(err, &be)
		code := http.StatusBadRequest
		if be.reason == reasonTooMany {
			code = http.StatusRequestEntityTooLarge
		}
		h.reject(w, r, route, code, be.reason, be.msg, -1, start)
		return true
	}

	a := &q.acks
	a.reset()
	now := time.Now()
	e := &q.ev
	published := 0
	var pubErr error
	for _, sp := range q.spans {
		switch {
		case route == RouteSyslog:
			h.fillSyslog(e, body[sp.start:sp.end], r.RemoteAddr, now)
		case route == RouteWebhooks:
			e = q.webhook[sp.start]
			e.LogSource = r.RemoteAddr
			e.ID = record.ID(e)
		default:
			q.scratch = fillJSON(e, body, sp, r.RemoteAddr, now, q.scratch)
		}
		if pubErr = h.pub.Publish(ctx, e, a.done); pubErr != nil {
			break
		}
		published++
	}
	q.ev.Reset()
	clear(q.webhook)
	q.webhook = q.webhook[:0]
	a.seal(published)
	complete := true
	select {
	case <-a.all:
	case <-ctx.Done():
		complete = false
	}
	acked, failed, ackErr := a.result()
	h.m.events.WithLabelValues(route).Add(float64(acked))
	n := len(q.spans)
	if acked == n {
		h.reply(w, route, http.StatusAccepted, strconv.AppendInt(append(q.scratch[:0], `{"accepted":`...), int64(n), 10), start, '}')
		return true
	}

	var msg string
	switch {
	case pubErr != nil:
		msg = fmt.Sprintf("publish event %d of %d: %v", published+1, n, pubErr)
	case failed > 0:
		msg = fmt.Sprintf("Kafka did not acknowledge %d of %d events: %v", failed, n, ackErr)
	default:
		msg = fmt.Sprintf("Kafka did not acknowledge %d of %d events within %s", n-acked, n, h.cfg.AckTimeout)
	}
	reason := "publish_failed"
	if r.Context().Err() != nil {
		reason, msg = "canceled", "client went away: "+msg
	}
	msg += fmt.Sprintf("; %d acknowledged (a retry may duplicate them)", acked)
	w.Header().Set("Retry-After", h.retryAfter)
	h.reject(w, r, route, http.StatusServiceUnavailable, reason, msg, acked, start)
	return complete
}

// fillSyslog makes e the event of one syslog line.
func (h *Handler) fillSyslog(e *pipeline.Event, line []byte, remote string, now time.Time) {
	e.Reset()
	e.Original = append(e.Original, line...)
	e.LogSource = remote
	e.Created = now
	h.parser.ParseRecord(e)
}

// authorize checks the bearer token, returning "" when it is valid, else
// "missing" or "invalid".
func (h *Handler) authorize(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if v == "" {
		return "missing"
	}
	scheme, tok, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "invalid"
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], h.token[:]) != 1 {
		return "invalid"
	}
	return ""
}

// checkReady calls Ready, logging when the answer changes.
func (h *Handler) checkReady() error {
	err := h.ready()
	if err != nil {
		if h.notReady.CompareAndSwap(false, true) {
			h.log.Warn("kafka not ready: answering ingest requests 503", "error", err)
		}
	} else if h.notReady.CompareAndSwap(true, false) {
		h.log.Info("kafka ready again: accepting ingest requests")
	}
	return err
}

func (h *Handler) tooLarge() string {
	return fmt.Sprintf("request body larger than %d bytes", h.cfg.MaxBodyBytes)
}

// Header values shared by every answer, set without allocating; net/http
// only reads them.
var (
	jsonType = []string{"application/json"}
	nosniff  = []string{"nosniff"}
)

// reply writes a JSON answer; suffix bytes are appended to body.
func (h *Handler) reply(w http.ResponseWriter, route string, code int, body []byte, start time.Time, suffix ...byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonType
	hdr["X-Content-Type-Options"] = nosniff
	w.WriteHeader(code)
	w.Write(append(append(body, suffix...), '\n'))
	h.m.answered(route, code, start)
}

// reject answers code with {"error": msg} (and "accepted" when not
// negative), counts it under reason and logs it: server-side failures as
// warnings, bad bodies as information, the rest (which anyone can cause)
// at debug level.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, route string, code int, reason, msg string, accepted int, start time.Time) {
	h.m.rejected.WithLabelValues(route, reason).Inc()
	level := slog.LevelDebug
	switch {
	case code >= 500 && reason != "not_ready":
		level = slog.LevelWarn
	case code == http.StatusBadRequest || code == http.StatusRequestTimeout || code == http.StatusRequestEntityTooLarge:
		level = slog.LevelInfo
	}
	h.log.Log(r.Context(), level, "request rejected", "route", route, "code", code, "reason", reason, "remote", r.RemoteAddr, "error", msg)
	var body []byte
	if accepted >= 0 {
		body, _ = json.Marshal(struct {
			Error    string `json:"error"`
			Accepted int    `json:"accepted"`
		}{msg, accepted})
	} else {
		body, _ = json.Marshal(struct {
			Error string `json:"error"`
		}{msg})
	}
	h.reply(w, route, code, body, start)
}

// acks collects the done callbacks of one request's events.
type acks struct {
	mu       sync.Mutex
	sent     int // events published; valid once sealed
	got, ok  int // callbacks received, of which successful
	err      error
	sealed   bool
	signaled bool
	all      chan struct{} // receives once when every published event is done
	done     func(error)   // a.report, allocated once
}

func (a *acks) init() {
	a.all = make(chan struct{}, 1)
	a.done = a.report
}

func (a *acks) reset() {
	a.mu.Lock()
	a.sent, a.got, a.ok, a.err, a.sealed, a.signaled = 0, 0, 0, nil, false, false
	a.mu.Unlock()
}

// report is the done callback handed to Publish.
func (a *acks) report(err error) {
	a.mu.Lock()
	a.got++
	if err == nil {
		a.ok++
	} else if a.err == nil {
		a.err = err
	}
	a.signalLocked()
	a.mu.Unlock()
}

// seal says that n events were published: no more callbacks are expected.
func (a *acks) seal(n int) {
	a.mu.Lock()
	a.sealed, a.sent = true, n
	a.signalLocked()
	a.mu.Unlock()
}

func (a *acks) signalLocked() {
	if a.sealed && !a.signaled && a.got >= a.sent {
		a.signaled = true
		a.all <- struct{}{}
	}
}

// result returns the successful and failed callbacks so far and the first
// failure.
func (a *acks) result() (ok, failed int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok, a.got - a.ok, a.err
}
