// Package jitaccess is the jit-access stage: administrators reach a server
// over RDP or SSH only while they hold a locked help desk ticket for it.
// It replaces OTNSX (shared/seeds/004_b81002e2993a7b8f.txt): a ticket lock
// puts an NSX tag on the VM the ticket names (a tag-based NSX group then
// lets the admins in), an unlock, close or merge takes it off.
//
// The stage consumes ticket.lock events (parsers/ticket) from the tickets
// topic. Each is a trigger only: the Sink reads the ticket's current state
// from the help desk (TicketGet with dynamic fields, pipeline/znuny), takes
// the VM from the configured dynamic field (a name, or an instance UUID),
// finds it in vCenter (refusing a name that several VMs share), and adds or
// removes the configured tag in NSX by the VM's instance UUID (NSX's
// external_id), keeping the VM's other tags (sinks/nsx). So a webhook that
// comes late, twice or out of order changes nothing it should not.
//
// Rules:
//
//   - A ticket holds its VM while it is locked ("lock"; "tmp_lock" is not a
//     lock), not closed, merged or removed, in an allowed queue (when
//     Config.Queues is set), and for at most Config.MaxDuration from the
//     moment the stage first saw it locked. Several tickets may hold one
//     VM: the tag stays while any of them does. The tag is the stage's
//     alone: a VM that carries it without a holding ticket loses it at the
//     next reconcile.
//   - Expiry: when a grant reaches MaxDuration the tag is removed even
//     though the ticket stays locked, and it stays off until the ticket is
//     unlocked and locked again.
//   - Reconcile (Run, every Config.ReconcileInterval): every locked ticket
//     is decided again, every ticket with a grant record is re-read, and
//     every VM that carries the tag without a holder loses it.
//   - Every decision is an audit event (dataset vpipe.audit; see
//     DatasetAudit) published through a pipeline.Publisher: the ticket, the
//     agent (user.name), the VM (host.hostname, labels.vm_external_id), the
//     action (event.action: access.grant, access.revoke, access.expire,
//     access.deny, access.none), the result (event.outcome) and why
//     (event.reason). Reconcile and expiry passes audit only what changed.
//
// Durability: a grant (ticket → VM, since when) is recorded in a Store (the
// compacted checkpoints topic, pipeline/checkpoint) before the tag is
// added, and deleted only after the tag was removed, so a process that
// stops at any point leaves a state that the redelivered event or the next
// reconcile completes. The stage commits an event only after NSX confirmed
// and Kafka acknowledged its audit events.
package jitaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/znuny"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// Tickets reads tickets from the help desk; *znuny.Client implements it.
// Errors follow znuny.Error: errors.Is(err, znuny.ErrNotFound) for an
// unknown ticket, pipeline.ErrPermanent for one that cannot be read, any
// other error is retryable.
type Tickets interface {
	TicketGet(ctx context.Context, ids ...string) ([]znuny.Ticket, error)
	TicketSearch(ctx context.Context, q znuny.Search) ([]string, error)
}

// Tagger changes one tag of a VM in NSX by external_id (the instance UUID)
// without touching its other tags, and lists the VMs with their tags;
// *nsx.Client implements it. errors.Is(err, nsx.ErrNotFound) when NSX
// does not know the VM; pipeline.ErrPermanent when retrying cannot help.
type Tagger interface {
	AddTags(ctx context.Context, id string, tags ...nsx.Tag) (nsx.Change, error)
	RemoveTags(ctx context.Context, id string, tags ...nsx.Tag) (nsx.Change, error)
	ListVMs(ctx context.Context, fn func([]nsx.VM) error) error
}

// Store keeps the grant records; *checkpoint.Store implements it. Get
// answers from memory; Put returns once the value is durable, and an empty
// value deletes the key.
type Store interface {
	Get(key string) ([]byte, bool)
	Put(ctx context.Context, key string, value []byte) error
}

// DatasetAudit is event.dataset of the audit events, shared by the stages
// that act on NSX or vCenter (labels.vpipe_stage tells them apart). They
// belong on the audit topic (pipeline.TopicAudit), keyed by the VM
// (labels.vm_external_id).
const DatasetAudit = "vpipe.audit"

// StageName is labels.vpipe_stage of the audit events, and the stage's
// name.
const StageName = "jit-access"

