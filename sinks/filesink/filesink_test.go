package filesink_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/sinks/filesink"
)

func records(from, to int) []stage.Record {
	var out []stage.Record
	for i := from; i < to; i++ {
		out = append(out, stage.Record{Event: &pipeline.Event{ID: fmt.Sprintf("ev-%d", i), Dataset: pipeline.DatasetSyslogGeneric, Original: []byte("x")}})
	}
	return out
}

func lines(b []byte, from, to int) []byte {
	var out []byte
	for _, r := range records(from, to) {
		out = r.Event.AppendJSON(out)
		out = append(out, '\n')
	}
	return append(b, out...)
}

func TestAppendAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.ndjson")
	s, err := filesink.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, records(0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, records(3, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, records(5, 6)); err == nil {
		t.Error("Write after Close: no error")
	}
	s, err = filesink.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(ctx, records(5, 6)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := lines(nil, 0, 6); !bytes.Equal(got, want) {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
}

// TestTornTail: a line cut short by a crash is removed on Open, since the
// runner did not commit its batch and will write it again.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want []byte
	}{
		{"empty", nil, nil},
		{"complete", lines(nil, 0, 2), lines(nil, 0, 2)},
		{"torn", append(lines(nil, 0, 2), `{"@timestamp":"2026-`...), lines(nil, 0, 2)},
		{"only torn", []byte(`{"event":`), nil},
		{"long torn", append(lines(nil, 0, 1), bytes.Repeat([]byte("y"), 200<<10)...), lines(nil, 0, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.ndjson")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := filesink.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(context.Background(), records(7, 8)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			got, _ := os.ReadFile(path)
			if want := lines(tc.want, 7, 8); !bytes.Equal(got, want) {
				t.Errorf("file:\n%q\nwant:\n%q", got, want)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	s, err := filesink.Open(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, records(0, 1)); err == nil {
		t.Error("no error with a cancelled context")
	}
}

func TestOpenError(t *testing.T) {
	if _, err := filesink.Open(filepath.Join(t.TempDir(), "missing", "f")); err == nil {
		t.Error("no error for a missing directory")
	}
}
