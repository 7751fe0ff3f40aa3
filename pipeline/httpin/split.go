package httpin

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/vpipe/vpipe/pipeline/jsontext"
)

// maxDepth bounds the nesting of JSON arrays and objects, so that a body of
// a million '[' cannot exhaust the stack.
const maxDepth = 512

// span locates one record in a request body: body[start:end]. For JSON
// objects, msgStart:msgEnd is the top-level "message" member's string value
// with its quotes (msgEnd is 0 when there is none) and msgEscaped says it
// holds escapes.
type span struct {
	start, end       int
	msgStart, msgEnd int
	msgEscaped       bool
}

// Rejection reasons: the reason label of vpipe_http_rejected_total for a
// body that does not split.
const (
	reasonMalformed   = "malformed"
	reasonInvalidUTF8 = "invalid_utf8"
	reasonTooMany     = "too_many_events"
)

// bodyError says why a request body was rejected as a whole. Its message
// names the failing line or element and the byte offset in the body.
type bodyError struct {
	reason string // one of the reason* constants
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

// syntaxError is a JSON syntax or encoding error at byte off of the text
// being scanned.
type syntaxError struct {
	off  int
	utf8 bool // the text is not valid UTF-8 at off
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

// where wraps a scanner error with the record it happened in: record n of
// kind ("line 3", "element 2"), or none when kind is "".
func where(err error, kind string, n int) error {
	var se *syntaxError
	if !errors.As(err, &se) {
		return err
	}
	reason := reasonMalformed
	if se.utf8 {
		reason = reasonInvalidUTF8
	}
	if kind == "" {
		return &bodyError{reason, fmt.Sprintf("byte %d: %s", se.off, se.msg)}
	}
	return &bodyError{reason, fmt.Sprintf("%s %d, byte %d: %s", kind, n, se.off, se.msg)}
}

func tooMany(limit int) error {
	return &bodyError{reasonTooMany, fmt.Sprintf("more than %d events in one request", limit)}
}

// splitJSON appends to spans the objects of body, which must hold one JSON
// object or an array of JSON objects (RFC 8259), optionally after a UTF-8
// byte order mark. It fails on the first syntax error, invalid UTF-8 or
// non-object element, and when there are more than limit objects.
func splitJSON(spans []span, body []byte, limit int) ([]span, error) {
	i := skipBOM(body)
	i = skipSpace(body, i)
	if i == len(body) {
		return spans, where(errAt(i, "empty body, want a JSON object or array"), "", 0)
	}
	switch body[i] {
	case '{':
		sp := span{start: i}
		end, err := scanObject(body, i, 1, &sp)
		if err != nil {
			return spans, where(err, "", 0)
		}
		sp.end = end
		if limit < 1 {
			return spans, tooMany(limit)
		}
		spans = append(spans, sp)
		i = end
	case '[':
		i = skipSpace(body, i+1)
		if i < len(body) && body[i] == ']' {
			i++
			break
		}
		for n := 1; ; n++ {
			if i == len(body) {
				return spans, where(errAt(i, "unexpected end of body, want an object"), "element", n)
			}
			if body[i] != '{' {
				var err error
				if _, err = scanValue(body, i, 1); err == nil {
					err = errAt(i, "element is not a JSON object")
				}
				return spans, where(err, "element", n)
			}
			sp := span{start: i}
			end, err := scanObject(body, i, 2, &sp)
			if err != nil {
				return spans, where(err, "element", n)
			}
			if n > limit {
				return spans, tooMany(limit)
			}
			sp.end = end
			spans = append(spans, sp)
			i = skipSpace(body, end)
			if i == len(body) {
				return spans, where(errAt(i, "unexpected end of body, want ',' or ']'"), "", 0)
			}
			if body[i] == ']' {
				i++
				break
			}
			if body[i] != ',' {
				return spans, where(badChar(body, i, "want ',' or ']' after element "+strconv.Itoa(n)), "", 0)
			}
			i = skipSpace(body, i+1)
		}
	default:
		return spans, where(badChar(body, i, "want a JSON object or array"), "", 0)
	}
	if i = skipSpace(body, i); i != len(body) {
		return spans, where(badChar(body, i, "want end of body after the JSON value"), "", 0)
	}
	return spans, nil
}

// splitNDJSON appends to spans the objects of body, which must hold one
// JSON object per line (NDJSON, JSON Lines: https://jsonlines.org/). Lines
// end in LF or CRLF; blank lines are skipped. It fails on the first line
// that is not exactly one object, and when there are more than limit.
func splitNDJSON(spans []span, body []byte, limit int) ([]span, error) {
	n := 0
	for line, start := 1, skipBOM(body); start < len(body); line++ {
		end := start + indexByte(body[start:], '\n')
		i := skipSpace(body[:end], start)
		if i < end {
			if body[i] != '{' {
				var err error
				if _, err = scanValue(body[:end], i, 1); err == nil {
					err = errAt(i, "line is not a JSON object")
				}
				return spans, where(err, "line", line)
			}
			sp := span{start: i}
			objEnd, err := scanObject(body[:end], i, 1, &sp)
			if err != nil {
				return spans, where(err, "line", line)
			}
			if j := skipSpace(body[:end], objEnd); j < end {
				return spans, where(badChar(body, j, "want end of line after the object"), "line", line)
			}
			if n++; n > limit {
				return spans, tooMany(limit)
			}
			sp.end = objEnd
			spans = append(spans, sp)
		}
		start = end + 1
	}
	return spans, nil
}

// splitLines appends to spans the non-empty lines of body, without their
// LF or CRLF ending, failing when there are more than limit. Any bytes are
// accepted: a syslog record need not be UTF-8 (RFC 5424 §6.4 allows other
// encodings without a BOM; RFC 3164 predates UTF-8 altogether).
func splitLines(spans []span, body []byte, limit int) ([]span, error) {
	for start := 0; start < len(body); {
		end := start + indexByte(body[start:], '\n')
		next := end + 1
		if end > start && body[end-1] == '\r' {
			end--
		}
		if end > start {
			if len(spans) >= limit {
				return spans, tooMany(limit)
			}
			spans = append(spans, span{start: start, end: end})
		}
		start = next
	}
	return spans, nil
}

// indexByte is bytes.IndexByte returning len(b) when c is absent.
func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return len(b)
}

func skipBOM(b []byte) int {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return 3
	}
	return 0
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func errAt(off int, msg string) *syntaxError { return &syntaxError{off: off, msg: msg} }

// badChar reports the unexpected byte at b[i], as invalid UTF-8 when it is.
func badChar(b []byte, i int, want string) *syntaxError {
	r, size := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && size <= 1 {
		return &syntaxError{off: i, utf8: true, msg: fmt.Sprintf("invalid UTF-8 byte %#02x", b[i])}
	}
	return errAt(i, fmt.Sprintf("invalid character %q, %s", r, want))
}

// scanValue scans the JSON value at b[i] and returns the offset after it.
// depth counts the arrays and objects that enclose it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, errAt(i, "unexpected end of input, want a value")
	}
	switch c := b[i]; {
	case c == '{':
		return scanObject(b, i, depth+1, nil)
	case c == '[':
		return scanArray(b, i, depth+1)
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return i, badChar(b, i, "want a value")
}

