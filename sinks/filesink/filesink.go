// Package filesink is the simplest stage sink: it appends each event as one
// JSON line to a file and fsyncs once per batch. It is the trivial stage
// that proves the stage runner end to end (kill and restart included).
//
// Delivery is at-least-once: a batch the runner replays after a crash is
// appended again, so the file may hold duplicates (same event.id), never
// gaps and never a torn line.
package filesink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vpipe/vpipe/pipeline/stage"
)

// Sink appends events to one file. It is safe for concurrent use; Write
// calls are serialised.
type Sink struct {
	mu   sync.Mutex
	f    *os.File
	path string
	end  int64 // the end of the last complete, synced batch
	buf  []byte
}

// Open opens (creating it if needed) the file at path for appending. A
// torn last line, left by a crash in the middle of a batch, is cut off: the
// runner had not committed that batch and delivers it again.
func Open(path string) (*Sink, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	end, err := completeLength(f)
	if err == nil {
		err = f.Truncate(end)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Sink{f: f, path: path, end: end}, nil
}

// completeLength returns the length of f up to and including its last
// newline.
func completeLength(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for end := st.Size(); end > 0; {
		n := min(int64(len(buf)), end)
		start := end - n
		if _, err := f.ReadAt(buf[:n], start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Write appends one line per record (the event's JSON) and fsyncs the
// file; it returns nil only after the fsync. On error it cuts the file back
// to where the batch started, so a retry does not leave a torn line. Every
// error is retryable. Write does not keep batch.
func (s *Sink) Write(ctx context.Context, batch []stage.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("write %s: sink closed", s.path)
	}
	buf := s.buf[:0]
	for i := range batch {
		buf = batch[i].Event.AppendJSON(buf)
		buf = append(buf, '\n')
	}
	s.buf = buf
	_, err := s.f.WriteAt(buf, s.end)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Best effort: if this fails too, the next write still starts at
		// s.end, over the partial batch.
		_ = s.f.Truncate(s.end)
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	s.end += int64(len(buf))
	return nil
}

// Close closes the file. Write fails afterwards.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