// Audit actions (event.action of audit events).
const (
	ActionGrant  = "access.grant"  // the ticket holds the VM: tag added (or already there)
	ActionRevoke = "access.revoke" // the ticket no longer holds the VM: tag removed, or kept for another ticket
	ActionExpire = "access.expire" // the grant reached the maximum duration: tag removed (or kept for another ticket)
	ActionDeny   = "access.deny"   // the ticket asks for access and cannot have it (no field, ambiguous VM, expired, ...)
	ActionNone   = "access.none"   // nothing to do: the ticket is not locked and held nothing
)

// Label keys of audit events.
const (
	LabelTicketID     = ticket.LabelTicketID
	LabelTicketNumber = ticket.LabelTicketNumber
	LabelLock         = ticket.LabelLock
	LabelStateType    = "ticket_state_type"
	LabelStage        = "vpipe_stage"    // "jit-access"
	LabelVMUUID       = "vm_external_id" // the instance UUID, NSX's external_id
	LabelVMRef        = "vm_ref"
	LabelTag          = "nsx_tag"          // "scope|tag"
	LabelChange       = "nsx_change"       // added, present, removed, absent, kept, vm_not_in_nsx, failed
	LabelCause        = "cause"            // webhook, reconcile, expiry
	LabelCauseID      = "trigger_event_id" // the triggering event's event.id
	LabelExpires      = "grant_until"      // RFC 3339: when the grant expires
	LabelHolders      = "held_by"          // the other tickets that keep the tag, comma-separated
	LabelNSXManager   = "nsx_manager"      // Config.NSXManager (pipeline/nsxgroups reads it)
)

// Config configures a Sink. Zero fields take the defaults named.
type Config struct {
	// Field is the name of the ticket's dynamic field that names the VM:
	// its vCenter name, or its instance UUID. Required.
	Field string
	// Tag is the NSX tag that grants access. Required.
	Tag nsx.Tag
	// MaxDuration bounds a grant: after it, the tag comes off even though
	// the ticket is still locked. Default 8h.
	MaxDuration time.Duration
	// ReconcileInterval is how often Run reconciles. Default 5m.
	ReconcileInterval time.Duration
	// Queues, if set, are the only queues whose tickets may grant access.
	Queues []string
	// SearchLimit bounds the locked tickets one search returns. Default
	// 10000.
	SearchLimit int
	// KeyPrefix prefixes the Store keys: <prefix>ticket/<TicketID> and
	// <prefix>index. Default "jit-access/".
	KeyPrefix string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// NSXManager is the host name of the NSX Manager the tag is set on
	// (the host of its URL), written as label nsx_manager on audit events
	// so that the group watchers of that manager poll at once
	// (pipeline/nsxgroups.TriggerReader). Optional: without it they all
	// poll.
	NSXManager string
}

// Defaults of Config.
const (
	DefaultMaxDuration       = 8 * time.Hour
	DefaultReconcileInterval = 5 * time.Minute
	DefaultSearchLimit       = 10000
	DefaultKeyPrefix         = "jit-access/"
)

