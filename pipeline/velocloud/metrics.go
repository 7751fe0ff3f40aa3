package velocloud

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the VCO sources' Prometheus metrics. Labels: source (the
// configured name), enterprise (the VCO enterprise id: one per enterprise
// the account sees), method (a VCO API method), result (Result's values).
// One Metrics serves every Source of a process; it is safe for concurrent
// use.
type Metrics struct {
	events      *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	late        *prometheus.CounterVec
	parseErrors *prometheus.CounterVec
	gaps        *prometheus.CounterVec
	gapSeconds  *prometheus.CounterVec
	splits      *prometheus.CounterVec
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	info        *prometheus.GaugeVec
	ckptErrors  *prometheus.CounterVec
	lag         *lagCollector
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). Call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	se := []string{"source", "enterprise"}
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_events_total",
			Help: "VCO events published and acknowledged by Kafka.",
		}, se),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_duplicates_total",
			Help: "Events read again in an overlapping window and skipped (already published).",
		}, se),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_late_events_total",
			Help: "Events published whose eventTime was before the end of the window read before them (found by the overlap).",
		}, se),
		parseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_parse_errors_total",
			Help: "Events the VeloCloud parser rejected; they are published with error.message and their original JSON.",
		}, se),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_gaps_total",
			Help: "Time windows whose events could not be read completely (each is also logged with its time range).",
		}, se),
		gapSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_gap_seconds_total",
			Help: "Length of the time windows counted in vpipe_velocloud_gaps_total.",
		}, se),
		splits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_window_splits_total",
			Help: "Windows read again in halves because an answer was full (metaData.more) or failed.",
		}, se),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_requests_total",
			Help: "VCO API requests by method and result (ok, auth, forbidden, rate_limited, server_error, client_error, malformed, timeout, network, canceled).",
		}, []string{"source", "method", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_velocloud_request_duration_seconds",
			Help:    "Duration of VCO API requests, answer body included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"source", "method"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_logins_total",
			Help: "Password logins to the VCO by result (a session expired, or the first request).",
		}, []string{"source", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_velocloud_last_success_timestamp_seconds",
			Help: "Unix time of the last window read completely and published, per enterprise.",
		}, se),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_velocloud_enterprise_info",
			Help: "1 for each enterprise a source polls, with its name as the VCO lists it.",
		}, []string{"source", "enterprise", "name"}),
		ckptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_velocloud_checkpoint_errors_total",
			Help: "Checkpoint writes that failed (retried with the next window; a restart may then publish some events again).",
		}, []string{"source"}),
		lag: &lagCollector{
			desc: prometheus.NewDesc("vpipe_velocloud_lag_seconds",
				"Seconds between now and the end of the last window read completely, per enterprise: how far behind the VCO the source is.",
				se, nil),
			cursors: map[[2]string]*atomic.Int64{},
		},
	}
	if reg != nil {
		reg.MustRegister(m.events, m.duplicates, m.late, m.parseErrors, m.gaps, m.gapSeconds, m.splits,
			m.requests, m.duration, m.logins, m.lastSuccess, m.info, m.ckptErrors, m.lag)
	}
	return m
}

// lagCollector computes the lag at scrape time from each enterprise's
// cursor, so that it grows while a source is stuck.
type lagCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	cursors map[[2]string]*atomic.Int64 // unix nanos
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.cursors {
		lag := max(0, now.Sub(time.Unix(0, v.Load())).Seconds())
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, lag, k[0], k[1])
	}
}

func (c *lagCollector) cursor(source, enterprise string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{source, enterprise}
	v := c.cursors[k]
	if v == nil {
		v = new(atomic.Int64)
		c.cursors[k] = v
	}
	return v
}

func (c *lagCollector) forget(source, enterprise string) {
	c.mu.Lock()
	delete(c.cursors, [2]string{source, enterprise})
	c.mu.Unlock()
}

// entMetrics are one enterprise's children, looked up once.
type entMetrics struct {
	events, duplicates, late, parseErrors, gaps, gapSeconds, splits prometheus.Counter
	lastSuccess                                                     prometheus.Gauge
	cursor                                                          *atomic.Int64
}

func (m *Metrics) forEnterprise(source string, id int64) entMetrics {
	e := strconv.FormatInt(id, 10)
	return entMetrics{
		events:      m.events.WithLabelValues(source, e),
		duplicates:  m.duplicates.WithLabelValues(source, e),
		late:        m.late.WithLabelValues(source, e),
		parseErrors: m.parseErrors.WithLabelValues(source, e),
		gaps:        m.gaps.WithLabelValues(source, e),
		gapSeconds:  m.gapSeconds.WithLabelValues(source, e),
		splits:      m.splits.WithLabelValues(source, e),
		lastSuccess: m.lastSuccess.WithLabelValues(source, e),
		cursor:      m.lag.cursor(source, e),
	}
}

// setInfo records the name of an enterprise, dropping an old name.
func (m *Metrics) setInfo(source string, id int64, old, name string) {
	e := strconv.FormatInt(id, 10)
	if old != "" && old != name {
		m.info.DeleteLabelValues(source, e, old)
	}
	m.info.WithLabelValues(source, e, name).Set(1)
}

// forget removes the gauges of an enterprise no longer polled.
func (m *Metrics) forget(source string, id int64, name string) {
	e := strconv.FormatInt(id, 10)
	m.info.DeleteLabelValues(source, e, name)
	m.lastSuccess.DeleteLabelValues(source, e)
	m.lag.forget(source, e)
}
