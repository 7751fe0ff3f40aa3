package jitaccess

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the jit-access stage's Prometheus metrics; every label comes
// from a fixed set. Safe for concurrent use.
type Metrics struct {
	decisions *prometheus.CounterVec
	grants    prometheus.Gauge
	ignored   *prometheus.CounterVec
	reconcile *prometheus.CounterVec
	duration  prometheus.Histogram
	last      prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). It panics when they are already registered with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_jit_decisions_total",
			Help: "Just-in-time access decisions (each is an audit event), by action (access.grant, access.revoke, access.expire, access.deny, access.none) and outcome (success, failure).",
		}, []string{"action", "outcome"}),
		grants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_jit_grants",
			Help: "Tickets this process holds a grant record for (access given, or expired while the ticket stays locked).",
		}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_jit_ignored_records_total",
			Help: "Records on the tickets topic the stage did not act on, by reason (dataset, no_ticket).",
		}, []string{"reason"}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_jit_reconciles_total",
			Help: "Reconcile passes (all locked tickets and every tagged VM), by result (ok, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vpipe_jit_reconcile_seconds",
			Help:    "Duration of reconcile passes.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_jit_last_reconcile_timestamp_seconds",
			Help: "When the last successful reconcile pass ended (Unix time).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.grants, m.ignored, m.reconcile, m.duration, m.last)
	}
	return m
}
