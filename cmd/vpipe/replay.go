package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/kafkaout"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// headerReplayedFrom is set on every record `vpipe replay` re-injects:
// "<topic>/<partition>/<offset>" of the dead letter it came from, so that
// a record that fails again says it was replayed.
const headerReplayedFrom = "vpipe-replayed-from"

// replayDropHeaders are the headers a dead letter carries about its death;
// the re-injected record leaves them out (vpipe-schema and any header of
// the original record stay).
var replayDropHeaders = []string{
	stage.HeaderReason, stage.HeaderStage, stage.HeaderTopic, stage.HeaderPartition,
	stage.HeaderOffset, stage.HeaderValueDropped,
	kafkaout.HeaderReason, kafkaout.HeaderTopic, kafkaout.HeaderTruncated,
	headerReplayedFrom,
}

// Why a record is not replayed: the skipped counts of the report.
const (
	skipFilter     = "did not match the filter"
	skipNoTopic    = "no vpipe-topic header (use --to)"
	skipLoop       = "its destination is the topic it is read from"
	skipIncomplete = "value left out or truncated (too large)"
	skipNotEvent   = "not a vpipe event (the original bytes of a record Kafka refused, or undecodable)"
)

func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", `vpipe replay --from TOPIC [-c FILE] [--brokers LIST] [--filter EXPR]... [--to TOPIC] [--group ID] [--dry-run]

Re-injects the records of a dead-letter topic (vpipe.dlq) or of the parked
topic (vpipe.parked), once the cause that put them there is fixed: each
record goes back to the topic named in its vpipe-topic header (or to --to),
with its key (so to the partition its key maps to), its value and its
original headers, without the dead-letter headers and with
vpipe-replayed-from=<topic>/<partition>/<offset>. Every stage consuming that
topic sees it again; their sinks are idempotent by event.id.

It reads from where the last replay of the same --from, --filter and --to
stopped up to the end of the topic as it was when it started, commits its
position in a consumer group after every batch it re-injected (acks=all),
prints what it did and exits. Run again, it resumes and replays only what
is new. (A replay killed between a write and its commit re-injects that
batch again; an interrupt with Ctrl-C does not.) Records that are not
replayed are passed over; a replay with another filter has its own group
and position, so records that match two filters are replayed by both.

Not replayed (counted in the report): records that --filter leaves out,
records without a destination, records whose value was left out for size,
and records that are not vpipe events (what the producer put in the DLQ
because Kafka refused it: the original bytes, which would fail again).

--filter FIELD=VALUE, FIELD!=VALUE or FIELD~REGEXP, repeatable (all must
match); FIELD is one of:
  stage         the stage that gave up (vpipe-stage header)
  topic         the destination topic (vpipe-topic header; prefix optional)
  reason        the error text (vpipe-reason header)
  key           the record key
  dataset       the event's event.dataset
  organization  the event's organization.name or organization.id

