package velocloud

import "github.com/vpipe/vpipe/pipeline/jsontext"

// member is one member of a JSON object: key and string values raw (escapes
// kept, quotes removed), other values as printed.
type member struct {
	key, val []byte
	kind     byte // '"' string, '{' object, '[' array, 'n' null, 't'/'f' bool, '0' number
	keyEsc   bool
	valEsc   bool
	off      int // offset of the value in the object text
}

// scanner reads RFC 8259 JSON without allocating.
type scanner struct {
	b   []byte
	i   int
	err string // what was expected at i
}

func (s *scanner) fail(want string) bool {
	if s.err == "" {
		s.err = want
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// strSpecial marks the bytes that end a plain run inside a string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str reads a string at s.i and returns its raw content.
func (s *scanner) str() (raw []byte, esc, ok bool) {
	b := s.b
	if s.i >= len(b) || b[s.i] != '"' {
		return nil, false, s.fail("string")
	}
	start := s.i + 1
	for j := start; j < len(b); j++ {
		if !strSpecial[b[j]] {
			continue
		}
		switch c := b[j]; {
		case c == '"':
			s.i = j + 1
			return b[start:j], esc, true
		case c == '\\':
			esc = true
			j++
			if j >= len(b) {
				break
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := jsontext.Hex4(b, j+1); !ok {
					s.i = j
					return nil, false, s.fail("4 hex digits after \\u")
				}
				j += 4
			default:
				s.i = j
				return nil, false, s.fail("an escape character")
			}
		default:
			s.i = j
			return nil, false, s.fail("no control character in string")
		}
	}
	s.i = len(b)
	return nil, false, s.fail(`'"' closing the string`)
}

// value reads any value at s.i. For strings raw is the content; for the
// others it is the value's text. Nested values are checked for balance and
// well-formed strings and scalars.
func (s *scanner) value() (raw []byte, kind byte, esc, ok bool) {
	s.ws()
	if s.i < len(s.b) && (s.b[s.i] == '{' || s.b[s.i] == '[') {
		start, c := s.i, s.b[s.i]
		if !s.nested() {
			return nil, 0, false, false
		}
		return s.b[start:s.i], c, false, true
	}
	return s.scalar()
}

// scalar reads a string, number or literal at s.i.
func (s *scanner) scalar() (raw []byte, kind byte, esc, ok bool) {
	if s.i >= len(s.b) {
		return nil, 0, false, s.fail("value")
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		raw, esc, ok = s.str()
		return raw, '"', esc, ok
	case c == 'n' || c == 't' || c == 'f':
		for _, lit := range [...]string{"null", "true", "false"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return s.b[start:s.i], c, false, true
			}
		}
		return nil, 0, false, s.fail("value")
	case c == '-' || '0' <= c && c <= '9':
		if !s.number() {
			return nil, 0, false, false
		}
		return s.b[start:s.i], '0', false, true
	}
	return nil, 0, false, s.fail("value")
}

// number reads an RFC 8259 number.
func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		s.i = i
		return s.fail("digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			s.i = i
			return s.fail("digit after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			s.i = i
			return s.fail("exponent digits")
		}
	}
	s.i = i
	return true
}

// nested reads an object or array, iteratively (no recursion, so hostile
// nesting cannot grow the stack), checking brackets, strings and scalars.
func (s *scanner) nested() bool {
	var stack [64]byte // the closer each open level expects
	depth := 0
	for {
		// At a value.
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("value")
		}
		if c := s.b[s.i]; c == '{' || c == '[' {
			if depth == len(stack) {
				return s.fail("nesting of at most 64 levels")
			}
			s.i++
			closer := byte(']')
			if c == '{' {
				closer = '}'
			}
			stack[depth] = closer
			depth++
			s.ws()
			if s.i < len(s.b) && s.b[s.i] == closer {
				s.i++
				depth--
			} else {
				if closer == '}' && !s.key() {
					return false
				}
				continue
			}
		} else if _, _, _, ok := s.scalar(); !ok {
			return false
		}
		// After a value: commas and closers.
		for {
			if depth == 0 {
				return true
			}
			s.ws()
			if s.i >= len(s.b) {
				return s.fail("',' or a closing bracket")
			}
			c := s.b[s.i]
			if c == ',' {
				s.i++
				if stack[depth-1] == '}' && !s.key() {
					return false
				}
				break
			}
			if c != stack[depth-1] {
				return s.fail("',' or a closing bracket")
			}
			s.i++
			depth--
		}
	}
}

// key reads an object key and its ':'.
func (s *scanner) key() bool {
	s.ws()
	if _, _, ok := s.str(); !ok {
		return false
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return s.fail("':'")
	}
	s.i++
	return true
}

// appendCompact appends JSON text b (already checked) without the
// whitespace outside strings.
func appendCompact(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return append(dst, b[i:]...)
			}
			dst = append(dst, b[i:j+1]...)
			i = j + 1
			continue
		}
		dst = append(dst, c)
		i++
	}
	return dst
}
