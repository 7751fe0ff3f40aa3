// Package nsxgroups is the NSX group-membership source: it watches
// configured NSX groups (Policy API group members on NSX-T / NSX 4.x /
// VMware Cloud on AWS; security group membership on NSX-V) by polling,
// and publishes every change, a VM that joined or left a group, as an
// nsx.group_membership event to `<prefix>nsx` (pipeline.TopicFor). This is
// what replaces the seed workflow's vCenter Orchestrator loop that polled
// a quarantine security group every 5–10 s (shared/seeds/002).
//
// The membership of each group is checkpointed (pipeline/checkpoint, a
// compacted topic) after its changes are acknowledged by Kafka, so a
// restarted source, or another process that takes it over, neither
// publishes a join again nor misses a leave that happened while it was
// down. A change published but not checkpointed (a crash in between) is
// published again with the same event.id (see Membership.Generation).
//
// Something that knows of a change before the next poll calls Trigger to
// poll a group at once: in vpipe, a TriggerReader that follows the audit
// events of vpipe's own NSX tag changes (tag-sync, JIT access) and the NSX
// Manager audit log lines that record tag and group changes
// (parsers/nsxaudit), and asks the sources watching that manager to poll.
package nsxgroups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/backoff"
)

// Group is one watched NSX group.
type Group struct {
	// ID identifies the group to the Lister, in events (label nsx_group)
	// and in the checkpoint key: the Policy API path
	// ("/infra/domains/default/groups/quarantine") or the NSX-V security
	// group id ("securitygroup-10"). Required, unique per source.
	ID string
	// Name is the group's display name, for events and people. Optional.
	Name string
}

// Member is one VM in a group.
type Member struct {
	// ExternalID is NSX's external_id of the VM, its vCenter instance
	// UUID (what the Policy API lists).
	ExternalID string
	// Ref is the VM's vCenter managed object id, "vm-42" (what NSX-V's
	// security group translation lists instead of the UUID).
	Ref  string
	Name string
}

// key identifies m in a group's state: its external id, else its
// managed object id. A member with neither is skipped and counted.
func (m Member) key() string {
	if m.ExternalID != "" {
		return m.ExternalID
	}
	if m.Ref != "" {
		return "ref:" + m.Ref
	}
	return ""
}

// Lister reads a group's current members from NSX.
type Lister interface {
	// Members returns the VMs in the group with id group, as NSX evaluates
	// its criteria now. It blocks and honours ctx. Errors are retryable
	// unless errors.Is(err, pipeline.ErrPermanent) (the group does not
	// exist, the API cannot list it); either way the source keeps the last
	// membership and tries again at the next poll, publishing nothing. Safe
	// for concurrent use.
	Members(ctx context.Context, group string) ([]Member, error)
}

// ListerFunc adapts a function to Lister.
type ListerFunc func(ctx context.Context, group string) ([]Member, error)

// Members implements Lister.
func (f ListerFunc) Members(ctx context.Context, group string) ([]Member, error) {
	return f(ctx, group)
}

// Checkpointer stores the source's state; *checkpoint.Store implements it.
type Checkpointer interface {
	// Get returns the latest value stored under key, if any.
	Get(key string) ([]byte, bool)
	// Put stores value under key durably, returning nil only once it is.
	Put(ctx context.Context, key string, value []byte) error
}

