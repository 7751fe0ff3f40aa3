package record

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
)

// hello is a FormatParser claiming messages that start with "hello".
type hello struct{}

func (hello) Parse(e *pipeline.Event, msg []byte) bool {
	if !bytes.HasPrefix(msg, []byte("hello")) {
		return false
	}
	e.Dataset = "test.hello"
	e.Message = e.Alias(msg)
	return true
}

func parse(p *Parser, original, peer string) *pipeline.Event {
	e := &pipeline.Event{Original: []byte(original), LogSource: peer, Created: time.Unix(1700000000, 0).UTC()}
	p.ParseRecord(e)
	return e
}

func TestParseRecord(t *testing.T) {
	p := New(syslog.Options{}, hello{}, nil)
	tests := []struct {
		name, in      string
		dataset, msg  string
		wantErr       bool
		wantCreatedTS bool
	}{
		{name: "5424 generic", in: "<14>1 2024-05-15T19:41:25.001Z h app - - - some text", dataset: "syslog.generic", msg: "some text"},
		{name: "5424 claimed", in: "<14>1 2024-05-15T19:41:25.001Z h app - - - hello there", dataset: "test.hello", msg: "hello there"},
		{name: "headerless claimed drops envelope error", in: "hello without header", dataset: "test.hello", msg: "hello without header", wantCreatedTS: true},
		{name: "claimed with a damaged header keeps the envelope error", in: "<14>1 2024-13-15T19:41:25.001Z h app - - - hello there", dataset: "test.hello", wantErr: true, wantCreatedTS: true},
		{name: "garbage stays generic with error", in: "\x00\x01\x02 binary", dataset: "syslog.generic", wantErr: true, wantCreatedTS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parse(p, tt.in, "192.0.2.1:5000")
			if e.Dataset != tt.dataset {
				t.Errorf("dataset %q, want %q", e.Dataset, tt.dataset)
			}
			if tt.msg != "" && e.Message != tt.msg {
				t.Errorf("message %q, want %q", e.Message, tt.msg)
			}
			if (e.Error != "") != tt.wantErr {
				t.Errorf("error %q, want error: %v", e.Error, tt.wantErr)
			}
			if tt.wantCreatedTS != e.Timestamp.Equal(e.Created) {
				t.Errorf("timestamp %v (created %v)", e.Timestamp, e.Created)
			}
			if len(e.ID) != 16 || strings.Trim(e.ID, "0123456789abcdef") != "" {
				t.Errorf("id %q is not 16 hex digits", e.ID)
			}
			if string(e.Original) != tt.in {
				t.Errorf("original changed: %q", e.Original)
			}
		})
	}
}

func TestIDIsDeterministic(t *testing.T) {
	p := New(syslog.Options{}, nil, nil)
	line := "<14>1 2024-05-15T19:41:25.001Z h app - - - x"
	a := parse(p, line, "192.0.2.1:5000").ID
	if b := parse(p, line, "192.0.2.1:6000").ID; a != b {
		t.Errorf("same sender, other port: %s != %s", a, b)
	}
	if c := parse(p, line, "192.0.2.2:5000").ID; a == c {
		t.Errorf("other sender, same id %s", a)
	}
	if d := parse(p, line+"y", "192.0.2.1:5000").ID; a == d {
		t.Errorf("other bytes, same id %s", a)
	}
}

func BenchmarkParseRecordGeneric(b *testing.B) {
	p := New(syslog.Options{}, nil, nil)
	line := []byte("<14>1 2024-05-15T19:41:25.001Z host1.example.com myapp 42 ID7 - a generic message of moderate length for the benchmark")
	e := &pipeline.Event{}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		e.Reset()
		e.Original = append(e.Original, line...)
		e.LogSource = "192.0.2.1:5000"
		p.ParseRecord(e)
	}
}
