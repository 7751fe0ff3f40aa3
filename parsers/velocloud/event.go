// Package velocloud parses VMware SD-WAN (VeloCloud) records: the
// Orchestrator's enterprise events (dataset velocloud.event, one JSON
// object of the event/getEnterpriseEvents result) and the Edge firewall
// log lines sent by syslog (dataset velocloud.firewall).
//
// Sources: shared/reference/formats.md §5 — the VCO API typings
// AggregateEnterpriseEvent and the real event in kurtcms/vco-api-ent-event
// README.md; VMware SD-WAN Administration Guide 4.0/4.5/5.0/6.0 "Syslog
// message format for firewall logs"
// (https://docs.vmware.com/en/VMware-SD-WAN/5.0/VMware-SD-WAN-Administration-Guide/GUID-7AFE20A8-820B-42AA-86B2-D6AF32835EC0.html).
package velocloud

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/jsontext"
)

// maxMembers bounds the members of an event object that are kept; the
// typings list 13 fields.
const maxMembers = 48

// ParseEvent fills e from one VCO enterprise event, a JSON object of the
// event/getEnterpriseEvents result (result.data[] in the JSON-RPC API):
//
//	{"id": 2913202, "eventTime": "2021-10-23T06:48:57.000Z", "event": "VPN_DATACENTER_STATUS",
//	 "category": "SYSTEM", "severity": "NOTICE", "message": "...", "detail": "{\"ikeState\": \"DOWN\", ...}",
//	 "enterpriseUsername": null, "edgeName": null, "segmentName": null}
//
// and sets the dataset velocloud.event. detail is a JSON document encoded
// as a string (formats.md §5, §7): when it decodes to a JSON object it is
// kept compact in vmware.velocloud.detail (encoded as a nested object),
// else the string is kept in vmware.velocloud.detail_raw. severity gives
// log.level (lower case) and event.severity on the syslog scale
// (EMERGENCY 0 ... DEBUG 7). Members the typings do not list are kept as
// labels under their JSON names; null members are skipped.
//
// data should be e.Original: strings without escapes alias it. Parsing
// allocates nothing once e's buffers have grown. On error (not a JSON
// object, a member of the wrong type) e is left untouched and the error
// says at which byte.
func ParseEvent(e *pipeline.Event, data []byte) error {
	var ms [maxMembers]member
	n, err := scanEvent(data, ms[:])
	if err != nil {
		return err
	}
	// Check the types before touching e.
	for i := range ms[:n] {
		m := &ms[i]
		var want byte
		switch string(m.key) {
		case "id", "enterpriseId":
			want = '0'
		case "eventTime", "event", "category", "severity", "message", "enterpriseUsername", "edgeName", "segmentName", "enterpriseName":
			want = '"'
		default:
			continue
		}
		if m.kind != want && m.kind != 'n' {
			return fmt.Errorf("velocloud event: %s: expected a %s at byte %d", m.key, kindName(want), m.off)
		}
		if want == '0' {
			if _, ok := atoi(m.val); !ok {
				return fmt.Errorf("velocloud event: %s: expected an integer at byte %d", m.key, m.off)
			}
		}
		if string(m.key) == "eventTime" && m.kind == '"' {
			if _, err := time.Parse(time.RFC3339Nano, str(m.val)); err != nil {
				return fmt.Errorf("velocloud event: eventTime: expected an RFC 3339 time at byte %d", m.off)
			}
		}
	}

	e.Dataset = pipeline.DatasetVeloCloudEvent
	e.Observer.Vendor = "VMware"
	e.Observer.Product = "SD-WAN Orchestrator"
	v := &e.VMware.VeloCloud
	for i := range ms[:n] {
		m := &ms[i]
		if m.kind == 'n' {
			continue
		}
		switch string(m.key) {
		case "id":
			v.EventID, _ = atoi(m.val)
		case "enterpriseId":
			v.EnterpriseID, _ = atoi(m.val)
		case "eventTime":
			t, _ := time.Parse(time.RFC3339Nano, str(m.val))
			e.Timestamp = t.UTC()
		case "event":
			v.Event = text(e, m)
		case "category":
			v.Category = text(e, m)
		case "severity":
			v.Severity = text(e, m)
			setSeverity(e, v.Severity)
		case "message":
			e.Message = text(e, m)
		case "enterpriseUsername":
			v.EnterpriseUsername = text(e, m)
			e.User.Name = v.EnterpriseUsername
		case "edgeName":
			v.EdgeName = text(e, m)
		case "segmentName":
			v.SegmentName = text(e, m)
		case "enterpriseName":
			v.EnterpriseName = text(e, m)
		case "detail":
			setDetail(e, m)
		default:
			var val string
			if m.kind == '"' {
				val = text(e, m)
			} else {
				val = e.Alias(m.val)
			}
			e.AddLabel(keyText(e, m), val)
		}
	}
	return nil
}

