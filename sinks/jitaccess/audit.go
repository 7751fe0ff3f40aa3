package jitaccess

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/znuny"
)

// pass is one Write, reconcile or expiry run: its caches and the audit
// events it published.
type pass struct {
	names  map[string]resolved // field value → VM, for this pass
	locked *[]znuny.Ticket     // the locked tickets, read once
	// quiet passes (reconcile, expiry) audit only what changed, not the
	// same refusal or confirmation at every pass.
	quiet bool

	wg  sync.WaitGroup
	mu  sync.Mutex
	err error // the first publish failure
}

func (s *Sink) newPass() *pass { return &pass{names: map[string]resolved{}} }

func (p *pass) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// wait returns once Kafka acknowledged (or refused) every audit event of
// the pass, or ctx ended.
func (p *pass) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// audit is one decision.
type audit struct {
	action  string
	failure bool
	c       cause
	t       ticketInfo
	vm      VM
	reason  string
	change  string    // LabelChange
	until   time.Time // LabelExpires, when known
	holders []string  // LabelHolders
}

// emit counts a, logs it, and publishes its audit event; a publish failure
// fails the pass. A quiet pass leaves out decisions that change nothing.
func (s *Sink) emit(ctx context.Context, p *pass, a audit) {
	if p.quiet && !a.failure && (a.action == ActionNone || a.action == ActionGrant && a.change == "present") ||
		p.quiet && a.action == ActionDeny {
		return
	}
	outcome := "success"
	if a.failure {
		outcome = "failure"
	}
	s.m.decisions.WithLabelValues(a.action, outcome).Inc()
	e := s.auditEvent(a, outcome)
	level := s.log.Info
	if a.action == ActionNone {
		level = s.log.Debug
	}
	level("jit access decision", "action", a.action, "outcome", outcome, "ticket", a.t.id, "vm", a.vm.Name,
		"vm_instance_uuid", a.vm.InstanceUUID, "change", a.change, "cause", a.c.kind, "reason", a.reason)
	p.wg.Add(1)
	err := s.d.Audit.Publish(ctx, e, func(err error) {
		if err != nil {
			p.fail(err)
		}
		p.wg.Done()
	})
	if err != nil {
		p.wg.Done()
		p.fail(err)
	}
}

// auditEvent builds the audit event of a. Its event.id derives from the
// cause, the ticket, the action, the VM and the change, so that the same
// decision replayed has the same id.
func (s *Sink) auditEvent(a audit, outcome string) *pipeline.Event {
	now := s.cfg.Now()
	e := &pipeline.Event{
		Timestamp: now,
		Created:   now,
		Dataset:   DatasetAudit,
		Kind:      "event",
		Action:    a.action,
		Outcome:   outcome,
		Reason:    a.reason,
	}
	e.User.Name = a.t.owner
	e.Host.Hostname = a.vm.Name
	e.Observer.Vendor, e.Observer.Product = "vpipe", "jit-access"
	tag := s.cfg.Tag.String()
	add := func(k, v string) {
		if v != "" {
			e.AddLabel(k, v)
		}
	}
	add(LabelStage, StageName)
	add(LabelTicketID, a.t.id)
	add(LabelTicketNumber, a.t.number)
	add(LabelLock, a.t.lock)
	add(LabelStateType, a.t.stateType)
	add(LabelVMUUID, a.vm.InstanceUUID)
	add(LabelVMRef, a.vm.Ref)
	add(LabelTag, tag)
	add(LabelChange, a.change)
	add(LabelCause, a.c.kind)
	add(LabelCauseID, a.c.id)
	if !a.until.IsZero() {
		add(LabelExpires, a.until.UTC().Format(time.RFC3339))
	}
	add(LabelHolders, strings.Join(a.holders, ","))
	add(LabelNSXManager, s.cfg.NSXManager)
	e.Message = s.message(a, tag)

	h := sha256.New()
	for _, part := range []string{a.c.kind, a.c.id, a.t.id, a.t.number, a.action, outcome, a.vm.InstanceUUID, a.change, a.reason} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	e.ID = hex.EncodeToString(h.Sum(sum[:0])[:8])
	return e
}

// message is the audit event's sentence.
func (s *Sink) message(a audit, tag string) string {
	t := "ticket " + a.t.number
	if a.t.number == "" {
		t = "ticket #" + a.t.id
	}
	if a.t.owner != "" {
		t += " (" + a.t.owner + ")"
	}
	vm := a.vm.Name
	if a.vm.InstanceUUID != "" {
		vm += " " + a.vm.InstanceUUID
	}
	switch a.action {
	case ActionGrant:
		if a.failure {
			return fmt.Sprintf("%s: could not grant access to VM %s: %s", t, vm, a.reason)
		}
		return fmt.Sprintf("%s: access to VM %s granted (tag %s %s) until %s", t, vm, tag, a.change, a.until.UTC().Format(time.RFC3339))
	case ActionRevoke, ActionExpire:
		verb := "revoked"
		if a.action == ActionExpire {
			verb = "expired"
		}
		if a.change == "kept" {
			return fmt.Sprintf("%s: access to VM %s %s, tag %s kept for ticket(s) %s: %s", t, vm, verb, tag, strings.Join(a.holders, ","), a.reason)
		}
		if a.failure {
			return fmt.Sprintf("%s: could not revoke access to VM %s: %s", t, vm, a.reason)
		}
		return fmt.Sprintf("%s: access to VM %s %s (tag %s %s): %s", t, vm, verb, tag, a.change, a.reason)
	case ActionDeny:
		return fmt.Sprintf("%s: access denied: %s", t, a.reason)
	}
	return fmt.Sprintf("%s: nothing to do: %s", t, a.reason)
}
