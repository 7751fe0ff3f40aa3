package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// replayEvent is a firewall event of tenant org, encoded as vpipe puts it
// on Kafka.
func replayEvent(i int, org string) []byte {
	e := &pipeline.Event{
		Timestamp:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Created:      time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		ID:           fmt.Sprintf("ev-%04d", i),
		Dataset:      pipeline.DatasetNSXDFW,
		Original:     fmt.Appendf(nil, "<13>1 2026-01-02T03:04:05Z esx01 FIREWALL-PKTLOG - - - INET match PASS 1024 OUT 60 TCP 10.0.0.%d/1000->10.0.1.1/443 S %s-label", i, org),
		Organization: pipeline.Organization{Name: org, ID: org + "-id"},
	}
	return e.AppendJSON(nil)
}

// rejectingSink is a stage sink whose destination refuses one tenant's
// events: they go to the DLQ, as a tenant-forward stage's would while that
// tenant's endpoint is misconfigured.
type rejectingSink struct{ org string }

func (s rejectingSink) Write(_ context.Context, batch []stage.Record) error {
	for _, r := range batch {
		if r.Event.Organization.Name == s.org {
			return pipeline.Permanent(errors.New("tenant " + s.org + ": endpoint refused the connection"))
		}
	}
	return nil
}

