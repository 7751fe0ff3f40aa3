// Package vcenter is vpipe's vCenter event source: it reads a vCenter's
// event history through an EventHistoryCollector on the root folder
// (recursive, every event type, tagging EventEx among them), a page at a
// time, normalises each event to vcenter.event (with parsers/vcenter's
// ParseEventJSON, from the event's JSON, which becomes event.original) and
// publishes it to <prefix>vcenter. Its position, the last event it
// delivered, is a checkpoint on the <prefix>checkpoints topic, written once
// Kafka acknowledged the events before it, so that a restart (or another
// process taking over) resumes without losing or repeating events. It
// re-logs in and recreates the collector after any failure (session
// expired, vCenter restarted, network lost), with backoff.
//
// API: govmomi's event.Manager and HistoryCollector (shared/reference/apis.md
// §3.2), the vSphere Web Services API's EventHistoryCollector
// (ReadNextEvents returns at most 1000 events). The way VEBA's router
// streams and checkpoints (apis.md §3.3) is the model, with its gaps
// closed: in-process reconnects, and resumption by time and event key so
// that nothing is delivered twice.
package vcenter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Checkpointer keeps the source's position; *checkpoint.Store implements
// it. Put returns nil once the position is durable.
type Checkpointer interface {
	Get(key string) ([]byte, bool)
	Put(ctx context.Context, key string, value []byte) error
}

// Config configures a Source. Zero fields take the defaults named.
type Config struct {
	// Name names the vCenter: vmware.vcenter.server on its events, the
	// checkpoint key "vcenter/<Name>", the vcenter label on metrics.
	// Required.
	Name string
	// Conn says how to reach it.
	Conn ConnConfig
	// PageSize is the most events read per ReadNextEvents call (vCenter
	// allows 1000). Default 1000.
	PageSize int
	// PollInterval is the wait after a read that found no new event.
	// Default 1s.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// StartLookback: on the very first start (no checkpoint), read the
	// events of this long before vCenter's current time. Default 0: new
	// events only.
	StartLookback time.Duration
	// EventTypes, when set, restricts the events read to these types
	// (vim.event class names such as "VmPoweredOnEvent", or EventEx type
	// ids such as "com.vmware.cis.tagging.attach"). Default: all.
	EventTypes []string
	// FlushTimeout bounds, after ctx ended, the wait for Kafka to
	// acknowledge the events already published and the last checkpoint
	// write. Default 30s.
	FlushTimeout time.Duration
}

// Defaults for Config.
const (
	DefaultPageSize     = 1000
	DefaultPollInterval = time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = time.Minute
	DefaultFlushTimeout = 30 * time.Second
)

// WithDefaults returns c with its unset fields given their defaults.
func (c Config) WithDefaults() Config {
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	return c
}

// Validate reports every problem of c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: missing"))
	}
	if c.Conn.URL == "" {
		errs = append(errs, errors.New("url: missing"))
	} else if u, err := url.Parse(c.Conn.URL); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("url: %q: want https://host", c.Conn.URL))
	}
	if c.Conn.Username == "" {
		errs = append(errs, errors.New("username: missing"))
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("page_size: %d is outside 1..1000", c.PageSize))
	}
	if c.PollInterval < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff || c.StartLookback < 0 || c.FlushTimeout < 0 {
		errs = append(errs, errors.New("durations: negative, or max_backoff below min_backoff"))
	}
	return errors.Join(errs...)
}

// Source polls one vCenter's event history into Kafka. Create it with New
// and run it with Run.
type Source struct {
	cfg Config
	pub pipeline.Publisher
	cp  Checkpointer
	m   sourceMetrics
	log *slog.Logger

	host string // vCenter host name, observer.hostname
	// pos is the position of the last event Kafka acknowledged, owned by
	// Run's goroutine.
	pos   position
	dirty bool // pos not yet written to the checkpoint
	// buf holds one event's JSON while it is converted.
	buf []byte
	ev  pipeline.Event
}

// resumeOverlap is how far before the checkpoint's time a resumed
// collector starts, in case vCenter's time filter is exclusive; what it
// reads again is recognised and skipped.
const resumeOverlap = time.Second