// setDetail keeps detail as a compact JSON object, or raw.
func setDetail(e *pipeline.Event, m *member) {
	v := &e.VMware.VeloCloud
	switch m.kind {
	case '{':
		v.Detail = appendCompact(v.Detail[:0], m.val)
		return
	case '"':
	default:
		v.DetailRaw = e.Alias(m.val)
		return
	}
	if !m.valEsc {
		if isObject(m.val) {
			v.Detail = appendCompact(v.Detail[:0], m.val)
		} else {
			v.DetailRaw = e.Alias(m.val)
		}
		return
	}
	var buf [1024]byte
	doc, ok := jsontext.AppendUnescaped(buf[:0], m.val)
	switch {
	case !ok:
		v.DetailRaw = e.Alias(m.val)
	case isObject(doc):
		v.Detail = appendCompact(v.Detail[:0], doc)
	default:
		v.DetailRaw = e.Intern(doc)
	}
}

// isObject reports whether doc is one JSON object and nothing else.
func isObject(doc []byte) bool {
	s := scanner{b: doc}
	s.ws()
	if s.i >= len(doc) || doc[s.i] != '{' || !s.nested() {
		return false
	}
	s.ws()
	return s.i == len(doc)
}

// scanEvent reads the top-level object into ms.
func scanEvent(data []byte, ms []member) (int, error) {
	s := scanner{b: data}
	s.ws()
	if s.i >= len(data) || data[s.i] != '{' {
		return 0, fmt.Errorf("velocloud event: expected a JSON object at byte %d", s.i)
	}
	s.i++
	n := 0
	s.ws()
	if s.i < len(data) && data[s.i] == '}' {
		s.i++
	} else {
		for {
			s.ws()
			key, kesc, ok := s.str()
			if !ok {
				break
			}
			s.ws()
			if s.i >= len(data) || data[s.i] != ':' {
				s.fail("':'")
				break
			}
			s.i++
			s.ws()
			off := s.i
			val, kind, vesc, ok := s.value()
			if !ok {
				break
			}
			if n < len(ms) {
				ms[n] = member{key: key, val: val, kind: kind, keyEsc: kesc, valEsc: vesc, off: off}
				n++
			}
			s.ws()
			if s.i < len(data) && data[s.i] == ',' {
				s.i++
				continue
			}
			if s.i < len(data) && data[s.i] == '}' {
				s.i++
				break
			}
			s.fail("',' or '}'")
			break
		}
	}
	if s.err != "" {
		return 0, fmt.Errorf("velocloud event: expected %s at byte %d", s.err, s.i)
	}
	s.ws()
	if s.i != len(data) {
		return 0, fmt.Errorf("velocloud event: expected the end of the object at byte %d", s.i)
	}
	return n, nil
}

// text returns a string member's value, unescaped into e's scratch space
// when it has escapes.
func text(e *pipeline.Event, m *member) string {
	if !m.valEsc {
		return e.Alias(m.val)
	}
	return unescape(e, m.val)
}

func keyText(e *pipeline.Event, m *member) string {
	if !m.keyEsc {
		return e.Alias(m.key)
	}
	return unescape(e, m.key)
}

func unescape(e *pipeline.Event, raw []byte) string {
	var buf [512]byte
	u, ok := jsontext.AppendUnescaped(buf[:0], raw)
	if !ok {
		return e.Alias(raw)
	}
	return e.Intern(u)
}

// setSeverity maps VCO severities (formats.md §5: EMERGENCY, ALERT,
// CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG) to log.level and the
// syslog-scale event.severity.
func setSeverity(e *pipeline.Event, s string) {
	levels := [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}
	for i, l := range [...]string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"} {
		if s == l {
			e.LogLevel = levels[i]
			e.Severity, e.SeverityValid = i, true
			return
		}
	}
	e.LogLevel = s
}

func kindName(k byte) string {
	if k == '0' {
		return "number"
	}
	return "string"
}

func atoi(t []byte) (int64, bool) {
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) == 0 || len(t) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// str views b as a string for a call that does not keep it.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