func writeMessages(t *testing.T, addr string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// TestReplay puts records in the DLQ the way a stage does (a real stage
// runner whose sink rejects one tenant), and the way the producer does,
// then replays: the stage's dead letters go back to their topic with their
// key, value and original headers, the producer's raw records stay, a
// second run re-injects nothing, a new dead letter is replayed alone, and
// a dry run writes and commits nothing.
func TestReplay(t *testing.T) {
	addr := brokertest.Start(t, "vpipe.firewall", "vpipe.other", "vpipe.dlq")
	var in []kafka.Message
	for i := range 12 {
		org := []string{"acme", "globex", "initech"}[i%3]
		in = append(in, kafka.Message{Topic: "vpipe.firewall", Key: []byte(org + "-label"), Value: replayEvent(i, org),
			Headers: []kafka.Header{{Key: kafkaout.HeaderSchema, Value: []byte(pipeline.SchemaVersion)}}})
	}
	writeMessages(t, addr, in...)

	// A stage gives up on acme's 4 events.
	r, err := stage.New(stage.Config{
		Name: "tenant-forward", Brokers: []string{addr}, Topics: []string{"vpipe.firewall"}, DLQTopic: "vpipe.dlq",
		BatchSize: 20, BatchWait: 20 * time.Millisecond, SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}, rejectingSink{org: "acme"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stageDone := make(chan error, 1)
	go func() { stageDone <- r.Run(ctx) }()
	brokertest.ReadN(t, addr, "vpipe.dlq", 4, 30*time.Second)
	cancel()
	if err := <-stageDone; err != nil {
		t.Fatal(err)
	}
	// The producer's dead letters: one too large (original bytes,
	// truncated), one Kafka refused (the event), and a record without
	// destination.
	writeMessages(t, addr,
		kafka.Message{Topic: "vpipe.dlq", Key: []byte("h1"), Value: []byte("<13>1 raw bytes of a huge record"), Headers: []kafka.Header{
			{Key: kafkaout.HeaderReason, Value: []byte("record too large: 2000000 bytes encoded, limit 1000000")},
			{Key: kafkaout.HeaderTopic, Value: []byte("vpipe.firewall")},
			{Key: kafkaout.HeaderTruncated, Value: []byte("2000000")}}},
		kafka.Message{Topic: "vpipe.dlq", Key: []byte("h2"), Value: replayEvent(90, "globex"), Headers: []kafka.Header{
			{Key: kafkaout.HeaderReason, Value: []byte("kafka rejected the record: [87] Invalid Record")},
			{Key: kafkaout.HeaderTopic, Value: []byte("vpipe.other")},
			{Key: kafkaout.HeaderSchema, Value: []byte(pipeline.SchemaVersion)}}},
		kafka.Message{Topic: "vpipe.dlq", Key: []byte("h3"), Value: replayEvent(91, "globex")},
	)

	// A filtered dry run first: it lists and changes nothing.
	code, stdout, stderr := runCLI("replay", "--from", "dlq", "--brokers", addr, "--dry-run", "--filter", "stage=tenant-forward")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"would replay 4: vpipe.firewall 4", "skipped 3: did not match the filter 3", "-> vpipe.firewall  stage=tenant-forward dataset=nsx.dfw"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, stderr = runCLI("replay", "--from", "dlq", "--brokers", addr)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"vpipe.dlq (group vpipe-replay.vpipe.dlq): read 7 of 7 records",
		"replayed 5: vpipe.firewall 4, vpipe.other 1",
		"skipped 2: " + skipNoTopic + " 1, " + skipIncomplete + " 1",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("replay output lacks %q:\n%s", want, stdout)
		}
	}
	fw := brokertest.ReadN(t, addr, "vpipe.firewall", 16, 10*time.Second)
	var replayed []kafka.Message
	for _, m := range fw {
		if _, ok := header(m, headerReplayedFrom); ok {
			replayed = append(replayed, m)
		}
	}
	if len(replayed) != 4 {
		t.Fatalf("%d records in vpipe.firewall carry %s, want 4", len(replayed), headerReplayedFrom)
	}
	for _, m := range replayed {
		var e pipeline.Event
		if err := e.DecodeJSON(m.Value); err != nil || e.Organization.Name != "acme" || string(m.Key) != "acme-label" {
			t.Errorf("replayed record key %q org %q (%v), want acme's", m.Key, e.Organization.Name, err)
		}
		if _, ok := header(m, stage.HeaderReason); ok {
			t.Errorf("replayed record keeps %s", stage.HeaderReason)
		}
		if v, _ := header(m, kafkaout.HeaderSchema); v != pipeline.SchemaVersion {
			t.Errorf("replayed record lost its %s header", kafkaout.HeaderSchema)
		}
		if from, _ := header(m, headerReplayedFrom); !strings.HasPrefix(from, "vpipe.dlq/") {
			t.Errorf("%s = %q", headerReplayedFrom, from)
		}
	}
	other := brokertest.ReadN(t, addr, "vpipe.other", 1, 10*time.Second)
	if string(other[0].Key) != "h2" {
		t.Errorf("vpipe.other got key %q, want h2", other[0].Key)
	}

	// Again: nothing new, nothing re-injected.
	_, stdout, _ = runCLI("replay", "--from", "vpipe.dlq", "--brokers", addr)
	if !strings.Contains(stdout, "read 0 of 0 records") || !strings.Contains(stdout, "replayed 0") {
		t.Errorf("second replay:\n%s", stdout)
	}
	// A new dead letter: replayed alone.
	writeMessages(t, addr, kafka.Message{Topic: "vpipe.dlq", Key: []byte("h4"), Value: replayEvent(92, "globex"), Headers: []kafka.Header{
		{Key: stage.HeaderTopic, Value: []byte("vpipe.other")}, {Key: stage.HeaderStage, Value: []byte("ndjson")}}})
	_, stdout, _ = runCLI("replay", "--from", "dlq", "--brokers", addr)
	if !strings.Contains(stdout, "read 1 of 1 records") || !strings.Contains(stdout, "replayed 1: vpipe.other 1") {
		t.Errorf("third replay:\n%s", stdout)
	}
	if got := brokertest.ReadN(t, addr, "vpipe.other", 2, 10*time.Second); len(got) != 2 {
		t.Errorf("vpipe.other holds %d records, want 2", len(got))
	}
	// A filtered replay keeps its own position: it starts from the
	// beginning and replays what matches (here nothing: acme's records are
	// not ndjson's).
	_, stdout, _ = runCLI("replay", "--from", "dlq", "--brokers", addr, "--filter", "stage=ndjson", "--filter", "organization=acme")
	if !strings.Contains(stdout, "read 8 of 8 records") || !strings.Contains(stdout, "replayed 0") || !strings.Contains(stdout, "group vpipe-replay.vpipe.dlq.") {
		t.Errorf("filtered replay:\n%s", stdout)
	}
}

// TestReplayRecord decides the fate of hand-made dead letters.
func TestReplayRecord(t *testing.T) {
	ev := replayEvent(1, "acme")
	hs := func(kv ...string) []kafka.Header {
		var h []kafka.Header
		for i := 0; i < len(kv); i += 2 {
			h = append(h, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return h
	}
	stageDL := hs(stage.HeaderReason, "tenant acme: connection refused", stage.HeaderStage, "tenant-forward",
		stage.HeaderTopic, "vpipe.firewall", stage.HeaderPartition, "2", stage.HeaderOffset, "17")
	tests := []struct {
		name    string
		msg     kafka.Message
		filters []string
		to      string
		want    string // destination topic, or the skip reason
	}{
		{name: "stage dead letter", msg: kafka.Message{Value: ev, Headers: stageDL}, want: "vpipe.firewall"},
		{name: "to overrides", msg: kafka.Message{Value: ev, Headers: stageDL}, to: "vpipe.other", want: "vpipe.other"},
		{name: "no destination", msg: kafka.Message{Value: ev}, want: skipNoTopic},
		{name: "loop", msg: kafka.Message{Value: ev, Headers: hs(stage.HeaderTopic, "vpipe.dlq")}, want: skipLoop},
		{name: "value dropped", msg: kafka.Message{Headers: append(hs(stage.HeaderValueDropped, "2000000"), stageDL...)}, want: skipIncomplete},
		{name: "not an event", msg: kafka.Message{Value: []byte("<13>1 raw"), Headers: stageDL}, want: skipNotEvent},
		{name: "stage matches", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"stage=tenant-forward"}, want: "vpipe.firewall"},
		{name: "stage differs", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"stage=ndjson"}, want: skipFilter},
		{name: "stage not", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"stage!=ndjson"}, want: "vpipe.firewall"},
		{name: "topic without prefix", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"topic=firewall"}, want: "vpipe.firewall"},
		{name: "reason regexp", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"reason~refused$"}, want: "vpipe.firewall"},
		{name: "reason regexp misses", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"reason~timeout"}, want: skipFilter},
		{name: "key", msg: kafka.Message{Key: []byte("acme-label"), Value: ev, Headers: stageDL}, filters: []string{"key=acme-label"}, want: "vpipe.firewall"},
		{name: "dataset", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"dataset=nsx.dfw"}, want: "vpipe.firewall"},
		{name: "organization id", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"organization=acme-id"}, want: "vpipe.firewall"},
		{name: "all must match", msg: kafka.Message{Value: ev, Headers: stageDL}, filters: []string{"organization=acme", "dataset=vcenter.event"}, want: skipFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &replayer{from: "vpipe.dlq", to: tt.to, replayed: map[string]int{}, skipped: map[string]int{}}
			for _, s := range tt.filters {
				f, err := parseFilter(s, "vpipe.")
				if err != nil {
					t.Fatal(err)
				}
				r.filters = append(r.filters, f)
			}
			tt.msg.Topic, tt.msg.Partition, tt.msg.Offset = "vpipe.dlq", 1, 5
			out, ok := r.record(&tt.msg)
			got := out.Topic
			if !ok {
				for reason := range r.skipped {
					got = reason
				}
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if !ok {
				return
			}
			for _, h := range out.Headers {
				switch h.Key {
				case stage.HeaderReason, stage.HeaderStage, stage.HeaderTopic, stage.HeaderPartition, stage.HeaderOffset:
					t.Errorf("header %s kept", h.Key)
				}
			}
			if from, _ := header(out, headerReplayedFrom); from != "vpipe.dlq/1/5" {
				t.Errorf("%s = %q", headerReplayedFrom, from)
			}
		})
	}
}

func TestReplayUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"replay", "--help"}, 0, "--filter FIELD=VALUE"},
		{"no from", []string{"replay"}, 2, "vpipe replay --from TOPIC"},
		{"unknown field", []string{"replay", "--from", "dlq", "--filter", "tenant=acme"}, 2, `unknown field "tenant"`},
		{"bad regexp", []string{"replay", "--from", "dlq", "--filter", "reason~("}, 2, "missing closing )"},
		{"no operator", []string{"replay", "--from", "dlq", "--filter", "stage"}, 2, "want FIELD=VALUE"},
		{"no broker", []string{"replay", "--from", "dlq", "--brokers", "127.0.0.1:1"}, 1, "topic vpipe.dlq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d), stderr lacks %q:\n%s", code, tt.code, tt.stderr, stderr)
			}
		})
	}
}

func TestReplayGroup(t *testing.T) {
	base := replayGroup("vpipe.dlq", "", nil)
	a := replayGroup("vpipe.dlq", "", []string{"stage=x", "reason~y"})
	b := replayGroup("vpipe.dlq", "", []string{"reason~y", "stage=x"})
	c := replayGroup("vpipe.dlq", "vpipe.other", []string{"reason~y", "stage=x"})
	if base != "vpipe-replay.vpipe.dlq" || a != b || a == base || c == a || !strings.HasPrefix(a, base+".") {
		t.Errorf("groups %q %q %q %q", base, a, b, c)
	}
}
