package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type frame struct {
	Data string
	Err  error
	Off  int64
}

func scanAll(s *Scanner) []frame {
	var out []frame
	for s.Scan() {
		out = append(out, frame{string(s.Frame()), s.FrameErr(), s.Offset()})
	}
	return out
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestScanner(t *testing.T) {
	long := strings.Repeat("x", 40)
	tests := []struct {
		name      string
		in        string
		max       int
		framing   Framing
		want      []frame
		discarded int64
	}{
		{
			name: "newline",
			in:   "<13>1 - - - - - - a\n<13>1 - - - - - - b\n",
			want: []frame{{"<13>1 - - - - - - a", nil, 0}, {"<13>1 - - - - - - b", nil, 20}},
		},
		{
			name: "crlf, empty lines, no final LF",
			in:   "\r\n\na\r\n\n\r\nb",
			want: []frame{{"a", nil, 3}, {"b", nil, 9}},
		},
		{
			name: "nul trailer",
			in:   "a\x00b\x00\nc",
			want: []frame{{"a", nil, 0}, {"b", nil, 2}, {"c", nil, 5}},
		},
		{
			name: "octet counting",
			in:   "5 <13>a6 <13>bc",
			want: []frame{{"<13>a", nil, 0}, {"<13>bc", nil, 7}},
		},
		{
			name: "mixed framings on one stream",
			in:   "5 <13>a<13>line\n7 <13>x\ny\n",
			want: []frame{{"<13>a", nil, 0}, {"<13>line", nil, 7}, {"<13>x\ny", nil, 16}},
		},
		{
			name: "number that is not a count",
			in:   "50047 INET TERM\n12\n",
			want: []frame{{"50047 INET TERM", nil, 0}, {"12", nil, 16}},
		},
		{
			name: "count cut short by EOF",
			in:   "20 <13>short",
			want: []frame{{"<13>short", ErrFrameTruncated, 0}},
		},
		{
			name: "lying count too short resyncs at LF",
			in:   "4 <13>abc def\n5 <13>b",
			want: []frame{{"<13>", nil, 0}, {"abc def", nil, 6}, {"<13>b", nil, 14}},
		},
		{
			name:      "over-long line truncated and resynced",
			in:        long + "\nok\n" + long,
			max:       10,
			want:      []frame{{long[:10], ErrFrameTooLong, 0}, {"ok", nil, 41}, {long[:10], ErrFrameTooLong, 44}},
			discarded: 60,
		},
		{
			name: "line of exactly max",
			in:   long[:10] + "\r\n" + long[:10],
			max:  10,
			want: []frame{{long[:10], nil, 0}, {long[:10], nil, 12}},
		},
		{
			name:      "over-long count truncated and skipped",
			in:        "40 <13>" + long[:36] + "5 <13>a",
			max:       10,
			want:      []frame{{"<13>" + long[:6], ErrFrameTooLong, 0}, {"<13>a", nil, 43}},
			discarded: 30,
		},
		{
			name:    "forced octet counting: bad count",
			in:      "5 <13>ahello\n5 abcde",
			framing: FramingOctetCounting,
			want:    []frame{{"<13>a", nil, 0}, {"hello", ErrBadOctetCount, 7}, {"abcde", nil, 13}},
		},
		{
			name: "count overflow is not a count",
			in:   "99999999999 <13>x\n",
			want: []frame{{"99999999999 <13>x", nil, 0}},
		},
		{
			name:    "forced non-transparent",
			in:      "5 <13>a\n",
			framing: FramingNonTransparent,
			want:    []frame{{"5 <13>a", nil, 0}},
		},
		{
			name: "binary garbage",
			in:   "\xff\xfe\x01\x02\n\x00\x00\x80",
			want: []frame{{"\xff\xfe\x01\x02", nil, 0}, {"\x80", nil, 7}},
		},
		{
			name: "empty stream",
			in:   "",
		},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":   func(r io.Reader) io.Reader { return r },
		"onebyte": iotest.OneByteReader,
		"7bytes":  func(r io.Reader) io.Reader { return chunkReader{r, 7} },
		"dataerr": iotest.DataErrReader,
	}
	for _, tc := range tests {
		for rname, wrap := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				s := NewScanner(wrap(strings.NewReader(tc.in)), tc.max)
				s.SetFraming(tc.framing)
				got := scanAll(s)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("frames\n got %+v\nwant %+v", got, tc.want)
				}
				if s.Discarded() != tc.discarded {
					t.Errorf("discarded = %d, want %d", s.Discarded(), tc.discarded)
				}
				if s.Err() != nil {
					t.Errorf("err = %v", s.Err())
				}
			})
		}
	}
}

func TestScannerReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a\nb partial"), iotest.ErrReader(boom))
	s := NewScanner(r, 0)
	got := scanAll(s)
	want := []frame{{"a", nil, 0}, {"b partial", ErrFrameTruncated, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frames\n got %+v\nwant %+v", got, want)
	}
	if s.Err() != boom {
		t.Errorf("err = %v", s.Err())
	}
}

// TestScannerLarge runs many frames of both framings through the buffer so
// that compaction and frames straddling reads are exercised.
func TestScannerLarge(t *testing.T) {
	var in bytes.Buffer
	var want []string
	for i := range 20000 {
		msg := fmt.Sprintf("<13>1 - h a - - - message %d %s", i, strings.Repeat("y", i%300))
		want = append(want, msg)
		if i%3 == 0 {
			fmt.Fprintf(&in, "%d %s", len(msg), msg)
		} else {
			in.WriteString(msg + "\n")
		}
	}
	for _, n := range []int{1 << 20, 4093, 100} {
		s := NewScanner(chunkReader{bytes.NewReader(in.Bytes()), n}, 1000)
		i := 0
		for s.Scan() {
			if s.FrameErr() != nil {
				t.Fatalf("frame %d: %v", i, s.FrameErr())
			}
			if i >= len(want) || string(s.Frame()) != want[i] {
				t.Fatalf("chunk %d: frame %d = %q", n, i, s.Frame())
			}
			i++
		}
		if i != len(want) || s.Err() != nil {
			t.Fatalf("chunk %d: %d frames, err %v", n, i, s.Err())
		}
	}
}

func TestScannerAllocs(t *testing.T) {
	line := []byte(dfwLine + "\n")
	in := bytes.Repeat(line, 1000)
	r := bytes.NewReader(in)
	s := NewScanner(r, 0)
	allocs := testing.AllocsPerRun(10, func() {
		r.Reset(in)
		s.done, s.err = false, nil
		for s.Scan() {
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per 1000 frames", allocs)
	}
}

// TestScannerTrickle feeds a maximal line one byte per Read: the search for
// its end must not restart from the frame's start on every byte.
func TestScannerTrickle(t *testing.T) {
	in := strings.Repeat("z", 1<<20) + "\n"
	s := NewScanner(iotest.OneByteReader(strings.NewReader(in)), 1<<20)
	start := time.Now()
	if !s.Scan() || len(s.Frame()) != 1<<20 || s.FrameErr() != nil {
		t.Fatalf("frame of %d bytes, %v", len(s.Frame()), s.FrameErr())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