// WithDefaults returns c with its unset fields given their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxDuration == 0 {
		c.MaxDuration = DefaultMaxDuration
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.SearchLimit == 0 {
		c.SearchLimit = DefaultSearchLimit
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem of c (after WithDefaults) at once.
func (c Config) Validate() error {
	var errs []error
	if c.Field == "" {
		errs = append(errs, errors.New("field: missing (the dynamic field that names the VM)"))
	}
	if !c.Tag.Valid() {
		errs = append(errs, fmt.Errorf("tag: %q: want a tag of 1 to %d characters and a scope of at most %d", c.Tag, nsx.MaxTagLen, nsx.MaxScopeLen))
	}
	if c.MaxDuration < 0 {
		errs = append(errs, errors.New("max_duration: negative"))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, errors.New("reconcile_interval: negative"))
	}
	if c.SearchLimit < 1 {
		errs = append(errs, errors.New("search_limit: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Deps are what a Sink works with. All are required except Metrics and
// Log.
type Deps struct {
	Tickets Tickets
	VMs     Finder
	NSX     Tagger
	Store   Store
	// Audit publishes the audit events; it must acknowledge them (call
	// done) for Write to return nil.
	Audit   pipeline.Publisher
	Metrics *Metrics
	Log     *slog.Logger
}

// Sink is the jit-access stage's stage.Sink, and (Run) its reconcile and
// expiry loop. Write and Run may run concurrently: decisions are
// serialised.
type Sink struct {
	cfg Config
	d   Deps
	m   *Metrics
	log *slog.Logger

	mu     sync.Mutex       // serialises decisions
	grants map[string]grant // ticket id → grant record, as in the Store
	wake   chan struct{}    // a grant changed: Run recomputes the next expiry
}

var _ stage.Sink = (*Sink)(nil)

// New checks cfg (after its defaults) and d, and loads the grant records
// listed in the Store's index. It makes no other call.
func New(cfg Config, d Deps) (*Sink, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jit-access: %w", err)
	}
	if d.Tickets == nil || d.VMs == nil || d.NSX == nil || d.Store == nil || d.Audit == nil {
		return nil, errors.New("jit-access: Tickets, VMs, NSX, Store and Audit are required")
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:    cfg,
		d:      d,
		m:      d.Metrics,
		log:    d.Log.With("component", "jit-access"),
		grants: map[string]grant{},
		wake:   make(chan struct{}, 1),
	}
	if err := s.loadIndex(); err != nil {
		return nil, fmt.Errorf("jit-access: %w", err)
	}
	return s, nil
}

// cause is what made the stage decide: a webhook's event, a reconcile pass
// or an expiry.
type cause struct {
	kind string // webhook, reconcile, expiry
	id   string // the event's id, or the pass's
}

// Write implements stage.Sink: it decides each ticket named in batch once
// (the last record of a ticket is its cause) and returns nil when every
// decision is applied in NSX and its audit events are acknowledged.
// Records of other datasets, and records naming no ticket, are counted and
// skipped. A retryable failure of the help desk, vCenter, NSX or the Store
// returns at once (the runner retries the batch; decisions are idempotent);
// a permanent one is audited and returned after the other tickets.
func (s *Sink) Write(ctx context.Context, batch []stage.Record) error {
	type trigger struct{ id, number, cause string }
	var order []trigger
	index := map[string]int{}
	for i := range batch {
		e := batch[i].Event
		if e.Dataset != pipeline.DatasetTicketLock {
			s.m.ignored.WithLabelValues("dataset").Inc()
			continue
		}
		t := trigger{cause: strings.Clone(e.ID)}
		for _, l := range e.Labels {
			switch l.Key {
			case ticket.LabelTicketID:
				t.id = strings.Clone(l.Value)
			case ticket.LabelTicketNumber:
				t.number = strings.Clone(l.Value)
			}
		}
		if t.id != "" && !znuny.ValidTicketID(t.id) {
			t.id = ""
		}
		if t.id == "" && t.number == "" {
			s.m.ignored.WithLabelValues("no_ticket").Inc()
			continue
		}
		k := "id:" + t.id
		if t.id == "" {
			k = "nr:" + t.number
		}
		if j, ok := index[k]; ok {
			order[j] = t
			continue
		}
		index[k] = len(order)
		order = append(order, t)
	}
	if len(order) == 0 {
		return nil
	}
	p := s.newPass()
	var permanent error
	err := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, t := range order {
			c := cause{kind: "webhook", id: t.cause}
			id := t.id
			if id == "" {
				var err error
				if id, err = s.lookupNumber(ctx, p, c, t.number); err != nil {
					return err
				}
				if id == "" {
					continue
				}
			}
			err := s.decide(ctx, p, c, id, nil)
			switch {
			case err == nil:
			case errors.Is(err, pipeline.ErrPermanent):
				permanent = errors.Join(permanent, err)
			default:
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return err
	}
	if err := p.wait(ctx); err != nil {
		return fmt.Errorf("publish audit events: %w", err)
	}
	return permanent
}

// lookupNumber finds the ticket of a number (a webhook that carried only
// the TicketNumber). "" with a nil error: no such ticket (audited).
func (s *Sink) lookupNumber(ctx context.Context, p *pass, c cause, number string) (string, error) {
	ids, err := s.d.Tickets.TicketSearch(ctx, znuny.Search{TicketNumber: number, Limit: 2})
	if err != nil && !errors.Is(err, pipeline.ErrPermanent) {
		return "", fmt.Errorf("find ticket number %s: %w", number, err)
	}
	if err != nil || len(ids) != 1 {
		reason := fmt.Sprintf("no ticket has number %s", number)
		if err != nil {
			reason = fmt.Sprintf("cannot search ticket number %s: %v", number, err)
		}
		s.emit(ctx, p, audit{action: ActionDeny, failure: true, c: c, t: ticketInfo{number: number}, reason: reason})
		return "", nil
	}
	return ids[0], nil
}

// ticketInfo is what the audit events say about a ticket.
type ticketInfo struct {
	id, number, owner, lock, stateType string
}

func infoOf(t *znuny.Ticket) ticketInfo {
	return ticketInfo{id: string(t.TicketID), number: string(t.TicketNumber), owner: t.Owner, lock: t.Lock, stateType: t.StateType}
}

// decide makes NSX and the grant records agree with ticket id: read from
// the help desk when t is nil. Called with s.mu held.
func (s *Sink) decide(ctx context.Context, p *pass, c cause, id string, t *znuny.Ticket) error {
	g, hasG := s.grant(id)
	if t == nil {
		ts, err := s.d.Tickets.TicketGet(ctx, id)
		switch {
		case errors.Is(err, znuny.ErrNotFound) || err == nil && len(ts) != 1:
			return s.withdraw(ctx, p, c, ticketInfo{id: id}, g, hasG, "the help desk does not know the ticket", true)
		case errors.Is(err, pipeline.ErrPermanent):
			// Fail closed: what vpipe may not read cannot hold access.
			return s.withdraw(ctx, p, c, ticketInfo{id: id}, g, hasG, "cannot read the ticket: "+err.Error(), true)
		case err != nil:
			return fmt.Errorf("read ticket %s: %w", id, err)
		}
		t = &ts[0]
	}
	info := infoOf(t)
	if info.id == "" {
		info.id = id
	}
	switch {
	case t.Closed():
		return s.withdraw(ctx, p, c, info, g, hasG, fmt.Sprintf("the ticket is %s (%s)", strings.ToLower(t.StateType), t.State), false)
	case !t.Locked():
		return s.withdraw(ctx, p, c, info, g, hasG, fmt.Sprintf("the ticket is not locked (lock %q)", t.Lock), false)
	case !s.queueAllowed(t.Queue):
		return s.withdraw(ctx, p, c, info, g, hasG, fmt.Sprintf("queue %q is not one of the queues that grant access", t.Queue), true)
	}
	vm, refusal, err := s.resolveTicket(ctx, p, t)
	if err != nil {
		return err
	}
	if refusal != "" {
		return s.withdraw(ctx, p, c, info, g, hasG, refusal, true)
	}
	if hasG && g.VMUUID != vm.InstanceUUID {
		// The ticket now names another VM: let go of the old one first.
		if err := s.release(ctx, p, c, info, g, ActionRevoke, "the ticket now names VM "+vm.Name); err != nil {
			return err
		}
		hasG = false
	}
	now := s.cfg.Now()
	ng := grant{Ticket: info.id, Number: info.number, Owner: info.owner, VMName: vm.Name, VMUUID: vm.InstanceUUID, VMRef: vm.Ref, Since: now}
	if hasG {
		ng.Since, ng.Expired = g.Since, g.Expired
	}
	until := ng.Since.Add(s.cfg.MaxDuration)
	if !now.Before(until) {
		if ng.Expired {
			s.emit(ctx, p, audit{action: ActionDeny, failure: true, c: c, t: info, vm: vm, until: until,
				reason: fmt.Sprintf("access expired at %s (maximum %s); unlock and lock the ticket again to renew it", until.UTC().Format(time.RFC3339), s.cfg.MaxDuration)})
			return nil
		}
		ng.Expired = true
		if err := s.putGrant(ctx, ng); err != nil {
			return err
		}
		return s.release(ctx, p, c, info, ng, ActionExpire, fmt.Sprintf("access reached its maximum duration of %s at %s", s.cfg.MaxDuration, until.UTC().Format(time.RFC3339)))
	}
	if !hasG || g != ng {
		if err := s.putGrant(ctx, ng); err != nil {
			return err
		}
	}
	ch, err := s.d.NSX.AddTags(ctx, vm.InstanceUUID, s.cfg.Tag)
	a := audit{action: ActionGrant, c: c, t: info, vm: vm, until: until, reason: "the ticket is locked and names the VM"}
	switch {
	case errors.Is(err, nsx.ErrNotFound):
		a.failure, a.change = true, "vm_not_in_nsx"
		a.reason = "NSX does not know the VM (yet): the reconcile adds the tag when it does"
		s.emit(ctx, p, a)
		return nil
	case errors.Is(err, pipeline.ErrPermanent):
		a.failure, a.change, a.reason = true, "failed", "NSX refused the tag: "+err.Error()
		s.emit(ctx, p, a)
		return pipeline.Permanent(fmt.Errorf("tag vm %s for ticket %s: %w", vm.InstanceUUID, info.id, err))
	case err != nil:
		return fmt.Errorf("tag vm %s for ticket %s: %w", vm.InstanceUUID, info.id, err)
	}
	a.change = "present"
	if len(ch.Add) > 0 {
		a.change = "added"
	}
	s.emit(ctx, p, a)
	return nil
}

// withdraw handles a ticket that holds no VM (any more): it releases the
// VM of its grant record, if any, and deletes the record. refused says the
// ticket asked for access (it is locked) and cannot have it.
func (s *Sink) withdraw(ctx context.Context, p *pass, c cause, info ticketInfo, g grant, hasG bool, reason string, refused bool) error {
	if !hasG {
		a := audit{action: ActionNone, c: c, t: info, reason: reason}
		if refused {
			a.action, a.failure = ActionDeny, true
		}
		s.emit(ctx, p, a)
		return nil
	}
	if err := s.release(ctx, p, c, info, g, ActionRevoke, reason); err != nil {
		return err
	}
	return s.deleteGrant(ctx, info.id)
}

// release takes the tag off g's VM unless another ticket holds it, and
// audits action for the ticket.
func (s *Sink) release(ctx context.Context, p *pass, c cause, info ticketInfo, g grant, action, reason string) error {
	vm := VM{Name: g.VMName, InstanceUUID: g.VMUUID, Ref: g.VMRef}
	if info.number == "" {
		info.number = g.Number
	}
	if info.owner == "" {
		info.owner = g.Owner
	}
	a := audit{action: action, c: c, t: info, vm: vm, reason: reason}
	if g.Expired && action == ActionRevoke {
		// Already off since it expired; the record only goes now.
		a.change = "absent"
		s.emit(ctx, p, a)
		return nil
	}
	others, err := s.holders(ctx, p, vm, info.id)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		a.change, a.holders = "kept", others
		a.reason += "; the tag stays: other locked tickets hold the VM"
		s.emit(ctx, p, a)
		return nil
	}
	ch, err := s.d.NSX.RemoveTags(ctx, vm.InstanceUUID, s.cfg.Tag)
	switch {
	case errors.Is(err, nsx.ErrNotFound):
		a.change = "vm_not_in_nsx"
	case errors.Is(err, pipeline.ErrPermanent):
		a.failure, a.change, a.reason = true, "failed", a.reason+"; NSX refused to remove the tag: "+err.Error()
		s.emit(ctx, p, a)
		return pipeline.Permanent(fmt.Errorf("untag vm %s for ticket %s: %w", vm.InstanceUUID, info.id, err))
	case err != nil:
		return fmt.Errorf("untag vm %s for ticket %s: %w", vm.InstanceUUID, info.id, err)
	case len(ch.Remove) > 0:
		a.change = "removed"
	default:
		a.change = "absent"
	}
	s.emit(ctx, p, a)
	return nil
}

// holders returns the tickets other than except that hold vm: locked, open,
// in an allowed queue, naming vm in their field, with a grant record for vm
// that has not expired, or (not decided yet) no record and a field that
// resolves to vm.
func (s *Sink) holders(ctx context.Context, p *pass, vm VM, except string) ([]string, error) {
	locked, err := s.lockedTickets(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var out []string
	for i := range locked {
		t := &locked[i]
		id := string(t.TicketID)
		if id == except || t.Closed() || !t.Locked() || !s.queueAllowed(t.Queue) {
			continue
		}
		f, _ := t.Field(s.cfg.Field)
		vals := f.Values()
		if len(vals) != 1 || !strings.EqualFold(vals[0], vm.InstanceUUID) && vals[0] != vm.Name {
			continue
		}
		if g, ok := s.grant(id); ok {
			if g.VMUUID == vm.InstanceUUID && !g.Expired && now.Before(g.Since.Add(s.cfg.MaxDuration)) {
				out = append(out, id)
			}
			continue
		}
		other, refusal, err := s.resolveValue(ctx, p, vals[0])
		if err != nil {
			return nil, err
		}
		if refusal == "" && other.InstanceUUID == vm.InstanceUUID {
			out = append(out, id)
		}
	}
	return out, nil
}

// lockedTickets returns the help desk's locked tickets (in the allowed
// queues) with their dynamic fields, read once per pass.
func (s *Sink) lockedTickets(ctx context.Context, p *pass) ([]znuny.Ticket, error) {
	if p.locked != nil {
		return *p.locked, nil
	}
	ids, err := s.d.Tickets.TicketSearch(ctx, znuny.Search{Locks: []string{"lock"}, Queues: s.cfg.Queues, Limit: s.cfg.SearchLimit})
	if err != nil {
		return nil, fmt.Errorf("search locked tickets: %w", err)
	}
	if len(ids) >= s.cfg.SearchLimit {
		s.log.Warn("the search for locked tickets hit its limit; raise search_limit", "limit", s.cfg.SearchLimit)
	}
	var out []znuny.Ticket
	const chunk = 50
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		ts, err := s.d.Tickets.TicketGet(ctx, part...)
		if err == nil {
			out = append(out, ts...)
			continue
		}
		if !errors.Is(err, pipeline.ErrPermanent) {
			return nil, fmt.Errorf("read locked tickets: %w", err)
		}
		// One ticket of the chunk cannot be read (gone, no permission):
		// read them one by one and skip that one.
		for _, id := range part {
			ts, err := s.d.Tickets.TicketGet(ctx, id)
			switch {
			case err == nil:
				out = append(out, ts...)
			case !errors.Is(err, pipeline.ErrPermanent):
				return nil, fmt.Errorf("read locked ticket %s: %w", id, err)
			}
		}
	}
	p.locked = &out
	return out, nil
}

func (s *Sink) queueAllowed(q string) bool {
	return len(s.cfg.Queues) == 0 || slices.Contains(s.cfg.Queues, q)
}

// resolveTicket finds the VM t's field names. A refusal says why the
// ticket cannot hold a VM; err is a retryable failure of vCenter.
func (s *Sink) resolveTicket(ctx context.Context, p *pass, t *znuny.Ticket) (VM, string, error) {
	f, ok := t.Field(s.cfg.Field)
	vals := f.Values()
	switch {
	case !ok || len(vals) == 0:
		return VM{}, fmt.Sprintf("the ticket has no VM: its dynamic field %q is empty or missing", s.cfg.Field), nil
	case len(vals) > 1:
		return VM{}, fmt.Sprintf("the ticket's dynamic field %q holds %d values (%s); one VM per ticket", s.cfg.Field, len(vals), strings.Join(vals, ", ")), nil
	}
	return s.resolveValue(ctx, p, vals[0])
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// resolveValue finds the VM a field value names: an instance UUID, or
// else a name that exactly one VM has. Results are cached for the pass.
func (s *Sink) resolveValue(ctx context.Context, p *pass, v string) (VM, string, error) {
	if r, ok := p.names[v]; ok {
		return r.vm, r.refusal, nil
	}
	var r resolved
	if uuidRE.MatchString(v) {
		vm, found, err := s.d.VMs.ByInstanceUUID(ctx, strings.ToLower(v))
		if err != nil {
			return VM{}, "", err
		}
		if !found {
			r.refusal = fmt.Sprintf("no VM in vCenter has instance UUID %s", v)
		}
		r.vm = vm
	} else {
		vms, err := s.d.VMs.ByName(ctx, v)
		if err != nil {
			return VM{}, "", err
		}
		switch len(vms) {
		case 0:
			r.refusal = fmt.Sprintf("no VM in vCenter is named %q", v)
		case 1:
			r.vm = vms[0]
		default:
			desc := make([]string, len(vms))
			for i, vm := range vms {
				desc[i] = vm.Ref + " " + vm.InstanceUUID
			}
			slices.Sort(desc)
			r.refusal = fmt.Sprintf("refused: %d VMs in vCenter are named %q (%s); put the VM's instance UUID in the ticket instead", len(vms), v, strings.Join(desc, ", "))
		}
	}
	if r.refusal == "" && r.vm.InstanceUUID == "" {
		r.refusal = fmt.Sprintf("VM %s (%s) has no instance UUID in vCenter", r.vm.Name, r.vm.Ref)
	}
	p.names[v] = r
	return r.vm, r.refusal, nil
}

type resolved struct {
	vm      VM
	refusal string
}
