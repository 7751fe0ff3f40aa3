package ndjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// rotatedLayout is the time suffix of rotated files: <file>.<UTC time>,
// which sorts in time order.
const rotatedLayout = "20060102T150405.000000000Z"

// maxTailBytes bounds how much of a file's end is read back for its ids.
const maxTailBytes = 64 << 20

// file is one output file with its dedupe state.
type file struct {
	rel, abs string
	fh       *os.File // nil while closed by Reopen
	started  time.Time
	used     uint64 // the sink's tick when last written

	recent  map[uint64]struct{} // ids of the last lines
	ring    []uint64            // the same, oldest first from head
	head    int
	pending map[uint64]struct{} // ids of the batch being written
}

func (f *file) has(k uint64) bool {
	if _, ok := f.recent[k]; ok {
		return true
	}
	_, ok := f.pending[k]
	return ok
}

// remember adds k to the ids of the last lines, forgetting the oldest.
func (f *file) remember(k uint64) {
	if len(f.ring) < cap(f.ring) {
		f.ring = append(f.ring, k)
	} else {
		delete(f.recent, f.ring[f.head])
		f.ring[f.head] = k
		f.head = (f.head + 1) % len(f.ring)
	}
	f.recent[k] = struct{}{}
}

func (f *file) close() error {
	if f.fh == nil {
		return nil
	}
	err := f.fh.Close()
	f.fh = nil
	return err
}

// file returns the open file at rel (s.mu held), opening it if needed.
func (s *Sink) file(rel string) (*file, error) {
	f := s.files[rel]
	if f == nil {
		var err error
		if f, err = s.openFile(rel); err != nil {
			s.m.errors.WithLabelValues("open").Inc()
			return nil, err
		}
		s.files[rel] = f
		s.m.openFiles.Inc()
	} else if f.fh == nil {
		fh, _, err := openAppend(f.abs)
		if err != nil {
			s.m.errors.WithLabelValues("open").Inc()
			return nil, fmt.Errorf("reopen %s: %w", f.abs, err)
		}
		f.fh = fh
	}
	f.used = s.tick
	return f, nil
}

// openFile opens (creating it and its directories if needed) the file
// at rel: cuts a torn last line and reads back the ids of its last lines
// (and of its newest rotated file's, when it has fewer than the window).
func (s *Sink) openFile(rel string) (*file, error) {
	abs := filepath.Join(s.cfg.Dir, filepath.FromSlash(rel))
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	fh, created, err := openAppend(abs)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	if created {
		syncDir(dir)
	}
	end, size, err := completeLength(fh)
	if err == nil && end < size {
		s.m.torn.Add(float64(size - end))
		s.log.Warn("cut a torn last line", "file", abs, "bytes", size-end)
		err = fh.Truncate(end)
	}
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	f := &file{
		rel: rel, abs: abs, fh: fh, started: s.cfg.Now(),
		recent:  make(map[uint64]struct{}, s.cfg.DedupeWindow),
		ring:    make([]uint64, 0, s.cfg.DedupeWindow),
		pending: map[uint64]struct{}{},
	}
	rotated := rotatedFiles(abs)
	if n := len(rotated); n > 0 {
		f.started = rotated[n-1].t
	}
	lines, err := tailLines(fh, end, s.cfg.DedupeWindow)
	if err == nil && len(lines) < s.cfg.DedupeWindow && len(rotated) > 0 {
		var older [][]byte
		older, err = tailFile(rotated[len(rotated)-1].path, s.cfg.DedupeWindow-len(lines))
		lines = append(older, lines...)
	}
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("open %s: read its last lines: %w", abs, err)
	}
	for _, l := range lines {
		if k := s.lineKey(l); !f.has(k) {
			f.remember(k)
		}
	}
	return f, nil
}

// openAppend opens path for appending (and reading), creating it; created
// says it did not exist.
func openAppend(path string) (*os.File, bool, error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		return fh, true, nil
	}
	if !errors.Is(err, os.ErrExist) {
		return nil, false, err
	}
	fh, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o644)
	return fh, false, err
}

