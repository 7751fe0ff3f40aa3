package vcenter

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the vCenter sources' Prometheus metrics, labelled by the
// configured vCenter name. One Metrics serves every Source of a process;
// safe for concurrent use.
type Metrics struct {
	events      *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	errors      *prometheus.CounterVec
	logins      *prometheus.CounterVec
	wraps       *prometheus.CounterVec
	connected   *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
}

// Error kinds: the kind label of vpipe_vcenter_errors_total.
const (
	errConnect    = "connect"    // connect or log in
	errCollector  = "collector"  // create the event history collector
	errRead       = "read"       // ReadNextEvents (session lost, vCenter down)
	errConvert    = "convert"    // an event that could not be normalised
	errPublish    = "publish"    // Kafka did not take an event
	errCheckpoint = "checkpoint" // the checkpoint could not be read or written
)

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). It panics when they are already registered with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vc := []string{"vcenter"}
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_vcenter_events_total",
			Help: "vCenter events read from the event history and acknowledged by Kafka.",
		}, vc),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_vcenter_duplicates_total",
			Help: "Events read again after a resume and skipped, as the checkpoint already had them.",
		}, vc),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_vcenter_errors_total",
			Help: "Failures by kind (connect, collector, read, convert, publish, checkpoint); each is retried.",
		}, []string{"vcenter", "kind"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_vcenter_logins_total",
			Help: "Sessions opened with vCenter (the first, and every re-login after a failure).",
		}, vc),
		wraps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_vcenter_key_wraps_total",
			Help: "Times the event key went backwards (int32 wrap-around or a reset of vCenter's database).",
		}, vc),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_vcenter_connected",
			Help: "1 while the source holds a working session and collector, else 0.",
		}, vc),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_vcenter_last_success_timestamp_seconds",
			Help: "Unix time of the last successful read of the event history.",
		}, vc),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_vcenter_lag_seconds",
			Help: "Age of the last event read when it was read (0 once the source has caught up).",
		}, vc),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.duplicates, m.errors, m.logins, m.wraps, m.connected, m.lastSuccess, m.lag)
	}
	return m
}

// sourceMetrics are one vCenter's children.
type sourceMetrics struct {
	events, duplicates, logins, wraps prometheus.Counter
	errors                            map[string]prometheus.Counter
	connected, lastSuccess, lag       prometheus.Gauge
}

func (m *Metrics) forSource(name string) sourceMetrics {
	sm := sourceMetrics{
		events:      m.events.WithLabelValues(name),
		duplicates:  m.duplicates.WithLabelValues(name),
		logins:      m.logins.WithLabelValues(name),
		wraps:       m.wraps.WithLabelValues(name),
		errors:      map[string]prometheus.Counter{},
		connected:   m.connected.WithLabelValues(name),
		lastSuccess: m.lastSuccess.WithLabelValues(name),
		lag:         m.lag.WithLabelValues(name),
	}
	for _, k := range []string{errConnect, errCollector, errRead, errConvert, errPublish, errCheckpoint} {
		sm.errors[k] = m.errors.WithLabelValues(name, k)
	}
	return sm
}
