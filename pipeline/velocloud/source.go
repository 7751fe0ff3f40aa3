// Package velocloud is vpipe's VeloCloud Orchestrator (VCO) event source:
// it polls the VCO Portal API's event/getEnterpriseEvents for each
// enterprise, normalises the events with parsers/velocloud.ParseEvent
// (dataset velocloud.event, organization.id / organization.name = the
// enterprise) and publishes them to <prefix>velocloud keyed by
// enterprise id. It replaces the cron job of kurtcms/vco-api-ent-event
// (shared/reference/apis.md §4.5) and fixes what that job loses.
//
// How it reads (shared/reference/apis.md §4.3):
//
//   - Each enterprise has a cursor: every window before it has been read.
//     A poll, every Interval, reads [cursor-Lookback, now]. The overlap
//     finds events that reached the VCO late (the swagger warns that data
//     for time t may appear only by t+10 min); events already published
//     are recognised by their VCO id and skipped. An event that reaches
//     the VCO more than Lookback (plus Interval) after its eventTime is
//     not found: set Lookback above the VCO's delay.
//   - The v1 method has no paging (metaData.more only says the answer was
//     cut at filter.limit). A full answer is not used: the window is read
//     again in halves, down to MinWindow; the window length then grows
//     back while answers are small. A MinWindow window that is still full
//     is published as far as it goes and counted as a gap.
//   - Windows are read oldest first and the events of each answer are
//     published in eventTime order (then id), so a consumer sees each
//     enterprise's events in order, except that a late event comes after
//     events newer than it.
//   - Errors: 429 pauses every request of the source for Retry-After (or
//     RateLimitBackoff, 5 s as the swagger advises); 401 with a password
//     logs in again once, then backs off like 5xx, network errors and
//     timeouts, and 4xx and answers that are not JSON at all (a proxy's
//     error page), are retried with exponential backoff for as long as
//     they last: the cursor does not move, the lag metric grows, each
//     failure is logged, nothing is skipped. A broken JSON answer is
//     retried MaxAttempts times, then the window is split, and a MinWindow
//     window that still fails is skipped: a gap, logged with its time
//     range and counted in vpipe_velocloud_gaps_total.
//   - Checkpoint per enterprise (key <CheckpointPrefix><enterprise id>,
//     see pipeline/checkpoint): the cursor and the ids of the events
//     published within the overlap, written after Kafka acknowledged every
//     event of a window. A restart resumes there; a crash between the
//     acknowledgement and the checkpoint publishes the last window's
//     events again (the same event.id), which the ndjson stage drops.
package velocloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vcoevent "github.com/vpipe/vpipe/parsers/velocloud"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Account types: which login endpoint password auth uses and how "all
// enterprises" are listed.
const (
	// AccountEnterprise: an enterprise (customer) user; sees its own
	// enterprise (enterprise/getEnterprise).
	AccountEnterprise = "enterprise"
	// AccountPartner: a partner (MSP) user; sees the enterprises it
	// manages (enterpriseProxy/getEnterpriseProxyEnterprises).
	AccountPartner = "partner"
	// AccountOperator: an operator user (login/operatorLogin); sees every
	// enterprise (network/getNetworkEnterprises).
	AccountOperator = "operator"
)

