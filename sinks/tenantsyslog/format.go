package tenantsyslog

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/tenants"
)

// Formats of the messages sent to a destination.
const (
	FormatRFC5424 = "rfc5424" // RFC 5424 with an SD element of the parsed fields
	FormatRFC3164 = "rfc3164" // BSD syslog
	FormatJSON    = "json"    // the event as ECS JSON (README, "Event schema"), one a line
)

// Framings of a stream destination (RFC 6587).
const (
	FramingOctetCounting = "octet-counting" // "<length> <message>" (§3.4.1; RFC 5425 for TLS)
	FramingNewline       = "newline"        // message + LF (§3.4.2); LFs inside become spaces
)

// defaultPRI is used when the event had no syslog priority: user.notice.
const defaultPRI = 13

// formatter renders an event for one destination. It is immutable.
type formatter struct {
	format   string
	newline  bool // LF ends a frame: none may appear inside
	sdid     string
	maxBytes int
	// The tenant the destination belongs to, written into the message;
	// empty for the catch-all.
	tenantID, tenantName string
}

func newFormatter(d tenants.Destination, tenantID, tenantName string) (*formatter, error) {
	f := &formatter{
		format: d.Format, sdid: d.SDID, maxBytes: d.MaxMessageBytes,
		newline:  d.Transport != "udp" && d.Framing == FramingNewline,
		tenantID: tenantID, tenantName: tenantName,
	}
	switch f.format {
	case "":
		f.format = FormatRFC5424
	case FormatRFC5424, FormatRFC3164, FormatJSON:
	default:
		return nil, fmt.Errorf("format %q: want rfc5424, rfc3164 or json", d.Format)
	}
	if f.sdid == "" {
		f.sdid = "vpipe@32473"
	}
	if f.maxBytes <= 0 {
		f.maxBytes = 1 << 20
	}
	return f, nil
}

// appendMessage appends ev's message (without transport framing) to dst.
// msg is the syslog MSG part of ev.Original. truncated reports that the
// message was cut to maxBytes.
func (f *formatter) appendMessage(dst []byte, ev *pipeline.Event, msg []byte) (_ []byte, truncated bool) {
	start := len(dst)
	switch f.format {
	case FormatJSON:
		cp := *ev
		if f.tenantID != "" {
			cp.Organization = pipeline.Organization{ID: f.tenantID, Name: f.tenantName}
		}
		dst = cp.AppendJSON(dst)
	case FormatRFC3164:
		dst = f.append3164(dst, ev, msg)
	default:
		dst = f.append5424(dst, ev, msg)
	}
	if f.newline {
		for i := start; i < len(dst); i++ {
			if dst[i] == '\n' {
				dst[i] = ' '
			}
		}
	}
	if len(dst)-start > f.maxBytes {
		end := start + f.maxBytes
		// Do not leave half a UTF-8 sequence at the end.
		for end > start && !utf8.RuneStart(dst[end]) {
			end--
		}
		return dst[:end], true
	}
	return dst, false
}

func priority(ev *pipeline.Event) int {
	if ev.Syslog.PriorityValid {
		return int(ev.Syslog.Priority)
	}
	return defaultPRI
}

// append5424 writes RFC 5424 (§6): the original header fields, an
// SD-ELEMENT f.sdid carrying the parsed fields, the original SD-ELEMENTs,
// and the original MSG.
func (f *formatter) append5424(dst []byte, ev *pipeline.Event, msg []byte) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(priority(ev)), 10)
	dst = append(dst, ">1 "...)
	dst = appendTimestamp(dst, ev.Time())
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, hostname(ev), 255)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.Syslog.AppName, 48)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.Syslog.ProcID, 128)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, ev.Syslog.MsgID, 32)
	dst = append(dst, ' ', '[')
	dst = append(dst, f.sdid...)
	dst = f.appendFields(dst, ev)
	dst = append(dst, ']')
	for i := range ev.Syslog.StructuredData {
		el := &ev.Syslog.StructuredData[i]
		if !validSDName(el.ID) {
			continue
		}
		dst = append(dst, '[')
		dst = append(dst, el.ID...)
		for _, p := range el.Params {
			if validSDName(p.Name) {
				dst = appendParam(dst, p.Name, p.Value)
			}
		}
		dst = append(dst, ']')
	}
	if len(msg) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, msg...)
	}
	return dst
}

// appendTimestamp writes an RFC 5424 TIMESTAMP in UTC with microseconds
// (RFC 5424 §6.2.3 allows at most six fraction digits), "-" for a zero or
// out-of-range time. It is time.Time.AppendFormat's output, faster.
func appendTimestamp(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, '-')
	}
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return append(dst, '-')
	}
	hour, min, sec := t.Clock()
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	dst = append2(dst, int(month), '-')
	dst = append2(dst, day, 'T')
	dst = append2(dst, hour, ':')
	dst = append2(dst, min, ':')
	dst = append2(dst, sec, '.')
	us := t.Nanosecond() / 1000
	return append(dst, byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10), 'Z')
}

