package httpin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HTTP ingest server's Prometheus metrics. The route label
// is one of /v1/events, /v1/syslog, /healthz, /readyz or "other".
type Metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	rejected *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics builds the server's metrics and registers them with reg; a nil
// reg leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_http_events_total",
			Help: "Events received over HTTP that Kafka acknowledged, by route.",
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_http_rejected_total",
			Help: "HTTP requests rejected, by route and reason (unauthorized, method, not_found, content_type, not_ready, busy, read_timeout, read_error, too_large, too_many_events, malformed, invalid_utf8, publish_failed, canceled).",
		}, []string{"route", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_http_request_seconds",
			Help:    "Time from receiving a request to answering it (for ingest routes: until Kafka acknowledged every event), by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.events, m.rejected, m.duration)
	}
	return m
}

// answered counts one answered request.
func (m *Metrics) answered(route string, code int, start time.Time) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}
