package nsxfw

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/vpipe/vpipe/parsers/internal/offset"

	"github.com/vpipe/vpipe/pipeline"
)

// Gateway is the pipeline.FormatParser of NSX-T / NSX 4.x Edge gateway
// (Tier-0/Tier-1) firewall packet logs (dataset nsx.gateway_firewall),
// written by datapathd as RFC 5424 with APP-NAME NSX, MSGID FIREWALL and
// structured data [nsx@6876 comp="nsx-edge" subcomp=... level=...]
// (NSX-T 3.0/3.2 Administration Guide "Gateway Firewall Packet Logs",
// https://docs.vmware.com/en/VMware-NSX-T-Data-Center/3.2/administration/GUID-1D754B94-1523-4C7E-A248-F524B974A66B.html).
//
// msg is the MSG part, which starts with the "<vrf interface>" prefix, or
// a line the envelope parser could not read as RFC 5424 (the Edge's local
// file and "get log-file syslog" output have no PRI):
// "[timestamp] [host] NSX <pid> FIREWALL [sd...] <vrf iface> ...".
// The structured data is parsed generically, since its subcomp form
// differs by version (formats.md §7, pitfall 5); its level parameter
// becomes log.level in lower case.
//
// The zero value is ready to use and safe for concurrent use.
type Gateway struct{}

// Parse implements pipeline.FormatParser.
func (Gateway) Parse(e *pipeline.Event, msg []byte) bool {
	msg = bytes.TrimRight(msg, " \t\r\n\x00")
	var h gwHeader
	body := msg
	if len(msg) == 0 {
		return false
	}
	if msg[0] != '<' {
		var ok bool
		if h, body, ok = splitGWHeader(msg); !ok {
			return false
		}
	}
	var r record
	if !r.parse(body, true) {
		return false
	}
	r.commit(e, &e.VMware.NSX, pipeline.DatasetNSXGatewayFW, "NSX", offset.In(e.Original, body))
	h.apply(e)
	for i := range e.Syslog.StructuredData {
		sd := &e.Syslog.StructuredData[i]
		if !strings.HasPrefix(sd.ID, "nsx@") {
			continue
		}
		for _, p := range sd.Params {
			if p.Name == "level" && e.LogLevel == "" {
				e.LogLevel = Level(e, p.Value)
			}
		}
	}
	return true
}

// gwHeader is an Edge header that the envelope parser left in the message.
type gwHeader struct {
	ts         []byte
	host, proc []byte
	app, msgID []byte
	sd         []byte // raw STRUCTURED-DATA
}

// splitGWHeader reads "[timestamp] [host] NSX <procid> FIREWALL <sd> " or
// "<sd> " before the body.
func splitGWHeader(b []byte) (h gwHeader, body []byte, ok bool) {
	i := 0
	if b[0] != '[' {
		var toks [6][]byte
		n := 0
		for n < len(toks) {
			s, e := token(b, i)
			if s == e {
				return h, nil, false
			}
			toks[n] = b[s:e]
			n++
			i = e
			if string(b[s:e]) == "FIREWALL" {
				break
			}
		}
		// toks ends with NSX, PROCID, FIREWALL; before them an optional
		// timestamp and an optional host.
		if n < 3 || string(toks[n-1]) != "FIREWALL" || string(toks[n-3]) != "NSX" || n > 5 {
			return h, nil, false
		}
		h.app, h.proc, h.msgID = toks[n-3], toks[n-2], toks[n-1]
		switch n {
		case 5:
			h.ts, h.host = toks[0], toks[1]
		case 4:
			if _, ok := parseISO(toks[0]); ok {
				h.ts = toks[0]
			} else {
				h.host = toks[0]
			}
		}
		i, _ = token(b, i)
		if i >= len(b) {
			return h, nil, false
		}
	}
	switch b[i] {
	case '-':
		i++
	case '[':
		end, ok := sdEnd(b, i)
		if !ok {
			return h, nil, false
		}
		h.sd = b[i:end]
		i = end
	default:
		return h, nil, false
	}
	s, _ := token(b, i)
	return h, b[s:], true
}