TOPIC names without the prefix (dlq, parked) get the configured one.`, stderr)
	path := fs.String("c", "", "configuration `file` (for the brokers and topic prefix)")
	fs.StringVar(path, "config", "", "same as -c")
	brokers := fs.String("brokers", "", "comma-separated bootstrap `brokers`, overriding the configuration")
	from := fs.String("from", "", "the `topic` to replay: vpipe.dlq or vpipe.parked (required)")
	to := fs.String("to", "", "re-inject into this `topic` instead of each record's vpipe-topic")
	group := fs.String("group", "", "consumer `group` that keeps the position (default: vpipe-replay.<from>, plus a hash of --filter and --to when given)")
	dryRun := fs.Bool("dry-run", false, "print each record that would be re-injected and the counts; write and commit nothing")
	var filterArgs []string
	fs.Func("filter", "`EXPR`: FIELD=VALUE, FIELD!=VALUE or FIELD~REGEXP (repeatable)", func(s string) error {
		filterArgs = append(filterArgs, s)
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			return fmt.Errorf("%s:\n%w", *path, err)
		}
	}
	prefix := cfg.Kafka.TopicPrefix
	r := &replayer{from: fullTopic(prefix, *from), dryRun: *dryRun, out: stdout}
	if *to != "" {
		r.to = fullTopic(prefix, *to)
	}
	for _, s := range filterArgs {
		f, err := parseFilter(s, prefix)
		if err != nil {
			fmt.Fprintf(stderr, "vpipe replay: --filter %q: %v\n", s, err)
			return errUsage
		}
		r.filters = append(r.filters, f)
	}
	r.group = *group
	if r.group == "" {
		r.group = replayGroup(r.from, r.to, filterArgs)
	}
	r.brokers = cfg.Kafka.Brokers
	if *brokers != "" {
		r.brokers = strings.Split(*brokers, ",")
	}
	if len(r.brokers) == 0 {
		r.brokers = []string{cfg.Kafka.Embedded.Listen}
	}
	r.log = newLogger(stderr, cfg.Log.Level).With("component", "replay")
	err := r.run(ctx)
	r.report(stdout)
	if err != nil && ctx.Err() != nil {
		return errors.New("interrupted; the same command resumes where this one stopped")
	}
	return err
}

// fullTopic gives a topic name without a dot the configured prefix, as
// `vpipe tap` does.
func fullTopic(prefix, name string) string {
	if strings.HasPrefix(name, prefix) || strings.Contains(name, ".") {
		return name
	}
	return prefix + name
}

// replayGroup is the default consumer group of a replay: one per source
// topic, and one per filter and destination, so that a filtered replay
// does not move the position of an unfiltered one.
func replayGroup(from, to string, filters []string) string {
	g := "vpipe-replay." + from
	if to == "" && len(filters) == 0 {
		return g
	}
	fs := slices.Clone(filters)
	slices.Sort(fs)
	h := sha256.Sum256([]byte(strings.Join(append(fs, "to="+to), "\x00")))
	return g + "." + hex.EncodeToString(h[:4])
}

// filter is one --filter expression.
type filter struct {
	field, op, value string
	re               *regexp.Regexp
}

// filterFields are the fields --filter may name.
var filterFields = []string{"stage", "topic", "reason", "key", "dataset", "organization"}

// parseFilter parses FIELD=VALUE, FIELD!=VALUE or FIELD~REGEXP.
func parseFilter(s, prefix string) (filter, error) {
	i := strings.IndexAny(s, "=!~")
	if i <= 0 {
		return filter{}, errors.New("want FIELD=VALUE, FIELD!=VALUE or FIELD~REGEXP")
	}
	f := filter{field: s[:i]}
	switch rest := s[i:]; {
	case strings.HasPrefix(rest, "!="):
		f.op, f.value = "!=", rest[2:]
	case rest[0] == '=':
		f.op, f.value = "=", rest[1:]
	case rest[0] == '~':
		f.op, f.value = "~", rest[1:]
		re, err := regexp.Compile(f.value)
		if err != nil {
			return filter{}, err
		}
		f.re = re
	default:
		return filter{}, errors.New("want FIELD=VALUE, FIELD!=VALUE or FIELD~REGEXP")
	}
	if !slices.Contains(filterFields, f.field) {
		return filter{}, fmt.Errorf("unknown field %q (known: %s)", f.field, strings.Join(filterFields, ", "))
	}
	if f.field == "topic" && f.op != "~" {
		f.value = fullTopic(prefix, f.value)
	}
	return f, nil
}

// match reports whether the record's values satisfy f. For organization
// either the name or the id may match.
func (f filter) match(values ...string) bool {
	hit := false
	for _, v := range values {
		switch f.op {
		case "~":
			hit = hit || f.re.MatchString(v)
		default:
			hit = hit || v == f.value
		}
	}
	if f.op == "!=" {
		return !hit
	}
	return hit
}

// replayer is one run of `vpipe replay`.
type replayer struct {
	from, to string
	group    string
	filters  []filter
	dryRun   bool
	brokers  []string
	out      io.Writer // dry run: one line per record
	log      *slog.Logger
	w        *kafka.Writer

	event     pipeline.Event
	read      int
	replayed  map[string]int // by destination topic
	skipped   map[string]int // by reason
	ends      map[int]int64  // high watermarks when the run started
	firsts    map[int]int64
	remaining map[int]int64 // records from the group's position to the end, per partition
}

// run replays every partition of r.from up to its end as of the start.
func (r *replayer) run(ctx context.Context) error {
	r.replayed, r.skipped, r.remaining = map[string]int{}, map[string]int{}, map[int]int64{}
	if err := r.bounds(ctx); err != nil {
		return err
	}
	if r.dryRun {
		return r.runDry(ctx)
	}
	r.w = &kafka.Writer{
		Addr:         kafka.TCP(r.brokers...),
		Balancer:     &kafka.Murmur2Balancer{}, // as kafkaout: the key picks the partition
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, // writes are synchronous: do not linger
		// A destination that does not exist is an error, not a new topic
		// with default settings.
		AllowAutoTopicCreation: false,
	}
	defer r.w.Close()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                r.group,
		Brokers:           r.brokers,
		Topics:            []string{r.from},
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  time.Second,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			r.log.Debug(fmt.Sprintf(format, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", r.group, err)
	}
	defer cg.Close()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			return fmt.Errorf("consumer group %s: %w", r.group, err)
		}
		assigned := gen.Assignments[r.from]
		if len(assigned) == 0 {
			return fmt.Errorf("consumer group %s holds no partition of %s for this process: is another replay with the same group running?", r.group, r.from)
		}
		finished := make(chan error, 1)
		gen.Start(func(genCtx context.Context) {
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(genCtx, cancel)
			defer stop()
			finished <- r.partitions(pctx, assigned, func(p int, next int64) error {
				return gen.CommitOffsets(map[string]map[int]int64{r.from: {p: next}})
			})
		})
		err = <-finished
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.Canceled):
			// The generation ended (another member joined or left):
			// carry on from the committed positions in the next one.
			r.log.Info("consumer group rebalanced; resuming", "group", r.group)
		default:
			return err
		}
	}
}

// bounds reads each partition's first and end offsets.
func (r *replayer) bounds(ctx context.Context) error {
	client := &kafka.Client{Addr: kafka.TCP(r.brokers...), Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.from}})
	if err != nil {
		return fmt.Errorf("topic %s: %w", r.from, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		if len(meta.Topics) == 1 {
			err = meta.Topics[0].Error
		}
		return fmt.Errorf("topic %s: %v", r.from, err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{r.from: reqs}})
	if err != nil {
		return fmt.Errorf("topic %s offsets: %w", r.from, err)
	}
	r.ends, r.firsts = map[int]int64{}, map[int]int64{}
	for _, po := range res.Topics[r.from] {
		if po.Error != nil {
			return fmt.Errorf("topic %s partition %d offsets: %w", r.from, po.Partition, po.Error)
		}
		r.firsts[po.Partition] = po.FirstOffset
		r.ends[po.Partition] = po.LastOffset
	}
	return nil
}

// runDry replays nothing: it reads from the group's committed positions
// without joining the group (so it disturbs no running replay) and prints
// what a replay would do.
func (r *replayer) runDry(ctx context.Context) error {
	client := &kafka.Client{Addr: kafka.TCP(r.brokers...), Timeout: 10 * time.Second}
	var parts []int
	for p := range r.ends {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.group, Topics: map[string][]int{r.from: parts}})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", r.group, err)
	}
	committed := map[int]int64{}
	for _, po := range res.Topics[r.from] {
		committed[po.Partition] = po.CommittedOffset
	}
	var assigned []kafka.PartitionAssignment
	for _, p := range parts {
		off, ok := committed[p]
		if !ok || off < 0 {
			off = kafka.FirstOffset
		}
		assigned = append(assigned, kafka.PartitionAssignment{ID: p, Offset: off})
	}
	return r.partitions(ctx, assigned, nil)
}

// partitions replays each assigned partition from its offset to its end,
// committing through commit (nil: a dry run).
func (r *replayer) partitions(ctx context.Context, assigned []kafka.PartitionAssignment, commit func(p int, next int64) error) error {
	slices.SortFunc(assigned, func(a, b kafka.PartitionAssignment) int { return a.ID - b.ID })
	for _, a := range assigned {
		start := max(a.Offset, r.firsts[a.ID]) // FirstOffset (-2), or the log start after retention
		if end := r.ends[a.ID]; start < end {
			if _, seen := r.remaining[a.ID]; !seen { // not again after a rebalance
				r.remaining[a.ID] = end - start
			}
			if err := r.partition(ctx, a.ID, start, end, commit); err != nil {
				return err
			}
		}
	}
	return nil
}

// partition replays offsets [start, end) of one partition, batch by batch:
// read a fetch's worth, write the re-injected records (acks=all), commit.
func (r *replayer) partition(ctx context.Context, p int, start, end int64, commit func(p int, next int64) error) error {
	conn, err := (&kafka.Dialer{Timeout: 10 * time.Second}).DialLeader(ctx, "tcp", r.brokers[0], r.from, p)
	if err != nil {
		return fmt.Errorf("%s partition %d: %w", r.from, p, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Seek(start, kafka.SeekAbsolute); err != nil {
		return fmt.Errorf("%s partition %d: seek %d: %w", r.from, p, start, err)
	}
	var out []kafka.Message
	for off := start; off < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 500 * time.Millisecond})
		out = out[:0]
		n := 0
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			if m.Offset >= end {
				continue
			}
			n++
			off = m.Offset + 1
			if msg, ok := r.record(&m); ok {
				out = append(out, msg)
			}
		}
		if err := batch.Close(); err != nil && !errors.Is(err, io.EOF) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s partition %d: read at %d: %w", r.from, p, off, err)
		}
		if n == 0 {
			// Nothing below the end: the rest are gaps (compaction,
			// transaction markers).
			off = end
		}
		if commit == nil {
			continue
		}
		if err := r.writeAndCommit(ctx, out, func() error { return commit(p, off) }); err != nil {
			return fmt.Errorf("%s partition %d at %d: %w", r.from, p, off, err)
		}
	}
	return nil
}

// writeAndCommit re-injects out (acks=all) and then commits. An interrupt
// does not cut it short (it gets 30s of its own), so that what was written
// is also committed and a resumed replay does not write it again.
func (r *replayer) writeAndCommit(ctx context.Context, out []kafka.Message, commit func() error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if len(out) > 0 {
		if err := r.w.WriteMessages(wctx, out...); err != nil {
			return fmt.Errorf("re-inject %d records: %w", len(out), err)
		}
	}
	for _, m := range out {
		r.replayed[m.Topic]++
	}
	if err := commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// record decides the fate of one dead letter: the record to re-inject and
// true, or false after counting why not.
func (r *replayer) record(m *kafka.Message) (kafka.Message, bool) {
	r.read++
	var stageName, topic, reason string
	incomplete := false
	for _, h := range m.Headers {
		switch h.Key {
		case stage.HeaderStage:
			stageName = string(h.Value)
		case stage.HeaderTopic: // == kafkaout.HeaderTopic
			topic = string(h.Value)
		case stage.HeaderReason: // == kafkaout.HeaderReason
			reason = string(h.Value)
		case stage.HeaderValueDropped, kafkaout.HeaderTruncated:
			incomplete = true
		}
	}
	isEvent := m.Value != nil && r.event.DecodeJSON(m.Value) == nil
	if !isEvent {
		r.event.Reset()
	}
	for _, f := range r.filters {
		var ok bool
		switch f.field {
		case "stage":
			ok = f.match(stageName)
		case "topic":
			ok = f.match(topic)
		case "reason":
			ok = f.match(reason)
		case "key":
			ok = f.match(string(m.Key))
		case "dataset":
			ok = f.match(r.event.Dataset)
		case "organization":
			ok = f.match(r.event.Organization.Name, r.event.Organization.ID)
		}
		if !ok {
			r.skipped[skipFilter]++
			return kafka.Message{}, false
		}
	}
	dest := topic
	if r.to != "" {
		dest = r.to
	}
	var skip string
	switch {
	case dest == "":
		skip = skipNoTopic
	case dest == r.from:
		skip = skipLoop
	case incomplete:
		skip = skipIncomplete
	case !isEvent:
		skip = skipNotEvent
	}
	where := r.from + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
	if skip != "" {
		r.skipped[skip]++
		if r.dryRun {
			fmt.Fprintf(r.out, "%s skip: %s\n", where, skip)
		}
		return kafka.Message{}, false
	}
	if r.dryRun {
		r.replayed[dest]++
		fmt.Fprintf(r.out, "%s -> %s  stage=%s dataset=%s reason=%q\n", where, dest, stageName, r.event.Dataset, reason)
		return kafka.Message{}, false
	}
	h := make([]kafka.Header, 0, len(m.Headers)+1)
	for _, oh := range m.Headers {
		if !slices.Contains(replayDropHeaders, oh.Key) {
			h = append(h, oh)
		}
	}
	h = append(h, kafka.Header{Key: headerReplayedFrom, Value: []byte(where)})
	return kafka.Message{Topic: dest, Key: m.Key, Value: m.Value, Headers: h}, true
}

// report prints the counts.
func (r *replayer) report(w io.Writer) {
	verb := "replayed"
	if r.dryRun {
		verb = "would replay"
	}
	var remaining int64
	for _, n := range r.remaining {
		remaining += n
	}
	fmt.Fprintf(w, "%s (group %s): read %d of %d records up to the end as of the start\n", r.from, r.group, r.read, remaining)
	fmt.Fprintf(w, "  %s %d%s\n", verb, sum(r.replayed), breakdown(r.replayed))
	fmt.Fprintf(w, "  skipped %d%s\n", sum(r.skipped), breakdown(r.skipped))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// breakdown writes ": a 3, b 1" in key order, or nothing for an empty m.
func breakdown(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}