// Config configures a Source. Zero durations take the defaults named.
type Config struct {
	// Name names the source (sources.nsx_groups[].name): in events (label
	// nsx_source), checkpoint keys, metrics and logs. Required.
	Name string
	// Manager is the NSX Manager's host name, written as observer.hostname.
	Manager string
	// Aliases are the other names of the NSX Manager that triggers may
	// use (see Manages): the host names its nodes log under (the HOSTNAME
	// of their audit log lines) and the host other stages reach it by.
	Aliases []string
	// Product is ProductNSX (default) or ProductNSXV, written as
	// observer.product.
	Product string
	// Groups are the groups to watch. At least one.
	Groups []Group
	// Interval between two polls of a group. Default 10s.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait before polling a group again
	// after a failed poll, publish or checkpoint (exponential, jittered,
	// never longer than Interval). Defaults 1s and Interval.
	MinBackoff, MaxBackoff time.Duration
	// TriggerGap is the least time between the starts of a poll and a
	// triggered poll after it, so that a burst of tag changes (a
	// reconciliation) polls NSX a few times rather than back to back.
	// Default 250ms; negative: no gap.
	TriggerGap time.Duration
	// Recheck is when, after a triggered poll, to poll once more: NSX
	// evaluates group membership asynchronously, so a poll right after a
	// tag change may come before the change shows. Default 3s (at most
	// Interval); negative: no second poll.
	Recheck time.Duration
}

// Defaults for Config.
const (
	DefaultInterval   = 10 * time.Second
	DefaultMinBackoff = time.Second
	DefaultTriggerGap = 250 * time.Millisecond
	DefaultRecheck    = 3 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Product == "" {
		c.Product = ProductNSX
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = min(DefaultMinBackoff, c.Interval)
	}
	if c.MaxBackoff <= 0 || c.MaxBackoff > c.Interval {
		c.MaxBackoff = c.Interval
	}
	c.MinBackoff = min(c.MinBackoff, c.MaxBackoff)
	if c.TriggerGap == 0 {
		c.TriggerGap = DefaultTriggerGap
	}
	if c.Recheck == 0 {
		c.Recheck = min(DefaultRecheck, c.Interval)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: missing"))
	}
	if len(c.Groups) == 0 {
		errs = append(errs, errors.New("groups: none"))
	}
	seen := map[string]bool{}
	for i, g := range c.Groups {
		if g.ID == "" {
			errs = append(errs, fmt.Errorf("groups[%d].id: missing", i))
		}
		if seen[g.ID] {
			errs = append(errs, fmt.Errorf("groups[%d].id: %q is listed twice", i, g.ID))
		}
		seen[g.ID] = true
	}
	if c.Product != ProductNSX && c.Product != ProductNSXV {
		errs = append(errs, fmt.Errorf("product: %q is not %s or %s", c.Product, ProductNSX, ProductNSXV))
	}
	return errors.Join(errs...)
}

// Deps are what a Source works with.
type Deps struct {
	// Lister reads the groups' members. Required.
	Lister Lister
	// Publisher publishes the changes. Required.
	Publisher pipeline.Publisher
	// OpenCheckpoints opens the checkpoint store (a *checkpoint.Store on
	// `<prefix>checkpoints`). Run calls it, retrying with backoff, before
	// its first poll, and closes the store on return when it is an
	// io.Closer. Required.
	OpenCheckpoints func(context.Context) (Checkpointer, error)
	// Metrics may be shared by several sources; nil creates unregistered
	// metrics.
	Metrics *Metrics
	Log     *slog.Logger // nil discards
}

// Source polls the groups of one NSX Manager. Create it with New, run it
// with Run; Trigger may be called from any goroutine, before or during Run.
type Source struct {
	cfg     Config
	lister  Lister
	pub     pipeline.Publisher
	open    func(context.Context) (Checkpointer, error)
	cp      Checkpointer // set by Run
	m       *Metrics
	log     *slog.Logger
	now     func() time.Time
	groups  map[string]*watch
	names   []string // Manager and Aliases, normalised; see Manages
	started atomic.Bool
}

// watch is one group's poll state. trigger holds at most one pending
// request, so triggers coalesce.
type watch struct {
	g       Group
	trigger chan struct{}
	state   state // owned by the group's goroutine
	loaded  bool
}

// state is a group's checkpointed membership.
type state struct {
	// Generation counts the checkpointed membership states; see
	// Membership.Generation.
	Generation uint64 `json:"generation"`
	// Members maps Member.key to the member.
	Members map[string]memberState `json:"members"`
}

