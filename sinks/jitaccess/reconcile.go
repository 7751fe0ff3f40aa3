package jitaccess

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// Run expires grants when they reach the maximum duration and reconciles
// every ReconcileInterval, until ctx ends; then it returns nil. Failures
// are logged and counted, and retried at the next expiry or interval. Run
// blocks; call it once, beside the stage runner that calls Write.
func (s *Sink) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.ReconcileInterval)
	defer tick.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		expiry.Reset(s.untilNextExpiry())
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-expiry.C:
			if err := s.Expire(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("expiry failed; retrying at the next interval", "error", err)
			}
		case <-tick.C:
			if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reconcile failed", "error", err)
			}
		}
	}
}

// untilNextExpiry is the time to the earliest expiry of a live grant this
// process knows (at most the reconcile interval, at least a millisecond).
func (s *Sink) untilNextExpiry() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.cfg.ReconcileInterval
	now := s.cfg.Now()
	for _, g := range s.grants {
		if g.Expired {
			continue
		}
		d = min(d, g.Since.Add(s.cfg.MaxDuration).Sub(now))
	}
	return max(d, time.Millisecond)
}

// Expire decides again every ticket whose grant has reached the maximum
// duration: its tag comes off unless another ticket holds the VM.
func (s *Sink) Expire(ctx context.Context) error {
	p := s.newPass()
	p.quiet = true
	var errs []error
	func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		var due []string
		for id, g := range s.grants {
			if !g.Expired && !now.Before(g.Since.Add(s.cfg.MaxDuration)) {
				due = append(due, id)
			}
		}
		slices.Sort(due)
		c := cause{kind: "expiry", id: "expiry-" + strconv.FormatInt(now.UnixNano(), 10)}
		for _, id := range due {
			if err := s.decide(ctx, p, c, id, nil); err != nil {
				errs = append(errs, err)
				if !errors.Is(err, pipeline.ErrPermanent) {
					return
				}
			}
		}
	}()
	if err := p.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("publish audit events: %w", err))
	}
	return errors.Join(errs...)
}

// Reconcile makes NSX agree with the help desk: it decides every locked
// ticket (granting what a missed webhook did not, expiring what is due),
// re-reads every ticket with a grant record that is no longer locked
// (revoking what a missed unlock left), and removes the tag from every VM
// that carries it while no ticket holds it. Each change is audited with
// cause "reconcile". It returns the failures joined; what failed is tried
// again at the next pass.
func (s *Sink) Reconcile(ctx context.Context) (err error) {
	start := time.Now()
	defer func() {
		s.m.duration.Observe(time.Since(start).Seconds())
		if err != nil {
			s.m.reconcile.WithLabelValues("error").Inc()
			return
		}
		s.m.reconcile.WithLabelValues("ok").Inc()
		s.m.last.Set(float64(time.Now().Unix()))
	}()
	p := s.newPass()
	p.quiet = true
	var errs []error
	func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		c := cause{kind: "reconcile", id: "reconcile-" + strconv.FormatInt(s.cfg.Now().UnixNano(), 10)}
		locked, err := s.lockedTickets(ctx, p)
		if err != nil {
			errs = append(errs, err)
			return
		}
		seen := map[string]bool{}
		for i := range locked {
			t := &locked[i]
			id := string(t.TicketID)
			seen[id] = true
			if err := s.decide(ctx, p, c, id, t); err != nil {
				if errs = append(errs, err); !errors.Is(err, pipeline.ErrPermanent) {
					return
				}
			}
		}
		var stale []string
		for id := range s.grants {
			if !seen[id] {
				stale = append(stale, id)
			}
		}
		slices.Sort(stale)
		for _, id := range stale {
			if err := s.decide(ctx, p, c, id, nil); err != nil {
				if errs = append(errs, err); !errors.Is(err, pipeline.ErrPermanent) {
					return
				}
			}
		}
		if err := s.sweep(ctx, p, c); err != nil {
			errs = append(errs, err)
		}
	}()
	if err := p.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("publish audit events: %w", err))
	}
	return errors.Join(errs...)
}

// sweep removes the tag from every VM in NSX that carries it while no
// ticket holds it. Called with s.mu held, after the tickets were decided.
func (s *Sink) sweep(ctx context.Context, p *pass, c cause) error {
	var tagged []VM
	err := s.d.NSX.ListVMs(ctx, func(vms []nsx.VM) error {
		for _, vm := range vms {
			if slices.Contains(vm.Tags, s.cfg.Tag) {
				tagged = append(tagged, VM{Name: vm.DisplayName, InstanceUUID: vm.ExternalID})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list nsx vms: %w", err)
	}
	var errs []error
	for _, vm := range tagged {
		holders, err := s.holders(ctx, p, vm, "")
		if err != nil {
			return err
		}
		if len(holders) > 0 {
			continue
		}
		a := audit{action: ActionRevoke, c: c, vm: vm, reason: "the VM carries the tag but no locked ticket holds it"}
		ch, err := s.d.NSX.RemoveTags(ctx, vm.InstanceUUID, s.cfg.Tag)
		switch {
		case errors.Is(err, nsx.ErrNotFound):
			continue
		case err != nil:
			a.failure, a.change = true, "failed"
			a.reason += "; NSX: " + err.Error()
			errs = append(errs, fmt.Errorf("untag vm %s: %w", vm.InstanceUUID, err))
		case len(ch.Remove) == 0:
			continue
		default:
			a.change = "removed"
		}
		s.emit(ctx, p, a)
	}
	return errors.Join(errs...)
}
