package tagsync

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vpipe/vpipe/sinks/nsx"
)

// Report summarises a reconciliation.
type Report struct {
	VMs      int // vCenter VMs compared
	InSync   int // VMs whose managed NSX tags already agreed
	Changed  int // VMs changed (dry run: that would be)
	Added    int // NSX tags added (or planned)
	Removed  int // NSX tags removed (or planned)
	NotInNSX int // VMs NSX does not know (yet)
	Failed   int // VMs that could not be synced; retried next time
	Duration time.Duration
	// Plan lists the changes, one per VM to change; with DryRun, what
	// would change.
	Plan []PlanItem
}

// PlanItem is one VM's change.
type PlanItem struct {
	VM     VM
	Add    []nsx.Tag
	Remove []nsx.Tag
}

// tagChunk is the VMs per ListAttachedTagsOnObjects call.
const tagChunk = 500

// Reconcile compares every VM of the vCenter with NSX once and makes the
// managed NSX tags of those that differ agree with their vSphere tags
// (with DryRun, only plans it). It reads all VMs and their tags in bulk,
// then NSX's VM list; each VM that differs is synced as an event would
// sync it (its vSphere tags read again, a read-modify-write in NSX), up to
// Concurrency at a time. The error is the first failure; the report counts
// what was done.
func (s *Sink) Reconcile(ctx context.Context) (Report, error) {
	start := time.Now()
	rep, err := s.reconcile(ctx, start)
	rep.Duration = time.Since(start)
	s.m.reconDuration.Set(rep.Duration.Seconds())
	s.m.reconVMs.Set(float64(rep.VMs))
	if err == nil && rep.Failed == 0 {
		s.m.reconLast.SetToCurrentTime()
	} else {
		s.m.reconErrors.Inc()
	}
	s.log.Info("reconciliation done", "vms", rep.VMs, "in_sync", rep.InSync, "changed", rep.Changed, "added", rep.Added,
		"removed", rep.Removed, "not_in_nsx", rep.NotInNSX, "failed", rep.Failed, "duration", rep.Duration,
		"dry_run", s.cfg.DryRun, "error", err)
	return rep, err
}

func (s *Sink) reconcile(ctx context.Context, start time.Time) (Report, error) {
	var rep Report
	vms, err := s.vs.listVMs(ctx)
	if err != nil {
		return rep, err
	}
	withTags, err := s.vs.tagsOfAll(ctx, vms, tagChunk)
	if err != nil {
		return rep, err
	}
	current := make(map[string][]nsx.Tag, len(vms))
	err = s.nsx.ListVMs(ctx, func(page []nsx.VM) error {
		for _, vm := range page {
			if vm.ExternalID != "" {
				current[vm.ExternalID] = vm.Tags
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("list nsx vms: %w", err)
	}
	// NSX-V lists tags, not VMs: a VM it does not list has none.
	absentIsEmpty := s.nsx.API() == nsx.APINSXV
	rep.VMs = len(withTags)
	var todo []PlanItem
	for _, vt := range withTags {
		cur, ok := current[vt.InstanceUUID]
		if !ok && !absentIsEmpty {
			rep.NotInNSX++
			s.m.syncs.WithLabelValues("reconcile", SyncNotInNSX).Inc()
			continue
		}
		desired, invalid := s.mp.desired(vt.Tags)
		s.m.invalid.Add(float64(len(invalid)))
		ch := s.mp.diff(cur, desired)
		if ch.Empty() {
			rep.InSync++
			s.m.syncs.WithLabelValues("reconcile", SyncUnchanged).Inc()
			continue
		}
		todo = append(todo, PlanItem{VM: vt.VM, Add: ch.Add, Remove: ch.Remove})
	}
	c := cause{kind: "reconcile", id: "reconcile-" + start.UTC().Format(time.RFC3339Nano)}
	p := s.newPass()
	defer p.wait(ctx)
	if s.cfg.DryRun {
		for _, it := range todo {
			s.synced(p, it.VM, c, nsx.Change{Add: it.Add, Remove: it.Remove}, nil) // counts, logs, audits the plan
			rep.Changed++
			rep.Added += len(it.Add)
			rep.Removed += len(it.Remove)
		}
		rep.Plan = todo
		return rep, nil
	}
	// Sync the VMs that differed, as an event would: their vSphere tags
	// are read again, so a change made since the bulk read wins.
	var mu sync.Mutex
	var firstErr error
	work := make(chan VM)
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, max(1, len(todo))) {
		wg.Go(func() {
			for vm := range work {
				ch, res, err := s.syncVM(ctx, p, vm, c)
				mu.Lock()
				switch {
				case res == SyncNotInNSX || res == SyncGone:
					rep.NotInNSX++
				case err != nil:
					rep.Failed++
					if firstErr == nil {
						firstErr = err
					}
				case !ch.Empty():
					rep.Changed++
					rep.Added += len(ch.Add)
					rep.Removed += len(ch.Remove)
					rep.Plan = append(rep.Plan, PlanItem{VM: vm, Add: ch.Add, Remove: ch.Remove})
				default:
					rep.InSync++
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, it := range todo {
		select {
		case work <- it.VM:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return rep, firstErr
}

// Reconciler returns the periodic reconciliation as a runner (Run blocks
// until ctx ends). It reconciles at once, then every ReconcileInterval;
// after a failure it tries again within a minute. With a negative
// ReconcileInterval it only waits for ctx.
func (s *Sink) Reconciler() interface{ Run(context.Context) error } {
	return reconciler{s}
}

type reconciler struct{ s *Sink }

func (r reconciler) Run(ctx context.Context) error {
	s := r.s
	if s.cfg.ReconcileInterval < 0 {
		<-ctx.Done()
		return nil
	}
	for {
		_, err := s.Reconcile(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := s.cfg.ReconcileInterval
		if err != nil {
			wait = min(wait, time.Minute)
			s.log.Warn("reconciliation failed; trying again", "in", wait, "error", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
