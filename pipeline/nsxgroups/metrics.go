package nsxgroups

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the group-membership sources' Prometheus metrics, labelled
// by source (and group, as configured: a bounded set). One Metrics serves
// every Source of a process; it is safe for concurrent use.
type Metrics struct {
	polls       *prometheus.CounterVec
	changes     *prometheus.CounterVec
	triggers    *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	members     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	pollTime    *prometheus.HistogramVec

	triggerEvents *prometheus.CounterVec
	triggerErrors prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests). It panics if they are already registered with
// reg: call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	src := []string{"source"}
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsxgroups_polls_total",
			Help: "Polls of an NSX group's members, by result (ok: listed, published and checkpointed; error: retried).",
		}, []string{"source", "result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsxgroups_changes_total",
			Help: "Membership changes published and checkpointed, by change (joined, left).",
		}, []string{"source", "change"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsxgroups_triggered_polls_total",
			Help: "Polls started early by Trigger rather than by the interval.",
		}, src),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsxgroups_members_skipped_total",
			Help: "Group members NSX listed without an external_id, left out.",
		}, src),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_nsxgroups_members",
			Help: "VMs in the group at the last successful listing.",
		}, []string{"source", "group"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_nsxgroups_last_success_timestamp_seconds",
			Help: "Unix time of the source's last successful poll.",
		}, src),
		pollTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_nsxgroups_poll_seconds",
			Help:    "Duration of one poll: list, publish, checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, src),
		triggerEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsxgroups_trigger_events_total",
			Help: "Events that revealed a tag or group change (kind: vpipe_audit, nsx_audit), by result (triggered: the sources of that NSX Manager were asked to poll; all: the event named no manager, every source was; unmatched: no source names that manager).",
		}, []string{"kind", "result"}),
		triggerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_nsxgroups_trigger_read_errors_total",
			Help: "Failed reads of the trigger reader (listing partitions, end offsets, fetching), each retried.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.changes, m.triggers, m.skipped, m.members, m.lastSuccess, m.pollTime, m.triggerEvents, m.triggerErrors)
	}
	return m
}
