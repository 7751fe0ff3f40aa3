// Package golden is the golden-file test harness of the format parsers: it
// runs a parser over testdata/<case>.log (or a whole input file), encodes
// each event with (*pipeline.Event).AppendJSON and compares the result with
// testdata/<case>.golden.ndjson. Run the tests with -update to rewrite the
// golden files, then review the diff by hand against
// shared/reference/formats.md: a regenerated file is a claim to check, not
// a truth.
//
// Each event is also decoded back with (*pipeline.Event).DecodeJSON and
// encoded again; the two encodings must be equal, so a golden file only
// holds events that survive the trip through Kafka.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Created is event.created of every golden event, and the "now" from which
// the envelope parser picks the year of RFC 3164 timestamps.
var Created = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// LogSource is log.source.address of every golden event read from a .log
// file, so that event ids (derived from it) are stable.
const LogSource = "192.0.2.10:514"

// Syslog returns a line parser that runs the real parse chain of syslog
// records (parsers/record: the envelope parser, then fp, then the generic
// fallback and the event id).
func Syslog(fp pipeline.FormatParser) func(e *pipeline.Event) {
	p := record.New(syslog.Options{Now: func() time.Time { return Created }}, fp, nil)
	return p.ParseRecord
}

// Lines runs testdata/<name>.log through parse, one event per line. Lines
// starting with '#' and blank lines are skipped; a line keeps its
// trailing CR, so that CRLF files test CRLF. parse gets an event with
// Original, Created and LogSource set.
func Lines(t *testing.T, name string, parse func(e *pipeline.Event)) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	var e pipeline.Event
	for _, line := range bytes.Split(in, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		e.Reset()
		e.Original = append(e.Original[:0], line...)
		e.Created = Created
		e.LogSource = LogSource
		parse(&e)
		out = appendEvent(t, out, &e)
	}
	compare(t, name, out)
}

// File runs the whole of testdata/<input> through parse, which emits any
// number of events, and compares them with testdata/<name>.golden.ndjson.
// An error from parse is recorded as a line {"error": "..."}, so that the
// golden file also pins what is rejected.
func File(t *testing.T, name, input string, parse func(data []byte, emit func(*pipeline.Event)) error) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", input))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	err = parse(in, func(e *pipeline.Event) {
		if e.Created.IsZero() {
			e.Created = Created
		}
		out = appendEvent(t, out, e)
	})
	if err != nil {
		out = append(out, `{"error":`...)
		out = appendQuoted(out, err.Error())
		out = append(out, "}\n"...)
	}
	compare(t, name, out)
}

// NDJSON runs each non-blank line of testdata/<name>.ndjson through parse
// (for one-JSON-object-per-record inputs such as VCO events). An error is
// recorded as for File.
func NDJSON(t *testing.T, name string, parse func(e *pipeline.Event, data []byte) error) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", name+".ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	var e pipeline.Event
	for _, line := range bytes.Split(in, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e.Reset()
		e.Original = append(e.Original[:0], line...)
		e.Created = Created
		if err := parse(&e, e.Original); err != nil {
			out = append(out, `{"error":`...)
			out = appendQuoted(out, err.Error())
			out = append(out, "}\n"...)
			continue
		}
		out = appendEvent(t, out, &e)
	}
	compare(t, name, out)
}

// appendEvent encodes e, checks that it survives DecodeJSON, and appends
// it as one line.
func appendEvent(t *testing.T, out []byte, e *pipeline.Event) []byte {
	t.Helper()
	start := len(out)
	out = e.AppendJSON(out)
	var back pipeline.Event
	if err := back.DecodeJSON(out[start:]); err != nil {
		t.Errorf("DecodeJSON(%s): %v", out[start:], err)
	} else if again := back.AppendJSON(nil); !bytes.Equal(again, out[start:]) {
		t.Errorf("JSON round trip differs:\n first %s\nsecond %s", out[start:], again)
	}
	return append(out, '\n')
}

func appendQuoted(dst []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(dst, q...)
}

func compare(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.ndjson")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s line %d:\n got %s\nwant %s", path, i+1, gl, wl)
		}
	}
}

// AddSeeds adds every record line of the testdata/*.log files (as Lines
// reads them) to f's seed corpus.
func AddSeeds(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	for _, file := range files {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(in, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
				continue
			}
			f.Add(line)
		}
	}
}

// CheckJSON fails t unless e encodes to valid JSON that DecodeJSON reads
// back into an event encoding to the same JSON value. Values are compared,
// not bytes: AppendJSON writes invalid UTF-8 as the escape \ufffd, and
// the U+FFFD it decodes to as the character itself.
func CheckJSON(t *testing.T, e *pipeline.Event) {
	t.Helper()
	out := e.AppendJSON(nil)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	var back pipeline.Event
	if err := back.DecodeJSON(out); err != nil {
		t.Fatalf("DecodeJSON(%s): %v", out, err)
	}
	again := back.AppendJSON(nil)
	if bytes.Equal(again, out) {
		return
	}
	var v1, v2 any
	if json.Unmarshal(out, &v1) != nil || json.Unmarshal(again, &v2) != nil || !reflect.DeepEqual(v1, v2) {
		t.Fatalf("JSON round trip differs:\n first %s\nsecond %s", out, again)
	}
}

// ReportRate reports, after a benchmark loop that started at CPU time
// start (CPUTime), the wall-clock rate as unit/s and, where the process CPU
// time is known, cpu-ns/op and unit/cpu-s: with -cpu 1 the latter is the
// one-core rate, unaffected by other work on the machine.
func ReportRate(b *testing.B, start time.Duration, unit string) {
	b.Helper()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
	if cpu := CPUTime() - start; start > 0 && cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(b.N)/cpu.Seconds(), unit+"/cpu-s")
	}
}

// CheckChain is CheckJSON for an event that went through the whole record
// chain (Syslog). It skips an event whose @timestamp lies outside the
// years 1 to 9999: the envelope parser lets such times through (year 0000
// with a positive offset), AppendJSON writes them and DecodeJSON refuses
// them, which is for those packages to settle, not for a format parser's
// fuzz test to trip over.
func CheckChain(t *testing.T, e *pipeline.Event) {
	t.Helper()
	if y := e.Timestamp.Year(); !e.Timestamp.IsZero() && (y < 1 || y > 9999) {
		return
	}
	CheckJSON(t, e)
}
