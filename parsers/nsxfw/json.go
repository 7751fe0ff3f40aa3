package nsxfw

import (
	"unicode/utf16"
	"unicode/utf8"
)

// member is one member of a flat JSON object: key and string values are
// raw (escapes kept, quotes removed), other values as printed.
type member struct {
	key, val []byte
	str      bool
}

// scanObject reads a JSON object whose values are scalars (RFC 8259) into
// out, up to len(out) members (the rest are checked and dropped). ok is
// false when b is not such an object.
func scanObject(b []byte, out []member) (n int, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return 0, skipWS(b, i+1) == len(b)
	}
	for {
		var key []byte
		if key, i, ok = jsonString(b, i); !ok {
			return n, false
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return n, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return n, false
		}
		var m member
		m.key = key
		if b[i] == '"' {
			if m.val, i, ok = jsonString(b, i); !ok {
				return n, false
			}
			m.str = true
		} else {
			s := i
			for i < len(b) && isScalarByte(b[i]) {
				i++
			}
			if i == s {
				return n, false
			}
			m.val = b[s:i]
		}
		if n < len(out) {
			out[n] = m
			n++
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return n, false
		}
		if b[i] == '}' {
			return n, skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return n, false
		}
		i = skipWS(b, i+1)
	}
}

func isScalarByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '+' || c == '.'
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonString returns the raw content of the string starting at b[i] == '"'
// and the index after its closing quote.
func jsonString(b []byte, i int) (raw []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	s := i + 1
	for j := s; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			j++
		case c == '"':
			return b[s:j], j + 1, true
		case c < 0x20:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

// appendUnescaped appends the JSON string content raw, unescaped, to dst.
// ok is false on an invalid escape.
func appendUnescaped(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, false
		}
		switch raw[i] {
		case '"', '\\', '/':
			dst = append(dst, raw[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw, i+1)
			if !ok {
				return dst, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(raw, i+3); ok && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
