package nsxgroups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/parsers/nsxaudit"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// The labels of vpipe.audit events that a TriggerReader reads: the
// contract with the stages that change NSX tags (sinks/tagsync and
// sinks/jitaccess write them).
const (
	// LabelNSXManager is the host name of the NSX Manager a stage changed
	// tags on (the host of its configured NSX URL).
	LabelNSXManager = "nsx_manager"
	// labelAdded and labelRemoved list the tags tag-sync added and
	// removed ("scope|tag,..."); labelChange is JIT access's result
	// (added, removed, present, ...); labelDryRun marks a planned change.
	labelAdded   = "nsx_added"
	labelRemoved = "nsx_removed"
	labelChange  = "nsx_change"
	labelDryRun  = "dry_run"
)

// The kinds of trigger events (Hint.Kind, metric label kind).
const (
	// HintVpipeAudit is an audit event of a tag change vpipe made.
	HintVpipeAudit = "vpipe_audit"
	// HintNSXAudit is an NSX Manager audit log line of a tag or group
	// change (dataset nsx.audit).
	HintNSXAudit = "nsx_audit"
)

// Hint is what an event says about a change that may have changed a
// group's membership.
type Hint struct {
	Kind string // HintVpipeAudit or HintNSXAudit
	// Hosts are the names the event gives the NSX Manager, best first
	// (the manager a stage named; the logging node's host name, then the
	// socket peer of its syslog message). None: the event does not say,
	// and every source is asked to poll.
	Hosts []string
}

// HintOf reports whether e reveals a change of NSX tags or groups that
// may have changed a group's membership: a successful, not planned,
// vpipe.audit event of tag-sync or JIT access that added or removed a tag
// (labels nsx_added / nsx_removed, or nsx_change added / removed), or an
// nsx.audit event that nsxaudit.ChangesMembership accepts.
func HintOf(e *pipeline.Event) (Hint, bool) {
	switch e.Dataset {
	case pipeline.DatasetAudit:
		if e.Outcome != "success" || e.Label(labelDryRun) == "true" {
			return Hint{}, false
		}
		changed := e.Label(labelAdded) != "" || e.Label(labelRemoved) != ""
		switch e.Label(labelChange) {
		case "added", "removed":
			changed = true
		}
		if !changed {
			return Hint{}, false
		}
		h := Hint{Kind: HintVpipeAudit}
		if m := e.Label(LabelNSXManager); m != "" {
			h.Hosts = []string{m}
		}
		return h, true
	case pipeline.DatasetNSXAudit:
		if !nsxaudit.ChangesMembership(e) {
			return Hint{}, false
		}
		h := Hint{Kind: HintNSXAudit}
		for _, n := range []string{e.Observer.Hostname, e.Syslog.Hostname, peerHost(e.LogSource)} {
			if n != "" && !slices.Contains(h.Hosts, n) {
				h.Hosts = append(h.Hosts, n)
			}
		}
		// An NSX audit line always names a host; one that does not
		// cannot be told from another manager's.
		return h, len(h.Hosts) > 0
	}
	return Hint{}, false
}

// peerHost is the address of a log.source.address "ip:port".
func peerHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return ""
}

// TriggerConfig configures a TriggerReader.
type TriggerConfig struct {
	// Brokers are the Kafka bootstrap addresses. Required.
	Brokers []string
	// Topics are the topics to follow: <prefix>audit and <prefix>nsx.
	// Required.
	Topics []string
	// Dialer dials the brokers (TLS, SASL); nil: kafka.DefaultDialer.
	Dialer *kafka.Dialer
	// MaxWait bounds how long a fetch waits for new records. Default
	// 500ms.
	MaxWait time.Duration
}

// TriggerReader makes the group-membership sources poll at once when an
// event reveals a change of tags or groups on their NSX Manager (see
// HintOf): vpipe's own tag changes, audited on <prefix>audit, and NSX
// Manager audit log lines parsed onto <prefix>nsx. Roles may run in
// different processes (tag-sync in one, nsx-groups in another), so it
// follows Kafka rather than calls in-process.
//
// It reads every partition without a consumer group, from the end at
// start: a trigger is a hint, and one missed (while no reader ran) only
// means waiting for the interval. Partitions added while it runs are not
// followed until it restarts.
type TriggerReader struct {
	cfg     TriggerConfig
	sources Sources
	m       *Metrics
	log     *slog.Logger
	ready   chan struct{}

	mu        sync.Mutex
	unmatched map[string]bool // hosts logged as matching no source
}

// DefaultTriggerMaxWait is TriggerConfig.MaxWait's default.
const DefaultTriggerMaxWait = 500 * time.Millisecond

// maxUnmatchedLogged bounds the hosts logged once as unmatched.
const maxUnmatchedLogged = 64

// NewTriggerReader returns a reader that triggers sources. m may be
// shared with the sources; nil creates unregistered metrics. It does no
// I/O.
func NewTriggerReader(cfg TriggerConfig, sources Sources, m *Metrics, log *slog.Logger) (*TriggerReader, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 {
		return nil, errors.New("nsx groups triggers: brokers and topics are required")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultTriggerMaxWait
	}
	if cfg.Dialer == nil {
		cfg.Dialer = kafka.DefaultDialer
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TriggerReader{
		cfg: cfg, sources: sources, m: m, log: log.With("component", "nsxgroups-triggers"),
		ready: make(chan struct{}), unmatched: map[string]bool{},
	}, nil
}

// Ready is closed once the reader follows every partition of its topics
// from the end it found: an event published after that triggers.
func (r *TriggerReader) Ready() <-chan struct{} { return r.ready }

// Run follows the topics until ctx ends, then returns nil. It does not
// return on Kafka errors: it logs them and retries with backoff (a topic
// that does not exist yet is waited for). It may be called once.
func (r *TriggerReader) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var positioned sync.WaitGroup
	var failed atomic.Bool
	for _, topic := range r.cfg.Topics {
		positioned.Add(1)
		wg.Go(func() {
			ok := r.followTopic(ctx, topic, &wg)
			if !ok {
				failed.Store(true)
			}
			positioned.Done()
		})
	}
	positioned.Wait()
	if !failed.Load() {
		r.log.Info("following tag and group changes", "topics", r.cfg.Topics)
		close(r.ready)
	}
	wg.Wait()
	return nil
}

