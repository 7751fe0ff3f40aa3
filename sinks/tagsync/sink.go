// Package tagsync is the tag-sync stage: NSX tags follow vSphere tags
// (DESIGN.md, "vCenter tags → NSX tags"; it replaces vTagSync,
// shared/seeds/000). A tag attach or detach event from vCenter is a
// trigger, not a delta: the stage reads the VM's current vSphere tags
// (vAPI tagging), maps each tag of an allowed category to an NSX tag (the
// category's configured scope, the tag's name), and makes the NSX tags of
// those scopes agree, by the VM's instance UUID (NSX external_id), leaving
// every other NSX tag alone. A periodic full reconciliation heals whatever
// events were missed, in both directions. Every change NSX confirmed is an
// audit event.
package tagsync

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"

	"github.com/vmware/govmomi/vapi/rest"

	parsevc "github.com/vpipe/vpipe/parsers/vcenter"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// NSX is what tag sync needs of NSX; *nsx.Client implements it.
type NSX interface {
	VM(ctx context.Context, id string) (nsx.VM, error)
	UpdateTags(ctx context.Context, id string, decide func([]nsx.Tag) nsx.Change) (nsx.Change, error)
	ListVMs(ctx context.Context, fn func([]nsx.VM) error) error
	API() string
}

// Deps are a Sink's connections.
type Deps struct {
	// VCenter reaches the vCenter whose tags are synced.
	VCenter vcenter.ConnConfig
	NSX     NSX
	// Audit receives an audit event per change (dataset vpipe.audit);
	// nil: none.
	Audit   pipeline.Publisher
	Metrics *Metrics // nil: unregistered
	Log     *slog.Logger
}

// Sink is the tag-sync stage's stage.Sink, and its reconciler. Create it
// with New; Close it after the runner and the reconciler stopped.
type Sink struct {
	cfg   Config
	mp    mapping
	vs    *vsphere
	nsx   NSX
	audit pipeline.Publisher
	m     *Metrics
	log   *slog.Logger

	seed  maphash.Seed
	locks [256]sync.Mutex
}

// New checks cfg and returns a Sink. It does not connect: the first Write
// or reconciliation does.
func New(cfg Config, d Deps) (*Sink, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tag sync: %w", err)
	}
	if d.NSX == nil {
		return nil, errors.New("tag sync: no nsx client")
	}
	if d.VCenter.URL == "" {
		return nil, errors.New("tag sync: no vcenter url")
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg: cfg, mp: newMapping(cfg), vs: newVSphere(d.VCenter), nsx: d.NSX, audit: d.Audit, m: d.Metrics,
		log:  d.Log.With("component", "tagsync", "vcenter", cfg.VCenter),
		seed: maphash.MakeSeed(),
	}
	if cfg.DryRun {
		s.log.Info("tag sync runs dry: changes are planned and logged, not made")
	}
	return s, nil
}

// Close logs out of vCenter.
func (s *Sink) Close() error {
	s.vs.close()
	return nil
}

// cause is why a VM is synced.
type cause struct {
	kind      string // "event" or "reconcile"
	id        string // the triggering event's event.id, or the reconciliation's start time
	eventType string
	tag       string
	user      string
	domain    string
}

// Write implements stage.Sink. For each tagging event of this vCenter it
// finds the VMs the event names (by managed object reference when the
// event has one, else by name: every VM of that name, each then identified
// by its instance UUID) and syncs each once per batch. Other events are
// counted and ignored. It returns nil once NSX confirmed every change (a
// VM NSX does not know yet is counted and left to the reconciliation); a
// vCenter or NSX failure is returned as is (retryable), an NSX refusal of
// one VM's tags as permanent, and the runner then isolates its record.
func (s *Sink) Write(ctx context.Context, batch []stage.Record) error {
	type target struct {
		vm VM
		c  cause
	}
	var targets []target
	index := map[string]int{}
	for i := range batch {
		e := batch[i].Event
		if res := s.classify(e); res != "" {
			s.m.events.WithLabelValues(res).Inc()
			continue
		}
		vms, err := s.eventVMs(ctx, e)
		if err != nil {
			return err
		}
		if len(vms) == 0 {
			s.m.events.WithLabelValues(EventNotVM).Inc()
			s.log.Debug("tagging event for an object that is not a VM; ignored", "object", e.VMware.VCenter.ObjectName, "event_id", e.ID)
			continue
		}
		s.m.events.WithLabelValues(EventSynced).Inc()
		v := &e.VMware.VCenter
		c := cause{kind: "event", id: e.ID, eventType: v.EventType, tag: v.Tag, user: e.User.Name, domain: e.User.Domain}
		for _, vm := range vms {
			if j, ok := index[vm.Ref]; ok {
				targets[j].c = c // the latest event of the batch is the cause
				continue
			}
			index[vm.Ref] = len(targets)
			targets = append(targets, target{vm, c})
		}
	}
	p := s.newPass()
	for _, t := range targets {
		if _, _, err := s.syncVM(ctx, p, t.vm, t.c); err != nil {
			p.wait(ctx)
			return err
		}
	}
	p.wait(ctx)
	return nil
}

