package tagsync

import "github.com/prometheus/client_golang/prometheus"

// Event results: the result label of vpipe_tagsync_events_total.
const (
	EventSynced       = "synced"        // a tagging event: its VMs were synced
	EventNotTagging   = "not_tagging"   // another kind of vCenter event
	EventNotVM        = "not_vm"        // the tagged object is not a VM (or no VM of that name exists)
	EventOtherVCenter = "other_vcenter" // an event of another vCenter
)

// VM sync results: the result label of vpipe_tagsync_vm_syncs_total.
const (
	SyncChanged   = "changed"       // NSX confirmed a change
	SyncUnchanged = "unchanged"     // NSX already agreed
	SyncPlanned   = "planned"       // dry run: a change was planned
	SyncNotInNSX  = "vm_not_in_nsx" // NSX does not know the VM (yet)
	SyncGone      = "vm_gone"       // the VM was deleted from vCenter meanwhile
	SyncError     = "error"         // vCenter or NSX failed; retried
)

// Metrics are the tag-sync stage's Prometheus metrics. Safe for concurrent
// use; one per registry.
type Metrics struct {
	events        *prometheus.CounterVec
	syncs         *prometheus.CounterVec
	changes       *prometheus.CounterVec
	invalid       prometheus.Counter
	auditErrors   prometheus.Counter
	reconDuration prometheus.Gauge
	reconLast     prometheus.Gauge
	reconVMs      prometheus.Gauge
	reconErrors   prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). It panics when they are already registered with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tagsync_events_total",
			Help: "vCenter events the tag-sync stage consumed, by result (synced, not_tagging, not_vm, other_vcenter).",
		}, []string{"result"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tagsync_vm_syncs_total",
			Help: "VMs whose NSX tags were made to agree with vSphere, by cause (event, reconcile) and result.",
		}, []string{"cause", "result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tagsync_tag_changes_total",
			Help: "NSX tags added or removed by tag sync, by action and cause.",
		}, []string{"action", "cause"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_tagsync_invalid_tags_total",
			Help: "vSphere tags of a synced category that NSX cannot hold (scope over 128 or tag over 256 characters); left out.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_tagsync_audit_errors_total",
			Help: "Audit events Kafka did not take.",
		}),
		reconDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_tagsync_reconcile_duration_seconds",
			Help: "Duration of the last full reconciliation.",
		}),
		reconLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_tagsync_reconcile_last_success_timestamp_seconds",
			Help: "Unix time the last full reconciliation completed without error.",
		}),
		reconVMs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_tagsync_reconcile_vms",
			Help: "VMs the last full reconciliation compared.",
		}),
		reconErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_tagsync_reconcile_errors_total",
			Help: "Full reconciliations that failed or left VMs unsynced.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.syncs, m.changes, m.invalid, m.auditErrors, m.reconDuration, m.reconLast, m.reconVMs, m.reconErrors)
	}
	return m
}
