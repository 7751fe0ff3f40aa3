package nsxfw

import (
	"bytes"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// header is what may precede a DFW body when the syslog envelope parser did
// not consume it: a header-less local-file line, the text inside the VMC
// wrapper, a relay that kept the file line inside its own message. The
// forms seen (formats.md §1 and §7, pitfall 1):
//
//	2018-07-03T19:44:09.749Z b6507827 INET ...
//	2026-03-03T00:02:11.678Z No(13) FIREWALL-PKTLOG[1069031]: 8b4a1980 INET ...
//	<99>2020-05-15T09:08:27.965Z ip-10-23-254-72... FIREWALL_PKTLOG: f2c65dd5 INET ...
//	2017-04-11T21:09:59.877Z ESXi_FQDN dfwpktlogs: 50047 INET ...
//	Jan 27 16:42:13 ORIGINNAME dfwpktlogs: PASS, ...   (NSX-V relay CSV)
type header struct {
	ts    time.Time
	hasTS bool
	pri   int // -1: none
	host  []byte
	tag   []byte
	pid   []byte
}

// splitHeader finds the body in b. The body starts at the filter hash or
// the address family, or, when csv is set, right after a tag. ok is false
// when b does not have that shape within its first few tokens.
func splitHeader(b []byte, csv bool) (h header, body []byte, ok bool) {
	h.pri = -1
	i := 0
	if len(b) > 0 && b[0] == '<' {
		j, n := 1, 0
		for j < len(b) && j <= 3 && '0' <= b[j] && b[j] <= '9' {
			n = n*10 + int(b[j]-'0')
			j++
		}
		if j == 1 || j >= len(b) || b[j] != '>' || n > 191 {
			return h, nil, false
		}
		h.pri, i = n, j+1
	}
	for k := 0; k < 6; k++ {
		s, e := token(b, i)
		if s == e {
			return h, nil, false
		}
		t := b[s:e]
		if isAF(t) {
			return h, b[s:], true
		}
		if isHash(t) {
			if s2, e2 := token(b, e); isAF(b[s2:e2]) {
				return h, b[s:], true
			}
		}
		switch {
		case k == 0 && len(t) >= 19 && t[4] == '-' && t[10] == 'T':
			var ok bool
			if h.ts, ok = parseISO(t); !ok {
				return h, nil, false
			}
			h.hasTS = true
		case k == 0 && isMonth(t):
			// RFC 3164 "Mmm dd hh:mm:ss": no year, so the envelope
			// parser's choice is kept; skip it.
			_, e = token(b, e)
			_, e = token(b, e)
		case isMarker(t):
			// ESXi 8 severity marker "No(13)" = PRI 13 (KB 431735).
			if h.pri < 0 {
				h.pri = markerPRI(t)
			}
		case t[len(t)-1] == ':' && h.tag == nil:
			name := t[:len(t)-1]
			if p := bytes.IndexByte(name, '['); p > 0 && name[len(name)-1] == ']' {
				h.pid = name[p+1 : len(name)-1]
				name = name[:p]
			}
			if len(name) == 0 {
				return h, nil, false
			}
			h.tag = name
			if csv {
				s2, _ := token(b, e)
				return h, b[s2:], true
			}
		case h.host == nil && h.tag == nil:
			h.host = t
		default:
			return h, nil, false
		}
		i = e
	}
	return h, nil, false
}

// apply fills the envelope fields the syslog parser left empty from the
// header. The record's own timestamp wins over the envelope's: it is when
// the packet was logged, the envelope's is when a relay sent it.
func (h *header) apply(e *pipeline.Event) {
	if h.hasTS {
		e.Timestamp = h.ts
	}
	if h.pri >= 0 && !e.Syslog.PriorityValid {
		e.Syslog.PriorityValid = true
		e.Syslog.Priority = uint8(h.pri)
		e.Syslog.Facility = uint8(h.pri >> 3)
		e.Syslog.Severity = uint8(h.pri & 7)
	}
	if len(h.host) > 0 && e.Syslog.Hostname == "" {
		e.Syslog.Hostname = e.Alias(h.host)
	}
	if e.Observer.Hostname == "" {
		e.Observer.Hostname = e.Syslog.Hostname
	}
	if len(h.tag) > 0 && e.Syslog.AppName == "" {
		e.Syslog.AppName = e.Alias(h.tag)
		e.Syslog.ProcID = e.Alias(h.pid)
	}
}

// isMarker matches the ESXi 8 severity marker: two letters, "(", a
// priority, ")", e.g. "No(13)", "In(14)", "Wa(12)".
func isMarker(t []byte) bool {
	if len(t) < 5 || len(t) > 7 || t[2] != '(' || t[len(t)-1] != ')' {
		return false
	}
	if !('A' <= t[0] && t[0] <= 'Z' && 'a' <= t[1] && t[1] <= 'z') {
		return false
	}
	return allDigits(t[3:len(t)-1]) && markerPRI(t) <= 191
}

func markerPRI(t []byte) int {
	n := 0
	for _, c := range t[3 : len(t)-1] {
		n = n*10 + int(c-'0')
	}
	return n
}

func isMonth(t []byte) bool {
	if len(t) != 3 {
		return false
	}
	switch string(t) {
	case "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec":
		return true
	}
	return false
}

// parseISO parses "YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm|±hhmm]" (no offset
// means UTC, as ESXi writes its local files in UTC) into UTC. It allocates
// nothing, unlike time.Parse with an offset.
func parseISO(t []byte) (time.Time, bool) {
	if len(t) < 19 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range t[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if i < len(t) && (t[i] == '.' || t[i] == ',') {
		i++
		digits, scale := 0, 100000000
		for i < len(t) && '0' <= t[i] && t[i] <= '9' {
			if digits < 9 {
				nsec += int(t[i]-'0') * scale
				scale /= 10
			}
			digits++
			i++
		}
		if digits == 0 {
			return time.Time{}, false
		}
	}
	offset := 0
	switch {
	case i == len(t):
	case t[i] == 'Z' || t[i] == 'z':
		i++
	case t[i] == '+' || t[i] == '-':
		sign := 1
		if t[i] == '-' {
			sign = -1
		}
		rest := t[i+1:]
		var h, m int
		var ok bool
		switch {
		case len(rest) == 5 && rest[2] == ':':
			h, ok = num(i+1, 2)
			if ok {
				m, ok = num(i+4, 2)
			}
		case len(rest) == 4:
			h, ok = num(i+1, 2)
			if ok {
				m, ok = num(i+3, 2)
			}
		}
		if !ok || h > 23 || m > 59 {
			return time.Time{}, false
		}
		offset = sign * (h*3600 + m*60)
		i = len(t)
	default:
		return time.Time{}, false
	}
	if i != len(t) {
		return time.Time{}, false
	}
	ts := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if ts.Day() != day {
		return time.Time{}, false
	}
	ts = ts.Add(-time.Duration(offset) * time.Second)
	if y := ts.Year(); y < 1 || y > 9999 {
		// Not writable as RFC 3339 in @timestamp.
		return time.Time{}, false
	}
	return ts, true
}