// New checks cfg and returns a Source that publishes to pub and keeps its
// position in cp (nil: no checkpoint, every start begins at vCenter's
// current time). m may be shared; nil creates unregistered metrics. New
// does not connect: Run does.
func New(cfg Config, pub pipeline.Publisher, cp Checkpointer, m *Metrics, log *slog.Logger) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vcenter source %q: %w", cfg.Name, err)
	}
	if pub == nil {
		return nil, fmt.Errorf("vcenter source %q: no publisher", cfg.Name)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host := cfg.Conn.URL
	if u, err := url.Parse(cfg.Conn.URL); err == nil {
		host = u.Hostname()
	}
	s := &Source{cfg: cfg, pub: pub, cp: cp, m: m.forSource(cfg.Name), host: host,
		log: log.With("component", "vcenter", "vcenter", cfg.Name)}
	if cfg.Conn.Insecure {
		s.log.Warn("TLS certificate verification of vCenter is off (insecure)")
	}
	return s, nil
}

// CheckpointKey is the checkpoint key of the vCenter named name.
func CheckpointKey(name string) string { return "vcenter/" + name }

// Run reads events until ctx ends, then waits (under FlushTimeout) for
// Kafka to acknowledge what it published, writes the checkpoint and returns
// nil. It does not return on vCenter or Kafka errors: it logs and counts
// them, and reconnects with backoff. Call it once.
func (s *Source) Run(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; {
		progressed, err := s.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if progressed {
			attempt = 0
		}
		d := backoff.Delay(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
		attempt++
		s.log.Warn("vcenter session ended; reconnecting", "error", err, "attempt", attempt, "backoff", d)
		if !backoff.Wait(ctx, d) {
			break
		}
	}
	s.flushCheckpoint(ctx)
	s.log.Info("vcenter source stopped", "key", s.pos.Key, "time", s.pos.Time)
	return nil
}

// session logs in, creates a collector at the checkpoint and reads until
// an error or ctx's end. progressed says whether it read anything.
func (s *Source) session(ctx context.Context) (progressed bool, err error) {
	conn, err := Dial(ctx, s.cfg.Conn, false)
	if err != nil {
		s.m.errors[errConnect].Inc()
		return false, err
	}
	defer conn.Logout(ctx)
	s.m.logins.Inc()

	if err := s.loadPosition(); err != nil {
		s.m.errors[errCheckpoint].Inc()
		return false, err
	}
	var begin time.Time
	resuming := !s.pos.Time.IsZero()
	if resuming {
		begin = s.pos.Time.Add(-resumeOverlap)
	} else {
		now, err := methods.GetCurrentTime(ctx, conn.VIM)
		if err != nil {
			s.m.errors[errConnect].Inc()
			return false, fmt.Errorf("vcenter current time: %w", err)
		}
		begin = now.Add(-s.cfg.StartLookback)
	}
	filter := types.EventFilterSpec{
		Entity: &types.EventFilterSpecByEntity{
			Entity:    conn.VIM.ServiceContent.RootFolder,
			Recursion: types.EventFilterSpecRecursionOptionAll,
		},
		Time:        &types.EventFilterSpecByTime{BeginTime: &begin},
		EventTypeId: s.cfg.EventTypes,
	}
	hc, err := event.NewManager(conn.VIM).CreateCollectorForEvents(ctx, filter)
	if err != nil {
		s.m.errors[errCollector].Inc()
		return false, fmt.Errorf("create event history collector: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		hc.Destroy(dctx)
		cancel()
	}()
	s.m.connected.Set(1)
	defer s.m.connected.Set(0)
	s.log.Info("reading vcenter events", "from", begin, "resume_key", s.pos.Key, "resuming", resuming)

	var lastKey int32
	haveLast := false
	for ctx.Err() == nil {
		evs, err := hc.ReadNextEvents(ctx, int32(s.cfg.PageSize))
		if err != nil {
			if ctx.Err() != nil {
				return progressed, nil
			}
			s.m.errors[errRead].Inc()
			return progressed, fmt.Errorf("read events: %w", err)
		}
		s.m.lastSuccess.SetToCurrentTime()
		if len(evs) == 0 {
			s.m.lag.Set(0)
			s.flushCheckpoint(ctx)
			if !backoff.Wait(ctx, s.cfg.PollInterval) {
				return progressed, nil
			}
			continue
		}
		progressed = true
		// Skip what the checkpoint already covers, at the start of a
		// resumed session only: later, a clock that stepped back must not
		// hide events.
		if resuming {
			n := 0
			for _, ev := range evs {
				if !s.pos.covers(ev.GetEvent()) {
					break
				}
				n++
			}
			s.m.duplicates.Add(float64(n))
			evs = evs[n:]
			if len(evs) == 0 {
				continue
			}
			resuming = false
		}
		for _, ev := range evs {
			k := ev.GetEvent().Key
			if haveLast && k < lastKey {
				s.m.wraps.Inc()
				s.log.Warn("vcenter event key went backwards (wrap-around or database reset)", "previous", lastKey, "key", k)
			}
			lastKey, haveLast = k, true
		}
		if err := s.deliver(ctx, evs); err != nil {
			return progressed, err
		}
		last := evs[len(evs)-1].GetEvent()
		if len(evs) == s.cfg.PageSize {
			s.m.lag.Set(max(0, time.Since(last.CreatedTime).Seconds()))
		} else {
			s.m.lag.Set(0)
		}
	}
	return progressed, nil
}

// deliver publishes evs, waits for Kafka's acknowledgements and moves the
// position past the acknowledged prefix. An event Kafka did not take ends
// the session: the next one resumes after the last acknowledged event.
func (s *Source) deliver(ctx context.Context, evs []types.BaseEvent) error {
	acks := make([]error, len(evs))
	var wg sync.WaitGroup
	published := 0
	var pubErr error
	now := time.Now()
	for i, ev := range evs {
		s.convert(&s.ev, ev, now)
		wg.Add(1)
		err := s.pub.Publish(ctx, &s.ev, func(err error) {
			acks[i] = err
			wg.Done()
		})
		if err != nil {
			wg.Done()
			pubErr = err
			break
		}
		published++
	}
	// Wait for the acknowledgements even when ctx ended: the producer
	// flushes after the sources stopped, and the checkpoint must follow.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		t := time.NewTimer(s.cfg.FlushTimeout)
		select {
		case <-waited:
			t.Stop()
		case <-t.C:
			s.log.Error("kafka did not acknowledge the last events in time; they will be read again", "events", published)
			return errors.New("flush timeout")
		}
	}
	n := 0
	for ; n < published && acks[n] == nil; n++ {
		s.pos.advance(evs[n].GetEvent())
		s.dirty = true
	}
	s.m.events.Add(float64(n))
	s.flushCheckpoint(ctx)
	if n < published {
		s.m.errors[errPublish].Inc()
		return fmt.Errorf("kafka did not take event %d: %w", evs[n].GetEvent().Key, acks[n])
	}
	if pubErr != nil && ctx.Err() == nil {
		s.m.errors[errPublish].Inc()
		return fmt.Errorf("publish: %w", pubErr)
	}
	return nil
}

// flushCheckpoint writes the position when it changed. A failure is
// logged, counted and retried at the next call.
func (s *Source) flushCheckpoint(ctx context.Context) {
	if !s.dirty || s.cp == nil {
		return
	}
	b, err := json.Marshal(&s.pos)
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FlushTimeout)
	defer cancel()
	if err := s.cp.Put(pctx, CheckpointKey(s.cfg.Name), b); err != nil {
		s.m.errors[errCheckpoint].Inc()
		s.log.Warn("write checkpoint; retrying later", "error", err)
		return
	}
	s.dirty = false
}

