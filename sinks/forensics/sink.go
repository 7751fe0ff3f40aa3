// Package forensics is the forensics stage: when a VM joins a quarantine
// NSX group (an nsx.group_membership event from pipeline/nsxgroups on
// `<prefix>nsx`) it takes a VM snapshot that says why, and starts a
// distributed-switch port-mirroring session (VSPAN, encapsulated remote
// mirror source) of every one of the VM's vNICs, both directions, to an
// analyser; when the VM leaves, it removes the session and keeps the
// snapshot. Optionally it posts a JSON webhook per group, and a retention
// sweep deletes vpipe's snapshots after a configured age. Every action is
// an audit event on `<prefix>audit`.
//
// It replaces the vCenter Orchestrator workflow of shared/seeds/002 (which
// mirrored only the first vNIC) and is built on govmomi: snapshots with
// VirtualMachine.CreateSnapshot_Task, sessions with
// DistributedVirtualSwitch.ReconfigureDvs_Task and
// VMwareDVSConfigSpec.vspanConfigSpec (vSphere Web Services API,
// VMwareVspanSession).
//
// Every action looks for its own result first, by markers vpipe writes in
// the snapshot description and the session name and description (see
// vcenter.go), so a redelivered or repeated event, or one retried after a
// crash half-way, creates no second snapshot or session.
package forensics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/nsxgroups"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// Config configures a Sink.
type Config struct {
	// Groups are the quarantine groups, by the id membership events carry
	// (nsxgroups.Group.ID). Events of other groups are ignored and counted.
	// At least one.
	Groups map[string]GroupOptions
	// Snapshot enables the snapshot on join; nil disables it.
	Snapshot *SnapshotOptions
	// Mirror enables the mirror session; nil disables it.
	Mirror *MirrorOptions
}

// GroupOptions are the per-group settings.
type GroupOptions struct {
	// Webhook, when set, is posted after the stage acted on a join or a
	// leave of this group.
	Webhook *Webhook
}

