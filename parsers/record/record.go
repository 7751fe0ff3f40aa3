// Package record is the parse chain every received record goes through:
// the syslog envelope (parsers/syslog), then the format parsers (the
// VMware formats), then the generic fallback, and the deterministic
// event id. It implements pipeline.RecordParser.
package record

import (
	"encoding/binary"
	"encoding/hex"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// Parser implements pipeline.RecordParser. Safe for concurrent use.
type Parser struct {
	envelope *syslog.Parser
	formats  pipeline.FormatParser
	m        *Metrics
}

// New returns the chain: the envelope parser with opts, then formats (nil
// for none, leaving every record generic). m counts what it parsed; nil
// counts nothing.
func New(opts syslog.Options, formats pipeline.FormatParser, m *Metrics) *Parser {
	return &Parser{envelope: syslog.NewParser(opts), formats: formats, m: m}
}

// Metrics count parsed records by dataset.
type Metrics struct {
	parsed *prometheus.CounterVec
	errors *prometheus.CounterVec
}

// NewMetrics registers the parse metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		parsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_parse_events_total",
			Help: "Records parsed, by the dataset they became.",
		}, []string{"dataset"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpipe_parse_errors_total",
			Help: "Records that did not fully parse (kept, with error.message), by dataset.",
		}, []string{"dataset"}),
	}
	reg.MustRegister(m.parsed, m.errors)
	return m
}

// ParseRecord implements pipeline.RecordParser.
func (p *Parser) ParseRecord(e *pipeline.Event) {
	msg := p.envelope.Parse(e)
	envErr := e.Error
	hadHeader := e.Syslog.PriorityValid
	e.Error = ""
	switch {
	case p.formats == nil || !p.formats.Parse(e, msg):
		// A line that no format claimed keeps the envelope parser's
		// complaint.
		e.Error = envErr
		e.Dataset = pipeline.DatasetSyslogGeneric
		e.Message = e.Alias(msg)
	case envErr != "" && hadHeader:
		// The record had a syslog header that did not fully parse: that
		// stays said even though a format recognised the message. (A
		// header-less file line, which a format claimed, has nothing to
		// complain about.)
		if e.Error == "" {
			e.Error = envErr
		} else {
			e.Error = envErr + "; " + e.Error
		}
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = e.Created
	}
	if e.ID == "" {
		e.ID = ID(e)
	}
	if p.m != nil {
		p.m.parsed.WithLabelValues(e.Dataset).Inc()
		if e.Error != "" {
			p.m.errors.WithLabelValues(e.Dataset).Inc()
		}
	}
}

// ID derives an event id from what identifies a received record: the
// sender's address (without port, which changes per connection) and the
// exact bytes. A replay of the same record from the same sender yields the
// same id. FNV-1a 64 keeps it cheap and allocation-free; it is an identity
// for de-duplication, not a security boundary.
func ID(e *pipeline.Event) string {
	host := e.LogSource
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	const offset64, prime64 = 14695981039346656037, 1099511628211
	var h uint64 = offset64
	for i := 0; i < len(host); i++ {
		h = (h ^ uint64(host[i])) * prime64
	}
	h *= prime64 // the separator, a zero byte
	for _, c := range e.Original {
		h = (h ^ uint64(c)) * prime64
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h)
	var out [16]byte
	hex.Encode(out[:], sum[:])
	return e.Intern(out[:])
}