// loadPosition reads the checkpoint, unless this process already holds a
// newer position.
func (s *Source) loadPosition() error {
	if s.cp == nil || !s.pos.Time.IsZero() {
		return nil
	}
	b, ok := s.cp.Get(CheckpointKey(s.cfg.Name))
	if !ok {
		return nil
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("checkpoint %s: %w", CheckpointKey(s.cfg.Name), err)
	}
	s.pos = p
	return nil
}

// position is the checkpoint: the last delivered event's key and creation
// time, and the keys of the delivered events created at that very time.
// Resuming reads from that time on and skips those keys: a key alone would
// not do, as it wraps around (an int32) and restarts after a database
// reset, and a time alone would not, as events share times.
type position struct {
	Key        int32     `json:"key"`
	Time       time.Time `json:"time"`
	KeysAtTime []int32   `json:"keys_at_time,omitempty"`
}

// maxKeysAtTime bounds KeysAtTime.
const maxKeysAtTime = 4096

// advance moves p past ev.
func (p *position) advance(ev *types.Event) {
	t := ev.CreatedTime
	switch {
	case t.After(p.Time):
		p.Time = t
		p.KeysAtTime = append(p.KeysAtTime[:0:0], ev.Key)
	case t.Equal(p.Time):
		if len(p.KeysAtTime) < maxKeysAtTime {
			p.KeysAtTime = append(p.KeysAtTime, ev.Key)
		}
	}
	p.Key = ev.Key
}

// covers reports whether ev, read on resuming from p, was delivered
// before: created before p's time, or at p's time with one of its keys.
func (p *position) covers(ev *types.Event) bool {
	if p.Time.IsZero() {
		return false
	}
	t := ev.CreatedTime
	return t.Before(p.Time) || t.Equal(p.Time) && slices.Contains(p.KeysAtTime, ev.Key)
}
