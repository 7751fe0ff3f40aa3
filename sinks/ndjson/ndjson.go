// Package ndjson is the stage sink that appends events as JSON lines to
// one file per key: by default <dir>/<enterprise name>/events.json, the
// layout of the VCO cron job it replaces (kurtcms/vco-api-ent-event,
// shared/reference/apis.md §4.5), so that the SIEM file collectors that
// read those files keep working. Generally, any topic's events go to
// files named by a path template over event fields (for tenants,
// datasets, days).
//
// Delivery: Write appends each file's lines of a batch in one write and
// fsyncs it before it returns nil, so the stage commits offsets only for
// lines on disk. Duplicates are dropped by event id against the last
// lines of each file (DedupeWindow of them, read back from the file when
// it is opened), which covers the batch a stage replays after a crash or
// a rebalance and the window a source publishes again after one; a line
// torn by a crash is cut off when the file is opened (its batch was not
// committed and comes again). So a file holds every event once, in the
// order of its Kafka partition.
//
// Files rotate by size and age (renamed to <file>.<UTC time>, keeping
// MaxFiles of them) or externally: ReopenOnSignal reopens every file on
// SIGHUP, after logrotate renamed them.
package ndjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/stage"
)

// Line formats.
const (
	// FormatOriginal writes event.original: for VCO events the VCO's JSON
	// object, as the cron job wrote it. An original that is not JSON is
	// written as a JSON string, so every line is JSON.
	FormatOriginal = "original"
	// FormatEvent writes the normalised event (the README's schema).
	FormatEvent = "event"
)

// DefaultPath is the path template of the VCO layout.
const DefaultPath = "{organization.name|vmware.velocloud.enterprise_name}/events.json"

