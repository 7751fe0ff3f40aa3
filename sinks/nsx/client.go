// Package nsx is vpipe's client for the NSX APIs that tag virtual machines:
// the NSX-T / NSX 4.x Policy API, the NSX-T Manager API's add_tags and
// remove_tags, VMware Cloud on AWS (CSP token auth, the SDDC's reverse
// proxy) and NSX for vSphere security tags (XML). It finds VMs by their
// NSX external_id, which is the vCenter instance UUID, never by name.
//
// Its one write operation, UpdateTags, is a read-modify-write of one VM's
// tags that keeps every tag it was not asked to change (NSX's
// update_tags replaces the whole list), and that is serialised per VM
// within the process. Requests are bounded in number, retried on 429, 503,
// 504 and network errors with backoff (honouring Retry-After), and their
// errors carry NSX's error code and message (see Error).
//
// API contracts: shared/reference/apis.md §1–2, from the NSX-T REST API
// reference (https://developer.broadcom.com/xapis/nsx-t-data-center-rest-api/latest/),
// vmware/vsphere-automation-sdk-go's generated metadata and
// vmware-archive/nsxraml for NSX-V. The simulator package beside this one
// serves the same endpoints.
package nsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Tag is an NSX tag. Scope is at most 128 characters, Tag at most 256
// (https://developer.broadcom.com/xapis/nsx-t-data-center-rest-api/latest/types_Tag.html).
type Tag struct {
	Scope string `json:"scope"`
	Tag   string `json:"tag"`
}

// Tag length limits of NSX.
const (
	MaxScopeLen = 128
	MaxTagLen   = 256
)

// String is "scope|tag", as NSX group conditions write a tag.
func (t Tag) String() string { return t.Scope + "|" + t.Tag }

// Valid reports whether NSX accepts t: a non-empty tag and both within
// their length limits.
func (t Tag) Valid() bool {
	return t.Tag != "" && len(t.Scope) <= MaxScopeLen && len(t.Tag) <= MaxTagLen
}

