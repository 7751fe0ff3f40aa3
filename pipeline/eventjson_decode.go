package pipeline

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/vpipe/vpipe/pipeline/jsontext"
)

// DecodeJSON resets e and fills it from one JSON event as AppendJSON
// writes it, so that consumer stages get back the event the ingest side
// published. Decoding AppendJSON's output yields the same event, with these
// equivalences (AppendJSON writes both sides alike): Kind "event" decodes
// as "", a Timestamp equal to Created decodes as zero, times come back in
// UTC, and repeated labels, SD-IDs and SD-PARAM names come back merged as
// AppendJSON wrote them.
//
// It also reads events written by other tools with the same ECS names:
// unknown members are skipped, null counts as absent, observer.ip may be an
// array (its first address is kept), structured-data and label values may
// be numbers or booleans (kept as their JSON text), missing syslog codes
// are derived from the others, and vmware.velocloud.detail may be a string
// holding a JSON object. Field names are nested objects; dotted keys such
// as "event.dataset" are not read. Invalid UTF-8 in a string decodes as
// U+FFFD; vpipe.original_base64, when present, gives Original's exact
// bytes.
//
// Strings point into e's scratch space, like those a parser sets: they are
// valid until the next Reset (or DecodeJSON) of e. Original, Detail and
// the slices reuse e's buffers. data is not retained, and must not be one
// of e's own buffers (such as e.Original).
//
// An error says which field and byte offset failed
// ("event.dataset: want string at offset 123"); it is permanent
// (errors.Is(err, ErrPermanent)), since no retry can fix the record, and e
// is left reset. DecodeJSON never panics.
func (e *Event) DecodeJSON(data []byte) error {
	e.Reset()
	if cap(e.scratch) < len(data) {
		e.scratch = make([]byte, 0, len(data))
	}
	d := jsonDecoder{data: data, e: e}
	if err := d.decodeEvent(); err != nil {
		e.Reset()
		return Permanent(err)
	}
	return nil
}

// maxJSONDepth bounds the nesting of skipped values and of Detail, as
// encoding/json does, so that hostile input cannot exhaust the stack.
const maxJSONDepth = 10000

// decodeError is a DecodeJSON failure: which field, what was wrong, and the
// byte offset in the input.
type decodeError struct {
	path string
	msg  string
	off  int
}

func (err *decodeError) Error() string {
	if err.path == "" {
		return err.msg + " at offset " + strconv.Itoa(err.off)
	}
	return err.path + ": " + err.msg + " at offset " + strconv.Itoa(err.off)
}

// jsonDecoder reads one event from data.
type jsonDecoder struct {
	data []byte
	i    int
	e    *Event
	tmp  []byte // unescaped keys and values that are not kept as strings

	timestamp     time.Time
	haveBase64    bool
	haveFacility  bool
	haveSeverity  bool
	havePriority  bool
	labelsChanged bool
}

func (d *jsonDecoder) errAt(off int, path, msg string) error {
	return &decodeError{path: path, msg: msg, off: off}
}

func (d *jsonDecoder) decodeEvent() error {
	e := d.e
	d.ws()
	if d.i >= len(d.data) || d.data[d.i] != '{' {
		return d.errAt(d.i, "", "want JSON object")
	}
	d.i++
	if err := d.members("", func(key []byte) (err error) {
		switch string(key) {
		case "@timestamp":
			d.timestamp, err = d.time("@timestamp")
		case "event":
			err = d.event()
		case "message":
			e.Message, err = d.str("message")
		case "error":
			err = d.errorSet()
		case "log":
			err = d.log()
		case "observer":
			err = d.observer()
		case "host":
			err = d.host()
		case "source":
			err = d.endpoint(&sourcePaths, &e.Source)
		case "destination":
			err = d.endpoint(&destinationPaths, &e.Destination)
		case "network":
			err = d.network()
		case "rule":
			err = d.rule()
		case "organization":
			err = d.organization()
		case "user":
			err = d.user()
		case "labels":
			err = d.labels()
		case "vmware":
			err = d.vmware()
		case "vpipe":
			err = d.vpipe()
		default:
			err = d.skip(0)
		}
		return err
	}); err != nil {
		return err
	}
	d.ws()
	if d.i != len(d.data) {
		return d.errAt(d.i, "", "unexpected data after the event")
	}

	if !d.timestamp.IsZero() && !d.timestamp.Equal(e.Created) {
		e.Timestamp = d.timestamp
	}
	if e.Kind == "event" {
		e.Kind = ""
	}
	s := &e.Syslog
	if d.havePriority || d.haveFacility || d.haveSeverity {
		s.PriorityValid = true
		switch {
		case d.havePriority && !d.haveFacility && !d.haveSeverity:
			s.Facility, s.Severity = s.Priority>>3, s.Priority&7
		case d.havePriority && !d.haveFacility:
			s.Facility = s.Priority >> 3
		case d.havePriority && !d.haveSeverity:
			s.Severity = s.Priority & 7
		case !d.havePriority:
			s.Priority = s.Facility<<3 | s.Severity
		}
	}
	if len(s.StructuredData) > 0 {
		s.StructuredData = canonicalSD(s.StructuredData)
	}
	if d.labelsChanged {
		e.Labels = dedupeLabels(e.Labels)
	}
	return nil
}

