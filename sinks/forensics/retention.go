package forensics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// Retention deletes the snapshots vpipe took (IsVpipeSnapshot) once they
// are older than Keep, every Interval, auditing each deletion. Snapshots
// vpipe did not take are never touched. Run it as a poller; several
// processes may run it at once (a snapshot already deleted by another is
// not an error).
type Retention struct {
	VCenter *VCenter
	Audit   Auditor
	// Keep is the age past which a vpipe snapshot is deleted. Required
	// (> 0).
	Keep time.Duration
	// Interval between sweeps. Default 1h.
	Interval time.Duration
	Metrics  *Metrics     // nil: unregistered
	Log      *slog.Logger // nil: discard
	Now      func() time.Time
}

// DefaultRetentionInterval is the time between two retention sweeps.
const DefaultRetentionInterval = time.Hour

// Run sweeps at once and then every Interval until ctx ends; it returns
// nil then. A failed sweep is logged and retried at the next one.
func (r *Retention) Run(ctx context.Context) error {
	if r.Keep <= 0 || r.VCenter == nil || r.Audit == nil {
		return errors.New("forensics retention: keep, vcenter and auditor are required")
	}
	log := r.log()
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	log.Info("snapshot retention started", "keep", r.Keep, "interval", interval)
	for {
		if n, err := r.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("snapshot retention sweep failed; retrying at the next", "deleted", n, "error", err)
		} else if n > 0 {
			log.Info("snapshot retention sweep", "deleted", n)
		}
		// Jitter, so that processes running it do not sweep in step.
		t := time.NewTimer(interval - interval/10 + rand.N(interval/5+1))
		select {
		case <-ctx.Done():
			t.Stop()
			log.Info("snapshot retention stopped")
			return nil
		case <-t.C:
		}
	}
}

// Sweep deletes every vpipe snapshot older than Keep now, audits each
// deletion, and returns how many it deleted. It stops at the first
// retryable error; a permanent one is audited and the sweep goes on.
func (r *Retention) Sweep(ctx context.Context) (int, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	m := r.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	old, err := r.VCenter.OldSnapshots(ctx, now().Add(-r.Keep))
	if err != nil {
		return 0, err
	}
	n := 0
	var failed []error
	for _, o := range old {
		err := r.VCenter.RemoveSnapshot(ctx, o.Snapshot.Snapshot)
		if err != nil && !errors.Is(err, pipeline.ErrPermanent) {
			return n, err
		}
		res := Result{Changed: err == nil, Ref: o.Snapshot.Snapshot.Value}
		if err == nil {
			res.Detail = fmt.Sprintf("snapshot %q of VM %s taken %s deleted: older than %s",
				o.Snapshot.Name, o.VMName, o.Snapshot.CreateTime.UTC().Format(time.RFC3339), r.Keep)
		}
		e := auditEvent(auditRecord{
			action: ActionSnapshotDelete, change: "retention", vmUUID: o.InstanceUUID, vmName: o.VMName,
			vmRef: o.VM.Value, server: r.VCenter.Server, result: res, err: err, at: now(),
			cause: Cause{Group: markerValue(o.Snapshot.Description, markerGroup), EventID: markerValue(o.Snapshot.Description, markerEvent)},
		})
		m.actions.WithLabelValues(ActionSnapshotDelete, e.Outcome).Inc()
		if aerr := r.Audit.Audit(ctx, e); aerr != nil {
			return n, fmt.Errorf("audit: %w", aerr)
		}
		if err != nil {
			failed = append(failed, err)
			continue
		}
		n++
	}
	if len(failed) == 0 {
		m.retentionOK.Set(float64(now().Unix()))
	}
	return n, errors.Join(failed...)
}

func (r *Retention) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log.With("component", "forensics-retention")
}
