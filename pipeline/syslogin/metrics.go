package syslogin

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/parsers/syslog"
)

// Metrics are the syslog listeners' Prometheus metrics, shared by every
// listener of a process and labelled with the listener's name.
type Metrics struct {
	received      *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	frameErrors   *prometheus.CounterVec
	discarded     *prometheus.CounterVec
	open          *prometheus.GaugeVec
	rejected      *prometheus.CounterVec
	closed        *prometheus.CounterVec
}

// Label values of the reason label. Each metric uses a fixed subset.
const (
	reasonQueueFull     = "queue_full"     // dropped: the UDP queue was full
	reasonShutdown      = "shutdown"       // dropped: the drain timeout ended; closed: Serve's context ended
	reasonPublishFailed = "publish_failed" // dropped, closed: the publisher returned an error
	reasonTooLong       = "too_long"       // frame_errors: truncated to MaxFrame
	reasonTruncated     = "truncated"      // frame_errors: cut short by the end of the connection
	reasonBadCount      = "bad_octet_count"
	reasonMaxConns      = "max_connections" // rejected
	reasonTLSTimeout    = "tls_timeout"     // rejected: the handshake took longer than HandshakeTimeout
	reasonTLSEOF        = "tls_eof"         // rejected: the peer closed during the handshake
	reasonTLSNotTLS     = "tls_not_tls"     // rejected: the peer did not speak TLS
	reasonTLSCert       = "tls_bad_certificate"
	reasonTLSError      = "tls_error"
	reasonEOF           = "eof" // closed: by the peer
	reasonIdle          = "idle_timeout"
	reasonReadError     = "read_error"
)

// NewMetrics builds the listeners' metrics and registers them with reg; a
// nil reg leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_received_total",
			Help: "Syslog records received (damaged ones included), by listener and transport.",
		}, []string{"listener", "transport"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_received_bytes_total",
			Help: "Bytes read from syslog sockets (datagrams, or the TCP/TLS stream with its framing), by listener and transport.",
		}, []string{"listener", "transport"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_dropped_total",
			Help: "Syslog records received and never handed to the publisher, by listener and reason (queue_full, shutdown, publish_failed).",
		}, []string{"listener", "reason"}),
		frameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_frame_errors_total",
			Help: "Damaged syslog frames (kept as events with error.message), by listener and reason (too_long, truncated, bad_octet_count).",
		}, []string{"listener", "reason"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_discarded_bytes_total",
			Help: "Bytes of over-long syslog frames dropped by truncation, by listener.",
		}, []string{"listener"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpipe_ingest_open_connections",
			Help: "Open TCP/TLS syslog connections, by listener.",
		}, []string{"listener"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_connections_rejected_total",
			Help: "TCP/TLS syslog connections closed before reading, by listener and reason (max_connections, tls_timeout, tls_eof, tls_not_tls, tls_bad_certificate, tls_error).",
		}, []string{"listener", "reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_ingest_connections_closed_total",
			Help: "TCP/TLS syslog connections closed after the handshake, by listener and reason (eof, idle_timeout, read_error, shutdown, publish_failed).",
		}, []string{"listener", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.receivedBytes, m.dropped, m.frameErrors, m.discarded, m.open, m.rejected, m.closed)
	}
	return m
}

// listenerMetrics are one listener's series, resolved once so that the hot
// path only does atomic adds.
type listenerMetrics struct {
	m             *Metrics
	name          string
	received      prometheus.Counter
	receivedBytes prometheus.Counter
	discarded     prometheus.Counter
	open          prometheus.Gauge
	queueFull     prometheus.Counter
	tooLong       prometheus.Counter
	truncated     prometheus.Counter
	badCount      prometheus.Counter
}

func (m *Metrics) forListener(name, transport string) *listenerMetrics {
	return &listenerMetrics{
		m:             m,
		name:          name,
		received:      m.received.WithLabelValues(name, transport),
		receivedBytes: m.receivedBytes.WithLabelValues(name, transport),
		discarded:     m.discarded.WithLabelValues(name),
		open:          m.open.WithLabelValues(name),
		queueFull:     m.dropped.WithLabelValues(name, reasonQueueFull),
		tooLong:       m.frameErrors.WithLabelValues(name, reasonTooLong),
		truncated:     m.frameErrors.WithLabelValues(name, reasonTruncated),
		badCount:      m.frameErrors.WithLabelValues(name, reasonBadCount),
	}
}

func (lm *listenerMetrics) frameError(err error) {
	switch {
	case errors.Is(err, syslog.ErrFrameTooLong):
		lm.tooLong.Inc()
	case errors.Is(err, syslog.ErrBadOctetCount):
		lm.badCount.Inc()
	default:
		lm.truncated.Inc()
	}
}

func (lm *listenerMetrics) drop(reason string) { lm.m.dropped.WithLabelValues(lm.name, reason).Inc() }

func (lm *listenerMetrics) reject(reason string) {
	lm.m.rejected.WithLabelValues(lm.name, reason).Inc()
}

func (lm *listenerMetrics) close(reason string) { lm.m.closed.WithLabelValues(lm.name, reason).Inc() }
