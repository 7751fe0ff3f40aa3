package syslog

import (
	"bytes"
	"errors"
	"io"
)

// Framing says how a Scanner finds frame boundaries in a stream.
type Framing int

const (
	// FramingAuto decides per frame: a frame that starts with an octet
	// count (a non-zero digit, digits, SP, then "<") is octet-counted,
	// any other is non-transparent. This is what rsyslog and syslog-ng do
	// on a listener that accepts both.
	FramingAuto Framing = iota
	// FramingOctetCounting expects "MSG-LEN SP SYSLOG-MSG" (RFC 6587
	// §3.4.1, RFC 5425 §4.3) for every frame; a frame without a valid
	// count is read up to the next LF and reported with ErrBadOctetCount.
	FramingOctetCounting
	// FramingNonTransparent splits at LF (RFC 6587 §3.4.2) and never looks
	// for a count.
	FramingNonTransparent
)

// Frame errors reported by Scanner.FrameErr. They are sentinels, compared
// with errors.Is or ==.
var (
	// ErrFrameTooLong: the frame was longer than the Scanner's maxFrame;
	// the frame holds its first maxFrame bytes and the rest was discarded.
	ErrFrameTooLong = errors.New("syslog: frame longer than the limit, truncated")
	// ErrFrameTruncated: the stream ended (EOF or a read error) before the
	// frame was complete; the frame holds what was received.
	ErrFrameTruncated = errors.New("syslog: frame cut short by the end of the stream")
	// ErrBadOctetCount: an octet-counted frame was expected but the count
	// was missing or invalid; the frame holds the line up to the next LF.
	ErrBadOctetCount = errors.New("syslog: bad octet count")
)

const (
	defaultMaxFrame = 64 << 10
	minBuffer       = 128 << 10
	minRead         = 4 << 10
	maxCountDigits  = 10
)

// Scanner splits a syslog byte stream (TCP, RFC 6587; TLS, RFC 5425) into
// frames, like bufio.Scanner but with octet counting, a frame size limit
// that resynchronises instead of failing, and no allocation per frame.
//
// Non-transparent framing ends a frame at LF or at NUL (RFC 6587 §3.4.2
// notes that NUL is seen as a trailer in the wild; neither byte occurs in
// the text of a sane syslog message). A CR before the LF is dropped, empty
// frames are skipped, and a last line without a trailer at a clean EOF is
// a complete frame.
//
// Resynchronisation: an over-long non-transparent frame keeps its first
// maxFrame bytes (ErrFrameTooLong) and the rest up to the next LF or NUL is
// discarded. An octet-counted frame whose count exceeds maxFrame keeps
// maxFrame bytes and the rest of the count is discarded. A count that lies
// cannot be detected: if it is too short, the frame ends early and the
// remaining bytes of the message are then framed as one non-transparent
// frame up to the next LF (with a newline-terminated sender that realigns
// on the next message); if it is too long, the frame swallows the start of
// the next message(s). Discarded counts the bytes dropped by truncation.
//
// A Scanner is not safe for concurrent use.
type Scanner struct {
	rd   io.Reader
	buf  []byte
	r, w int   // unread data is buf[r:w]
	base int64 // stream offset of buf[0]
	max  int
	mode Framing

	done bool  // no more reads: EOF or a read error
	err  error // the read error, nil at EOF

	frame    []byte
	frameOff int64
	frameErr error

	seen      int   // bytes at buf[r:] known to hold no LF or NUL
	skip      int64 // octets of an over-long counted frame still to discard
	skipLine  bool  // discarding up to the next LF or NUL
	discarded int64
}

// NewScanner returns a Scanner reading from r with FramingAuto. maxFrame
// is the largest frame kept whole; 0 means 64 KiB.
func NewScanner(r io.Reader, maxFrame int) *Scanner {
	if maxFrame <= 0 {
		maxFrame = defaultMaxFrame
	}
	size := minBuffer
	if n := 2*maxFrame + 64; n > size {
		size = n
	}
	return &Scanner{rd: r, buf: make([]byte, size), max: maxFrame}
}