// VM is a virtual machine as NSX knows it.
type VM struct {
	// ExternalID is NSX's external_id: the vCenter instance UUID
	// (config.instanceUuid).
	ExternalID  string `json:"external_id"`
	DisplayName string `json:"display_name,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
}

// Change is what UpdateTags changes: tags to add and tags to remove.
type Change struct {
	Add    []Tag `json:"add,omitempty"`
	Remove []Tag `json:"remove,omitempty"`
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool { return len(c.Add) == 0 && len(c.Remove) == 0 }

// Client talks to one NSX. Create it with New; it is safe for concurrent
// use.
type Client struct {
	cfg  Config
	hc   *http.Client
	auth authenticator
	be   backend
	log  *slog.Logger
	sem  chan struct{}

	baseMu sync.Mutex
	base   string // resolved NSX base URL, without trailing slash

	seed  maphash.Seed
	locks [lockStripes]sync.Mutex

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	logins   *prometheus.CounterVec
	added    prometheus.Counter
	removed  prometheus.Counter
}

// lockStripes is the number of per-VM locks: VMs whose ids hash alike
// share one, which only serialises them.
const lockStripes = 1024

// New checks cfg (after its defaults) and returns a Client. m may be shared
// by several clients; nil creates unregistered metrics. log nil discards.
// New does not contact NSX.
func New(cfg Config, m *Metrics, log *slog.Logger) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nsx %s: %w", cfg.Name, err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg.TLS
		t.MaxIdleConnsPerHost = cfg.MaxConcurrency
		tr = t
	}
	c := &Client{
		cfg:      cfg,
		hc:       &http.Client{Transport: tr, Timeout: cfg.Timeout},
		log:      log.With("component", "nsx", "nsx", cfg.Name),
		sem:      make(chan struct{}, cfg.MaxConcurrency),
		base:     trimURL(cfg.URL),
		seed:     maphash.MakeSeed(),
		requests: m.requests,
		latency:  m.latency,
		retries:  m.retries,
		logins:   m.logins,
		added:    m.changes.WithLabelValues(cfg.Name, "add"),
		removed:  m.changes.WithLabelValues(cfg.Name, "remove"),
	}
	switch cfg.Auth {
	case AuthSession:
		c.auth = &sessionAuth{c: c}
	case AuthVMC:
		c.auth = &vmcAuth{c: c}
	default:
		c.auth = basicAuth{user: cfg.Username, pass: cfg.Password}
	}
	switch cfg.API {
	case APIManager:
		c.be = managerAPI{c}
	case APINSXV:
		c.be = &nsxvAPI{c: c, sep: cfg.NSXVSeparator}
	default:
		c.be = policyAPI{c: c, ep: cfg.EnforcementPoint}
	}
	if cfg.TLS != nil && cfg.TLS.InsecureSkipVerify {
		c.log.Warn("TLS certificate verification of NSX is off (insecure)")
	}
	return c, nil
}

// backend is one API's way of reading and writing VM tags.
type backend interface {
	// vm returns the VM with its current tags; ErrNotFound if NSX does not
	// know it.
	vm(ctx context.Context, id string) (VM, error)
	// byName returns the VMs whose display name is name.
	byName(ctx context.Context, name string) ([]VM, error)
	// list calls fn with every VM, a page at a time.
	list(ctx context.Context, fn func([]VM) error) error
	// apply makes NSX's tags of vm (read just before) change by ch, whose
	// tags are known to be absent (Add) or present (Remove).
	apply(ctx context.Context, vm VM, ch Change) error
}

// VM returns the VM whose external_id is id (the vCenter instance UUID)
// with its current tags. errors.Is(err, ErrNotFound) when NSX does not know
// it.
func (c *Client) VM(ctx context.Context, id string) (VM, error) {
	return c.be.vm(ctx, id)
}

// VMsByName returns the VMs NSX knows by display name name (several VMs may
// share one). ErrUnsupported on NSX-V. Use it to resolve what a person
// typed; identify VMs by external_id otherwise.
func (c *Client) VMsByName(ctx context.Context, name string) ([]VM, error) {
	return c.be.byName(ctx, name)
}

// ListVMs calls fn with every VM NSX knows, a page at a time, with their
// tags; it stops at fn's first error and returns it. fn must not keep the
// slice. On NSX-V, whose API lists tags, not VMs, it lists the VMs that
// have at least one security tag.
func (c *Client) ListVMs(ctx context.Context, fn func([]VM) error) error {
	return c.be.list(ctx, fn)
}

// UpdateTags changes the tags of the VM whose external_id is id: it reads
// the VM's current tags, calls decide with them, and applies the Change
// decide returns, keeping every other tag. Tags of Add already on the VM
// and tags of Remove not on it are left out; UpdateTags returns the
// Change it made (empty when there was nothing to do, without writing).
//
// Calls for one VM are serialised within the process, so decide sees the
// tags as the previous call left them. (Across processes, the policy API's
// replace is not atomic: run one writer per VM, as Kafka's partitioning by
// VM does for the stages.) decide runs with that lock held and must not
// call the Client.
//
// It returns nil only when NSX confirmed the change. errors.Is(err,
// ErrNotFound) when NSX does not know the VM; an invalid tag (see
// Tag.Valid) is a permanent error before anything is written.
func (c *Client) UpdateTags(ctx context.Context, id string, decide func(current []Tag) Change) (Change, error) {
	if id == "" {
		return Change{}, permanentf("nsx: update tags: empty vm id")
	}
	mu := &c.locks[maphash.String(c.seed, id)%lockStripes]
	mu.Lock()
	defer mu.Unlock()
	vm, err := c.be.vm(ctx, id)
	if err != nil {
		return Change{}, err
	}
	ch := effective(vm.Tags, decide(slices.Clone(vm.Tags)))
	if ch.Empty() {
		return ch, nil
	}
	for _, t := range ch.Add {
		if !t.Valid() {
			return Change{}, permanentf("nsx: tag %q on vm %s: empty or too long (scope ≤ %d, tag ≤ %d characters)", t, id, MaxScopeLen, MaxTagLen)
		}
	}
	if err := c.be.apply(ctx, vm, ch); err != nil {
		return Change{}, fmt.Errorf("update tags of vm %s: %w", id, err)
	}
	c.added.Add(float64(len(ch.Add)))
	c.removed.Add(float64(len(ch.Remove)))
	return ch, nil
}

// AddTags adds tags to the VM whose external_id is id, keeping its other
// tags; see UpdateTags.
func (c *Client) AddTags(ctx context.Context, id string, tags ...Tag) (Change, error) {
	return c.UpdateTags(ctx, id, func([]Tag) Change { return Change{Add: tags} })
}

// RemoveTags removes tags from the VM whose external_id is id, keeping its
// other tags; see UpdateTags.
func (c *Client) RemoveTags(ctx context.Context, id string, tags ...Tag) (Change, error) {
	return c.UpdateTags(ctx, id, func([]Tag) Change { return Change{Remove: tags} })
}

// API is the configured API: policy, manager or nsxv.
func (c *Client) API() string { return c.cfg.API }

// Name is the configured name (Config.Name).
func (c *Client) Name() string { return c.cfg.Name }

// Close ends the NSX session (Auth session) and releases connections.
func (c *Client) Close(ctx context.Context) error {
	err := c.auth.logout(ctx)
	c.hc.CloseIdleConnections()
	return err
}

// effective drops from ch what would change nothing given cur, and
// duplicates.
func effective(cur []Tag, ch Change) Change {
	var out Change
	for _, t := range ch.Add {
		if !slices.Contains(cur, t) && !slices.Contains(out.Add, t) {
			out.Add = append(out.Add, t)
		}
	}
	for _, t := range ch.Remove {
		if slices.Contains(cur, t) && !slices.Contains(out.Remove, t) && !slices.Contains(out.Add, t) {
			out.Remove = append(out.Remove, t)
		}
	}
	return out
}

// merged is cur with ch applied, in cur's order, added tags last.
func merged(cur []Tag, ch Change) []Tag {
	out := make([]Tag, 0, len(cur)+len(ch.Add))
	for _, t := range cur {
		if !slices.Contains(ch.Remove, t) {
			out = append(out, t)
		}
	}
	return append(out, ch.Add...)
}

func permanentf(format string, args ...any) error {
	return &Error{Op: "request", StatusCode: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// request is one HTTP call to NSX.
type request struct {
	op     string // metric label
	method string
	path   string // from the base URL, starting with "/"
	query  url.Values
	body   []byte
	ctype  string // Content-Type of body
	accept string // default application/json
	// ok lists the statuses that are success; default any 2xx.
	ok []int
}

// do sends r with auth, bounded concurrency and retries, and returns the
// body of a successful answer. A non-success answer is an *Error.
func (c *Client) do(ctx context.Context, r request) ([]byte, error) {
	base, err := c.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	opName := r.method + " " + r.path
	if a := r.query.Get("action"); a != "" {
		opName += "?action=" + a
	}
	renewed := false
	for attempt := 0; ; {
		gen := c.auth.generation()
		body, status, retryAfter, err := c.send(ctx, r, u)
		if err == nil && (status >= 200 && status < 300 && r.ok == nil || slices.Contains(r.ok, status)) {
			return body, nil
		}
		var e error
		reason := ""
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("nsx %s: %w", opName, ctx.Err())
			}
			e, reason = fmt.Errorf("nsx %s: %w", opName, err), "network"
		case (status == http.StatusUnauthorized || status == http.StatusForbidden) && c.auth.renewable() && !renewed:
			// The session or token expired: renew it (once per call; the
			// renewal is shared by the calls that saw the same one fail)
			// and send again at once.
			renewed = true
			if rerr := c.auth.renew(ctx, gen); rerr != nil {
				return nil, fmt.Errorf("%w (renewing the session: %w)", newError(opName, status, body, retryAfter), rerr)
			}
			c.retries.WithLabelValues(c.cfg.Name, "session").Inc()
			continue
		default:
			e = newError(opName, status, body, retryAfter)
			switch {
			case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
				reason = strconv.Itoa(status)
			case status >= 500 && status != http.StatusNotImplemented:
				reason = "5xx"
			default:
				return nil, e
			}
		}
		if c.cfg.MaxRetries < 0 || attempt >= c.cfg.MaxRetries {
			return nil, e
		}
		c.retries.WithLabelValues(c.cfg.Name, reason).Inc()
		d := c.backoff(attempt, retryAfter)
		attempt++
		c.log.Debug("nsx request failed; retrying", "op", opName, "reason", reason, "attempt", attempt, "backoff", d, "error", e)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (gave up retrying: %w)", e, ctx.Err())
		case <-t.C:
		}
	}
}

// send makes one attempt. status 0 with err means no answer.
func (c *Client) send(ctx context.Context, r request, u string) (body []byte, status int, retryAfter time.Duration, err error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, 0, ctx.Err()
	}
	defer func() { <-c.sem }()
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, 0, 0, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", r.ctype)
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	if err := c.auth.apply(ctx, req); err != nil {
		return nil, 0, 0, err
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	c.latency.WithLabelValues(c.cfg.Name, r.op).Observe(time.Since(start).Seconds())
	if err != nil {
		c.requests.WithLabelValues(c.cfg.Name, r.op, "error").Inc()
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	c.requests.WithLabelValues(c.cfg.Name, r.op, statusLabel(resp.StatusCode)).Inc()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read answer: %w", err)
	}
	return body, resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date
// (RFC 9110 §10.2.3). 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the wait before retry attempt+1: Retry-After when NSX gave
// one (capped at MaxBackoff), else exponential with jitter.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, c.cfg.MaxBackoff)
	}
	return backoff.Delay(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff)
}

// baseURL returns the NSX base URL, looking up the VMC reverse proxy the
// first time when it is not configured.
func (c *Client) baseURL(ctx context.Context) (string, error) {
	c.baseMu.Lock()
	defer c.baseMu.Unlock()
	if c.base != "" {
		return c.base, nil
	}
	va, ok := c.auth.(*vmcAuth)
	if !ok {
		return "", errors.New("nsx: no url")
	}
	u, err := va.proxyURL(ctx)
	if err != nil {
		// A wrong org or SDDC id is the operator's to fix: retryable,
		// whatever VMC answered.
		return "", fmt.Errorf("%v", err)
	}
	c.base = trimURL(u)
	c.log.Info("found the SDDC's NSX reverse proxy", "url", c.base)
	return c.base, nil
}
