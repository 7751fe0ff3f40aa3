package stage

import "github.com/prometheus/client_golang/prometheus"

// DLQ reasons: the values of the reason label of vpipe_stage_dlq_total.
const (
	ReasonDecode   = "decode"   // the record is not a vpipe event
	ReasonRejected = "rejected" // the sink rejected it (pipeline.ErrPermanent)
	ReasonRetries  = "retries"  // the sink kept failing past MaxRetries
)

// Metrics are the stage runners' Prometheus metrics, labelled by stage.
// One Metrics serves every Runner of a process; it is safe for concurrent
// use.
type Metrics struct {
	consumed   *prometheus.CounterVec
	delivered  *prometheus.CounterVec
	retries    *prometheus.CounterVec
	dlq        *prometheus.CounterVec
	commitErrs *prometheus.CounterVec
	dlqErrs    *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	batchSize  *prometheus.HistogramVec
	writeTime  *prometheus.HistogramVec
}

// NewMetrics creates the stage metrics and registers them with reg (nil:
// not registered, for tests). It panics if they are already registered
// with reg, as prometheus.MustRegister does: call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	stage := []string{"stage"}
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_stage_consumed_total",
			Help: "Records fetched from Kafka by the stage.",
		}, stage),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_stage_delivered_total",
			Help: "Records the stage's sink confirmed.",
		}, stage),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_stage_retries_total",
			Help: "Sink writes that failed with a retryable error and were retried.",
		}, stage),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_stage_dlq_total",
			Help: "Records the stage sent to the DLQ topic, by reason (decode, rejected, retries).",
		}, []string{"stage", "reason"}),
		commitErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_stage_commit_errors_total",
			Help: "Offset commits that failed; their records will be delivered again.",
		}, stage),
		dlqErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_stage_dlq_errors_total",
			Help: "Failed writes to the DLQ topic; the stage retries them and stalls meanwhile.",
		}, stage),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_stage_lag",
			Help: "Records behind the partitions' high watermarks, summed over the partitions this process consumed since the last rebalance.",
		}, stage),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_stage_batch_size",
			Help:    "Records per batch fetched by the stage.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, stage),
		writeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpipe_stage_write_seconds",
			Help:    "Duration of one Sink.Write call, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, stage),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.delivered, m.retries, m.dlq, m.commitErrs, m.dlqErrs, m.lag, m.batchSize, m.writeTime)
	}
	return m
}

// stageMetrics are one stage's children of Metrics, looked up once.
type stageMetrics struct {
	consumed, delivered, retries, commitErrs, dlqErrs prometheus.Counter
	dlq                                               map[string]prometheus.Counter
	lag                                               prometheus.Gauge
	batchSize, writeTime                              prometheus.Observer
}

func (m *Metrics) forStage(name string) stageMetrics {
	return stageMetrics{
		consumed:   m.consumed.WithLabelValues(name),
		delivered:  m.delivered.WithLabelValues(name),
		retries:    m.retries.WithLabelValues(name),
		commitErrs: m.commitErrs.WithLabelValues(name),
		dlqErrs:    m.dlqErrs.WithLabelValues(name),
		dlq: map[string]prometheus.Counter{
			ReasonDecode:   m.dlq.WithLabelValues(name, ReasonDecode),
			ReasonRejected: m.dlq.WithLabelValues(name, ReasonRejected),
			ReasonRetries:  m.dlq.WithLabelValues(name, ReasonRetries),
		},
		lag:       m.lag.WithLabelValues(name),
		batchSize: m.batchSize.WithLabelValues(name),
		writeTime: m.writeTime.WithLabelValues(name),
	}
}