// sdEnd returns the index after the STRUCTURED-DATA starting at b[i]
// (RFC 5424 §6.3: ']' and '"' inside PARAM-VALUE are escaped with '\').
func sdEnd(b []byte, i int) (int, bool) {
	for i < len(b) && b[i] == '[' {
		quoted := false
		j := i + 1
		for ; j < len(b); j++ {
			c := b[j]
			if quoted {
				if c == '\\' {
					j++
				} else if c == '"' {
					quoted = false
				}
				continue
			}
			if c == '"' {
				quoted = true
			} else if c == ']' {
				break
			}
		}
		if j >= len(b) {
			return i, false
		}
		i = j + 1
	}
	return i, true
}

// apply fills the envelope fields the syslog parser could not.
func (h *gwHeader) apply(e *pipeline.Event) {
	if h.ts != nil {
		if t, ok := parseISO(h.ts); ok && e.Timestamp.IsZero() {
			e.Timestamp = t
		}
	}
	if h.host != nil && e.Syslog.Hostname == "" {
		e.Syslog.Hostname = e.Alias(h.host)
	}
	if e.Observer.Hostname == "" {
		e.Observer.Hostname = e.Syslog.Hostname
	}
	if h.app != nil && e.Syslog.AppName == "" {
		e.Syslog.AppName = e.Alias(h.app)
		e.Syslog.ProcID = e.Alias(h.proc)
		e.Syslog.MsgID = e.Alias(h.msgID)
	}
	if h.sd != nil && len(e.Syslog.StructuredData) == 0 {
		parseSD(e, h.sd)
	}
}

// parseSD appends the SD-ELEMENTs of raw (already delimited by sdEnd) to
// e.Syslog.StructuredData, reusing the slices' capacity.
func parseSD(e *pipeline.Event, raw []byte) {
	sd := e.Syslog.StructuredData
	i := 0
	for i < len(raw) && raw[i] == '[' {
		i++
		s := i
		for i < len(raw) && raw[i] != ' ' && raw[i] != ']' {
			i++
		}
		if len(sd) < cap(sd) {
			sd = sd[:len(sd)+1]
			sd[len(sd)-1].Params = sd[len(sd)-1].Params[:0]
		} else {
			sd = append(sd, pipeline.SDElement{})
		}
		el := &sd[len(sd)-1]
		el.ID = e.Alias(raw[s:i])
		for i < len(raw) && raw[i] == ' ' {
			i++
			s := i
			for i < len(raw) && raw[i] != '=' && raw[i] != ']' {
				i++
			}
			name := raw[s:i]
			if i+1 >= len(raw) || raw[i] != '=' || raw[i+1] != '"' {
				break
			}
			i += 2
			s = i
			esc := false
			for i < len(raw) && raw[i] != '"' {
				if raw[i] == '\\' {
					esc = true
					i++
				}
				i++
			}
			if i > len(raw) {
				i = len(raw)
			}
			val := raw[s:i]
			v := e.Alias(val)
			if esc {
				var buf [256]byte
				out := buf[:0]
				for k := 0; k < len(val); k++ {
					if val[k] == '\\' && k+1 < len(val) && (val[k+1] == '"' || val[k+1] == '\\' || val[k+1] == ']') {
						k++
					}
					out = append(out, val[k])
				}
				v = e.Intern(out)
			}
			el.Params = append(el.Params, pipeline.SDParam{Name: e.Alias(name), Value: v})
			i++
		}
		for i < len(raw) && raw[i] != '[' {
			i++
		}
	}
	e.Syslog.StructuredData = sd
}

// Level maps the level of an NSX structured-data element as NSX writes
// it ("INFO") to log.level in lower case: a constant for the levels NSX
// uses, else v lower-cased into e (v must be part of e.Original).
func Level(e *pipeline.Event, v string) string {
	if k := KnownLevel(v); k != "" || v == "" {
		return k
	}
	return Lower(e, unsafe.Slice(unsafe.StringData(v), len(v)))
}

// KnownLevel is Level for the levels NSX uses, as constants; "" for any
// other value.
func KnownLevel(v string) string {
	switch v {
	case "INFO":
		return "info"
	case "WARN":
		return "warn"
	case "WARNING":
		return "warning"
	case "ERROR":
		return "error"
	case "DEBUG":
		return "debug"
	case "NOTICE":
		return "notice"
	case "CRITICAL":
		return "critical"
	case "ALERT":
		return "alert"
	case "EMERGENCY":
		return "emergency"
	case "FATAL":
		return "fatal"
	}
	return ""
}
