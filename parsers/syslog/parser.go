package syslog

import (
	"bytes"
	"strconv"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// Options configures a Parser. The zero value is usable.
type Options struct {
	// Location is the time zone of RFC 3164 timestamps that carry none
	// ("Mmm dd hh:mm:ss", or ISO 8601 without an offset). nil means UTC.
	Location *time.Location
	// Now supplies the current time, used to choose the year that RFC 3164
	// timestamps lack. nil means time.Now. It must be safe for concurrent
	// use.
	Now func() time.Time
}

// Parser parses the syslog envelope of a record (RFC 5424 or RFC 3164). It
// holds only its options, so one Parser is safe for concurrent use on
// distinct events.
type Parser struct {
	loc *time.Location
	now func() time.Time
}

// NewParser returns a Parser with opts.
func NewParser(opts Options) *Parser {
	p := &Parser{loc: opts.Location, now: opts.Now}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Parse parses e.Original as RFC 5424 or RFC 3164, auto-detected ("<PRI>1 "
// starts RFC 5424), and fills e.Timestamp (UTC), e.Syslog and
// e.Observer.Hostname (the syslog HOSTNAME). It returns the MSG part as a
// subslice of e.Original, with a leading UTF-8 BOM stripped and trailing CR,
// LF and NUL bytes trimmed.
//
// RFC 5424 is validated: the first violation is reported in e.Error as
// "syslog: expected <token> at byte N" and the rest of the record is read
// leniently, so the fields parsed before and after the fault are kept.
// RFC 3164 is read best effort (see the package documentation).
//
// When the record is not syslog at all (neither a PRI nor a leading
// timestamp), Parse sets e.Error ("syslog: expected ... at byte 0") and
// returns the whole trimmed record, so that format parsers can still
// recognise header-less lines; a caller whose format parser then accepts
// the line may clear e.Error.
//
// Every string set aliases e.Original, except structured-data values that
// contained escapes, which are unescaped into e's scratch space (Intern).
// Parse does not allocate once e's buffers have grown, and never panics.
func (p *Parser) Parse(e *pipeline.Event) (msg []byte) {
	st := state{p: p, e: e, b: trimTrailer(e.Original)}
	return st.parse()
}

// state is one Parse call.
type state struct {
	p      *Parser
	e      *pipeline.Event
	b      []byte
	failed bool // an error was recorded
}

// fail records the first problem of this record in e.Error, as
// "syslog: expected <what> at byte <off>". It does not allocate beyond e's
// scratch space.
func (st *state) fail(what string, off int) {
	if st.failed {
		return
	}
	st.failed = true
	var buf [128]byte
	b := append(buf[:0], "syslog: expected "...)
	b = append(b, what...)
	b = append(b, " at byte "...)
	b = strconv.AppendInt(b, int64(off), 10)
	if st.e.Error != "" {
		b2 := make([]byte, 0, len(st.e.Error)+2+len(b))
		b2 = append(b2, st.e.Error...)
		b2 = append(b2, "; "...)
		b = append(b2, b...)
	}
	st.e.Error = st.e.Intern(b)
}

func (st *state) parse() []byte {
	b := st.b
	if len(b) == 0 {
		st.fail("a syslog record, got an empty one,", 0)
		return b
	}
	if b[0] != '<' {
		// No PRI: a local-file line or a relay that dropped it. Read it as
		// RFC 3164 only when it starts with a timestamp.
		if looksLikeTimestamp(b) {
			return st.parse3164(0, false)
		}
		st.fail(`"<" (PRI) or a timestamp`, 0)
		return b
	}
	// RFC 5424 §6.2.1, RFC 3164 §4.1.1: PRI = "<" PRIVAL ">", PRIVAL is
	// 1 to 3 digits with a value of 0 to 191.
	i, pri := 1, 0
	for i < len(b) && i <= 3 && isDigit(b[i]) {
		pri = pri*10 + int(b[i]-'0')
		i++
	}
	if i == 1 || i >= len(b) || b[i] != '>' || pri > 191 {
		if i == 1 || pri > 191 {
			st.fail("PRIVAL (0 to 191)", 1)
		} else {
			st.fail(`">" after PRIVAL`, i)
		}
		return b
	}
	i++
	st.setPriority(pri)
	// RFC 5424 §6.2.2: VERSION = NONZERO-DIGIT 0*2DIGIT, then SP. RFC 3164
	// never has digits followed by SP after the PRI (its timestamps start
	// with a month name, and ISO 8601 timestamps with "YYYY-").
	j := i
	for j < len(b) && j-i < 3 && isDigit(b[j]) {
		j++
	}
	if j > i && b[i] != '0' && j < len(b) && b[j] == ' ' {
		return st.parse5424(i, j)
	}
	return st.parse3164(i, true)
}

func (st *state) setPriority(pri int) {
	s := &st.e.Syslog
	s.PriorityValid = true
	s.Priority = uint8(pri)
	s.Facility = uint8(pri >> 3)
	s.Severity = uint8(pri & 7)
}

// parse5424 reads an RFC 5424 §6 record whose VERSION is b[vstart:vend].
func (st *state) parse5424(vstart, vend int) []byte {
	b, e := st.b, st.e
	v := 0
	for _, c := range b[vstart:vend] {
		v = v*10 + int(c-'0')
	}
	if v != 1 {
		st.fail("VERSION 1", vstart)
	}
	if v > 255 {
		v = 255
	}
	e.Syslog.Version = uint8(v)
	i := vend + 1

	// TIMESTAMP (§6.2.3).
	tok, next, ok := st.token(i, "TIMESTAMP")
	if !ok {
		return b[len(b):]
	}
	if !isNil(tok) {
		t, bad, what := parseRFC3339(tok, true, time.UTC)
		if bad >= 0 {
			st.fail(what, i+bad)
			// Lenient: a missing offset, a longer fraction, ...
			t, bad, _ = parseRFC3339(tok, false, st.p.loc)
		}
		if bad < 0 {
			e.Timestamp = t.UTC()
		}
	}
	i = next

	// HOSTNAME, APP-NAME, PROCID, MSGID (§6.2.4 to §6.2.7): NILVALUE or
	// 1*n PRINTUSASCII.
	fields := [...]struct {
		name string
		max  int
		dst  *string
	}{
		{"HOSTNAME", 255, &e.Syslog.Hostname},
		{"APP-NAME", 48, &e.Syslog.AppName},
		{"PROCID", 128, &e.Syslog.ProcID},
		{"MSGID", 32, &e.Syslog.MsgID},
	}
	for k := range fields {
		f := &fields[k]
		tok, next, ok := st.token(i, f.name)
		if !ok {
			e.Observer.Hostname = e.Syslog.Hostname
			return b[len(b):]
		}
		if !isNil(tok) {
			if len(tok) > f.max {
				st.fail(f.name+" of at most "+strconv.Itoa(f.max)+" characters", i+f.max)
			}
			for n, c := range tok {
				if c < 33 || c > 126 {
					st.fail("PRINTUSASCII in "+f.name, i+n)
					break
				}
			}
			*f.dst = e.Alias(tok)
		}
		i = next
	}
	e.Observer.Hostname = e.Syslog.Hostname

	// STRUCTURED-DATA (§6.3).
	if i >= len(b) {
		st.fail("STRUCTURED-DATA", i)
		return b[i:]
	}
	switch b[i] {
	case '-':
		i++
	case '[':
		var ok bool
		i, ok = st.parseSD(i)
		if !ok {
			return stripBOM(b[i:])
		}
	default:
		st.fail(`STRUCTURED-DATA ("-" or "[")`, i)
		return stripBOM(b[i:])
	}

	// MSG (§6.4): optional, after SP; MSG-UTF8 starts with a BOM.
	if i >= len(b) {
		return b[i:]
	}
	if b[i] != ' ' {
		st.fail("SP after STRUCTURED-DATA", i)
		return stripBOM(b[i:])
	}
	return stripBOM(b[i+1:])
}

// token returns the header field that starts at b[i] and the index after
// the SP that ends it. ok is false when the record ends before the field
// or right after it (every header field is followed by another one).
func (st *state) token(i int, name string) (tok []byte, next int, ok bool) {
	b := st.b
	if i >= len(b) {
		st.fail(name, i)
		return nil, i, false
	}
	end := bytes.IndexByte(b[i:], ' ')
	if end < 0 {
		st.fail("SP after "+name, len(b))
		return nil, len(b), false
	}
	if end == 0 {
		// Two spaces: an empty field, read as NILVALUE.
		st.fail(name, i)
	}
	return b[i : i+end], i + end + 1, true
}

func isNil(tok []byte) bool { return len(tok) == 0 || (len(tok) == 1 && tok[0] == '-') }

// parseSD reads one or more SD-ELEMENTs starting at b[i] == '['
// (RFC 5424 §6.3.1 to §6.3.3). It returns the index after the last element.
// On a malformed element it records the error, drops that element (keeping
// those before it) and returns the element's start with ok false, so that
// the caller keeps the rest as the message.
func (st *state) parseSD(i int) (next int, ok bool) {
	b, e := st.b, st.e
	sd := e.Syslog.StructuredData
	for i < len(b) && b[i] == '[' {
		start := i
		keep := len(sd)
		i++
		// SD-ID = SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']' and '"'.
		n := sdName(b[i:])
		if n == 0 {
			st.fail("SD-ID", i)
			e.Syslog.StructuredData = sd[:keep]
			return start, false
		}
		if n > 32 {
			st.fail("SD-ID of at most 32 characters", i+32)
		}
		id := e.Alias(b[i : i+n])
		i += n
		if len(sd) < cap(sd) {
			sd = sd[:len(sd)+1]
			el := &sd[len(sd)-1]
			el.ID = id
			el.Params = el.Params[:0]
		} else {
			sd = append(sd, pipeline.SDElement{ID: id})
		}
		el := &sd[len(sd)-1]
		for {
			if i >= len(b) {
				st.fail(`"]" closing SD-ELEMENT`, i)
				e.Syslog.StructuredData = sd[:keep]
				return start, false
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ' ' {
				st.fail(`SP or "]" in SD-ELEMENT`, i)
				e.Syslog.StructuredData = sd[:keep]
				return start, false
			}
			i++
			// SD-PARAM = PARAM-NAME "=" %d34 PARAM-VALUE %d34
			n := sdName(b[i:])
			if n == 0 {
				st.fail("PARAM-NAME", i)
				e.Syslog.StructuredData = sd[:keep]
				return start, false
			}
			if n > 32 {
				st.fail("PARAM-NAME of at most 32 characters", i+32)
			}
			name := e.Alias(b[i : i+n])
			i += n
			if i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
				if i < len(b) && b[i] == '=' {
					i++
				}
				st.fail(`"=" and '"' after PARAM-NAME`, i)
				e.Syslog.StructuredData = sd[:keep]
				return start, false
			}
			i += 2
			value, end, ok := st.paramValue(i)
			if !ok {
				st.fail(`'"' closing PARAM-VALUE`, end)
				e.Syslog.StructuredData = sd[:keep]
				return start, false
			}
			i = end + 1
			el.Params = append(el.Params, pipeline.SDParam{Name: name, Value: value})
		}
	}
	e.Syslog.StructuredData = sd
	return i, true
}

// sdName returns the length of the SD-NAME at the start of b.
func sdName(b []byte) int {
	for n, c := range b {
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			return n
		}
	}
	return len(b)
}

// paramValue reads a PARAM-VALUE starting at b[i] up to its closing quote
// at b[end]. RFC 5424 §6.3.3: inside it '"', '\' and ']' are escaped with
// '\'; a '\' before any other character is kept as is.
func (st *state) paramValue(i int) (value string, end int, ok bool) {
	b, e := st.b, st.e
	q := bytes.IndexByte(b[i:], '"')
	if q < 0 {
		return "", len(b), false
	}
	if bytes.IndexByte(b[i:i+q], '\\') < 0 {
		return e.Alias(b[i : i+q]), i + q, true
	}
	// Find the closing quote, skipping escaped characters.
	j := i
	for {
		if j >= len(b) {
			return "", len(b), false
		}
		c := b[j]
		if c == '"' {
			break
		}
		if c == '\\' && j+1 < len(b) {
			j += 2
			continue
		}
		j++
	}
	raw := b[i:j]
	var small [256]byte
	var out []byte
	if len(raw) <= len(small) {
		out = small[:0]
	} else {
		out = make([]byte, 0, len(raw))
	}
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if c == '\\' && k+1 < len(raw) {
			switch raw[k+1] {
			case '"', '\\', ']':
				out = append(out, raw[k+1])
				k++
				continue
			}
		}
		out = append(out, c)
	}
	return e.Intern(out), j, true
}

// parse3164 reads an RFC 3164 §4.1 record (best effort) from b[i:], i
// being after the PRI when hasPRI.
func (st *state) parse3164(i int, hasPRI bool) []byte {
	b, e := st.b, st.e
	e.Syslog.Version = 0
	t, n := st.p.parse3164Time(b[i:])
	hasTime := n > 0
	if hasTime {
		e.Timestamp = t
		i += n
		for i < len(b) && b[i] == ' ' {
			i++
		}
	} else if !hasPRI {
		st.fail(`"<" (PRI) or a timestamp`, 0)
		return b
	}

	// HOSTNAME and TAG (§4.1.2, §4.1.3). Neither can be told apart from
	// message text with certainty; see the package documentation.
	tok1, next1 := word(b, i)
	if st.severityMarker(tok1) {
		i = next1
		tok1, next1 = word(b, i)
	}
	if st.tag(tok1) {
		return stripBOM(b[next1:])
	}
	if hasTime {
		tok2, next2 := word(b, next1)
		j := next1
		if st.severityMarker(tok2) {
			j = next2
			tok2, next2 = word(b, j)
		}
		if st.tag(tok2) {
			st.setHost(tok1)
			return stripBOM(b[next2:])
		}
		if !hasPRI && len(tok1) > 0 {
			if msg, ok := st.headerless5424(i); ok {
				return msg
			}
		}
		if hasPRI && len(tok1) > 0 {
			// §4.1.2: a HEADER is TIMESTAMP SP HOSTNAME SP.
			st.setHost(tok1)
			return stripBOM(b[j:])
		}
	}
	return stripBOM(b[i:])
}

// headerless5424 reads the rest of an RFC 5424 header from b[i:] for a
// record that lost its "<PRI>VERSION " (the NSX Edge writes its local files
// that way): HOSTNAME APP-NAME PROCID MSGID, then SD-ELEMENTs. It only
// accepts when the fifth word starts valid structured data, and then sets
// the fields; otherwise it changes nothing.
func (st *state) headerless5424(i int) (msg []byte, ok bool) {
	b, e := st.b, st.e
	var w [4][]byte
	for k := range w {
		w[k], i = word(b, i)
		if len(w[k]) == 0 || i >= len(b) {
			return nil, false
		}
	}
	if b[i] != '[' {
		return nil, false
	}
	failed, prevErr := st.failed, e.Error
	next, ok := st.parseSD(i)
	if !ok {
		st.failed, e.Error = failed, prevErr
		e.Syslog.StructuredData = e.Syslog.StructuredData[:0]
		return nil, false
	}
	st.setHost(w[0])
	e.Syslog.AppName = e.Alias(w[1])
	if !isNil(w[2]) {
		e.Syslog.ProcID = e.Alias(w[2])
	}
	if !isNil(w[3]) {
		e.Syslog.MsgID = e.Alias(w[3])
	}
	if next < len(b) && b[next] == ' ' {
		next++
	}
	return stripBOM(b[next:]), true
}

func (st *state) setHost(h []byte) {
	st.e.Syslog.Hostname = st.e.Alias(h)
	st.e.Observer.Hostname = st.e.Syslog.Hostname
}

// word returns the space-delimited word at b[i:] and the index of the next
// word (after one SP).
func word(b []byte, i int) (w []byte, next int) {
	if i >= len(b) {
		return nil, len(b)
	}
	end := bytes.IndexByte(b[i:], ' ')
	if end < 0 {
		return b[i:], len(b)
	}
	return b[i : i+end], i + end + 1
}

// tag recognises an RFC 3164 TAG word, "name:", "name[pid]:" or
// "name[pid]", and sets AppName and ProcID from it.
func (st *state) tag(w []byte) bool {
	if len(w) < 2 || len(w) > 160 {
		return false
	}
	colon := w[len(w)-1] == ':'
	if colon {
		w = w[:len(w)-1]
	}
	name, pid := w, []byte(nil)
	if w[len(w)-1] == ']' {
		open := bytes.IndexByte(w, '[')
		if open <= 0 {
			return false
		}
		name, pid = w[:open], w[open+1:len(w)-1]
		if len(pid) == 0 || bytes.IndexByte(pid, '[') >= 0 || bytes.IndexByte(pid, ']') >= 0 {
			return false
		}
	} else if !colon {
		return false
	}
	if len(name) == 0 || len(name) > 64 || bytes.IndexByte(name, ':') >= 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 || c == '[' || c == ']' {
			return false
		}
	}
	st.e.Syslog.AppName = st.e.Alias(name)
	st.e.Syslog.ProcID = st.e.Alias(pid)
	return true
}

// severityMarker recognises the ESXi 8 marker written before the tag in its
// local log files, e.g. "No(13)" or "In(166)": a two-letter severity and
// the PRI value. When the record had no PRI, the marker's value sets it.
func (st *state) severityMarker(w []byte) bool {
	if len(w) < 5 || len(w) > 7 || w[2] != '(' || w[len(w)-1] != ')' ||
		w[0] < 'A' || w[0] > 'Z' || w[1] < 'a' || w[1] > 'z' {
		return false
	}
	v := 0
	for _, c := range w[3 : len(w)-1] {
		if !isDigit(c) {
			return false
		}
		v = v*10 + int(c-'0')
	}
	if v > 191 {
		return false
	}
	if !st.e.Syslog.PriorityValid {
		st.setPriority(v)
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// trimTrailer drops trailing CR, LF and NUL bytes (framing leftovers).
func trimTrailer(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\r', '\n', 0:
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// stripBOM drops a leading UTF-8 byte order mark (RFC 5424 §6.4 MSG-UTF8).
func stripBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}
