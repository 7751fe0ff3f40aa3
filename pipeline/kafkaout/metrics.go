package kafkaout

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the producer's Prometheus metrics.
type Metrics struct {
	produced  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	dlq       *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	buffered  prometheus.Gauge
	batchSize prometheus.Histogram
	latency   prometheus.Histogram
}

// NewMetrics registers the producer's metrics with reg; nil reg leaves them
// unregistered (counted, not exported), as the other packages do.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_producer_records_total",
			Help: "Records Kafka acknowledged, by topic (without prefix).",
		}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_producer_errors_total",
			Help: "Failed produce attempts per record (each is retried or sent to the DLQ), by topic and error.",
		}, []string{"topic", "error"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_producer_dlq_total",
			Help: "Records sent to the dead-letter topic instead of their own, by reason.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_producer_dropped_total",
			Help: "Records that reached neither their topic nor the DLQ, by reason (shutdown deadline, DLQ rejection).",
		}, []string{"reason"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_producer_buffered_records",
			Help: "Records accepted and not yet acknowledged by Kafka.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vpipe_producer_batch_records",
			Help:    "Records per acknowledged partition batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vpipe_producer_latency_seconds",
			Help:    "Time from Publish to Kafka's acknowledgement, for the oldest record of each batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.produced, m.errors, m.dlq, m.dropped, m.buffered, m.batchSize, m.latency)
	}
	return m
}
