package forensics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// DatasetAudit is the event.dataset of audit events: one action a stage
// took on vCenter or NSX (or a webhook it called), with its cause and
// result, on `<prefix>audit` keyed by the VM (DESIGN.md, "Topics and
// keys").
const DatasetAudit = "vpipe.audit"

// Audit actions (event.action) of the forensics stage.
const (
	ActionVMLookup       = "vm.lookup"       // the VM of a join was not found in vCenter
	ActionSnapshotCreate = "snapshot.create" // a forensic snapshot taken (or found already taken)
	ActionSnapshotDelete = "snapshot.delete" // a vpipe snapshot past retention deleted
	ActionMirrorCreate   = "mirror.create"   // a VSPAN session created or brought up to date
	ActionMirrorRemove   = "mirror.remove"   // a VSPAN session removed (or kept for another group)
	ActionWebhookPost    = "webhook.post"    // the group's webhook called
)

// Labels of audit events, besides those of the membership event they
// copy (nsx_group, vm_external_id).
const (
	LabelStage     = "vpipe_stage"      // "forensics"
	LabelTrigger   = "trigger_event_id" // event.id of the membership event
	LabelTarget    = "target"           // snapshot id, "<switch>/<session key>", webhook host
	LabelChanged   = "changed"          // "true", or "false" when the work was already done
	LabelVMRef     = "vm_ref"           // the VM's managed object id
	LabelVMUUID    = "vm_external_id"
	LabelNSXGroup  = "nsx_group"
	stageForensics = "forensics"
)

// Auditor stores audit events.
type Auditor interface {
	// Audit writes events and returns nil only when every one is durably
	// stored. It blocks and honours ctx. Errors are retryable unless
	// errors.Is(err, pipeline.ErrPermanent). The events may be reused once
	// it returns. Safe for concurrent use.
	Audit(ctx context.Context, events ...*pipeline.Event) error
}

// PublishAudit is the Auditor of the process's producer (or any
// pipeline.Publisher): the producer routes vpipe.audit events to
// <prefix>audit, keyed by the VM (pipeline.AppendKey, label
// vm_external_id), and Audit waits for Kafka's acknowledgement of every
// event.
type PublishAudit struct {
	Publisher pipeline.Publisher
}

// Audit implements Auditor.
func (a PublishAudit) Audit(ctx context.Context, events ...*pipeline.Event) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = fmt.Errorf("write audit events: %w", err)
		}
		mu.Unlock()
	}
	for _, e := range events {
		wg.Add(1)
		err := a.Publisher.Publish(ctx, e, func(err error) {
			if err != nil {
				fail(err)
			}
			wg.Done()
		})
		if err != nil {
			wg.Done()
			fail(err)
			break
		}
	}
	wg.Wait()
	return first
}

// auditRecord describes one action for auditEvent.
type auditRecord struct {
	action  string
	cause   Cause
	change  string // "joined", "left", "retention"
	vmUUID  string
	vmName  string
	vmRef   string
	server  string
	result  Result
	err     error
	at      time.Time
	outcome string // overrides success/failure when set
}

// auditEvent builds the audit event of one action. Its event.id derives
// from the triggering event, the action and its target, so the audit of
// an action redone after a redelivery has the id of the first.
func auditEvent(r auditRecord) *pipeline.Event {
	e := &pipeline.Event{
		Dataset:   DatasetAudit,
		Timestamp: r.at,
		Created:   r.at,
		Action:    r.action,
		Outcome:   "success",
		Message:   r.result.Detail,
	}
	if r.err != nil {
		e.Outcome = "failure"
		e.Error = r.err.Error()
		if e.Message == "" {
			e.Message = r.action + " failed: " + r.err.Error()
		}
	}
	if r.outcome != "" {
		e.Outcome = r.outcome
	}
	switch r.change {
	case "retention":
		e.Reason = "vpipe snapshot past its retention"
	default:
		e.Reason = fmt.Sprintf("VM %s %s NSX group %s", firstNonEmpty(r.vmName, r.vmUUID), r.change, r.cause.groupName())
		if r.cause.EventID != "" {
			e.Reason += " (event " + r.cause.EventID + ")"
		}
	}
	e.Host.Hostname = r.vmName
	e.Observer.Vendor = "VMware"
	e.Observer.Product = "vCenter"
	if r.action == ActionWebhookPost {
		e.Observer.Product = ""
	}
	e.Observer.Hostname = r.server
	v := &e.VMware.VCenter
	v.Server = r.server
	v.ObjectName = r.vmName
	v.ObjectType = "VirtualMachine"
	v.ObjectRef = r.vmRef
	e.AddLabel(LabelStage, stageForensics)
	if r.cause.EventID != "" {
		e.AddLabel(LabelTrigger, r.cause.EventID)
	}
	if r.cause.Group != "" {
		e.AddLabel(LabelNSXGroup, r.cause.Group)
	}
	if r.vmUUID != "" {
		e.AddLabel(LabelVMUUID, r.vmUUID)
	}
	if r.vmRef != "" {
		e.AddLabel(LabelVMRef, r.vmRef)
	}
	if r.result.Ref != "" {
		e.AddLabel(LabelTarget, r.result.Ref)
	}
	if r.err == nil {
		e.AddLabel(LabelChanged, fmt.Sprint(r.result.Changed))
	}
	h := sha256.New()
	for _, s := range []string{r.cause.EventID, r.action, r.vmUUID, r.result.Ref, r.change} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	e.ID = hex.EncodeToString(h.Sum(nil)[:16])
	orig, _ := json.Marshal(map[string]any{
		"stage": stageForensics, "action": r.action, "outcome": e.Outcome, "detail": e.Message,
		"error": e.Error, "target": r.result.Ref, "changed": r.result.Changed,
		"vm":    map[string]string{"external_id": r.vmUUID, "name": r.vmName, "ref": r.vmRef},
		"cause": map[string]string{"change": r.change, "group": r.cause.Group, "event_id": r.cause.EventID},
	})
	e.Original = orig
	return e
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
