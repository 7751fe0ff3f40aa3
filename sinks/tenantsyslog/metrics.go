package tenantsyslog

import "github.com/prometheus/client_golang/prometheus"

// Reasons an event resolves to no tenant destination: the values of the
// reason label of vpipe_tenant_unresolved_total.
const (
	ReasonNoLabel       = "no_label"       // the event carries no log label
	ReasonUnknown       = "unknown"        // no tenant claims the label
	ReasonAmbiguous     = "ambiguous"      // several tenants claim it
	ReasonNoDestination = "no_destination" // its tenant has no destination (discovered only)
	ReasonRemoved       = "removed"        // a parked event whose tenant or destination is gone
)

// Results for unresolved events: the values of the result label.
const (
	ResultCatchAll = "catch_all" // sent to the catch-all destinations
	ResultDropped  = "dropped"   // counted and committed
)

// Metrics are the tenant-forward stage's Prometheus metrics, labelled by
// tenant (as configured, or catch_all) and destination (as configured).
// One Metrics serves one Sink; it is safe for concurrent use.
type Metrics struct {
	sent       *prometheus.CounterVec
	failed     *prometheus.CounterVec
	parked     *prometheus.CounterVec
	replayed   *prometheus.CounterVec
	resent     *prometheus.CounterVec
	truncated  *prometheus.CounterVec
	depth      *prometheus.GaugeVec
	up         *prometheus.GaugeVec
	parking    *prometheus.GaugeVec
	connects   *prometheus.CounterVec
	unresolved *prometheus.CounterVec
	parkErrs   prometheus.Counter
	paced      prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). Call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	td := []string{"tenant", "destination"}
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_sent_total",
			Help: "Events written to the tenant's destination (live and replayed).",
		}, td),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_failed_total",
			Help: "Events whose write to the destination failed; they are parked (or, when replayed, retried later).",
		}, td),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_parked_total",
			Help: "Events parked on the parked topic because the destination was down, slow or still replaying.",
		}, td),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_replayed_total",
			Help: "Parked events replayed to the destination.",
		}, td),
		resent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_resent_total",
			Help: "Events parked while their write was still in progress and then written: the destination may receive them twice.",
		}, td),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_truncated_total",
			Help: "Messages cut to the destination's max_message_bytes.",
		}, td),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_tenant_queue_depth",
			Help: "Events queued for the destination (live and replay).",
		}, td),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_tenant_endpoint_up",
			Help: "1 while vpipe holds a working connection to the destination (udp: the last send worked).",
		}, td),
		parking: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_tenant_parking",
			Help: "1 while the destination's new events go to the parked topic.",
		}, td),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_connects_total",
			Help: "Connection attempts to the destination, by result (ok, error).",
		}, []string{"tenant", "destination", "result"}),
		unresolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_tenant_unresolved_total",
			Help: "Events that resolved to no tenant destination, by reason and result (catch_all, dropped).",
		}, []string{"reason", "result"}),
		parkErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_tenant_park_errors_total",
			Help: "Failed writes to the parked topic; the park is retried.",
		}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_tenant_replay_paced_seconds_total",
			Help: "Time the replay waited so that live events go first while the stage is behind (summed over the replay's readers).",
		}),
	}
	for _, r := range []string{ReasonNoLabel, ReasonUnknown, ReasonAmbiguous, ReasonNoDestination, ReasonRemoved} {
		for _, res := range []string{ResultCatchAll, ResultDropped} {
			m.unresolved.WithLabelValues(r, res)
		}
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.failed, m.parked, m.replayed, m.resent, m.truncated, m.depth, m.up, m.parking, m.connects, m.unresolved, m.parkErrs, m.paced)
	}
	return m
}

// routeMetrics are one destination's children, looked up once.
type routeMetrics struct {
	sent, failed, parked, replayed, resent, truncated prometheus.Counter
	depth, up, parking                                prometheus.Gauge
	connOK, connErr                                   prometheus.Counter
}

func (m *Metrics) forRoute(tenant, dest string) routeMetrics {
	return routeMetrics{
		sent: m.sent.WithLabelValues(tenant, dest), failed: m.failed.WithLabelValues(tenant, dest),
		parked: m.parked.WithLabelValues(tenant, dest), replayed: m.replayed.WithLabelValues(tenant, dest),
		resent: m.resent.WithLabelValues(tenant, dest), truncated: m.truncated.WithLabelValues(tenant, dest),
		depth: m.depth.WithLabelValues(tenant, dest), up: m.up.WithLabelValues(tenant, dest),
		parking: m.parking.WithLabelValues(tenant, dest),
		connOK:  m.connects.WithLabelValues(tenant, dest, "ok"), connErr: m.connects.WithLabelValues(tenant, dest, "error"),
	}
}

// forget removes a destination's children once it is gone.
func (m *Metrics) forget(tenant, dest string) {
	for _, v := range []*prometheus.CounterVec{m.sent, m.failed, m.parked, m.replayed, m.resent, m.truncated} {
		v.DeleteLabelValues(tenant, dest)
	}
	for _, v := range []*prometheus.GaugeVec{m.depth, m.up, m.parking} {
		v.DeleteLabelValues(tenant, dest)
	}
	m.connects.DeleteLabelValues(tenant, dest, "ok")
	m.connects.DeleteLabelValues(tenant, dest, "error")
}