// scanObject scans the object at b[i] ('{'). When sp is not nil it records
// there the span of the object's "message" member when that is a string.
func scanObject(b []byte, i, depth int, sp *span) (int, error) {
	if depth > maxDepth {
		return i, errAt(i, "nested too deeply")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return i, errAt(i, "unexpected end of input, want an object key")
		}
		if b[i] != '"' {
			return i, badChar(b, i, "want an object key")
		}
		keyStart := i
		keyEnd, keyEscaped, err := scanString(b, i)
		if err != nil {
			return keyEnd, err
		}
		i = skipSpace(b, keyEnd)
		if i >= len(b) {
			return i, errAt(i, "unexpected end of input, want ':'")
		}
		if b[i] != ':' {
			return i, badChar(b, i, "want ':' after object key")
		}
		i = skipSpace(b, i+1)
		valStart := i
		if sp != nil && i < len(b) && isMessageKey(b[keyStart:keyEnd], keyEscaped) {
			sp.msgEnd = 0
			if b[i] == '"' {
				end, escaped, err := scanString(b, i)
				if err != nil {
					return end, err
				}
				sp.msgStart, sp.msgEnd, sp.msgEscaped = valStart, end, escaped
				i = end
			} else if i, err = scanValue(b, i, depth); err != nil {
				return i, err
			}
		} else if i, err = scanValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, errAt(i, "unexpected end of input, want ',' or '}'")
		}
		switch b[i] {
		case '}':
			return i + 1, nil
		case ',':
			i = skipSpace(b, i+1)
		default:
			return i, badChar(b, i, "want ',' or '}' after object member")
		}
	}
}

// isMessageKey reports whether the quoted key is "message".
func isMessageKey(quoted []byte, escaped bool) bool {
	if !escaped {
		return string(quoted) == `"message"`
	}
	if len(quoted) > 64 {
		return false
	}
	var buf [64]byte
	return string(appendUnquoted(buf[:0], quoted)) == "message"
}

func scanArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, errAt(i, "nested too deeply")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = scanValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, errAt(i, "unexpected end of input, want ',' or ']'")
		}
		switch b[i] {
		case ']':
			return i + 1, nil
		case ',':
			i = skipSpace(b, i+1)
		default:
			return i, badChar(b, i, "want ',' or ']' after array element")
		}
	}
}

// scanString scans the string at b[i] ('"') and returns the offset after
// its closing quote and whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i + 1, escaped, errAt(i+1, "unexpected end of input in string escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, escaped, errAt(k, "unexpected end of input in \\u escape")
					}
					if unhex(b[k]) < 0 {
						return k, escaped, badChar(b, k, "want a hexadecimal digit in \\u escape")
					}
				}
				i += 6
			default:
				return i + 1, escaped, badChar(b, i+1, "invalid escape in string")
			}
		case c < 0x20:
			return i, escaped, errAt(i, fmt.Sprintf("control character %#02x in string", c))
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, &syntaxError{off: i, utf8: true, msg: fmt.Sprintf("invalid UTF-8 byte %#02x in string", c)}
			}
			i += size
		}
	}
	return i, escaped, errAt(i, "unexpected end of input in string")
}

func scanNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, errAt(i, "unexpected end of input in number")
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, badChar(b, i, "want a digit in number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return scanNumberEnd(b, i, "want a digit after decimal point")
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return scanNumberEnd(b, i, "want a digit in exponent")
		}
		i = digits(b, i)
	}
	return i, nil
}

func scanNumberEnd(b []byte, i int, want string) (int, error) {
	if i >= len(b) {
		return i, errAt(i, "unexpected end of input in number")
	}
	return i, badChar(b, i, want)
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return i + k, errAt(i+k, "unexpected end of input in literal "+lit)
		}
		if b[i+k] != lit[k] {
			return i + k, badChar(b, i+k, "want literal "+lit)
		}
	}
	return i + len(lit), nil
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendUnquoted appends the text of quoted, a JSON string that scanString
// accepted, to dst. Lone surrogates become U+FFFD, as encoding/json does.
func appendUnquoted(dst, quoted []byte) []byte {
	dst, _ = jsontext.AppendUnescaped(dst, quoted[1:len(quoted)-1])
	return dst
}
