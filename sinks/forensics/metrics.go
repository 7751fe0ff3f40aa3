package forensics

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the forensics stage's Prometheus metrics. Labels come from
// bounded sets: action (the Action* constants), outcome (success,
// failure), result (handled, ignored). Safe for concurrent use.
type Metrics struct {
	events      *prometheus.CounterVec
	actions     *prometheus.CounterVec
	actionTime  *prometheus.HistogramVec
	unmirrored  prometheus.Counter
	retentionOK prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests). It panics if they are already registered with
// reg: call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_forensics_events_total",
			Help: "Membership events the forensics stage read, by result (handled; ignored: not a membership event or not a configured group).",
		}, []string{"result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_forensics_actions_total",
			Help: "Audited forensic actions, by action and outcome.",
		}, []string{"action", "outcome"}),
		actionTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_forensics_action_seconds",
			Help:    "Duration of a vCenter or webhook action, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"action"}),
		unmirrored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_forensics_unmirrorable_vnics_total",
			Help: "vNICs of quarantined VMs that no mirror session can cover (standard or opaque network, no distributed port bound).",
		}),
		retentionOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_forensics_retention_last_success_timestamp_seconds",
			Help: "Unix time of the last completed snapshot retention sweep.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.actions, m.actionTime, m.unmirrored, m.retentionOK)
	}
	return m
}
