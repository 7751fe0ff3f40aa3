package nsxfw

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
