package stage

import (
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Config configures a Runner. Zero durations and sizes take the documented
// defaults (see WithDefaults); Validate reports every remaining problem at
// once.
type Config struct {
	// Name names the stage ("ndjson", "tenant_forward"): the stage label on
	// metrics, the vpipe-stage header on DLQ records, the log component.
	// Required.
	Name string
	// Brokers is the Kafka bootstrap list. Required.
	Brokers []string
	// Topics are the topics the stage consumes (with their prefix).
	// Required.
	Topics []string
	// GroupID is the consumer group; every process running this stage
	// shares it and so shares the partitions. Default "vpipe-" + Name.
	GroupID string
	// DLQTopic receives the records the stage could not handle (with the
	// prefix, e.g. "vpipe.dlq"). Required: a stage never drops a record
	// silently.
	DLQTopic string

	// BatchSize is the most records handed to one Sink.Write. Default 500.
	BatchSize int
	// BatchWait is how long a batch waits to fill once its first record
	// arrived. Default 100ms.
	BatchWait time.Duration

	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries of a sink write, a DLQ write or a failed fetch. Defaults
	// 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetries is how many times a retryable sink error is retried before
	// the records go to the DLQ; 0 retries forever (the stage then stalls,
	// visibly, while its destination is down, and loses nothing).
	MaxRetries int

	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it gives a silent member's partitions to the others:
	// the pause a crashed process causes. Default 10s (the broker may
	// enforce a minimum; the embedded broker allows 1s).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the consumer heartbeats; it must be
	// well below SessionTimeout. Default SessionTimeout/10.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long a rebalance waits for the members to
	// rejoin. Default 10s.
	RebalanceTimeout time.Duration
	// FetchMaxWait is how long the broker may hold a fetch open waiting for
	// new records (a record that arrives meanwhile is returned at once).
	// It trades two kafka-go behaviours: closing the consumer waits for the
	// fetches in flight, so shutdown takes up to FetchMaxWait; and kafka-go
	// drops the connection when the answer comes later than FetchMaxWait,
	// leaving only min(1s, FetchMaxWait/4) of it for the round trip, so
	// short values cause reconnections on a busy broker. Default 1s.
	FetchMaxWait time.Duration
	// ShutdownTimeout bounds, after ctx ended, the commit of records the
	// sink had already confirmed and the closing of the consumer (which
	// leaves the group so the others take over at once). Default 5s.
	ShutdownTimeout time.Duration

	// Dialer, if not nil, dials the brokers (TLS, SASL, client id); nil
	// means kafka.DefaultDialer. Its TLS and SASL settings also apply to
	// the DLQ producer.
	Dialer *kafka.Dialer
}

// Defaults for Config; see the field comments.
const (
	DefaultBatchSize        = 500
	DefaultBatchWait        = 100 * time.Millisecond
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultSessionTimeout   = 10 * time.Second
	DefaultRebalanceTimeout = 10 * time.Second
	DefaultFetchMaxWait     = time.Second
	DefaultShutdownTimeout  = 5 * time.Second
)

// WithDefaults returns c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.GroupID == "" && c.Name != "" {
		c.GroupID = "vpipe-" + c.Name
	}
	setDefault(&c.BatchSize, DefaultBatchSize)
	setDefault(&c.BatchWait, DefaultBatchWait)
	setDefault(&c.MinBackoff, DefaultMinBackoff)
	setDefault(&c.MaxBackoff, DefaultMaxBackoff)
	setDefault(&c.SessionTimeout, DefaultSessionTimeout)
	setDefault(&c.HeartbeatInterval, c.SessionTimeout/10)
	setDefault(&c.RebalanceTimeout, DefaultRebalanceTimeout)
	setDefault(&c.FetchMaxWait, DefaultFetchMaxWait)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	return c
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports every problem of c (after WithDefaults) at once, each
// with its field name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		bad("name", "missing")
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "missing")
	}
	for i, b := range c.Brokers {
		if b == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "empty")
		}
	}
	if len(c.Topics) == 0 {
		bad("topics", "missing")
	}
	for i, t := range c.Topics {
		if t == "" {
			bad(fmt.Sprintf("topics[%d]", i), "empty")
		}
		if t == c.DLQTopic && t != "" {
			bad(fmt.Sprintf("topics[%d]", i), "%q is also the DLQ topic", t)
		}
	}
	if c.GroupID == "" {
		bad("group_id", "missing")
	}
	if c.DLQTopic == "" {
		bad("dlq_topic", "missing")
	}
	if c.BatchSize < 0 {
		bad("batch_size", "negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"batch_wait", c.BatchWait}, {"min_backoff", c.MinBackoff}, {"max_backoff", c.MaxBackoff},
		{"session_timeout", c.SessionTimeout}, {"heartbeat_interval", c.HeartbeatInterval},
		{"rebalance_timeout", c.RebalanceTimeout}, {"fetch_max_wait", c.FetchMaxWait},
		{"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			bad(d.name, "negative")
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		bad("max_backoff", "%s is below min_backoff %s", c.MaxBackoff, c.MinBackoff)
	}
	if c.MaxRetries < 0 {
		bad("max_retries", "negative")
	}
	if c.HeartbeatInterval > 0 && c.SessionTimeout > 0 && 3*c.HeartbeatInterval > c.SessionTimeout {
		bad("heartbeat_interval", "%s must be at most a third of session_timeout %s", c.HeartbeatInterval, c.SessionTimeout)
	}
	return errors.Join(errs...)
}