// syncDir fsyncs a directory so that a new or renamed entry survives a
// crash. Best effort: not every platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// write appends g's lines to its file and fsyncs it, rotating first when
// due; on error it cuts the file back to where it was.
func (s *Sink) write(g *group) error {
	f := g.f
	st, err := f.fh.Stat()
	if err != nil {
		s.m.errors.WithLabelValues("write").Inc()
		return fmt.Errorf("write %s: %w", f.abs, err)
	}
	size := st.Size()
	if reason := s.rotateReason(f, size, len(g.lines)); reason != "" {
		if err := s.rotate(f, reason); err != nil {
			s.m.errors.WithLabelValues("rotate").Inc()
			return err
		}
		size = 0
	}
	start := time.Now()
	_, err = f.fh.Write(g.lines)
	op := "write"
	if err == nil {
		op = "sync"
		err = f.fh.Sync()
	}
	if err != nil {
		s.m.errors.WithLabelValues(op).Inc()
		// Best effort: a torn line left here is cut when the file is
		// opened again.
		_ = f.fh.Truncate(size)
		return fmt.Errorf("%s %s: %w", op, f.abs, err)
	}
	s.m.syncTime.Observe(time.Since(start).Seconds())
	for _, k := range g.keys {
		f.remember(k)
	}
	s.m.lines.Add(float64(len(g.keys)))
	s.m.bytes.Add(float64(len(g.lines)))
	return nil
}

func (s *Sink) rotateReason(f *file, size int64, add int) string {
	switch {
	case size == 0:
		return ""
	case s.cfg.MaxBytes > 0 && size+int64(add) > s.cfg.MaxBytes:
		return "size"
	case s.cfg.MaxAge > 0 && s.cfg.Now().Sub(f.started) >= s.cfg.MaxAge:
		return "age"
	}
	return ""
}

// rotate renames f to <f>.<UTC time>, opens a new f and removes the
// oldest rotated files beyond MaxFiles.
func (s *Sink) rotate(f *file, reason string) error {
	now := s.cfg.Now().UTC()
	to := f.abs + "." + now.Format(rotatedLayout)
	if err := f.close(); err != nil {
		return fmt.Errorf("rotate %s: %w", f.abs, err)
	}
	if err := os.Rename(f.abs, to); err != nil {
		return fmt.Errorf("rotate %s: %w", f.abs, err)
	}
	fh, _, err := openAppend(f.abs)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", f.abs, err)
	}
	syncDir(filepath.Dir(f.abs))
	f.fh, f.started = fh, now
	s.m.rotations.WithLabelValues(reason).Inc()
	s.log.Info("rotated", "file", f.abs, "to", filepath.Base(to), "reason", reason)
	if s.cfg.MaxFiles > 0 {
		rotated := rotatedFiles(f.abs)
		for _, r := range rotated[:max(0, len(rotated)-s.cfg.MaxFiles)] {
			if err := os.Remove(r.path); err != nil {
				s.m.errors.WithLabelValues("remove").Inc()
				s.log.Warn("remove rotated file", "file", r.path, "error", err)
				continue
			}
			s.m.removed.Inc()
		}
	}
	return nil
}

type rotatedFile struct {
	path string
	t    time.Time
}

// rotatedFiles lists the rotated files of path, oldest first.
func rotatedFiles(path string) []rotatedFile {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []rotatedFile
	for _, e := range ents {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		t, err := time.Parse(rotatedLayout, suffix)
		if err != nil {
			continue
		}
		out = append(out, rotatedFile{filepath.Join(dir, e.Name()), t})
	}
	slices.SortFunc(out, func(a, b rotatedFile) int { return a.t.Compare(b.t) })
	return out
}

// completeLength returns the length of f up to and including its last
// newline, and its size.
func completeLength(f *os.File) (end, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		start := end - n
		if _, err := f.ReadAt(buf[:n], start); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, size, nil
		}
		end = start
	}
	return 0, size, nil
}

// tailLines returns up to n complete lines ending at end, oldest first.
func tailLines(f *os.File, end int64, n int) ([][]byte, error) {
	if n <= 0 || end == 0 {
		return nil, nil
	}
	chunk := int64(64 << 10)
	for {
		start := max(0, end-chunk)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		lines := bytes.Split(buf, []byte("\n"))
		if start > 0 {
			lines = lines[1:] // the first may be cut
		}
		if len(lines) >= n || start == 0 || chunk >= maxTailBytes {
			if len(lines) > n {
				lines = lines[len(lines)-n:]
			}
			return lines, nil
		}
		chunk *= 4
	}
}

// tailFile is tailLines of the file at path.
func tailFile(path string, n int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	end, _, err := completeLength(f)
	if err != nil {
		return nil, err
	}
	return tailLines(f, end, n)
}