// Deps are what a Sink works with.
type Deps struct {
	VCenter *VCenter // required
	Audit   Auditor  // required
	// HTTP posts the webhooks; nil uses a client with default settings.
	HTTP    *http.Client
	Metrics *Metrics     // nil: unregistered
	Log     *slog.Logger // nil: discard
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Sink is the forensics stage's stage.Sink.
type Sink struct {
	cfg Config
	vc  *VCenter
	aud Auditor
	hc  *http.Client
	m   *Metrics
	log *slog.Logger
	now func() time.Time
}

// New checks cfg and returns a Sink. It does no I/O.
func New(cfg Config, d Deps) (*Sink, error) {
	var errs []error
	if len(cfg.Groups) == 0 {
		errs = append(errs, errors.New("no groups"))
	}
	if d.VCenter == nil || d.Audit == nil {
		errs = append(errs, errors.New("vcenter and auditor are required"))
	}
	if m := cfg.Mirror; m != nil {
		if m.Destination == "" {
			errs = append(errs, errors.New("mirror: no destination"))
		}
		if m.SnapshotLength != 0 && m.SnapshotLength < 60 {
			errs = append(errs, fmt.Errorf("mirror: snapshot length %d is below 60", m.SnapshotLength))
		}
		if m.SamplingRate < 0 || m.SamplingRate > 65535 {
			errs = append(errs, fmt.Errorf("mirror: sampling rate %d is outside 1..65535", m.SamplingRate))
		}
	}
	for g, o := range cfg.Groups {
		if o.Webhook != nil && o.Webhook.URL == "" {
			errs = append(errs, fmt.Errorf("group %s: webhook without url", g))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("forensics: %w", err)
	}
	s := &Sink{cfg: cfg, vc: d.VCenter, aud: d.Audit, hc: d.HTTP, m: d.Metrics, log: d.Log, now: d.Now}
	if s.hc == nil {
		s.hc = &http.Client{}
	}
	if s.m == nil {
		s.m = NewMetrics(nil)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "forensics")
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Write implements stage.Sink. It handles the records in order, one at a
// time, and returns at the first error: nil once every join and leave of
// a configured group was acted on and audited (other records are ignored
// and counted). A permanent error (the VM is not in this vCenter, vCenter
// refused an action, a webhook answered 4xx) is returned after its
// failure was audited, so that the runner sends the record to the DLQ; a
// retryable one makes the runner write the batch again, which redoes
// nothing already done.
func (s *Sink) Write(ctx context.Context, batch []stage.Record) error {
	for i := range batch {
		e := batch[i].Event
		m, ok := nsxgroups.FromEvent(e)
		if !ok {
			s.m.events.WithLabelValues("ignored").Inc()
			continue
		}
		g, ok := s.cfg.Groups[m.Group]
		if !ok {
			s.m.events.WithLabelValues("ignored").Inc()
			continue
		}
		if err := s.handle(ctx, m, strings.Clone(e.ID), g); err != nil {
			return err
		}
		s.m.events.WithLabelValues("handled").Inc()
	}
	return nil
}

// episode collects one record's audit events and webhook actions.
type episode struct {
	s       *Sink
	m       nsxgroups.Membership
	cause   Cause
	vm      *VM
	audits  []*pipeline.Event
	actions []WebhookAction
	// failed is the first permanent error: the record is done with what
	// could be done, and then goes to the DLQ.
	failed error
}

// record audits an action; a failure fails the record (see failed).
func (ep *episode) record(action string, r Result, err error) {
	ep.audit(action, r, err)
	if err != nil && ep.failed == nil {
		ep.failed = err
	}
}

// audit audits an action without failing the record.
func (ep *episode) audit(action string, r Result, err error) {
	rec := auditRecord{
		action: action, cause: ep.cause, change: ep.m.Action(), vmUUID: ep.m.VMExternalID,
		vmName: ep.m.VMName, vmRef: ep.m.VMRef, server: ep.s.vc.Server, result: r, err: err, at: ep.s.now(),
	}
	if ep.vm != nil {
		rec.vmName, rec.vmRef, rec.vmUUID = ep.vm.Name, ep.vm.Ref.Value, ep.vm.InstanceUUID
	}
	e := auditEvent(rec)
	ep.audits = append(ep.audits, e)
	ep.actions = append(ep.actions, WebhookAction{Action: action, Outcome: e.Outcome, Target: r.Ref, Detail: r.Detail, Error: e.Error})
	ep.s.m.actions.WithLabelValues(action, e.Outcome).Inc()
	if err != nil {
		ep.s.log.Warn("forensic action failed", "action", action, "vm", rec.vmName, "external_id", rec.vmUUID, "group", ep.m.Group, "error", err)
	} else if r.Changed {
		ep.s.log.Info("forensic action", "action", action, "vm", rec.vmName, "external_id", rec.vmUUID, "group", ep.m.Group, "detail", r.Detail)
	}
}

// handle acts on one membership change and audits what it did. The audit
// events of the actions done are written even when a later one fails.
func (s *Sink) handle(ctx context.Context, m nsxgroups.Membership, id string, g GroupOptions) (err error) {
	ep := &episode{s: s, m: m, cause: Cause{Group: m.Group, GroupName: m.GroupName, EventID: id, Time: m.Time}}
	defer func() {
		if len(ep.audits) == 0 {
			return
		}
		if aerr := s.aud.Audit(ctx, ep.audits...); aerr != nil {
			err = errors.Join(err, fmt.Errorf("audit: %w", aerr))
		}
	}()
	if m.Joined {
		err = s.join(ctx, ep)
	} else {
		err = s.leave(ctx, ep)
	}
	if err != nil {
		return err
	}
	if g.Webhook != nil {
		if err := s.webhook(ctx, ep, g.Webhook); err != nil {
			return err
		}
	}
	return ep.failed
}

// join takes the snapshot, then sets up the mirror session. A retryable
// error returns at once; the record is written again and finds done what
// was done.
func (s *Sink) join(ctx context.Context, ep *episode) error {
	m := ep.m
	vm, err := timed(s, ActionVMLookup, func() (*VM, error) { return s.findVM(ctx, m) })
	if err != nil {
		if errors.Is(err, pipeline.ErrPermanent) {
			ep.record(ActionVMLookup, Result{}, err)
			return nil
		}
		return err
	}
	ep.vm = vm
	if vm.InstanceUUID == "" {
		// vpipe names and finds its sessions by it; vCenter gives every VM one.
		ep.record(ActionVMLookup, Result{}, pipeline.Permanent(fmt.Errorf("vm %s has no instance uuid", vm.Name)))
		return nil
	}
	if opt := s.cfg.Snapshot; opt != nil {
		ongoing := false
		if s.cfg.Mirror != nil {
			if ongoing, err = s.vc.HasSessionFor(ctx, vm.InstanceUUID, m.Group); err != nil {
				return err
			}
		}
		var r Result
		if ongoing {
			r = Result{Detail: fmt.Sprintf("VM %s is already quarantined by group %s (its mirror session lists the group): no second snapshot", vm.Name, ep.cause.groupName())}
			if snap := groupSnapshot(vm, m.Group); snap != nil {
				r.Ref = snap.Snapshot.Value
			}
		} else {
			r, err = timed(s, ActionSnapshotCreate, func() (Result, error) { return s.vc.Snapshot(ctx, vm, ep.cause, *opt) })
			if err != nil && !errors.Is(err, pipeline.ErrPermanent) {
				return err
			}
		}
		ep.record(ActionSnapshotCreate, r, err)
	}
	if opt := s.cfg.Mirror; opt != nil {
		type mirrored struct {
			rs  []Result
			bad []NIC
		}
		res, err := timed(s, ActionMirrorCreate, func() (mirrored, error) {
			rs, bad, err := s.vc.Mirror(ctx, vm, ep.cause, *opt)
			return mirrored{rs, bad}, err
		})
		for _, r := range res.rs {
			ep.record(ActionMirrorCreate, r, nil)
		}
		if err != nil {
			if !errors.Is(err, pipeline.ErrPermanent) {
				return err
			}
			ep.record(ActionMirrorCreate, Result{}, err)
		}
		if len(res.bad) > 0 {
			s.m.unmirrored.Add(float64(len(res.bad)))
			// Audited as a failure; the record itself is done: retrying
			// cannot mirror these vNICs.
			ep.audit(ActionMirrorCreate, Result{Ref: "unmirrorable", Detail: unmirrorableDetail(res.bad)},
				fmt.Errorf("%d vNIC(s) of VM %s cannot be mirrored", len(res.bad), vm.Name))
		}
		if len(res.rs) == 0 && len(res.bad) == 0 && err == nil {
			ep.record(ActionMirrorCreate, Result{Detail: fmt.Sprintf("VM %s has no vNIC to mirror", vm.Name)}, nil)
		}
	}
	return nil
}

// findVM finds the VM of a membership change by its instance UUID, or by
// its managed object id when NSX gave only that (NSX-V).
func (s *Sink) findVM(ctx context.Context, m nsxgroups.Membership) (*VM, error) {
	if m.VMExternalID != "" {
		return s.vc.FindVM(ctx, m.VMExternalID)
	}
	return s.vc.FindVMByRef(ctx, m.VMRef)
}

func unmirrorableDetail(nics []NIC) string {
	var b strings.Builder
	b.WriteString("not mirrored: ")
	for i, n := range nics {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(firstNonEmpty(n.Label, n.MAC))
		switch {
		case n.SwitchUUID == "":
			b.WriteString(" (not on a distributed switch)")
		default:
			b.WriteString(" (no distributed port bound)")
		}
	}
	return b.String()
}

// leave removes the group from the VM's mirror sessions (removing a
// session no group holds). The snapshot stays.
func (s *Sink) leave(ctx context.Context, ep *episode) error {
	if s.cfg.Mirror == nil {
		return nil
	}
	m := ep.m
	// The VM is not needed to find its sessions when NSX gave its
	// instance UUID, only to name it in the audit events; it may be gone.
	vm, err := s.findVM(ctx, m)
	switch {
	case err == nil:
		ep.vm = vm
	case !errors.Is(err, ErrVMNotFound):
		return err
	}
	uuid := m.VMExternalID
	if uuid == "" && ep.vm != nil {
		uuid = ep.vm.InstanceUUID
	}
	if uuid == "" {
		ep.record(ActionMirrorRemove, Result{}, pipeline.Permanent(fmt.Errorf(
			"vm %s is not in vcenter and NSX named it by managed object id only: its mirror session cannot be identified", m.VMRef)))
		return nil
	}
	rs, err := timed(s, ActionMirrorRemove, func() ([]Result, error) { return s.vc.Unmirror(ctx, uuid, m.VMName, ep.cause) })
	for _, r := range rs {
		ep.record(ActionMirrorRemove, r, nil)
	}
	if err != nil {
		if !errors.Is(err, pipeline.ErrPermanent) {
			return err
		}
		ep.record(ActionMirrorRemove, Result{}, err)
	}
	if len(rs) == 0 && err == nil {
		ep.record(ActionMirrorRemove, Result{Detail: fmt.Sprintf("VM %s has no vpipe mirror session", firstNonEmpty(m.VMName, m.VMExternalID))}, nil)
	}
	return nil
}

// webhook posts the episode to the group's webhook and audits the post.
func (s *Sink) webhook(ctx context.Context, ep *episode, w *Webhook) error {
	body := &WebhookBody{
		ID: ep.cause.EventID, Change: ep.m.Action(), Group: ep.m.Group, GroupName: ep.m.GroupName,
		VM:   WebhookVM{ExternalID: ep.m.VMExternalID, Name: ep.m.VMName, VCenter: s.vc.Server},
		Time: ep.m.Time.UTC(), Actions: ep.actions,
	}
	if ep.vm != nil {
		body.VM.Name, body.VM.Ref = ep.vm.Name, ep.vm.Ref.Value
	}
	_, err := timed(s, ActionWebhookPost, func() (struct{}, error) { return struct{}{}, w.post(ctx, s.hc, body) })
	if err != nil && !errors.Is(err, pipeline.ErrPermanent) {
		return err
	}
	r := Result{Changed: err == nil, Ref: redact(w.URL), Detail: "posted to " + redact(w.URL)}
	if err != nil {
		r.Detail = ""
	}
	ep.record(ActionWebhookPost, r, err)
	return nil
}

// timed runs f and observes its duration under action.
func timed[T any](s *Sink, action string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	s.m.actionTime.WithLabelValues(action).Observe(time.Since(start).Seconds())
	return v, err
}
