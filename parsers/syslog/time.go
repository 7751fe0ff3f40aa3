package syslog

import (
	"bytes"
	"time"
)

// parseRFC3339 parses a whole timestamp token. strict follows RFC 5424
// §6.2.3 (RFC 3339 §5.6 with at most 6 fraction digits and a mandatory
// offset); lenient also accepts a lower-case "t" or "z", up to 9 fraction
// digits, "+hhmm" and "+hh" offsets, and no offset at all (then the time is
// in loc). bad is -1 on success, else the index in b where the token
// stopped matching and what the name of the token expected there.
func parseRFC3339(b []byte, strict bool, loc *time.Location) (t time.Time, bad int, what string) {
	year, ok := digits(b, 0, 4)
	if !ok {
		return t, 0, "DATE-FULLYEAR"
	}
	if !at(b, 4, '-') {
		return t, 4, `"-" after DATE-FULLYEAR`
	}
	month, ok := digits(b, 5, 2)
	if !ok || month < 1 || month > 12 {
		return t, 5, "DATE-MONTH (01-12)"
	}
	if !at(b, 7, '-') {
		return t, 7, `"-" after DATE-MONTH`
	}
	day, ok := digits(b, 8, 2)
	if !ok || day < 1 || day > daysIn(month, year) {
		return t, 8, "DATE-MDAY"
	}
	if !at(b, 10, 'T') && (strict || !at(b, 10, 't')) {
		return t, 10, `"T"`
	}
	hour, ok := digits(b, 11, 2)
	if !ok || hour > 23 {
		return t, 11, "TIME-HOUR (00-23)"
	}
	if !at(b, 13, ':') {
		return t, 13, `":" after TIME-HOUR`
	}
	min, ok := digits(b, 14, 2)
	if !ok || min > 59 {
		return t, 14, "TIME-MINUTE (00-59)"
	}
	if !at(b, 16, ':') {
		return t, 16, `":" after TIME-MINUTE`
	}
	sec, ok := digits(b, 17, 2)
	if !ok || sec > 59 {
		return t, 17, "TIME-SECOND (00-59)"
	}
	i, ns := 19, 0
	if at(b, i, '.') {
		i++
		start := i
		for i < len(b) && isDigit(b[i]) {
			if i-start < 9 {
				ns = ns*10 + int(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return t, i, "TIME-SECFRAC digit"
		}
		if strict && n > 6 {
			return t, start + 6, "at most 6 TIME-SECFRAC digits"
		}
		for ; n < 9; n++ {
			ns *= 10
		}
	}
	if i == len(b) {
		if strict {
			return t, i, `TIME-OFFSET ("Z" or "+hh:mm")`
		}
		return time.Date(year, time.Month(month), day, hour, min, sec, ns, loc), -1, ""
	}
	offset := 0
	switch c := b[i]; {
	case c == 'Z' || (!strict && c == 'z'):
		i++
	case c == '+' || c == '-':
		oh, ok := digits(b, i+1, 2)
		if !ok || oh > 23 {
			return t, i + 1, "TIME-NUMOFFSET hours"
		}
		j := i + 3
		om := 0
		switch {
		case at(b, j, ':'):
			om, ok = digits(b, j+1, 2)
			j += 3
		case !strict && j+2 <= len(b):
			om, ok = digits(b, j, 2)
			j += 2
		case !strict:
			ok = true
		default:
			ok = false
		}
		if !ok || om > 59 {
			return t, i + 3, `":" and TIME-NUMOFFSET minutes`
		}
		offset = oh*3600 + om*60
		if c == '-' {
			offset = -offset
		}
		i = j
	default:
		return t, i, `TIME-OFFSET ("Z" or "+hh:mm")`
	}
	if i != len(b) {
		return t, i, "SP after TIMESTAMP"
	}
	t = time.Date(year, time.Month(month), day, hour, min, sec, ns, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t, -1, ""
}

// digits reads n decimal digits at b[i:].
func digits(b []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func at(b []byte, i int, c byte) bool { return i < len(b) && b[i] == c }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// months are the RFC 3164 §4.1.2 month abbreviations, lower case.
var months = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// month returns 1 to 12 for a three-letter month name in any case, else 0.
func month(b []byte) int {
	if len(b) < 3 {
		return 0
	}
	var m [3]byte
	for i := range m {
		m[i] = b[i] | 0x20
	}
	for i, name := range months {
		if string(m[:]) == name {
			return i + 1
		}
	}
	return 0
}

// looksLikeTimestamp says whether b starts the way an RFC 3164 or ISO 8601
// timestamp does ("YYYY-" or "Mmm "); parse3164Time decides.
func looksLikeTimestamp(b []byte) bool {
	if len(b) >= 5 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]) && b[4] == '-' {
		return true
	}
	return len(b) >= 4 && b[3] == ' ' && month(b) != 0
}

// parse3164Time reads the timestamp at the start of b: RFC 3164 §4.1.2
// "Mmm dd hh:mm:ss" (day space-padded, an optional fraction tolerated; the
// year is the one that puts the time closest to now, in p.loc), or an
// ISO 8601 / RFC 3339 timestamp as ESXi and NSX send after the PRI. n is
// the number of bytes read, 0 when b does not start with a timestamp.
func (p *Parser) parse3164Time(b []byte) (t time.Time, n int) {
	if len(b) >= 5 && isDigit(b[0]) && b[4] == '-' {
		end := bytes.IndexByte(b, ' ')
		if end < 0 {
			end = len(b)
		}
		t, bad, _ := parseRFC3339(b[:end], false, p.loc)
		if bad >= 0 {
			return time.Time{}, 0
		}
		return t.UTC(), end
	}
	mo := month(b)
	if mo == 0 || len(b) < 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, 0
	}
	var day int
	var ok bool
	if b[4] == ' ' {
		day, ok = digits(b, 5, 1)
	} else {
		day, ok = digits(b, 4, 2)
	}
	if !ok || day < 1 || day > 31 {
		return time.Time{}, 0
	}
	hour, ok1 := digits(b, 7, 2)
	min, ok2 := digits(b, 10, 2)
	sec, ok3 := digits(b, 13, 2)
	if !ok1 || !ok2 || !ok3 || hour > 23 || min > 59 || sec > 60 {
		return time.Time{}, 0
	}
	n, ns := 15, 0
	if at(b, n, '.') && n+1 < len(b) && isDigit(b[n+1]) {
		n++
		start := n
		for n < len(b) && isDigit(b[n]) {
			if n-start < 9 {
				ns = ns*10 + int(b[n]-'0')
			}
			n++
		}
		for k := n - start; k < 9; k++ {
			ns *= 10
		}
	}
	if n < len(b) && b[n] != ' ' {
		return time.Time{}, 0
	}
	t, ok = p.closestYear(mo, day, hour, min, sec, ns)
	if !ok {
		return time.Time{}, 0
	}
	return t.UTC(), n
}

// closestYear completes a year-less date with the year (now's, the one
// before or the one after) that puts it closest to now: December lines
// read in January belong to the previous year.
func (p *Parser) closestYear(mo, day, hour, min, sec, ns int) (time.Time, bool) {
	now := p.now().In(p.loc)
	y := now.Year()
	var best time.Time
	var bestDiff time.Duration
	found := false
	for yy := y - 1; yy <= y+1; yy++ {
		if day > daysIn(mo, yy) {
			continue
		}
		t := time.Date(yy, time.Month(mo), day, hour, min, sec, ns, p.loc)
		d := t.Sub(now)
		if d < 0 {
			d = -d
		}
		if !found || d < bestDiff {
			best, bestDiff, found = t, d, true
		}
	}
	return best, found
}