// Config configures a Source. Zero fields take the defaults named.
type Config struct {
	// Name names the source: the source label on metrics, the log
	// component, and part of the checkpoint keys. Required.
	Name string
	// Client is the VCO and how to authenticate; Client.Auth.Operator is
	// set from Account.
	Client ClientConfig
	// Account is enterprise (default), partner or operator.
	Account string
	// Enterprises lists the enterprises to poll, each an id ("42") or a
	// name as the VCO lists it. Empty: every enterprise the account sees,
	// listed again every RefreshEnterprises.
	Enterprises []string
	// Interval is the time between polls of an enterprise (default 1m;
	// the API guide asks for at most one events call a minute).
	Interval time.Duration
	// Lookback is how far before the cursor each poll reads again, to
	// find late events (default 15m, above the 10 min the VCO documents).
	Lookback time.Duration
	// Backfill is how far back the first poll of an enterprise without a
	// checkpoint reads (default 1h).
	Backfill time.Duration
	// MaxWindow is the longest window one request asks for (default 1h);
	// MinWindow the shortest a full answer is split down to (default 1s).
	MaxWindow, MinWindow time.Duration
	// PageLimit is filter.limit (default 2048, the VCO's default).
	PageLimit int
	// Concurrency bounds the requests in flight to this VCO (default 2;
	// the VCO limits concurrency and advises only a handful).
	Concurrency int
	// MinBackoff and MaxBackoff bound the exponential backoff after a
	// failed request (defaults 1s and 5m); RateLimitBackoff is the pause
	// after a 429 without Retry-After (default 5s).
	MinBackoff, MaxBackoff, RateLimitBackoff time.Duration
	// MaxAttempts is how often a window whose answer is broken JSON is
	// tried before it is split, and at MinWindow skipped as a gap
	// (default 5).
	MaxAttempts int
	// RefreshEnterprises is how often the enterprises are resolved again
	// (default 10m): new ones start, renamed ones follow, and with an
	// empty Enterprises, removed ones stop.
	RefreshEnterprises time.Duration
	// ShutdownTimeout bounds, after ctx ended, the wait for Kafka's
	// acknowledgements and the last checkpoint (default 10s).
	ShutdownTimeout time.Duration
	// CheckpointPrefix prefixes the checkpoint keys (default
	// "velocloud/<Name>/").
	CheckpointPrefix string
}

// WithDefaults returns c with every unset field given its default.
func (c Config) WithDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Account == "" {
		c.Account = AccountEnterprise
	}
	def(&c.Interval, time.Minute)
	def(&c.Lookback, 15*time.Minute)
	def(&c.Backfill, time.Hour)
	def(&c.MaxWindow, time.Hour)
	def(&c.MinWindow, time.Second)
	def(&c.MinBackoff, time.Second)
	def(&c.MaxBackoff, 5*time.Minute)
	def(&c.RateLimitBackoff, 5*time.Second)
	def(&c.RefreshEnterprises, 10*time.Minute)
	def(&c.ShutdownTimeout, 10*time.Second)
	if c.PageLimit == 0 {
		c.PageLimit = 2048
	}
	if c.Concurrency == 0 {
		c.Concurrency = 2
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.CheckpointPrefix == "" && c.Name != "" {
		c.CheckpointPrefix = "velocloud/" + c.Name + "/"
	}
	c.Client.Auth.Operator = c.Account == AccountOperator
	return c
}

// Validate reports every problem of c (after WithDefaults) at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		bad("name", "missing")
	}
	switch c.Account {
	case AccountEnterprise, AccountPartner, AccountOperator:
	default:
		bad("account", "%q is not one of enterprise, partner, operator", c.Account)
	}
	for i, e := range c.Enterprises {
		if strings.TrimSpace(e) == "" {
			bad(fmt.Sprintf("enterprises[%d]", i), "empty")
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"interval", c.Interval}, {"lookback", c.Lookback}, {"max_window", c.MaxWindow},
		{"min_window", c.MinWindow}, {"min_backoff", c.MinBackoff}, {"max_backoff", c.MaxBackoff},
		{"rate_limit_backoff", c.RateLimitBackoff}, {"refresh_enterprises", c.RefreshEnterprises},
		{"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v <= 0 {
			bad(d.name, "must be positive")
		}
	}
	if c.Backfill < 0 {
		bad("backfill", "negative")
	}
	if c.MinWindow > c.MaxWindow {
		bad("min_window", "%s is above max_window %s", c.MinWindow, c.MaxWindow)
	}
	if c.MaxBackoff < c.MinBackoff {
		bad("max_backoff", "%s is below min_backoff %s", c.MaxBackoff, c.MinBackoff)
	}
	if c.PageLimit < 1 {
		bad("page_limit", "must be at least 1")
	}
	if c.Concurrency < 1 {
		bad("concurrency", "must be at least 1")
	}
	if c.MaxAttempts < 1 {
		bad("max_attempts", "must be at least 1")
	}
	return errors.Join(errs...)
}

// Checkpoints stores each enterprise's position. *checkpoint.Store
// implements it. Get answers from memory; Put returns once the value is
// durable, and its errors are retryable.
type Checkpoints interface {
	Get(key string) ([]byte, bool)
	Put(ctx context.Context, key string, value []byte) error
}