// classify returns why e is ignored, or "" for a tagging event of this
// vCenter.
func (s *Sink) classify(e *pipeline.Event) string {
	v := &e.VMware.VCenter
	if e.Dataset != pipeline.DatasetVCenterEvent || v.EventType != parsevc.EventTagAttach && v.EventType != parsevc.EventTagDetach {
		return EventNotTagging
	}
	if v.Server != "" && v.Server != s.cfg.VCenter && !contains(s.cfg.Servers, v.Server) {
		return EventOtherVCenter
	}
	if v.ObjectType != "" && v.ObjectType != "VirtualMachine" {
		return EventNotVM
	}
	if v.ObjectRef == "" && v.ObjectName == "" {
		return EventNotVM
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// eventVMs returns the VMs a tagging event names.
func (s *Sink) eventVMs(ctx context.Context, e *pipeline.Event) ([]VM, error) {
	v := &e.VMware.VCenter
	if v.ObjectRef != "" {
		return s.vs.vms(ctx, []string{v.ObjectRef})
	}
	return s.vs.vmsNamed(ctx, v.ObjectName, e.Time())
}

// lock serialises the syncs of one VM (an event and the reconciliation).
func (s *Sink) lock(vm VM) func() {
	mu := &s.locks[maphash.String(s.seed, vm.InstanceUUID)%uint64(len(s.locks))]
	mu.Lock()
	return mu.Unlock
}

// syncVM reads vm's vSphere tags now and makes its managed NSX tags agree;
// it returns what changed (or, dry, what would) and the result (one of
// the Sync* constants).
func (s *Sink) syncVM(ctx context.Context, p *pass, vm VM, c cause) (nsx.Change, string, error) {
	unlock := s.lock(vm)
	defer unlock()
	vts, err := s.vs.tagsOf(ctx, vm.Ref)
	if err != nil {
		if rest.IsStatusError(err, http.StatusNotFound) {
			s.m.syncs.WithLabelValues(c.kind, SyncGone).Inc()
			return nsx.Change{}, SyncGone, nil
		}
		s.m.syncs.WithLabelValues(c.kind, SyncError).Inc()
		return nsx.Change{}, SyncError, fmt.Errorf("vsphere tags of %s (%s): %w", vm.Name, vm.Ref, err)
	}
	desired, invalid := s.mp.desired(vts)
	for _, vt := range invalid {
		s.m.invalid.Inc()
		s.log.Warn("vsphere tag too long for an nsx tag; not synced", "vm", vm.Name, "category", vt.Category, "tag", vt.Name)
	}
	var ch nsx.Change
	if s.cfg.DryRun {
		cur, err := s.nsx.VM(ctx, vm.InstanceUUID)
		if err == nil {
			ch = s.mp.diff(cur.Tags, desired)
		}
		res, err := s.synced(p, vm, c, ch, err)
		return ch, res, err
	}
	ch, err = s.nsx.UpdateTags(ctx, vm.InstanceUUID, func(cur []nsx.Tag) nsx.Change {
		return s.mp.diff(cur, desired)
	})
	res, err := s.synced(p, vm, c, ch, err)
	return ch, res, err
}

// synced accounts for one VM's sync: metrics, log, audit. It returns the
// result and the error the caller should return.
func (s *Sink) synced(p *pass, vm VM, c cause, ch nsx.Change, err error) (string, error) {
	res := SyncChanged
	switch {
	case errors.Is(err, nsx.ErrNotFound):
		s.m.syncs.WithLabelValues(c.kind, SyncNotInNSX).Inc()
		s.log.Info("vm not in nsx (yet); the reconciliation will sync it", "vm", vm.Name, "vm_instance_uuid", vm.InstanceUUID)
		return SyncNotInNSX, nil
	case err != nil:
		s.m.syncs.WithLabelValues(c.kind, SyncError).Inc()
		s.emit(p, vm, c, ch, err)
		return SyncError, fmt.Errorf("sync nsx tags of %s (%s): %w", vm.Name, vm.InstanceUUID, err)
	case ch.Empty():
		s.m.syncs.WithLabelValues(c.kind, SyncUnchanged).Inc()
		return SyncUnchanged, nil
	case s.cfg.DryRun:
		res = SyncPlanned
		s.m.syncs.WithLabelValues(c.kind, SyncPlanned).Inc()
	default:
		s.m.syncs.WithLabelValues(c.kind, SyncChanged).Inc()
		s.m.changes.WithLabelValues("add", c.kind).Add(float64(len(ch.Add)))
		s.m.changes.WithLabelValues("remove", c.kind).Add(float64(len(ch.Remove)))
	}
	s.log.Info("nsx tags synced", "vm", vm.Name, "vm_instance_uuid", vm.InstanceUUID, "add", tagList(ch.Add),
		"remove", tagList(ch.Remove), "cause", c.kind, "dry_run", s.cfg.DryRun, "user", c.user)
	s.emit(p, vm, c, ch, nil)
	return res, nil
}