// Config configures a Sink. Zero fields take the defaults named.
type Config struct {
	// Dir is the directory the files go under; created if missing.
	// Required.
	Dir string
	// Path is the file's path under Dir, a template: {field} is replaced
	// by the event's field, sanitised (see Sanitize) so that it is one
	// safe file-name part; {a|b} takes the first non-empty of a and b.
	// FieldNames lists the fields. Default DefaultPath.
	Path string
	// Format is FormatOriginal (default) or FormatEvent.
	Format string
	// MaxBytes rotates a file before a batch would take it beyond this
	// size; 0 never.
	MaxBytes int64
	// MaxAge rotates a file this old at its next write (its age counts
	// from its creation by this sink, or from when this process first
	// opened it); 0 never.
	MaxAge time.Duration
	// MaxFiles is how many rotated files of each path are kept (the
	// oldest are removed); 0 keeps them all.
	MaxFiles int
	// DedupeWindow is how many event ids of each file's last lines are
	// remembered to drop duplicates (default 8192: a source's page of
	// 2048 plus a stage batch, with room).
	DedupeWindow int
	// MaxOpenFiles bounds the files held open (default 128); the least
	// recently written are closed (their ids are read back when they
	// are opened again).
	MaxOpenFiles int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Sink writes events to NDJSON files. It implements stage.Sink and is
// safe for concurrent use; Write calls are serialised.
type Sink struct {
	cfg  Config
	tmpl template
	m    *Metrics
	log  *slog.Logger

	reopen atomic.Bool

	mu     sync.Mutex
	closed bool
	files  map[string]*file
	tick   uint64
	path   []byte
	batch  []*group
	byPath map[string]*group
	pool   []*group // reused groups; the first len(batch) are in use
}

// group is one file's part of a batch.
type group struct {
	f     *file
	lines []byte
	keys  []uint64
}

// Open checks cfg, creates Dir and returns a Sink. m nil creates
// unregistered metrics; log nil discards logs.
func Open(cfg Config, m *Metrics, log *slog.Logger) (*Sink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("ndjson: no dir")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatOriginal
	case FormatOriginal, FormatEvent:
	default:
		return nil, fmt.Errorf("ndjson: format %q is not original or event", cfg.Format)
	}
	if cfg.MaxBytes < 0 || cfg.MaxAge < 0 || cfg.MaxFiles < 0 || cfg.DedupeWindow < 0 || cfg.MaxOpenFiles < 0 {
		return nil, errors.New("ndjson: negative limit")
	}
	if cfg.DedupeWindow == 0 {
		cfg.DedupeWindow = 8192
	}
	if cfg.MaxOpenFiles == 0 {
		cfg.MaxOpenFiles = 128
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tmpl, err := parseTemplate(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("ndjson: path: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("ndjson: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{
		cfg:    cfg,
		tmpl:   tmpl,
		m:      m,
		log:    log.With("component", "ndjson"),
		files:  map[string]*file{},
		byPath: map[string]*group{},
	}, nil
}

// Write implements stage.Sink: it appends each record's line to its file,
// except records whose event id the file already holds, and fsyncs every
// file it wrote to. It returns nil only when every line is on disk. On
// error nothing of the failed file's part is left behind (the file is cut
// back), the parts already synced are kept and are recognised as
// duplicates when the runner retries the batch; every error is retryable.
func (s *Sink) Write(ctx context.Context, batch []stage.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ndjson: sink closed")
	}
	if s.reopen.Swap(false) {
		s.reopenAll()
	}
	s.tick++
	defer s.endBatch()
	for i := range batch {
		r := &batch[i]
		s.path = s.tmpl.appendPath(s.path[:0], r)
		g := s.byPath[string(s.path)]
		if g == nil {
			f, err := s.file(string(s.path))
			if err != nil {
				return err
			}
			if len(s.batch) == len(s.pool) {
				s.pool = append(s.pool, new(group))
			}
			g = s.pool[len(s.batch)]
			g.f, g.lines, g.keys = f, g.lines[:0], g.keys[:0]
			s.byPath[f.rel] = g
			s.batch = append(s.batch, g)
		}
		start := len(g.lines)
		g.lines = s.appendLine(g.lines, r)
		k := s.key(r, g.lines[start:])
		if g.f.has(k) {
			g.lines = g.lines[:start]
			s.m.duplicates.Inc()
			continue
		}
		g.f.pending[k] = struct{}{}
		g.lines = append(g.lines, '\n')
		g.keys = append(g.keys, k)
	}
	return s.writeAll()
}

// writeAll writes and fsyncs the batch's files, in parallel when there
// are several: a batch costs about one fsync, not one per file.
func (s *Sink) writeAll() error {
	todo := s.batch[:0:0]
	for _, g := range s.batch {
		if len(g.keys) > 0 {
			todo = append(todo, g)
		}
	}
	switch len(todo) {
	case 0:
		return nil
	case 1:
		return s.write(todo[0])
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, g := range todo {
		wg.Go(func() { errs[i] = s.write(g) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// endBatch clears the batch's state and closes the least recently used
// files beyond MaxOpenFiles.
func (s *Sink) endBatch() {
	for _, g := range s.batch {
		clear(g.f.pending)
		g.f = nil
	}
	s.batch = s.batch[:0]
	clear(s.byPath)
	if len(s.files) <= s.cfg.MaxOpenFiles {
		return
	}
	all := make([]*file, 0, len(s.files))
	for _, f := range s.files {
		all = append(all, f)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used < all[j].used })
	for _, f := range all[:len(all)-s.cfg.MaxOpenFiles] {
		f.close()
		delete(s.files, f.rel)
		s.m.openFiles.Dec()
	}
}

// appendLine appends r's line (without its newline) to dst.
func (s *Sink) appendLine(dst []byte, r *stage.Record) []byte {
	e := r.Event
	if s.cfg.Format == FormatEvent {
		return e.AppendJSON(dst)
	}
	if e.Dataset == pipeline.DatasetVeloCloudEvent && e.Error == "" && bytes.IndexAny(e.Original, "\r\n") < 0 {
		// The VeloCloud parser accepted it: one JSON object.
		return append(dst, e.Original...)
	}
	return appendOriginal(dst, e.Original)
}

// key is the dedupe key of a line: the FNV-1a 64 of the event id in the
// event format; in the original format (where the id is not in the line)
// of the line itself, so byte-identical originals count as one (a VCO
// event's JSON holds its unique id).
func (s *Sink) key(r *stage.Record, line []byte) uint64 {
	if s.cfg.Format == FormatEvent && r.Event.ID != "" {
		return hashString(r.Event.ID)
	}
	return hashBytes(line)
}

// lineKey is key for a line read back from a file.
func (s *Sink) lineKey(line []byte) uint64 {
	if s.cfg.Format == FormatEvent {
		if id, ok := eventID(line); ok {
			return hashBytes(id)
		}
	}
	return hashBytes(line)
}

// eventID finds event.id in a line written in the event format.
func eventID(line []byte) ([]byte, bool) {
	const marker = `"event":{"id":"`
	i := bytes.Index(line, []byte(marker))
	if i < 0 {
		return nil, false
	}
	rest := line[i+len(marker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	if bytes.IndexByte(rest[:j], '\\') < 0 {
		return rest[:j], true
	}
	// Escapes: decode the string properly.
	var id string
	if json.NewDecoder(bytes.NewReader(line[i+len(marker)-1:])).Decode(&id) != nil {
		return nil, false
	}
	return []byte(id), true
}

// hashString and hashBytes are FNV-1a 64, without allocating.
func hashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func hashBytes(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// appendOriginal appends an event's original record as one JSON line: a
// JSON object or array as it is (compacted if it spans lines), anything
// else as a JSON string.
func appendOriginal(dst, orig []byte) []byte {
	t := bytes.TrimSpace(orig)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		if bytes.IndexAny(t, "\r\n") < 0 {
			return append(dst, t...)
		}
		var b bytes.Buffer
		if json.Compact(&b, t) == nil {
			return append(dst, b.Bytes()...)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(string(orig))
	return append(dst, bytes.TrimRight(b.Bytes(), "\n")...)
}

// Reopen makes the next Write close every file and open it again by its
// path: after an external logrotate renamed the files, writing goes on in
// new ones. The ids remembered for deduplication are kept.
func (s *Sink) Reopen() { s.reopen.Store(true) }

// ReopenOnSignal calls Reopen whenever one of sigs arrives (typically
// syscall.SIGHUP, which logrotate's postrotate sends), until stop is
// called. Receiving the signal this way also keeps it from terminating
// the process.
func (s *Sink) ReopenOnSignal(sigs ...os.Signal) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				s.log.Info("reopening files", "signal", sig.String())
				s.Reopen()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}

// reopenAll closes every file handle, keeping the dedupe state (s.mu
// held).
func (s *Sink) reopenAll() {
	for _, f := range s.files {
		f.close()
	}
	s.m.reopens.Inc()
}

// Close closes every file. Write fails afterwards.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for rel, f := range s.files {
		if err := f.close(); err != nil {
			errs = append(errs, err)
		}
		delete(s.files, rel)
		s.m.openFiles.Dec()
	}
	return errors.Join(errs...)
}