type memberState struct {
	ExternalID string `json:"external_id,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Name       string `json:"name,omitempty"`
}

// New checks cfg (after defaults) and d and returns a Source. New does
// no I/O.
func New(cfg Config, d Deps) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("nsx groups source %q: %w", cfg.Name, err)
	}
	if d.Lister == nil || d.Publisher == nil || d.OpenCheckpoints == nil {
		return nil, fmt.Errorf("nsx groups source %q: lister, publisher and checkpoints are required", cfg.Name)
	}
	m, log := d.Metrics, d.Log
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		cfg: cfg, lister: d.Lister, pub: d.Publisher, open: d.OpenCheckpoints, m: m, now: time.Now,
		log:    log.With("component", "nsxgroups", "source", cfg.Name),
		groups: make(map[string]*watch, len(cfg.Groups)),
	}
	for _, g := range cfg.Groups {
		s.groups[g.ID] = &watch{g: g, trigger: make(chan struct{}, 1)}
	}
	for _, n := range append([]string{cfg.Manager}, cfg.Aliases...) {
		if n = normalHost(n); n != "" && !slices.Contains(s.names, n) {
			s.names = append(s.names, n)
		}
	}
	return s, nil
}

// Manages reports whether host names the source's NSX Manager: its
// Manager or one of its Aliases, compared without case and trailing dot,
// where a bare host name also matches a fully qualified name that starts
// with it ("nsx-mgr-01" and "nsx-mgr-01.corp.example"), so that a node's
// syslog HOSTNAME matches its DNS name.
func (s *Source) Manages(host string) bool {
	host = normalHost(host)
	if host == "" {
		return false
	}
	for _, n := range s.names {
		if sameHost(n, host) {
			return true
		}
	}
	return false
}

func normalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
}

// sameHost compares two normalised host names: equal, or one a bare name
// (no dot, not an address) and the first label of the other, a name.
func sameHost(a, b string) bool {
	if a == b {
		return true
	}
	if strings.Contains(a, ".") == strings.Contains(b, ".") {
		return false
	}
	if strings.Contains(a, ".") {
		a, b = b, a
	}
	if _, err := netip.ParseAddr(b); err != nil {
		first, _, _ := strings.Cut(b, ".")
		return a == first
	}
	return false
}

// Name returns the source's configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Groups returns the ids of the groups the source watches.
func (s *Source) Groups() []string { return slices.Sorted(maps.Keys(s.groups)) }

// Trigger asks for a poll of the group with id group as soon as possible,
// without waiting for the interval: call it when something suggests that
// the group's membership changed (an NSX tag vpipe set or removed, an NSX
// audit log line). It does not block; triggers that arrive while a poll is
// pending coalesce into it. It reports whether the source watches group.
func (s *Source) Trigger(group string) bool {
	w, ok := s.groups[group]
	if !ok {
		return false
	}
	select {
	case w.trigger <- struct{}{}:
	default:
	}
	return true
}

// TriggerAll asks for a poll of every group (see Trigger), for a change
// that may concern any of them, such as a VM's tags.
func (s *Source) TriggerAll() {
	for id := range s.groups {
		s.Trigger(id)
	}
}

// Run polls every group at once and then every Interval (or on Trigger),
// each group in its own goroutine, until ctx ends; it then returns nil
// after the polls in progress stopped. A poll whose changes were not all
// acknowledged, or whose checkpoint failed, is retried after a backoff and
// publishes the same changes again with the same event ids. Run does not
// return on NSX, Kafka or checkpoint errors: it logs, counts and retries
// them. It may be called once.
func (s *Source) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("nsx groups source %q: Run called twice", s.cfg.Name)
	}
	if !s.openCheckpoints(ctx) {
		return nil
	}
	if c, ok := s.cp.(io.Closer); ok {
		defer c.Close()
	}
	s.log.Info("nsx group watch started", "groups", s.Groups(), "interval", s.cfg.Interval)
	done := make(chan struct{})
	for _, w := range s.groups {
		go func() {
			defer func() { done <- struct{}{} }()
			s.watch(ctx, w)
		}()
	}
	for range s.groups {
		<-done
	}
	s.log.Info("nsx group watch stopped")
	return nil
}

// openCheckpoints opens the checkpoint store, retrying with backoff; it
// reports false when ctx ended first.
func (s *Source) openCheckpoints(ctx context.Context) bool {
	for failures := 0; ; failures++ {
		cp, err := s.open(ctx)
		if err == nil {
			s.cp = cp
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := backoff.Delay(failures, s.cfg.MinBackoff, s.cfg.MaxBackoff)
		s.log.Warn("open checkpoints failed; retrying", "attempt", failures+1, "backoff", d, "error", err)
		if !backoff.Wait(ctx, d) {
			return false
		}
	}
}

// watch is one group's loop. A poll serves every trigger that came before
// it started; a triggered poll waits for TriggerGap after the previous
// poll's start and is followed by one Recheck poll.
func (s *Source) watch(ctx context.Context, w *watch) {
	failures := 0
	triggered := false // this poll was asked for by Trigger
	var last time.Time // the previous poll's start
	for {
		if triggered && !last.IsZero() {
			if d := s.cfg.TriggerGap - time.Since(last); d > 0 && !backoff.Wait(ctx, d) {
				return
			}
		}
		select {
		case <-w.trigger:
		default:
		}
		last = time.Now()
		wait := s.cfg.Interval
		if err := s.poll(ctx, w); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = backoff.Delay(failures, s.cfg.MinBackoff, s.cfg.MaxBackoff)
			failures++
			s.log.Warn("nsx group poll failed; retrying", "group", w.g.ID, "attempt", failures, "backoff", wait, "error", err)
		} else {
			failures = 0
			if triggered && s.cfg.Recheck > 0 {
				wait = min(wait, s.cfg.Recheck)
			}
		}
		triggered = false
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-w.trigger:
			t.Stop()
			triggered = true
			s.m.triggers.WithLabelValues(s.cfg.Name).Inc()
		}
	}
}

// checkpointKey is where a group's state is stored.
func (s *Source) checkpointKey(group string) string {
	return "nsxgroups/" + s.cfg.Name + "/" + group
}

// load reads w's checkpointed state once. A value that does not decode
// is an error: starting from nothing would publish every member as joined
// again and forget who left, so the source stalls visibly instead.
func (s *Source) load(w *watch) error {
	if w.loaded {
		return nil
	}
	w.state = state{Members: map[string]memberState{}}
	if b, ok := s.cp.Get(s.checkpointKey(w.g.ID)); ok {
		var st state
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("checkpoint %s: %w", s.checkpointKey(w.g.ID), err)
		}
		if st.Members == nil {
			st.Members = map[string]memberState{}
		}
		w.state = st
	}
	w.loaded = true
	return nil
}

// poll reads one group's members, publishes the differences from the
// checkpointed membership, waits for Kafka to acknowledge them all, and
// checkpoints the new membership.
func (s *Source) poll(ctx context.Context, w *watch) (err error) {
	start := s.now()
	defer func() {
		s.m.pollTime.WithLabelValues(s.cfg.Name).Observe(time.Since(start).Seconds())
		result := "ok"
		if err != nil {
			result = "error"
		} else {
			s.m.lastSuccess.WithLabelValues(s.cfg.Name).Set(float64(s.now().Unix()))
		}
		s.m.polls.WithLabelValues(s.cfg.Name, result).Inc()
	}()
	if err := s.load(w); err != nil {
		return err
	}
	members, err := s.lister.Members(ctx, w.g.ID)
	if err != nil {
		return fmt.Errorf("list members of %s: %w", w.g.ID, err)
	}
	current := make(map[string]memberState, len(members))
	for _, m := range members {
		k := m.key()
		if k == "" {
			s.m.skipped.WithLabelValues(s.cfg.Name).Inc()
			continue
		}
		current[k] = memberState{ExternalID: m.ExternalID, Ref: m.Ref, Name: m.Name}
	}
	s.m.members.WithLabelValues(s.cfg.Name, w.g.ID).Set(float64(len(current)))
	changes := s.diff(w, current, start)
	if len(changes) == 0 {
		return nil
	}
	if err := s.publish(ctx, changes); err != nil {
		return err
	}
	next := state{Generation: w.state.Generation + 1, Members: current}
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := s.cp.Put(ctx, s.checkpointKey(w.g.ID), b); err != nil {
		return fmt.Errorf("checkpoint %s: %w", w.g.ID, err)
	}
	w.state = next
	for _, c := range changes {
		s.m.changes.WithLabelValues(s.cfg.Name, c.Action()).Inc()
		s.log.Info("nsx group membership changed", "group", w.g.ID, "vm", c.VMName, "external_id", c.VMExternalID, "ref", c.VMRef, "change", c.Action())
	}
	return nil
}

// diff returns the changes from w's state to now: leaves first, then
// joins, each sorted by external id so a replay publishes in the same
// order.
func (s *Source) diff(w *watch, now map[string]memberState, at time.Time) []Membership {
	var out []Membership
	mk := func(m memberState, joined bool) Membership {
		return Membership{
			Source: s.cfg.Name, Manager: s.cfg.Manager, Product: s.cfg.Product,
			Group: w.g.ID, GroupName: w.g.Name, VMExternalID: m.ExternalID, VMRef: m.Ref, VMName: m.Name,
			Joined: joined, Time: at, Generation: w.state.Generation + 1,
		}
	}
	for _, id := range slices.Sorted(maps.Keys(w.state.Members)) {
		if _, ok := now[id]; !ok {
			out = append(out, mk(w.state.Members[id], false))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(now)) {
		if _, ok := w.state.Members[id]; !ok {
			out = append(out, mk(now[id], true))
		}
	}
	return out
}

// publish publishes changes and waits until Kafka acknowledged every one,
// or one failed, or ctx ended.
func (s *Source) publish(ctx context.Context, changes []Membership) error {
	results := make(chan error, len(changes))
	var e pipeline.Event
	n := 0
	for i := range changes {
		changes[i].Fill(&e)
		if err := s.pub.Publish(ctx, &e, func(err error) { results <- err }); err != nil {
			// The callbacks of what was queued write to the buffered
			// channel and never block.
			return fmt.Errorf("publish: %w", err)
		}
		n++
	}
	var errs []error
	for range n {
		select {
		case err := <-results:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("publish: %d of %d changes not acknowledged: %w", len(errs), n, errors.Join(errs...))
	}
	return nil
}

// Sources are the group watchers of a process, for the stages that learn
// of membership changes first (tag-sync and jit-access change NSX tags,
// which group criteria match on) to poll at once.
type Sources []*Source

// Trigger asks every source that watches group to poll it now (see
// Source.Trigger); it reports whether any does.
func (ss Sources) Trigger(group string) bool {
	found := false
	for _, s := range ss {
		if s.Trigger(group) {
			found = true
		}
	}
	return found
}

// TriggerAll asks every source to poll all its groups now: for a change,
// such as a VM's NSX tags, that may concern any group.
func (ss Sources) TriggerAll() {
	for _, s := range ss {
		s.TriggerAll()
	}
}

// TriggerManager asks every source whose NSX Manager host names (see
// Source.Manages) to poll all its groups now, for a change of tags or
// groups on that manager; it returns how many sources it asked.
func (ss Sources) TriggerManager(host string) int {
	n := 0
	for _, s := range ss {
		if s.Manages(host) {
			s.TriggerAll()
			n++
		}
	}
	return n
}
