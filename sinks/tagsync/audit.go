package tagsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// DatasetAudit is event.dataset of audit events (pipeline.DatasetAudit),
// shared with the other stages that act on NSX or vCenter
// (labels.vpipe_stage tells them apart); they go to <prefix>audit, keyed
// by the VM (label vm_external_id).
const DatasetAudit = pipeline.DatasetAudit

// StageName is labels.vpipe_stage of tag sync's audit events.
const StageName = "tag-sync"

// Audit event labels.
const (
	LabelStage     = "vpipe_stage"
	LabelVMUUID    = "vm_external_id" // the instance UUID, NSX's external_id
	LabelVMRef     = "vm_ref"
	LabelAdded     = "nsx_added"   // "scope|tag,scope|tag"
	LabelRemoved   = "nsx_removed" // likewise
	LabelCause     = "cause"       // event, reconcile
	LabelCauseID   = "trigger_event_id"
	LabelDryRun    = "dry_run" // "true" when the change was planned only
	LabelEventType = "vcenter_event_type"
	// LabelNSXManager is Config.NSXManager (pipeline/nsxgroups reads it).
	LabelNSXManager = "nsx_manager"
)

// Audit actions (event.action).
const (
	ActionUpdate = "nsx-tags-update"  // NSX confirmed the change
	ActionPlan   = "nsx-tags-planned" // dry run
)

// pass collects one Write's or reconciliation's audit acknowledgements.
type pass struct {
	wg sync.WaitGroup
}

func (s *Sink) newPass() *pass { return &pass{} }

// wait returns once Kafka acknowledged (or refused) every audit event of
// the pass, or ctx ended. A refused audit event is counted and logged, not
// returned: NSX has changed already, and a retry would find nothing to do.
func (p *pass) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func tagList(ts []nsx.Tag) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

// emit publishes the audit event of one VM's change (or failure).
func (s *Sink) emit(p *pass, vm VM, c cause, ch nsx.Change, failure error) {
	if s.audit == nil {
		return
	}
	e := s.auditEvent(vm, c, ch, failure)
	p.wg.Add(1)
	// The audit must not hang on a Write's ending context: it has its own.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := s.audit.Publish(ctx, e, func(err error) {
		if err != nil {
			s.m.auditErrors.Inc()
			s.log.Warn("audit event not delivered", "vm", vm.Name, "error", err)
		}
		p.wg.Done()
	})
	cancel()
	if err != nil {
		s.m.auditErrors.Inc()
		s.log.Warn("audit event not published", "vm", vm.Name, "error", err)
		p.wg.Done()
	}
}

// auditRecord is event.original of an audit event.
type auditRecord struct {
	Stage   string    `json:"stage"`
	VM      VM        `json:"vm"`
	Add     []nsx.Tag `json:"add,omitempty"`
	Remove  []nsx.Tag `json:"remove,omitempty"`
	Cause   string    `json:"cause"`
	Trigger string    `json:"trigger_event_id,omitempty"`
	User    string    `json:"user,omitempty"`
	DryRun  bool      `json:"dry_run,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// auditEvent builds the audit event: who tagged in vCenter (user.*), what
// changed in NSX (labels nsx_added / nsx_removed, message), the result
// (event.outcome), the VM (host.hostname, labels). Its id derives from
// the cause, the VM and the change, so a replay yields the same id.
func (s *Sink) auditEvent(vm VM, c cause, ch nsx.Change, failure error) *pipeline.Event {
	now := time.Now().UTC()
	action := ActionUpdate
	if s.cfg.DryRun {
		action = ActionPlan
	}
	outcome := "success"
	rec := auditRecord{Stage: StageName, VM: vm, Add: ch.Add, Remove: ch.Remove, Cause: c.kind, Trigger: c.id,
		User: c.user, DryRun: s.cfg.DryRun}
	if failure != nil {
		outcome = "failure"
		rec.Error = failure.Error()
	}
	orig, _ := json.Marshal(rec)
	e := &pipeline.Event{
		Timestamp: now, Created: now, Dataset: DatasetAudit, Kind: "event",
		Action: action, Outcome: outcome, Original: orig,
	}
	if failure != nil {
		e.Reason = failure.Error()
	}
	e.User.Name, e.User.Domain = c.user, c.domain
	e.Host.Hostname = vm.Name
	e.Observer.Vendor, e.Observer.Product = "vpipe", StageName
	v := &e.VMware.VCenter
	v.Server, v.ObjectName, v.ObjectRef, v.ObjectType = s.cfg.VCenter, vm.Name, vm.Ref, "VirtualMachine"
	v.EventType, v.Tag = c.eventType, c.tag
	add := func(k, val string) {
		if val != "" {
			e.AddLabel(k, val)
		}
	}
	add(LabelStage, StageName)
	add(LabelVMUUID, vm.InstanceUUID)
	add(LabelVMRef, vm.Ref)
	add(LabelAdded, tagList(ch.Add))
	add(LabelRemoved, tagList(ch.Remove))
	add(LabelCause, c.kind)
	add(LabelCauseID, c.id)
	add(LabelEventType, c.eventType)
	add(LabelNSXManager, s.cfg.NSXManager)
	if s.cfg.DryRun {
		add(LabelDryRun, "true")
	}
	e.Message = auditMessage(vm, c, ch, s.cfg.DryRun, failure)
	h := sha256.New()
	for _, part := range []string{StageName, c.kind, c.id, vm.InstanceUUID, tagList(ch.Add), tagList(ch.Remove), outcome} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	e.ID = hex.EncodeToString(h.Sum(sum[:0])[:8])
	return e
}

func auditMessage(vm VM, c cause, ch nsx.Change, dry bool, failure error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "VM %s (%s): ", vm.Name, vm.InstanceUUID)
	switch {
	case failure != nil:
		fmt.Fprintf(&b, "could not sync NSX tags: %v", failure)
	default:
		verb := ""
		if dry {
			verb = "would be "
		}
		var parts []string
		if len(ch.Add) > 0 {
			parts = append(parts, "NSX tags "+tagList(ch.Add)+" "+verb+"added")
		}
		if len(ch.Remove) > 0 {
			parts = append(parts, "NSX tags "+tagList(ch.Remove)+" "+verb+"removed")
		}
		b.WriteString(strings.Join(parts, "; "))
	}
	switch c.kind {
	case "event":
		fmt.Fprintf(&b, ", after %s", c.eventType)
		if c.tag != "" {
			fmt.Fprintf(&b, " of tag %s", c.tag)
		}
		if c.user != "" {
			u := c.user
			if c.domain != "" {
				u = c.domain + `\` + u
			}
			fmt.Fprintf(&b, " by %s", u)
		}
	default:
		b.WriteString(", by the reconciliation")
	}
	return b.String()
}