// Deps are what a Source works with.
type Deps struct {
	// Publisher receives the events (required).
	Publisher pipeline.Publisher
	// Checkpoints, or OpenCheckpoints, which Run calls (again after a
	// backoff, until it succeeds) before it polls; what OpenCheckpoints
	// returned is closed when Run returns if it is an io.Closer. One of
	// the two is required.
	Checkpoints     Checkpoints
	OpenCheckpoints func(context.Context) (Checkpoints, error)
	// Metrics may be shared by several sources; nil creates unregistered
	// ones.
	Metrics *Metrics
	// Log nil discards logs.
	Log *slog.Logger
}

// Source polls one VCO. Create it with New and start it with Run.
type Source struct {
	cfg     Config
	client  *Client
	host    string
	pub     pipeline.Publisher
	ckpt    Checkpoints
	open    func(context.Context) (Checkpoints, error)
	m       *Metrics
	log     *slog.Logger
	sem     chan struct{}
	pause   atomic.Int64 // unix nanos: no request before then (429)
	started atomic.Bool
}

// New checks cfg (after its defaults) and returns a Source. It does not
// contact the VCO or Kafka: Run does.
func New(cfg Config, deps Deps) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("velocloud source %q: %w", cfg.Name, err)
	}
	if deps.Publisher == nil {
		return nil, fmt.Errorf("velocloud source %q: no publisher", cfg.Name)
	}
	if deps.Checkpoints == nil && deps.OpenCheckpoints == nil {
		return nil, fmt.Errorf("velocloud source %q: no checkpoints", cfg.Name)
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(nil)
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	m := deps.Metrics
	cc := cfg.Client
	observe, onLogin := cc.Observe, cc.OnLogin
	cc.Observe = func(method, result string, d time.Duration) {
		m.requests.WithLabelValues(cfg.Name, method, result).Inc()
		m.duration.WithLabelValues(cfg.Name, method).Observe(d.Seconds())
		if observe != nil {
			observe(method, result, d)
		}
	}
	cc.OnLogin = func(result string) {
		m.logins.WithLabelValues(cfg.Name, result).Inc()
		if onLogin != nil {
			onLogin(result)
		}
	}
	client, err := NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("velocloud source %q: %w", cfg.Name, err)
	}
	return &Source{
		cfg:    cfg,
		client: client,
		host:   client.Host(),
		pub:    deps.Publisher,
		ckpt:   deps.Checkpoints,
		open:   deps.OpenCheckpoints,
		m:      m,
		log:    deps.Log.With("component", "velocloud", "source", cfg.Name),
		sem:    make(chan struct{}, cfg.Concurrency),
	}, nil
}

// Run resolves the enterprises and polls each until ctx ends; then it
// waits (under ShutdownTimeout) for Kafka to acknowledge what it
// published, writes the last checkpoints and returns nil. It does not
// return on VCO, Kafka or checkpoint errors: it logs, counts and retries
// them. It may be called once.
func (s *Source) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("velocloud source %q: Run called twice", s.cfg.Name)
	}
	if s.ckpt == nil {
		ck, ok := s.openCheckpoints(ctx)
		if !ok {
			return nil
		}
		s.ckpt = ck
		if c, ok := ck.(io.Closer); ok {
			defer c.Close()
		}
	}
	s.log.Info("velocloud source started", "url", s.cfg.Client.URL, "account", s.cfg.Account,
		"enterprises", len(s.cfg.Enterprises), "interval", s.cfg.Interval, "lookback", s.cfg.Lookback)
	pollers := map[int64]*poller{}
	var wg sync.WaitGroup
	defer func() {
		for _, p := range pollers {
			p.cancel()
		}
		wg.Wait()
		s.log.Info("velocloud source stopped")
	}()
	for attempt := 0; ; {
		ents, err := s.resolve(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.log.Error("resolve enterprises", "error", err, "attempt", attempt+1)
		}
		s.reconcile(ctx, &wg, pollers, ents, err == nil)
		wait := s.cfg.RefreshEnterprises
		if err != nil && len(pollers) == 0 {
			wait = backoff.Delay(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
			attempt++
		} else {
			attempt = 0
		}
		if !backoff.Wait(ctx, wait) {
			return nil
		}
	}
}