// SetFraming sets the framing; call it before the first Scan.
func (s *Scanner) SetFraming(f Framing) { s.mode = f }

// Frame returns the current frame. It aliases the Scanner's buffer and is
// valid until the next call to Scan.
func (s *Scanner) Frame() []byte { return s.frame }

// FrameErr says why the current frame is damaged (ErrFrameTooLong,
// ErrFrameTruncated, ErrBadOctetCount), or nil. A damaged frame still holds
// the bytes that were kept, which may be none (an octet count at the very
// end of the stream); an undamaged frame is never empty.
func (s *Scanner) FrameErr() error { return s.frameErr }

// Err returns the read error that ended scanning, nil at a clean EOF.
func (s *Scanner) Err() error { return s.err }

// Offset returns the stream offset of the current frame's first byte (its
// octet count, when it has one).
func (s *Scanner) Offset() int64 { return s.frameOff }

// Discarded returns how many bytes were dropped so far by truncating
// over-long frames.
func (s *Scanner) Discarded() int64 { return s.discarded }

// Scan advances to the next frame. It returns false at EOF or after a read
// error (see Err); the partial frame pending at that point is returned
// first, by the last Scan that returns true.
func (s *Scanner) Scan() bool {
	s.frame, s.frameErr = nil, nil
	for {
		if s.skip > 0 || s.skipLine {
			if s.discard() {
				continue
			}
			if s.done {
				return false
			}
			s.fill()
			continue
		}
		for s.r < s.w {
			if c := s.buf[s.r]; c != '\n' && c != '\r' && c != 0 {
				break
			}
			s.r++
		}
		if s.r < s.w && s.next() {
			return true
		}
		if s.done {
			return false
		}
		s.fill()
	}
}

// discard drops buffered bytes of a truncated frame. It returns true when
// it finished (the caller goes on framing), false when it needs more data.
func (s *Scanner) discard() bool {
	b := s.buf[s.r:s.w]
	if s.skip > 0 {
		n := int64(len(b))
		if n > s.skip {
			n = s.skip
		}
		s.r += int(n)
		s.skip -= n
		s.discarded += n
		return s.skip == 0
	}
	i := terminator(b)
	if i < 0 {
		s.discarded += int64(len(b))
		s.r = s.w
		return false
	}
	s.discarded += int64(i)
	s.r += i + 1
	s.skipLine = false
	return true
}

// terminator returns the index of the first LF or NUL in b, or -1.
func terminator(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	end := i
	if i < 0 {
		end = len(b)
	}
	if j := bytes.IndexByte(b[:end], 0); j >= 0 {
		return j
	}
	return i
}

// next tries to take a frame from buf[r:w], which starts with a frame's
// first byte. It returns false when it needs more data (never when done).
func (s *Scanner) next() bool {
	b := s.buf[s.r:s.w]
	s.frameOff = s.base + int64(s.r)
	badCount := false
	if s.mode != FramingNonTransparent {
		n, hdr, st := octetHeader(b, s.mode == FramingOctetCounting)
		switch {
		case st == headerOK:
			return s.counted(b, n, hdr)
		case st == headerMore && !s.done:
			return false
		case st == headerBad || s.mode == FramingOctetCounting:
			badCount = true
		}
	}
	if !s.line(b) {
		return false
	}
	if badCount && s.frameErr == nil {
		s.frameErr = ErrBadOctetCount
	}
	return true
}

type headerState int

const (
	headerNone headerState = iota // not an octet count
	headerOK
	headerMore // need more bytes to decide
	headerBad  // looks like a count but is unusable
)

