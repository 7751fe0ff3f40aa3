package nsx

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the NSX clients' Prometheus metrics, labelled by the
// configured NSX name (Config.Name) and by operation (a fixed set). One
// Metrics serves every Client of a process; safe for concurrent use.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	logins   *prometheus.CounterVec
	changes  *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). It panics when they are already registered with reg: call it
// once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsx_requests_total",
			Help: "NSX API requests by operation and HTTP status (\"error\" when no answer came).",
		}, []string{"nsx", "op", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_nsx_request_seconds",
			Help:    "Duration of NSX API requests, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"nsx", "op"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsx_retries_total",
			Help: "NSX API requests retried, by reason (429, 503, 504, 5xx, network, session).",
		}, []string{"nsx", "reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsx_logins_total",
			Help: "NSX session creations and CSP token exchanges, by result.",
		}, []string{"nsx", "result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_nsx_tag_changes_total",
			Help: "VM tags NSX confirmed added or removed, by action.",
		}, []string{"nsx", "action"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.retries, m.logins, m.changes)
	}
	return m
}

// Operation names, the op label.
const (
	opGetVM     = "get_vm"
	opFindVMs   = "find_vms"
	opListVMs   = "list_vms"
	opSetTags   = "set_tags"
	opAddTags   = "add_tags"
	opRemove    = "remove_tags"
	opSession   = "session"
	opToken     = "csp_token"
	opSDDC      = "vmc_sddc"
	opListTags  = "nsxv_list_tags"
	opCreateTag = "nsxv_create_tag"
	opAttach    = "nsxv_attach"
	opDetach    = "nsxv_detach"
	opTagVMs    = "nsxv_tag_vms"
	opGroup     = "group"
)

func statusLabel(code int) string {
	if code == 0 {
		return "error"
	}
	return strconv.Itoa(code)
}
