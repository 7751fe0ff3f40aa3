package znuny

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Znuny client's Prometheus metrics, labelled by operation
// (SessionCreate, TicketGet, TicketSearch) and result class, both fixed
// sets. One Metrics may serve several Clients; safe for concurrent use.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
}

// Result classes, the result label of vpipe_znuny_requests_total.
const (
	resultOK       = "ok"
	resultHTTP     = "http_error"    // a status other than 200
	resultNetwork  = "network_error" // no answer
	resultAuthFail = "auth_fail"     // *.AuthFail: credentials or session refused
	resultAPI      = "api_error"     // another operation error (AccessDenied, NotValidTicketID, ...)
	resultDecode   = "decode_error"  // 200 with a body that is not the documented JSON
)

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). It panics when they are already registered with reg: call
// it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_znuny_requests_total",
			Help: "Znuny GenericInterface requests by operation and result (ok, http_error, network_error, auth_fail, api_error, decode_error).",
		}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_znuny_request_seconds",
			Help:    "Duration of Znuny GenericInterface requests, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}, []string{"op"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_znuny_retries_total",
			Help: "Znuny requests retried, by reason (http_error, network_error, session).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.retries)
	}
	return m
}