// octetHeader reads "MSG-LEN SP" (RFC 6587 §3.4.1: MSG-LEN = NONZERO-DIGIT
// *DIGIT). In auto mode it also requires the "<" that starts a SYSLOG-MSG
// (RFC 5424 §6), so that a non-transparent line starting with a number is
// not taken for a count.
func octetHeader(b []byte, forced bool) (n int64, hdr int, st headerState) {
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		if forced {
			return 0, 0, headerBad
		}
		return 0, 0, headerNone
	}
	i := 0
	for i < len(b) && i <= maxCountDigits && isDigit(b[i]) {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	switch {
	case i > maxCountDigits:
		if forced {
			return 0, 0, headerBad
		}
		return 0, 0, headerNone
	case i == len(b):
		return 0, 0, headerMore
	case b[i] != ' ':
		if forced {
			return 0, 0, headerBad
		}
		return 0, 0, headerNone
	case forced:
		return n, i + 1, headerOK
	case i+1 == len(b):
		return 0, 0, headerMore
	case b[i+1] != '<':
		return 0, 0, headerNone
	}
	return n, i + 1, headerOK
}

// counted takes an octet-counted frame of n octets after a header of hdr
// bytes.
func (s *Scanner) counted(b []byte, n int64, hdr int) bool {
	keep := n
	if keep > int64(s.max) {
		keep = int64(s.max)
	}
	if int64(len(b)-hdr) >= keep {
		k := int(keep)
		s.frame = b[hdr : hdr+k]
		s.r += hdr + k
		if n > keep {
			s.frameErr = ErrFrameTooLong
			s.skip = n - keep
		}
		return true
	}
	if !s.done {
		return false
	}
	s.frame = b[hdr:]
	s.frameErr = ErrFrameTruncated
	s.r = s.w
	return true
}

// line takes a non-transparent frame (RFC 6587 §3.4.2).
func (s *Scanner) line(b []byte) bool {
	// Look one byte past max for the trailer, and one more for a CR.
	window := b
	if len(window) > s.max+2 {
		window = window[:s.max+2]
	}
	// Bytes already searched are not searched again while a slow sender
	// trickles a long line in.
	i := terminator(window[s.seen:])
	if i < 0 {
		s.seen = len(window)
	} else {
		i += s.seen
		s.seen = 0
	}
	if i >= 0 {
		s.frame = trimCR(b[:i])
		s.r += i + 1
		if len(s.frame) > s.max {
			s.discarded += int64(len(s.frame) - s.max)
			s.frame = s.frame[:s.max]
			s.frameErr = ErrFrameTooLong
		}
		return true
	}
	if len(b) >= s.max+2 {
		s.seen = 0
		s.frame = b[:s.max]
		s.frameErr = ErrFrameTooLong
		s.r += s.max
		s.skipLine = true
		return true
	}
	if !s.done {
		return false
	}
	s.frame = trimCR(b)
	s.r = s.w
	s.seen = 0
	if s.err != nil {
		s.frameErr = ErrFrameTruncated
	}
	if len(s.frame) > s.max {
		s.discarded += int64(len(s.frame) - s.max)
		s.frame = s.frame[:s.max]
		s.frameErr = ErrFrameTooLong
	}
	return true
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// fill reads once into the buffer, first moving the unread bytes to its
// start when the free space at the end is short.
func (s *Scanner) fill() {
	if s.done {
		return
	}
	if s.r == s.w {
		s.base += int64(s.r)
		s.r, s.w = 0, 0
	} else if s.r > 0 && len(s.buf)-s.w < minRead+s.max/2 {
		s.base += int64(s.r)
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	for range 100 {
		n, err := s.rd.Read(s.buf[s.w:])
		if n < 0 || n > len(s.buf)-s.w {
			s.done, s.err = true, errors.New("syslog: reader returned an invalid count")
			return
		}
		s.w += n
		if err != nil {
			s.done = true
			if err != io.EOF {
				s.err = err
			}
			return
		}
		if n > 0 {
			return
		}
	}
	s.done, s.err = true, io.ErrNoProgress
}