// followTopic starts a follower on each partition of topic, from its end;
// it reports false when ctx ended first.
func (r *TriggerReader) followTopic(ctx context.Context, topic string, wg *sync.WaitGroup) bool {
	parts, ok := r.partitions(ctx, topic)
	if !ok {
		return false
	}
	for _, p := range parts {
		start, ok := r.end(ctx, topic, p)
		if !ok {
			return false
		}
		wg.Go(func() { r.follow(ctx, topic, p, start) })
	}
	return true
}

// partitions lists topic's partitions, retrying until it can; ok is
// false when ctx ended first.
func (r *TriggerReader) partitions(ctx context.Context, topic string) (ids []int, ok bool) {
	for attempt := 0; ; attempt++ {
		ids, err := r.lookup(ctx, topic)
		if err == nil && len(ids) > 0 {
			return ids, true
		}
		if err == nil {
			err = errors.New("no partitions")
		}
		if !r.retry(ctx, attempt, "list partitions", topic, -1, err) {
			return nil, false
		}
	}
}

func (r *TriggerReader) lookup(ctx context.Context, topic string) ([]int, error) {
	var errs []error
	for _, b := range r.cfg.Brokers {
		parts, err := r.cfg.Dialer.LookupPartitions(ctx, "tcp", b, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids := make([]int, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		return ids, nil
	}
	return nil, errors.Join(errs...)
}

// end reads a partition's end offset, retrying until it can; ok is false
// when ctx ended first.
func (r *TriggerReader) end(ctx context.Context, topic string, partition int) (int64, bool) {
	for attempt := 0; ; attempt++ {
		off, err := r.lastOffset(ctx, topic, partition)
		if err == nil {
			return off, true
		}
		if !r.retry(ctx, attempt, "read end offset", topic, partition, err) {
			return 0, false
		}
	}
}

func (r *TriggerReader) lastOffset(ctx context.Context, topic string, partition int) (int64, error) {
	var errs []error
	for _, b := range r.cfg.Brokers {
		conn, err := r.cfg.Dialer.DialLeader(ctx, "tcp", b, topic, partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		off, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return off, nil
	}
	return 0, errors.Join(errs...)
}

// retry logs a failed step and waits a backoff (1s doubling to 30s,
// jittered); it reports false when ctx ended first.
func (r *TriggerReader) retry(ctx context.Context, attempt int, what, topic string, partition int, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	r.m.triggerErrors.Inc()
	d := backoff.Delay(attempt, time.Second, 30*time.Second)
	r.log.Warn("trigger reader: "+what+" failed; retrying", "topic", topic, "partition", partition, "backoff", d, "error", err)
	return backoff.Wait(ctx, d)
}

// follow reads one partition from start until ctx ends.
func (r *TriggerReader) follow(ctx context.Context, topic string, partition int, start int64) {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: r.cfg.Brokers, Topic: topic, Partition: partition, Dialer: r.cfg.Dialer,
		MinBytes: 1, MaxBytes: 4 << 20, MaxWait: r.cfg.MaxWait,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			r.log.Debug("trigger reader: kafka: " + fmt.Sprintf(msg, args...))
		}),
	})
	defer rd.Close()
	if err := rd.SetOffset(start); err != nil {
		r.log.Error("trigger reader: set offset", "topic", topic, "partition", partition, "error", err)
		return
	}
	var e pipeline.Event
	for attempt := 0; ; {
		msg, err := rd.ReadMessage(ctx)
		if err != nil {
			if !r.retry(ctx, attempt, "read", topic, partition, err) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		if err := e.DecodeJSON(msg.Value); err != nil {
			// Not an event (or a newer schema): nothing to trigger on.
			continue
		}
		r.handle(&e)
	}
}

// handle triggers the sources e concerns.
func (r *TriggerReader) handle(e *pipeline.Event) {
	h, ok := HintOf(e)
	if !ok {
		return
	}
	result := "all"
	if len(h.Hosts) == 0 {
		r.sources.TriggerAll()
	} else {
		result = "unmatched"
		for _, host := range h.Hosts {
			if r.sources.TriggerManager(host) > 0 {
				result = "triggered"
				break
			}
		}
		if result == "unmatched" {
			r.logUnmatched(h)
		}
	}
	r.m.triggerEvents.WithLabelValues(h.Kind, result).Inc()
}

// logUnmatched says once per host that a change on an NSX Manager no
// source knows by that name was seen: if it is a watched one, its aliases
// lack the name.
func (r *TriggerReader) logUnmatched(h Hint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unmatched[h.Hosts[0]] || len(r.unmatched) >= maxUnmatchedLogged {
		return
	}
	r.unmatched[h.Hosts[0]] = true
	r.log.Info("a tag or group change on an NSX Manager that no nsx_groups source names; if it is one of theirs, add the name to its aliases",
		"kind", h.Kind, "hosts", h.Hosts)
}