func append2(dst []byte, v int, sep byte) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10), sep)
}

// appendFields writes the parsed fields as SD-PARAMs (names are the ECS
// fields, shortened; values escaped per RFC 5424 §6.3.3).
func (f *formatter) appendFields(dst []byte, ev *pipeline.Event) []byte {
	if f.tenantID != "" {
		dst = appendParam(dst, "tenant", f.tenantID)
	}
	dst = appendParam(dst, "event_id", ev.ID)
	dst = appendParam(dst, "dataset", ev.Dataset)
	dst = appendParam(dst, "action", ev.Action)
	dst = appendParam(dst, "outcome", ev.Outcome)
	dst = appendParam(dst, "rule_id", ev.Rule.ID)
	dst = appendParam(dst, "ruleset", ev.Rule.Ruleset)
	dst = appendParam(dst, "rule_name", ev.Rule.Name)
	dst = appendParam(dst, "log_label", ev.TenantLabel())
	dst = appendEndpoint(dst, "src", &ev.Source)
	dst = appendEndpoint(dst, "dst", &ev.Destination)
	dst = appendParam(dst, "transport", ev.Network.Transport)
	dst = appendParam(dst, "direction", ev.Network.Direction)
	dst = appendParam(dst, "observer", ev.Observer.Hostname)
	return dst
}

func appendEndpoint(dst []byte, prefix string, ep *pipeline.Endpoint) []byte {
	if ep.IP.IsValid() {
		dst = append(dst, ' ')
		dst = append(dst, prefix...)
		dst = append(dst, `_ip="`...)
		dst = ep.IP.AppendTo(dst)
		dst = append(dst, '"')
	}
	if ep.PortValid {
		dst = append(dst, ' ')
		dst = append(dst, prefix...)
		dst = append(dst, `_port="`...)
		dst = strconv.AppendUint(dst, uint64(ep.Port), 10)
		dst = append(dst, '"')
	}
	return dst
}

// appendParam writes ` name="value"` unless value is empty.
func appendParam(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '"', '\\', ']':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// validSDName reports whether s may be an SD-ID or PARAM-NAME (RFC 5424
// §6.3.2): 1 to 32 printable US-ASCII characters except '=', ' ', ']'
// and '"'.
func validSDName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 32 || c >= 127 || c == '=' || c == ']' || c == '"' {
			return false
		}
	}
	return true
}

// appendHeaderField writes a header field: printable US-ASCII without
// spaces, at most max characters, "-" when empty.
func appendHeaderField(dst []byte, s string, max int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 32 || c >= 127 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

func hostname(ev *pipeline.Event) string {
	switch {
	case ev.Syslog.Hostname != "":
		return ev.Syslog.Hostname
	case ev.Observer.Hostname != "":
		return ev.Observer.Hostname
	}
	return ev.Host.Hostname
}

// append3164 writes BSD syslog (RFC 3164 §4.1): PRI, "Mmm dd hh:mm:ss"
// in UTC, HOSTNAME, TAG[PROCID]: and the original MSG.
func (f *formatter) append3164(dst []byte, ev *pipeline.Event, msg []byte) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(priority(ev)), 10)
	dst = append(dst, '>')
	t := ev.Time()
	if t.IsZero() {
		t = time.Now()
	}
	dst = t.UTC().AppendFormat(dst, time.Stamp)
	dst = append(dst, ' ')
	h := hostname(ev)
	if h == "" {
		h = "-"
	}
	dst = appendHeaderField(dst, h, 255)
	dst = append(dst, ' ')
	tag := ev.Syslog.AppName
	if tag == "" {
		tag = "vpipe"
	}
	// RFC 3164 §4.1.3: the TAG is at most 32 alphanumeric characters.
	n := 0
	for i := 0; i < len(tag) && n < 32; i++ {
		c := tag[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			dst = append(dst, c)
			n++
		}
	}
	if ev.Syslog.ProcID != "" {
		dst = append(dst, '[')
		dst = appendHeaderField(dst, ev.Syslog.ProcID, 32)
		dst = append(dst, ']')
	}
	dst = append(dst, ':', ' ')
	return append(dst, msg...)
}

// appendFrame appends msg framed for a stream.
func appendFrame(dst, msg []byte, octetCounting bool) []byte {
	if octetCounting {
		dst = strconv.AppendInt(dst, int64(len(msg)), 10)
		dst = append(dst, ' ')
		return append(dst, msg...)
	}
	dst = append(dst, msg...)
	return append(dst, '\n')
}