// openCheckpoints calls OpenCheckpoints until it succeeds or ctx ends.
func (s *Source) openCheckpoints(ctx context.Context) (Checkpoints, bool) {
	for attempt := 0; ; attempt++ {
		ck, err := s.open(ctx)
		if err == nil {
			return ck, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		d := backoff.Delay(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
		s.log.Error("open checkpoints; retrying", "error", err, "attempt", attempt+1, "backoff", d)
		if !backoff.Wait(ctx, d) {
			return nil, false
		}
	}
}

// reconcile starts pollers for new enterprises, renames known ones and,
// when every enterprise is polled and the listing is complete, stops the
// pollers of enterprises that are gone.
func (s *Source) reconcile(ctx context.Context, wg *sync.WaitGroup, pollers map[int64]*poller, ents []EnterpriseInfo, complete bool) {
	now := map[int64]bool{}
	for _, e := range ents {
		now[e.ID] = true
		if p, ok := pollers[e.ID]; ok {
			if old := p.name(); old != e.Name {
				s.log.Info("enterprise renamed", "enterprise_id", e.ID, "old", old, "new", e.Name)
				p.setName(e.Name)
				s.m.setInfo(s.cfg.Name, e.ID, old, e.Name)
			}
			continue
		}
		p := s.newPoller(e)
		pctx, cancel := context.WithCancel(ctx)
		p.cancel = cancel
		pollers[e.ID] = p
		s.m.setInfo(s.cfg.Name, e.ID, "", e.Name)
		wg.Go(func() { p.run(pctx) })
	}
	if !complete || len(s.cfg.Enterprises) > 0 {
		return
	}
	for id, p := range pollers {
		if !now[id] {
			s.log.Warn("enterprise no longer listed; stopping its poller", "enterprise_id", id, "enterprise", p.name())
			p.cancel()
			delete(pollers, id)
			s.m.forget(s.cfg.Name, id, p.name())
		}
	}
}

// resolve returns the enterprises to poll. With a configured list it
// returns those it found and an error naming the others.
func (s *Source) resolve(ctx context.Context) ([]EnterpriseInfo, error) {
	needList := len(s.cfg.Enterprises) == 0
	for _, e := range s.cfg.Enterprises {
		if _, err := strconv.ParseInt(strings.TrimSpace(e), 10, 64); err != nil {
			needList = true
		}
	}
	var listed []EnterpriseInfo
	if needList {
		var err error
		switch s.cfg.Account {
		case AccountOperator, AccountPartner:
			listed, err = s.client.ListEnterprises(ctx, s.cfg.Account == AccountOperator)
		default:
			var e EnterpriseInfo
			e, err = s.client.GetEnterprise(ctx, 0)
			listed = []EnterpriseInfo{e}
		}
		if err != nil {
			return nil, fmt.Errorf("list enterprises: %w", err)
		}
	}
	if len(s.cfg.Enterprises) == 0 {
		return listed, nil
	}
	var out []EnterpriseInfo
	var errs []error
	have := map[int64]bool{}
	add := func(e EnterpriseInfo) {
		if !have[e.ID] {
			have[e.ID] = true
			out = append(out, e)
		}
	}
next:
	for _, want := range s.cfg.Enterprises {
		want = strings.TrimSpace(want)
		if id, err := strconv.ParseInt(want, 10, 64); err == nil {
			for _, e := range listed {
				if e.ID == id {
					add(e)
					continue next
				}
			}
			e, err := s.client.GetEnterprise(ctx, id)
			if err != nil {
				errs = append(errs, fmt.Errorf("enterprise %d: %w", id, err))
				continue
			}
			add(e)
			continue
		}
		var found []EnterpriseInfo
		for _, e := range listed {
			if e.Name == want {
				found = append(found, e)
			}
		}
		switch len(found) {
		case 1:
			add(found[0])
		case 0:
			errs = append(errs, fmt.Errorf("enterprise %q: not among the %d the account sees", want, len(listed)))
		default:
			errs = append(errs, fmt.Errorf("enterprise %q: %d enterprises have that name; configure the id", want, len(found)))
		}
	}
	return out, errors.Join(errs...)
}

// fetch makes one event/getEnterpriseEvents request within the source's
// concurrency limit, after any 429 pause.
func (s *Source) fetch(ctx context.Context, enterpriseID int64, start, end time.Time) (EventsPage, error) {
	for {
		until := s.pause.Load()
		d := time.Until(time.Unix(0, until))
		if d <= 0 {
			break
		}
		if !backoff.Wait(ctx, d) {
			return EventsPage{}, ctx.Err()
		}
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return EventsPage{}, ctx.Err()
	}
	defer func() { <-s.sem }()
	return s.client.EnterpriseEvents(ctx, enterpriseID, start, end, s.cfg.PageLimit)
}

// pauseFor holds every request of the source for d (a 429's penalty).
func (s *Source) pauseFor(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := s.pause.Load()
		if cur >= until || s.pause.CompareAndSwap(cur, until) {
			return
		}
	}
}

// EventID is the event.id of a VCO event: 16 hex digits of FNV-1a 64
// over the VCO's host name, the enterprise id and the VCO event id, so
// that reading the event again (another poll, a restart, another vpipe
// process) yields the same id. raw, used when the event has no usable id
// (0), is its JSON.
func EventID(dst []byte, host string, enterpriseID, eventID int64, raw []byte) []byte {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	var h uint64 = offset64
	mix := func(b []byte) {
		for _, c := range b {
			h = (h ^ uint64(c)) * prime64
		}
		h *= prime64 // separator
	}
	mix([]byte(host))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(enterpriseID))
	mix(n[:])
	if eventID != 0 {
		binary.BigEndian.PutUint64(n[:], uint64(eventID))
		mix(n[:])
	} else {
		mix(raw)
	}
	binary.BigEndian.PutUint64(n[:], h)
	return hex.AppendEncode(dst, n[:])
}

