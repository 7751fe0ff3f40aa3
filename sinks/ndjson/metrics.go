package ndjson

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ndjson sink's Prometheus metrics. They carry no
// per-file label: file names come from event content.
type Metrics struct {
	lines      prometheus.Counter
	bytes      prometheus.Counter
	duplicates prometheus.Counter
	rotations  *prometheus.CounterVec
	removed    prometheus.Counter
	reopens    prometheus.Counter
	torn       prometheus.Counter
	errors     *prometheus.CounterVec
	openFiles  prometheus.Gauge
	syncTime   prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). Call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_ndjson_lines_total",
			Help: "Lines written and fsynced.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_ndjson_bytes_total",
			Help: "Bytes written and fsynced, newlines included.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_ndjson_duplicates_total",
			Help: "Events not written because their id is already among the file's last lines (a replay after a crash or a rebalance, or a source that published an event twice).",
		}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ndjson_rotations_total",
			Help: "Files rotated, by reason (size, age).",
		}, []string{"reason"}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_ndjson_removed_files_total",
			Help: "Rotated files removed beyond the retention count.",
		}),
		reopens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_ndjson_reopens_total",
			Help: "Times the open files were closed to be reopened (SIGHUP after an external logrotate).",
		}),
		torn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpipe_ndjson_torn_bytes_total",
			Help: "Bytes of a torn last line (a crash in the middle of a write) cut off when a file was opened.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ndjson_errors_total",
			Help: "Failed file operations, by operation (open, write, sync, rotate, remove); a failed write is retried by the stage.",
		}, []string{"op"}),
		openFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpipe_ndjson_open_files",
			Help: "Files the sink holds (open, or closed by a reopen until their next write).",
		}),
		syncTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vpipe_ndjson_fsync_seconds",
			Help:    "Duration of one file's write and fsync within a batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lines, m.bytes, m.duplicates, m.rotations, m.removed, m.reopens, m.torn, m.errors, m.openFiles, m.syncTime)
	}
	return m
}