func (d *jsonDecoder) event() error {
	e := d.e
	return d.object("event", func(key []byte) (err error) {
		switch string(key) {
		case "id":
			e.ID, err = d.str("event.id")
		case "kind":
			e.Kind, err = d.str("event.kind")
		case "dataset":
			e.Dataset, err = d.str("event.dataset")
		case "action":
			e.Action, err = d.str("event.action")
		case "outcome":
			e.Outcome, err = d.str("event.outcome")
		case "reason":
			e.Reason, err = d.str("event.reason")
		case "severity":
			var v int64
			v, e.SeverityValid, err = d.int("event.severity")
			e.Severity = int(v)
		case "original":
			err = d.original()
		case "created":
			e.Created, err = d.time("event.created")
		default:
			err = d.skip(0)
		}
		return err
	})
}

// original reads event.original into e.Original, unless
// vpipe.original_base64 already gave the exact bytes.
func (d *jsonDecoder) original() error {
	raw, slow, err := d.stringOrNull("event.original", "want string")
	if raw == nil || d.haveBase64 {
		return err
	}
	if slow {
		d.e.Original = appendUnescaped(d.e.Original[:0], raw)
	} else {
		d.e.Original = append(d.e.Original[:0], raw...)
	}
	return nil
}

func (d *jsonDecoder) errorSet() error {
	return d.object("error", func(key []byte) (err error) {
		switch string(key) {
		case "message":
			d.e.Error, err = d.str("error.message")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) log() error {
	return d.object("log", func(key []byte) (err error) {
		switch string(key) {
		case "level":
			d.e.LogLevel, err = d.str("log.level")
		case "source":
			err = d.logSource()
		case "syslog":
			err = d.syslog()
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) logSource() error {
	return d.object("log.source", func(key []byte) (err error) {
		switch string(key) {
		case "address":
			d.e.LogSource, err = d.str("log.source.address")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) syslog() error {
	s := &d.e.Syslog
	return d.object("log.syslog", func(key []byte) (err error) {
		switch string(key) {
		case "facility":
			err = d.syslogCode("log.syslog.facility", "log.syslog.facility.code", &s.Facility, &d.haveFacility)
		case "severity":
			err = d.syslogCode("log.syslog.severity", "log.syslog.severity.code", &s.Severity, &d.haveSeverity)
		case "priority":
			s.Priority, d.havePriority, err = uintField[uint8](d, "log.syslog.priority")
		case "hostname":
			s.Hostname, err = d.str("log.syslog.hostname")
		case "appname":
			s.AppName, err = d.str("log.syslog.appname")
		case "procid":
			s.ProcID, err = d.str("log.syslog.procid")
		case "msgid":
			s.MsgID, err = d.str("log.syslog.msgid")
		case "version":
			err = d.syslogVersion()
		case "structured_data":
			err = d.structuredData()
		default:
			err = d.skip(0)
		}
		return err
	})
}

// syslogCode reads log.syslog.facility or .severity: the code is kept, the
// name is derived from it when encoding and so is not read.
func (d *jsonDecoder) syslogCode(path, codePath string, code *uint8, have *bool) error {
	return d.object(path, func(key []byte) (err error) {
		switch string(key) {
		case "code":
			var v uint8
			var ok bool
			if v, ok, err = uintField[uint8](d, codePath); ok {
				*code, *have = v, true
			}
		default:
			err = d.skip(0)
		}
		return err
	})
}

// syslogVersion reads log.syslog.version, an ECS keyword ("1"); a number
// is accepted too.
func (d *jsonDecoder) syslogVersion() error {
	const path = "log.syslog.version"
	start := d.ws()
	if d.i < len(d.data) && d.data[d.i] != '"' {
		var err error
		d.e.Syslog.Version, _, err = uintField[uint8](d, path)
		return err
	}
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return err
	}
	raw = d.unescape(raw, slow)
	v, ok := parseUint(raw, 255)
	if !ok && len(raw) > 0 {
		return d.errAt(start, path, "want version number 0-255")
	}
	d.e.Syslog.Version = uint8(v)
	return nil
}

// structuredData reads log.syslog.structured_data, appending elements in
// order; decodeEvent then merges repeated SD-IDs and SD-PARAM names.
func (d *jsonDecoder) structuredData() error {
	s := &d.e.Syslog
	return d.object("log.syslog.structured_data", func(key []byte) error {
		id := d.e.Intern(key)
		params, err := d.sdParams()
		if err != nil {
			return err
		}
		s.StructuredData = append(s.StructuredData, SDElement{ID: id, Params: params})
		return nil
	})
}

// sdParams reads one SD-ELEMENT's params into a new slice: the params
// arrays of earlier elements are not reused, since a parser may have set
// them to arrays it shares.
func (d *jsonDecoder) sdParams() ([]SDParam, error) {
	const path = "log.syslog.structured_data"
	var buf [16]SDParam
	params := buf[:0]
	err := d.object(path, func(key []byte) error {
		name := d.e.Intern(key)
		d.ws()
		if d.i < len(d.data) && d.data[d.i] == '[' {
			d.i++
			for m := 0; ; m++ {
				v, ok, more, err := d.arrayScalar(path, m)
				if !more {
					return err
				}
				if ok {
					params = append(params, SDParam{Name: name, Value: v})
				}
			}
		}
		v, ok, err := d.scalar(path)
		if ok {
			params = append(params, SDParam{Name: name, Value: v})
		}
		return err
	})
	if err != nil || len(params) == 0 {
		return nil, err
	}
	return append([]SDParam(nil), params...), nil
}

func (d *jsonDecoder) observer() error {
	o := &d.e.Observer
	return d.object("observer", func(key []byte) (err error) {
		switch string(key) {
		case "hostname":
			o.Hostname, err = d.str("observer.hostname")
		case "ip":
			o.IP, err = d.ip("observer.ip", true)
		case "type":
			o.Type, err = d.str("observer.type")
		case "vendor":
			o.Vendor, err = d.str("observer.vendor")
		case "product":
			o.Product, err = d.str("observer.product")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) host() error {
	return d.object("host", func(key []byte) (err error) {
		switch string(key) {
		case "hostname":
			d.e.Host.Hostname, err = d.str("host.hostname")
		default:
			err = d.skip(0)
		}
		return err
	})
}

// endpointPaths name the fields of source.* or destination.* in errors.
type endpointPaths struct{ set, ip, port, domain, packets, bytes string }

var (
	sourcePaths      = endpointPaths{"source", "source.ip", "source.port", "source.domain", "source.packets", "source.bytes"}
	destinationPaths = endpointPaths{"destination", "destination.ip", "destination.port", "destination.domain", "destination.packets", "destination.bytes"}
)

// endpoint reads source.* or destination.*.
func (d *jsonDecoder) endpoint(path *endpointPaths, p *Endpoint) error {
	return d.object(path.set, func(key []byte) (err error) {
		var ok bool
		switch string(key) {
		case "ip":
			p.IP, err = d.ip(path.ip, false)
		case "port":
			var port uint16
			if port, ok, err = uintField[uint16](d, path.port); ok {
				p.Port, p.PortValid = port, true
			}
		case "domain":
			p.Domain, err = d.str(path.domain)
		case "packets":
			p.Packets, ok, err = uintField[uint64](d, path.packets)
			p.CountersValid = p.CountersValid || ok
		case "bytes":
			p.Bytes, ok, err = uintField[uint64](d, path.bytes)
			p.CountersValid = p.CountersValid || ok
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) network() error {
	nw := &d.e.Network
	return d.object("network", func(key []byte) (err error) {
		switch string(key) {
		case "transport":
			nw.Transport, err = d.str("network.transport")
		case "iana_number":
			nw.IANANumber, err = d.str("network.iana_number")
		case "type":
			nw.Type, err = d.str("network.type")
		case "direction":
			nw.Direction, err = d.str("network.direction")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) rule() error {
	r := &d.e.Rule
	return d.object("rule", func(key []byte) (err error) {
		switch string(key) {
		case "id":
			r.ID, err = d.str("rule.id")
		case "ruleset":
			r.Ruleset, err = d.str("rule.ruleset")
		case "name":
			r.Name, err = d.str("rule.name")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) organization() error {
	o := &d.e.Organization
	return d.object("organization", func(key []byte) (err error) {
		switch string(key) {
		case "id":
			o.ID, err = d.str("organization.id")
		case "name":
			o.Name, err = d.str("organization.name")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) user() error {
	u := &d.e.User
	return d.object("user", func(key []byte) (err error) {
		switch string(key) {
		case "name":
			u.Name, err = d.str("user.name")
		case "domain":
			u.Domain, err = d.str("user.domain")
		default:
			err = d.skip(0)
		}
		return err
	})
}

// labels reads the labels object, appending in order; decodeEvent then
// applies AddLabel's rule to repeated keys.
func (d *jsonDecoder) labels() error {
	const path = "labels"
	return d.object(path, func(key []byte) error {
		k := d.e.Intern(key)
		v, ok, err := d.scalar(path)
		if ok {
			d.e.Labels = append(d.e.Labels, Label{Key: k, Value: v})
			d.labelsChanged = true
		}
		return err
	})
}

// dedupeLabels keeps one label per key, at the key's first position, with
// its last value (AddLabel's rule), in place.
func dedupeLabels(labels []Label) []Label {
	if len(labels) > smallSet {
		index := make(map[string]int, len(labels))
		w := 0
		for _, l := range labels {
			if j, ok := index[l.Key]; ok {
				labels[j].Value = l.Value
				continue
			}
			index[l.Key] = w
			labels[w] = l
			w++
		}
		return labels[:w]
	}
	w := 0
next:
	for _, l := range labels {
		for j := range w {
			if labels[j].Key == l.Key {
				labels[j].Value = l.Value
				continue next
			}
		}
		labels[w] = l
		w++
	}
	return labels[:w]
}

func (d *jsonDecoder) vmware() error {
	v := &d.e.VMware
	return d.object("vmware", func(key []byte) (err error) {
		switch string(key) {
		case "nsx":
			err = d.nsx(&nsxPaths, &v.NSX)
		case "nsxv":
			err = d.nsx(&nsxvPaths, &v.NSXV)
		case "vcenter":
			err = d.vcenter()
		case "velocloud":
			err = d.velocloud()
		default:
			err = d.skip(0)
		}
		return err
	})
}

// nsxFieldPaths name the fields of vmware.nsx.* or vmware.nsxv.*; labelKey
// is the member that holds NSX.LogLabel.
type nsxFieldPaths struct {
	set, labelKey, label, filterHash, reason, packetLength, tcpFlags, termReason, vrf, iface string
}

var (
	nsxPaths = nsxFieldPaths{"vmware.nsx", "log_label", "vmware.nsx.log_label", "vmware.nsx.filter_hash",
		"vmware.nsx.reason", "vmware.nsx.packet_length", "vmware.nsx.tcp_flags", "vmware.nsx.term_reason",
		"vmware.nsx.vrf_id", "vmware.nsx.interface_id"}
	nsxvPaths = nsxFieldPaths{"vmware.nsxv", "rule_tag", "vmware.nsxv.rule_tag", "vmware.nsxv.filter_hash",
		"vmware.nsxv.reason", "vmware.nsxv.packet_length", "vmware.nsxv.tcp_flags", "vmware.nsxv.term_reason",
		"vmware.nsxv.vrf_id", "vmware.nsxv.interface_id"}
)

func (d *jsonDecoder) nsx(path *nsxFieldPaths, x *NSX) error {
	return d.object(path.set, func(key []byte) (err error) {
		switch string(key) {
		case "filter_hash":
			x.FilterHash, err = d.str(path.filterHash)
		case "reason":
			x.Reason, err = d.str(path.reason)
		case "packet_length":
			x.PacketLength, _, err = uintField[uint32](d, path.packetLength)
		case "tcp_flags":
			x.TCPFlags, err = d.str(path.tcpFlags)
		case "term_reason":
			x.TermReason, err = d.str(path.termReason)
		case "vrf_id":
			x.VRF, err = d.str(path.vrf)
		case "interface_id":
			x.InterfaceID, err = d.str(path.iface)
		case path.labelKey:
			x.LogLabel, err = d.str(path.label)
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) vcenter() error {
	const path = "vmware.vcenter"
	c := &d.e.VMware.VCenter
	return d.object(path, func(key []byte) (err error) {
		switch string(key) {
		case "server":
			c.Server, err = d.str(path + ".server")
		case "event_type":
			c.EventType, err = d.str(path + ".event_type")
		case "key":
			c.Key, _, err = d.int(path + ".key")
		case "chain_id":
			c.ChainID, _, err = d.int(path + ".chain_id")
		case "object":
			err = d.vcenterObject()
		case "tag":
			c.Tag, err = d.str(path + ".tag")
		case "category":
			c.Category, err = d.str(path + ".category")
		case "datacenter":
			c.Datacenter, err = d.str(path + ".datacenter")
		case "change_tag":
			c.ChangeTag, err = d.str(path + ".change_tag")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) vcenterObject() error {
	const path = "vmware.vcenter.object"
	c := &d.e.VMware.VCenter
	return d.object(path, func(key []byte) (err error) {
		switch string(key) {
		case "name":
			c.ObjectName, err = d.str(path + ".name")
		case "type":
			c.ObjectType, err = d.str(path + ".type")
		case "ref":
			c.ObjectRef, err = d.str(path + ".ref")
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonDecoder) velocloud() error {
	const path = "vmware.velocloud"
	v := &d.e.VMware.VeloCloud
	return d.object(path, func(key []byte) (err error) {
		switch string(key) {
		case "event_id":
			v.EventID, _, err = d.int(path + ".event_id")
		case "event":
			v.Event, err = d.str(path + ".event")
		case "category":
			v.Category, err = d.str(path + ".category")
		case "severity":
			v.Severity, err = d.str(path + ".severity")
		case "enterprise_id":
			v.EnterpriseID, _, err = d.int(path + ".enterprise_id")
		case "enterprise_name":
			v.EnterpriseName, err = d.str(path + ".enterprise_name")
		case "enterprise_username":
			v.EnterpriseUsername, err = d.str(path + ".enterprise_username")
		case "edge_name":
			v.EdgeName, err = d.str(path + ".edge_name")
		case "segment_name":
			v.SegmentName, err = d.str(path + ".segment_name")
		case "detail":
			err = d.detail()
		case "detail_raw":
			v.DetailRaw, err = d.str(path + ".detail_raw")
		default:
			err = d.skip(0)
		}
		return err
	})
}

// detail reads vmware.velocloud.detail: an object, kept as compact JSON
// text, or (as the VCO API itself sends it) a string holding one; a string
// that holds no JSON object goes to DetailRaw.
func (d *jsonDecoder) detail() error {
	v := &d.e.VMware.VeloCloud
	start := d.ws()
	if d.i < len(d.data) && d.data[d.i] == '{' {
		if err := d.skip(0); err != nil {
			return err
		}
		v.Detail = appendCompact(v.Detail[:0], d.data[start:d.i])
		return nil
	}
	raw, err := d.text("vmware.velocloud.detail", "want object")
	if raw == nil {
		return err
	}
	if out, ok := appendCompactObject(v.Detail[:0], raw); ok {
		v.Detail = out
		return nil
	}
	v.Detail = v.Detail[:0]
	v.DetailRaw = d.e.Intern(raw)
	return nil
}

func (d *jsonDecoder) vpipe() error {
	return d.object("vpipe", func(key []byte) (err error) {
		switch string(key) {
		case "original_base64":
			err = d.originalBase64()
		default:
			err = d.skip(0)
		}
		return err
	})
}

// originalBase64 reads vpipe.original_base64, the exact bytes of an
// Original that is not valid UTF-8; it wins over event.original.
func (d *jsonDecoder) originalBase64() error {
	const path = "vpipe.original_base64"
	start := d.ws()
	raw, err := d.text(path, "want string")
	if raw == nil {
		return err
	}
	out, err := base64.StdEncoding.AppendDecode(d.e.Original[:0], raw)
	if err != nil {
		return d.errAt(start, path, "want standard base64")
	}
	d.e.Original = out
	d.haveBase64 = true
	return nil
}

// ws skips white space and returns the offset of the next token.
func (d *jsonDecoder) ws() int {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return d.i
		}
	}
	return d.i
}

// null consumes a null literal at the current offset.
func (d *jsonDecoder) null() bool {
	if len(d.data)-d.i >= 4 && string(d.data[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// object reads an object field set, or null (the set is absent), as
// members does.
func (d *jsonDecoder) object(path string, member func(key []byte) error) error {
	start := d.ws()
	switch {
	case d.i < len(d.data) && d.data[d.i] == '{':
		d.i++
	case d.null():
		return nil
	default:
		return d.errAt(start, path, "want object")
	}
	return d.members(path, member)
}

// members reads the members of the object whose '{' is consumed, up to its
// closing brace, calling member with each key (valid until the value is
// read): member must consume the value, with d.skip for unknown keys, and
// an error it returns ends the object.
func (d *jsonDecoder) members(path string, member func(key []byte) error) error {
	for n := 0; ; n++ {
		d.ws()
		if d.i >= len(d.data) {
			return d.errAt(d.i, path, "unexpected end of input in object")
		}
		if d.data[d.i] == '}' {
			d.i++
			return nil
		}
		if n > 0 {
			if d.data[d.i] != ',' {
				return d.errAt(d.i, path, "want ',' or '}'")
			}
			d.i++
			d.ws()
		}
		if d.i >= len(d.data) || d.data[d.i] != '"' {
			return d.errAt(d.i, path, "want member name")
		}
		key, slow, err := d.stringValue(path)
		if err != nil {
			return err
		}
		key = d.unescape(key, slow)
		d.ws()
		if d.i >= len(d.data) || d.data[d.i] != ':' {
			return d.errAt(d.i, path, "want ':'")
		}
		d.i++
		if err := member(key); err != nil {
			return err
		}
	}
}

// stringValue reads a JSON string at the current offset and returns its
// raw content; slow says it holds escapes or invalid UTF-8, so it must go
// through appendUnescaped. raw is nil when the next token is no string.
func (d *jsonDecoder) stringValue(path string) (raw []byte, slow bool, err error) {
	data := d.data
	if d.i >= len(data) || data[d.i] != '"' {
		return nil, false, nil
	}
	start := d.i
	i := d.i + 1
	nonASCII := false
	for {
		// Eight bytes at a time up to the first quote, backslash,
		// control character or non-ASCII byte.
		for i+8 <= len(data) {
			if m := specialBytes(binary.LittleEndian.Uint64(data[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(data) {
			return nil, false, d.errAt(start, path, "unterminated string")
		}
		c := data[i]
		switch {
		case c == '"':
			raw = data[start+1 : i]
			d.i = i + 1
			if nonASCII && !slow && !utf8.Valid(raw) {
				slow = true
			}
			return raw, slow, nil
		case c == '\\':
			slow = true
			if i+1 >= len(data) {
				return nil, false, d.errAt(start, path, "unterminated string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := jsontext.Hex4(data, i+2); !ok {
					return nil, false, d.errAt(i, path, "invalid \\u escape in string")
				}
				i += 6
			default:
				return nil, false, d.errAt(i, path, "invalid escape in string")
			}
		case c < 0x20:
			return nil, false, d.errAt(i, path, "control character in string")
		default:
			if c >= utf8.RuneSelf {
				nonASCII = true
			}
			i++
		}
	}
}

// appendUnescaped appends the content of a JSON string, already checked by
// stringValue, unescaped, with invalid UTF-8 and unpaired surrogates
// replaced by U+FFFD as encoding/json does.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			// A run of escapes at once, so that jsontext pairs surrogates.
			j := i
			for j < len(raw) && raw[j] == '\\' {
				if raw[j+1] == 'u' {
					j += 6
				} else {
					j += 2
				}
			}
			dst, _ = jsontext.AppendUnescaped(dst, raw[i:j])
			i = j
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, raw[i:i+size]...)
		}
		i += size
	}
	return dst
}

// intern returns the content of a JSON string as a string in e's scratch
// space.
func (d *jsonDecoder) intern(raw []byte, slow bool) string {
	if !slow {
		return d.e.Intern(raw)
	}
	e := d.e
	// Unescaping never grows a string by more than three times (an
	// invalid byte becomes the three bytes of U+FFFD).
	if need := 3 * len(raw); cap(e.scratch)-len(e.scratch) < need {
		e.scratch = make([]byte, 0, 2*cap(e.scratch)+need)
	}
	start := len(e.scratch)
	e.scratch = appendUnescaped(e.scratch, raw)
	s := e.scratch[start:]
	if len(s) == 0 {
		return ""
	}
	return unsafe.String(&s[0], len(s))
}

// stringOrNull reads a string field's raw content, as stringValue does,
// or null (raw nil and no error); any other value fails with want.
func (d *jsonDecoder) stringOrNull(path, want string) (raw []byte, slow bool, err error) {
	start := d.ws()
	raw, slow, err = d.stringValue(path)
	if raw == nil && err == nil && !d.null() {
		err = d.errAt(start, path, want)
	}
	return raw, slow, err
}

// unescape returns the content raw of a JSON string, unescaped into
// d.tmp when slow; it is valid until the next use of d.tmp.
func (d *jsonDecoder) unescape(raw []byte, slow bool) []byte {
	if !slow {
		return raw
	}
	d.tmp = appendUnescaped(d.tmp[:0], raw)
	return d.tmp
}

// text reads a string field as stringOrNull does, its content unescaped
// (see unescape): raw is nil for null or an error.
func (d *jsonDecoder) text(path, want string) (raw []byte, err error) {
	raw, slow, err := d.stringOrNull(path, want)
	return d.unescape(raw, slow), err
}

// str reads a string field (null is the empty string). It is stringOrNull
// and intern written out, a call less on the decoder's hottest path.
func (d *jsonDecoder) str(path string) (string, error) {
	start := d.ws()
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return "", err
	}
	if raw != nil {
		return d.intern(raw, slow), nil
	}
	if d.null() {
		return "", nil
	}
	return "", d.errAt(start, path, "want string")
}

// scalar reads a label or SD-PARAM value: a string, or a number or boolean
// kept as its JSON text; ok is false for null.
func (d *jsonDecoder) scalar(path string) (v string, ok bool, err error) {
	start := d.ws()
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return "", false, err
	}
	if raw != nil {
		return d.intern(raw, slow), true, nil
	}
	if d.null() {
		return "", false, nil
	}
	if d.i < len(d.data) {
		switch c := d.data[d.i]; {
		case c == 't' || c == 'f':
			if d.literal("true") || d.literal("false") {
				return d.e.Intern(d.data[start:d.i]), true, nil
			}
		case c == '-' || '0' <= c && c <= '9':
			if _, err := d.number(path); err != nil {
				return "", false, err
			}
			return d.e.Intern(d.data[start:d.i]), true, nil
		}
	}
	return "", false, d.errAt(start, path, "want string, number or boolean")
}

// arrayScalar reads element m of an array of scalars whose '[' is
// consumed; more is false at the closing bracket.
func (d *jsonDecoder) arrayScalar(path string, m int) (v string, ok, more bool, err error) {
	d.ws()
	if d.i >= len(d.data) {
		return "", false, false, d.errAt(d.i, path, "unexpected end of input in array")
	}
	if d.data[d.i] == ']' {
		d.i++
		return "", false, false, nil
	}
	if m > 0 {
		if d.data[d.i] != ',' {
			return "", false, false, d.errAt(d.i, path, "want ',' or ']'")
		}
		d.i++
	}
	v, ok, err = d.scalar(path)
	return v, ok, err == nil, err
}

func (d *jsonDecoder) literal(lit string) bool {
	if len(d.data)-d.i >= len(lit) && string(d.data[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// number consumes a JSON number and reports whether it is an integer (no
// fraction, no exponent).
func (d *jsonDecoder) number(path string) (isInt bool, err error) {
	start := d.i
	i := d.i
	if i < len(d.data) && d.data[i] == '-' {
		i++
	}
	switch {
	case i < len(d.data) && d.data[i] == '0':
		i++
	case i < len(d.data) && '1' <= d.data[i] && d.data[i] <= '9':
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
		}
	default:
		return false, d.errAt(start, path, "invalid number")
	}
	isInt = true
	if i < len(d.data) && d.data[i] == '.' {
		isInt = false
		i++
		if i >= len(d.data) || d.data[i] < '0' || d.data[i] > '9' {
			return false, d.errAt(start, path, "invalid number")
		}
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		isInt = false
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if i >= len(d.data) || d.data[i] < '0' || d.data[i] > '9' {
			return false, d.errAt(start, path, "invalid number")
		}
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
		}
	}
	d.i = i
	return isInt, nil
}

// uintField reads an integer field in the range of T; ok is false for
// null.
func uintField[T uint8 | uint16 | uint32 | uint64](d *jsonDecoder, path string) (v T, ok bool, err error) {
	max := uint64(^T(0))
	start := d.ws()
	if d.null() {
		return 0, false, nil
	}
	if d.i < len(d.data) && ('0' <= d.data[d.i] && d.data[d.i] <= '9') {
		isInt, err := d.number(path)
		if err != nil {
			return 0, false, err
		}
		if isInt {
			if v, ok := parseUint(d.data[start:d.i], max); ok {
				return T(v), true, nil
			}
		}
	}
	return 0, false, d.errAt(start, path, "want integer 0-"+strconv.FormatUint(max, 10))
}

// int reads a signed 64-bit integer field; ok is false for null.
func (d *jsonDecoder) int(path string) (v int64, ok bool, err error) {
	start := d.ws()
	if d.null() {
		return 0, false, nil
	}
	if d.i < len(d.data) && (d.data[d.i] == '-' || '0' <= d.data[d.i] && d.data[d.i] <= '9') {
		isInt, err := d.number(path)
		if err != nil {
			return 0, false, err
		}
		if isInt {
			digits := d.data[start:d.i]
			neg := digits[0] == '-'
			if neg {
				digits = digits[1:]
			}
			if u, ok := parseUint(digits, 1<<63); ok {
				switch {
				case neg:
					return -int64(u), true, nil // -(1<<63) wraps to MinInt64
				case u < 1<<63:
					return int64(u), true, nil
				}
			}
		}
	}
	return 0, false, d.errAt(start, path, "want 64-bit integer")
}

// parseUint parses decimal digits no greater than max.
func parseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (max-uint64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// time reads an RFC 3339 timestamp (null is the zero time).
func (d *jsonDecoder) time(path string) (time.Time, error) {
	start := d.ws()
	raw, err := d.text(path, "want RFC 3339 time string")
	if raw == nil {
		return time.Time{}, err
	}
	if len(raw) == 0 {
		return time.Time{}, d.errAt(start, path, "want RFC 3339 time string")
	}
	// The string does not outlive Parse on success; on failure the error
	// (which would hold it) is dropped.
	t, perr := time.Parse(time.RFC3339Nano, unsafe.String(&raw[0], len(raw)))
	if perr != nil {
		return time.Time{}, d.errAt(start, path, "want RFC 3339 time")
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, d.errAt(start, path, "year outside 0000-9999 in UTC")
	}
	return t, nil
}

// ip reads an IP address field; observer.ip, an ECS array, may be an array
// whose first address is kept.
func (d *jsonDecoder) ip(path string, array bool) (netip.Addr, error) {
	start := d.ws()
	if array && d.i < len(d.data) && d.data[d.i] == '[' {
		d.i++
		var first netip.Addr
		for m := 0; ; m++ {
			d.ws()
			if d.i < len(d.data) && d.data[d.i] == ']' {
				d.i++
				return first, nil
			}
			if m > 0 {
				if d.i >= len(d.data) || d.data[d.i] != ',' {
					return netip.Addr{}, d.errAt(d.i, path, "want ',' or ']'")
				}
				d.i++
			}
			a, err := d.ip(path, false)
			if err != nil {
				return netip.Addr{}, err
			}
			if !first.IsValid() {
				first = a
			}
		}
	}
	raw, err := d.text(path, "want IP address string")
	if len(raw) == 0 {
		return netip.Addr{}, err
	}
	// ParseAddr keeps no reference to its input (a zone is copied into
	// its unique handle).
	a, perr := netip.ParseAddr(unsafe.String(&raw[0], len(raw)))
	if perr != nil {
		return netip.Addr{}, d.errAt(start, path, "want IP address")
	}
	return a, nil
}

// skip consumes and validates one value of any type.
func (d *jsonDecoder) skip(depth int) error {
	start := d.ws()
	if d.i >= len(d.data) {
		return d.errAt(d.i, "", "unexpected end of input")
	}
	switch c := d.data[d.i]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return d.errAt(start, "", "nested too deeply")
		}
		d.i++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		for n := 0; ; n++ {
			d.ws()
			if d.i >= len(d.data) {
				return d.errAt(d.i, "", "unexpected end of input")
			}
			if d.data[d.i] == end {
				d.i++
				return nil
			}
			if n > 0 {
				if d.data[d.i] != ',' {
					return d.errAt(d.i, "", "want ',' or '"+string(end)+"'")
				}
				d.i++
				d.ws()
			}
			if c == '{' {
				raw, _, err := d.stringValue("")
				if err != nil {
					return err
				}
				if raw == nil {
					return d.errAt(d.i, "", "want member name")
				}
				d.ws()
				if d.i >= len(d.data) || d.data[d.i] != ':' {
					return d.errAt(d.i, "", "want ':'")
				}
				d.i++
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, _, err := d.stringValue("")
		return err
	case c == 't':
		if d.literal("true") {
			return nil
		}
	case c == 'f':
		if d.literal("false") {
			return nil
		}
	case c == 'n':
		if d.null() {
			return nil
		}
	case c == '-' || '0' <= c && c <= '9':
		_, err := d.number("")
		return err
	}
	return d.errAt(start, "", "invalid value")
}

// appendCompactObject appends src, which must hold exactly one JSON object,
// compacted as appendCompact does; ok is false, and dst unchanged, when src
// holds anything else.
func appendCompactObject(dst, src []byte) ([]byte, bool) {
	d := jsonDecoder{data: src}
	d.ws()
	if d.i >= len(src) || src[d.i] != '{' || d.skip(0) != nil {
		return dst, false
	}
	if d.ws() != len(src) {
		return dst, false
	}
	return appendCompact(dst, src), true
}

// appendCompact appends valid JSON text src without insignificant white
// space and with each invalid UTF-8 byte in a string replaced by the
// escape \ufffd, so that the result is valid UTF-8.
func appendCompact(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); {
		c := src[i]
		if inString {
			switch {
			case c == '\\':
				dst = append(dst, c, src[i+1])
				i += 2
				continue
			case c == '"':
				inString = false
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRune(src[i:])
				if r == utf8.RuneError && size == 1 {
					dst = append(dst, `\ufffd`...)
				} else {
					dst = append(dst, src[i:i+size]...)
				}
				i += size
				continue
			}
			dst = append(dst, c)
			i++
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		case '"':
			inString = true
		}
		dst = append(dst, c)
		i++
	}
	return dst
}
