package stage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/stage"
)

func TestConfigValidate(t *testing.T) {
	valid := stage.Config{Name: "s", Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"vpipe.other"}, DLQTopic: "vpipe.dlq"}
	for _, tc := range []struct {
		name string
		edit func(*stage.Config)
		want []string // substrings of the error; none: valid
	}{
		{"defaults", func(*stage.Config) {}, nil},
		{"empty", func(c *stage.Config) { *c = stage.Config{} }, []string{"name: missing", "brokers: missing", "topics: missing", "dlq_topic: missing", "group_id: missing"}},
		{"dlq is an input", func(c *stage.Config) { c.Topics = append(c.Topics, "vpipe.dlq") }, []string{`topics[1]: "vpipe.dlq" is also the DLQ topic`}},
		{"empty topic", func(c *stage.Config) { c.Topics = []string{""} }, []string{"topics[0]: empty"}},
		{"backoff order", func(c *stage.Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }, []string{"max_backoff: 1ms is below min_backoff 1s"}},
		{"negatives", func(c *stage.Config) { c.BatchSize, c.MaxRetries, c.BatchWait = -1, -1, -1 }, []string{"batch_size: negative", "max_retries: negative", "batch_wait: negative"}},
		{"heartbeat", func(c *stage.Config) { c.SessionTimeout, c.HeartbeatInterval = 3*time.Second, 2*time.Second }, []string{"heartbeat_interval: 2s must be at most a third of session_timeout 3s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.WithDefaults().Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := stage.Config{Name: "ndjson"}.WithDefaults()
	if c.GroupID != "vpipe-ndjson" || c.BatchSize != stage.DefaultBatchSize || c.HeartbeatInterval != stage.DefaultSessionTimeout/10 {
		t.Errorf("defaults: %+v", c)
	}
	if _, err := stage.New(stage.Config{Name: "x", Brokers: []string{"a:1"}, Topics: []string{"t"}, DLQTopic: "d"}, nil, nil, nil); err == nil {
		t.Errorf("New with a nil sink: no error")
	}
}
