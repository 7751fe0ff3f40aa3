package syslog

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/vpipe/vpipe/pipeline"
)

// testdataLines returns the non-comment lines of testdata/*.log.
func testdataLines(t testing.TB) []string {
	files, err := filepath.Glob("testdata/*.log")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// TestTestdata parses every sample line: the syslog ones must parse
// without error, the others must come back whole.
func TestTestdata(t *testing.T) {
	p := testParser()
	var e pipeline.Event
	for _, l := range testdataLines(t) {
		r := run(p, &e, l)
		if strings.HasPrefix(l, "<") || looksLikeTimestamp([]byte(l)) {
			if r.ErrorFull != "" {
				t.Errorf("%s: %s", l, r.ErrorFull)
			}
			if r.Time == "" {
				t.Errorf("%s: no timestamp", l)
			}
		} else if r.Msg != l || r.ErrorFull == "" {
			t.Errorf("%s: got msg %q error %q", l, r.Msg, r.ErrorFull)
		}
	}
}

func insideBytes(orig, b []byte) bool {
	return len(b) == 0 || inside(orig, unsafe.String(&b[0], len(b)))
}

func inside(orig []byte, s string) bool {
	if len(s) == 0 {
		return true
	}
	if len(orig) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(&orig[0]))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(orig))
}

func FuzzParse(f *testing.F) {
	for _, l := range testdataLines(f) {
		f.Add(l)
	}
	for _, l := range []string{
		`<14>1 2024-01-02T03:04:05Z h a p m [x@1 q="say \"hi\"" b="c:\\dir" r="a\]b"][y@2] body`,
		"<13>1 2024-05-15T19:41:25.123456789+05:30 h a - - - \xEF\xBB\xBFm\r\n",
		"<13>Feb 29 01:02:03 host sshd[4242]: x", "<13>", "<", "<1", "<13>1 ", "2024-", "Jan ",
		"2026-03-03T00:02:11.678Z No(13) FIREWALL-PKTLOG[1069031]: 8b4a1980",
	} {
		f.Add(l)
	}
	p := NewParser(Options{Now: func() time.Time { return fixedNow }})
	var e, e2 pipeline.Event
	f.Fuzz(func(t *testing.T, in string) {
		e.Reset()
		e.Original = append(e.Original[:0], in...)
		msg := p.Parse(&e)
		if len(msg) > 0 && !insideBytes(e.Original, msg) {
			t.Fatalf("msg is not part of Original")
		}
		if e.Error != "" && !strings.HasPrefix(e.Error, "syslog: expected ") {
			t.Fatalf("error %q", e.Error)
		}
		if e.Error == "" && e.Syslog.Version == 1 && !e.Syslog.PriorityValid {
			t.Fatalf("rfc5424 without PRI")
		}
		if !e.Timestamp.IsZero() && e.Timestamp.Location() != time.UTC {
			t.Fatalf("timestamp not UTC")
		}
		for _, s := range []string{e.Syslog.Hostname, e.Syslog.AppName, e.Syslog.ProcID, e.Syslog.MsgID} {
			if !inside(e.Original, s) {
				t.Fatalf("%q does not alias Original", s)
			}
		}
		for _, el := range e.Syslog.StructuredData {
			if el.ID == "" || !inside(e.Original, el.ID) {
				t.Fatalf("bad SD-ID %q", el.ID)
			}
			for _, prm := range el.Params {
				if prm.Name == "" || !inside(e.Original, prm.Name) {
					t.Fatalf("bad PARAM-NAME %q", prm.Name)
				}
			}
		}
		// The event round-trips through the pipeline's JSON encoding.
		e.Created = fixedNow
		js := e.AppendJSON(nil)
		var d pipeline.Event
		if err := d.DecodeJSON(js); err != nil {
			t.Fatalf("decode %s: %v", js, err)
		}
		if !bytes.Equal(d.Original, e.Original) {
			t.Fatalf("original %q became %q", e.Original, d.Original)
		}
		if !e.Timestamp.IsZero() && e.Timestamp.Year() >= 0 && e.Timestamp.Year() <= 9999 && !d.Timestamp.Equal(e.Timestamp) {
			t.Fatalf("timestamp %v became %v", e.Timestamp, d.Timestamp)
		}
		ds, es := d.Syslog, e.Syslog
		if ds.PriorityValid != es.PriorityValid || ds.Priority != es.Priority || ds.Facility != es.Facility || ds.Severity != es.Severity {
			t.Fatalf("priority %+v became %+v", es, ds)
		}
		for _, f := range [][2]string{{es.Hostname, ds.Hostname}, {es.AppName, ds.AppName}, {es.ProcID, ds.ProcID}, {es.MsgID, ds.MsgID}} {
			if utf8.ValidString(f[0]) && f[0] != f[1] {
				t.Fatalf("%q became %q", f[0], f[1])
			}
		}

		// A fresh event parses the same: nothing leaks from reuse.
		e2 = pipeline.Event{}
		e2.Original = []byte(in)
		msg2 := p.Parse(&e2)
		if string(msg) != string(msg2) || e.Error != e2.Error || fmt.Sprint(e.Syslog) != fmt.Sprint(e2.Syslog) ||
			!e.Timestamp.Equal(e2.Timestamp) {
			t.Fatalf("reused event differs:\n%+v\n%+v", e.Syslog, e2.Syslog)
		}
	})
}

func FuzzScanner(f *testing.F) {
	lines := testdataLines(f)
	f.Add(strings.Join(lines, "\n"), 0, uint8(0))
	var oc strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&oc, "%d %s", len(l), l)
	}
	f.Add(oc.String(), 100, uint8(1))
	f.Add("5 <13>a<13>line\n7 <13>x\ny\n4 <13>abc\r\n\x00", 8, uint8(2))
	f.Add("40 <13>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx5 <13>a", 10, uint8(0))
	f.Fuzz(func(t *testing.T, in string, max int, framing uint8) {
		if max < 0 || max > 1<<16 {
			max = 0
		}
		mode := Framing(framing % 3)
		scan := func(s *Scanner) ([]frame, int64) {
			s.SetFraming(mode)
			var out []frame
			for s.Scan() {
				fr := s.Frame()
				limit := max
				if limit == 0 {
					limit = defaultMaxFrame
				}
				if (len(fr) == 0 && s.FrameErr() == nil) || len(fr) > limit {
					t.Fatalf("frame of %d bytes (max %d)", len(fr), limit)
				}
				off := s.Offset()
				if off < 0 || off >= int64(len(in)) {
					t.Fatalf("offset %d", off)
				}
				if i := strings.Index(in[off:], string(fr)); i < 0 || i > maxCountDigits+1 {
					t.Fatalf("frame %q not at offset %d", fr, off)
				}
				out = append(out, frame{string(fr), s.FrameErr(), off})
			}
			if s.Err() != nil {
				t.Fatalf("err %v", s.Err())
			}
			return out, s.Discarded()
		}
		whole, d1 := scan(NewScanner(strings.NewReader(in), max))
		bytewise, d2 := scan(NewScanner(iotest.OneByteReader(strings.NewReader(in)), max))
		if fmt.Sprint(whole) != fmt.Sprint(bytewise) || d1 != d2 {
			t.Fatalf("framing depends on read sizes:\n%+v %d\n%+v %d", whole, d1, bytewise, d2)
		}
		kept := int64(0)
		for _, fr := range whole {
			kept += int64(len(fr.Data))
		}
		if kept+d1 > int64(len(in)) {
			t.Fatalf("kept %d + discarded %d > %d input bytes", kept, d1, len(in))
		}
	})
}