// dedupeKey is the key of the seen set: the VCO id, or for an event
// without one a hash of its JSON (negative, so it never meets an id).
func dedupeKey(e *pipeline.Event) int64 {
	if id := e.VMware.VeloCloud.EventID; id > 0 {
		return id
	}
	const offset64, prime64 = 14695981039346656037, 1099511628211
	var h uint64 = offset64
	for _, c := range e.Original {
		h = (h ^ uint64(c)) * prime64
	}
	return int64(h | 1<<63)
}

// appendCompact appends raw to dst without insignificant white space
// when it has line breaks or tabs (an NDJSON line must not), else as it
// is.
func appendCompact(dst, raw []byte) []byte {
	if bytes.IndexAny(raw, "\n\r\t") < 0 {
		return append(dst, raw...)
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append(dst, raw...)
	}
	return append(dst, b.Bytes()...)
}

// sortEvents orders events by eventTime, then VCO id.
func sortEvents(evs []*pipeline.Event) {
	slices.SortStableFunc(evs, func(a, b *pipeline.Event) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		return cmpInt(a.VMware.VeloCloud.EventID, b.VMware.VeloCloud.EventID)
	})
}

// normalise turns one data[] object into an event of enterprise ent.
func (p *poller) normalise(e *pipeline.Event, raw []byte, now time.Time) {
	e.Reset()
	e.Original = appendCompact(e.Original[:0], raw)
	if err := vcoevent.ParseEvent(e, e.Original); err != nil {
		// Never dropped: the event keeps its JSON and says what failed.
		e.Dataset = pipeline.DatasetVeloCloudEvent
		e.Observer.Vendor = "VMware"
		e.Observer.Product = "SD-WAN Orchestrator"
		e.Error = err.Error()
		p.m.parseErrors.Inc()
	}
	e.Created = now
	e.Observer.Hostname = p.s.host
	v := &e.VMware.VeloCloud
	v.EnterpriseID = p.id
	name := p.name()
	if v.EnterpriseName == "" {
		v.EnterpriseName = name
	}
	var buf [32]byte
	e.Organization.ID = e.Intern(strconv.AppendInt(buf[:0], p.id, 10))
	e.Organization.Name = name
	e.ID = e.Intern(EventID(buf[:0], p.s.host, p.id, v.EventID, e.Original))
}
