package pipeline

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
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
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member("", n)
		if kerr != nil {
			return kerr
		}
		if !more {
			break
		}
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
		if err != nil {
			return err
		}
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
	const path = "event"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	e := d.e
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

// original reads event.original into e.Original, unless
// vpipe.original_base64 already gave the exact bytes.
func (d *jsonDecoder) original() error {
	const path = "event.original"
	start := d.ws()
	if d.null() {
		return nil
	}
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return err
	}
	if raw == nil {
		return d.errAt(start, path, "want string")
	}
	if d.haveBase64 {
		return nil
	}
	if slow {
		d.e.Original = appendUnescaped(d.e.Original[:0], raw)
	} else {
		d.e.Original = append(d.e.Original[:0], raw...)
	}
	return nil
}

func (d *jsonDecoder) errorSet() error {
	const path = "error"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "message":
			d.e.Error, err = d.str("error.message")
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) log() error {
	const path = "log"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) logSource() error {
	const path = "log.source"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "address":
			d.e.LogSource, err = d.str("log.source.address")
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) syslog() error {
	const path = "log.syslog"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	s := &d.e.Syslog
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "facility":
			err = d.syslogCode("log.syslog.facility", "log.syslog.facility.code", &s.Facility, &d.haveFacility)
		case "severity":
			err = d.syslogCode("log.syslog.severity", "log.syslog.severity.code", &s.Severity, &d.haveSeverity)
		case "priority":
			var v uint64
			v, d.havePriority, err = d.uint("log.syslog.priority", 255)
			s.Priority = uint8(v)
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
		if err != nil {
			return err
		}
	}
}

// syslogCode reads log.syslog.facility or .severity: the code is kept, the
// name is derived from it when encoding and so is not read.
func (d *jsonDecoder) syslogCode(path, codePath string, code *uint8, have *bool) error {
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "code":
			var v uint64
			var ok bool
			v, ok, err = d.uint(codePath, 255)
			if ok {
				*code, *have = uint8(v), true
			}
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

// syslogVersion reads log.syslog.version, an ECS keyword ("1"); a number
// is accepted too.
func (d *jsonDecoder) syslogVersion() error {
	const path = "log.syslog.version"
	start := d.ws()
	if d.i < len(d.data) && d.data[d.i] != '"' {
		v, _, err := d.uint(path, 255)
		d.e.Syslog.Version = uint8(v)
		return err
	}
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return err
	}
	if slow {
		d.tmp = appendUnescaped(d.tmp[:0], raw)
		raw = d.tmp
	}
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
	const path = "log.syslog.structured_data"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	s := &d.e.Syslog
	for n := 0; ; n++ {
		key, more, err := d.member(path, n)
		if !more {
			return err
		}
		id := d.e.Intern(key)
		params, err := d.sdParams()
		if err != nil {
			return err
		}
		s.StructuredData = append(s.StructuredData, SDElement{ID: id, Params: params})
	}
}

// sdParams reads one SD-ELEMENT's params into a new slice: the params
// arrays of earlier elements are not reused, since a parser may have set
// them to arrays it shares.
func (d *jsonDecoder) sdParams() ([]SDParam, error) {
	const path = "log.syslog.structured_data"
	if ok, err := d.openObject(path); !ok {
		return nil, err
	}
	var buf [16]SDParam
	params := buf[:0]
	for n := 0; ; n++ {
		key, more, err := d.member(path, n)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		name := d.e.Intern(key)
		d.ws()
		if d.i < len(d.data) && d.data[d.i] == '[' {
			d.i++
			for m := 0; ; m++ {
				v, ok, more, err := d.arrayScalar(path, m)
				if err != nil {
					return nil, err
				}
				if !more {
					break
				}
				if ok {
					params = append(params, SDParam{Name: name, Value: v})
				}
			}
			continue
		}
		v, ok, err := d.scalar(path)
		if err != nil {
			return nil, err
		}
		if ok {
			params = append(params, SDParam{Name: name, Value: v})
		}
	}
	if len(params) == 0 {
		return nil, nil
	}
	return append([]SDParam(nil), params...), nil
}

func (d *jsonDecoder) observer() error {
	const path = "observer"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	o := &d.e.Observer
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) host() error {
	const path = "host"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "hostname":
			d.e.Host.Hostname, err = d.str("host.hostname")
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

// endpointPaths name the fields of source.* or destination.* in errors.
type endpointPaths struct{ set, ip, port, domain, packets, bytes string }

var (
	sourcePaths      = endpointPaths{"source", "source.ip", "source.port", "source.domain", "source.packets", "source.bytes"}
	destinationPaths = endpointPaths{"destination", "destination.ip", "destination.port", "destination.domain", "destination.packets", "destination.bytes"}
)

// endpoint reads source.* or destination.*.
func (d *jsonDecoder) endpoint(path *endpointPaths, p *Endpoint) error {
	if ok, err := d.openObject(path.set); !ok {
		return err
	}
	var err error
	var ok bool
	for n := 0; ; n++ {
		key, more, kerr := d.member(path.set, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "ip":
			p.IP, err = d.ip(path.ip, false)
		case "port":
			var v uint64
			v, ok, err = d.uint(path.port, 65535)
			if ok {
				p.Port, p.PortValid = uint16(v), true
			}
		case "domain":
			p.Domain, err = d.str(path.domain)
		case "packets":
			p.Packets, ok, err = d.uint(path.packets, 1<<64-1)
			p.CountersValid = p.CountersValid || ok
		case "bytes":
			p.Bytes, ok, err = d.uint(path.bytes, 1<<64-1)
			p.CountersValid = p.CountersValid || ok
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) network() error {
	const path = "network"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	nw := &d.e.Network
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) rule() error {
	const path = "rule"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	r := &d.e.Rule
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) organization() error {
	const path = "organization"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "id":
			d.e.Organization.ID, err = d.str("organization.id")
		case "name":
			d.e.Organization.Name, err = d.str("organization.name")
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) user() error {
	const path = "user"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "name":
			d.e.User.Name, err = d.str("user.name")
		case "domain":
			d.e.User.Domain, err = d.str("user.domain")
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

// labels reads the labels object, appending in order; decodeEvent then
// applies AddLabel's rule to repeated keys.
func (d *jsonDecoder) labels() error {
	const path = "labels"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	for n := 0; ; n++ {
		key, more, err := d.member(path, n)
		if !more {
			return err
		}
		k := d.e.Intern(key)
		v, ok, err := d.scalar(path)
		if err != nil {
			return err
		}
		if ok {
			d.e.Labels = append(d.e.Labels, Label{Key: k, Value: v})
			d.labelsChanged = true
		}
	}
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
	const path = "vmware"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	v := &d.e.VMware
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
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
	if ok, err := d.openObject(path.set); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path.set, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "filter_hash":
			x.FilterHash, err = d.str(path.filterHash)
		case "reason":
			x.Reason, err = d.str(path.reason)
		case "packet_length":
			var v uint64
			v, _, err = d.uint(path.packetLength, 1<<32-1)
			x.PacketLength = uint32(v)
		case "tcp_flags":
			x.TCPFlags, err = d.str(path.tcpFlags)
		case "term_reason":
			x.TermReason, err = d.str(path.termReason)
		case "vrf_id":
			x.VRF, err = d.str(path.vrf)
		case "interface_id":
			x.InterfaceID, err = d.str(path.iface)
		default:
			if string(key) == path.labelKey {
				x.LogLabel, err = d.str(path.label)
			} else {
				err = d.skip(0)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) vcenter() error {
	const path = "vmware.vcenter"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	c := &d.e.VMware.VCenter
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) vcenterObject() error {
	const path = "vmware.vcenter.object"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	c := &d.e.VMware.VCenter
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

func (d *jsonDecoder) velocloud() error {
	const path = "vmware.velocloud"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	v := &d.e.VMware.VeloCloud
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
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
		if err != nil {
			return err
		}
	}
}

// detail reads vmware.velocloud.detail: an object, kept as compact JSON
// text, or (as the VCO API itself sends it) a string holding one; a string
// that holds no JSON object goes to DetailRaw.
func (d *jsonDecoder) detail() error {
	const path = "vmware.velocloud.detail"
	v := &d.e.VMware.VeloCloud
	start := d.ws()
	if d.null() {
		return nil
	}
	if d.i < len(d.data) && d.data[d.i] == '{' {
		if err := d.skip(0); err != nil {
			return err
		}
		v.Detail = appendCompact(v.Detail[:0], d.data[start:d.i])
		return nil
	}
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return err
	}
	if raw == nil {
		return d.errAt(start, path, "want object")
	}
	if slow {
		d.tmp = appendUnescaped(d.tmp[:0], raw)
		raw = d.tmp
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
	const path = "vpipe"
	if ok, err := d.openObject(path); !ok {
		return err
	}
	var err error
	for n := 0; ; n++ {
		key, more, kerr := d.member(path, n)
		if !more {
			return kerr
		}
		switch string(key) {
		case "original_base64":
			err = d.originalBase64()
		default:
			err = d.skip(0)
		}
		if err != nil {
			return err
		}
	}
}

// originalBase64 reads vpipe.original_base64, the exact bytes of an
// Original that is not valid UTF-8; it wins over event.original.
func (d *jsonDecoder) originalBase64() error {
	const path = "vpipe.original_base64"
	start := d.ws()
	if d.null() {
		return nil
	}
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return err
	}
	if raw == nil {
		return d.errAt(start, path, "want string")
	}
	if slow {
		d.tmp = appendUnescaped(d.tmp[:0], raw)
		raw = d.tmp
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

// openObject consumes the '{' of an object field set (true) or a null
// (false, nil error: the set is absent).
func (d *jsonDecoder) openObject(path string) (bool, error) {
	start := d.ws()
	if d.i < len(d.data) && d.data[d.i] == '{' {
		d.i++
		return true, nil
	}
	if d.null() {
		return false, nil
	}
	return false, d.errAt(start, path, "want object")
}

// member reads the key and colon of member n of the object being read; more
// is false (with a nil error) at its closing brace and on error. The key
// is valid until the next call.
func (d *jsonDecoder) member(path string, n int) (key []byte, more bool, err error) {
	d.ws()
	if d.i >= len(d.data) {
		return nil, false, d.errAt(d.i, path, "unexpected end of input in object")
	}
	if d.data[d.i] == '}' {
		d.i++
		return nil, false, nil
	}
	if n > 0 {
		if d.data[d.i] != ',' {
			return nil, false, d.errAt(d.i, path, "want ',' or '}'")
		}
		d.i++
		d.ws()
	}
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return nil, false, d.errAt(d.i, path, "want member name")
	}
	key, slow, err := d.stringValue(path)
	if err != nil {
		return nil, false, err
	}
	if slow {
		d.tmp = appendUnescaped(d.tmp[:0], key)
		key = d.tmp
	}
	d.ws()
	if d.i >= len(d.data) || d.data[d.i] != ':' {
		return nil, false, d.errAt(d.i, path, "want ':'")
	}
	d.i++
	return key, true, nil
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
				if i+6 > len(data) || !isHex4(data[i+2:i+6]) {
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

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if hexValue(c) < 0 {
			return false
		}
	}
	return true
}

func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendUnescaped appends the content of a JSON string, already checked by
// stringValue, unescaped, with invalid UTF-8 and unpaired surrogates
// replaced by U+FFFD as encoding/json does.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			switch raw[i+1] {
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
				r := hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, hex4(raw[i+2:])); r2 != utf8.RuneError {
							dst = utf8.AppendRune(dst, r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, raw[i+1])
			}
			i += 2
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

func hex4(b []byte) rune {
	return hexValue(b[0])<<12 | hexValue(b[1])<<8 | hexValue(b[2])<<4 | hexValue(b[3])
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

// str reads a string field (null is the empty string).
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

// uint reads an integer field in [0, max]; ok is false for null.
func (d *jsonDecoder) uint(path string, max uint64) (v uint64, ok bool, err error) {
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
				return v, true, nil
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
	if d.null() {
		return time.Time{}, nil
	}
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return time.Time{}, err
	}
	if raw == nil {
		return time.Time{}, d.errAt(start, path, "want RFC 3339 time string")
	}
	if slow {
		d.tmp = appendUnescaped(d.tmp[:0], raw)
		raw = d.tmp
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
	if d.null() {
		return netip.Addr{}, nil
	}
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
	raw, slow, err := d.stringValue(path)
	if err != nil {
		return netip.Addr{}, err
	}
	if raw == nil {
		return netip.Addr{}, d.errAt(start, path, "want IP address string")
	}
	if slow {
		d.tmp = appendUnescaped(d.tmp[:0], raw)
		raw = d.tmp
	}
	if len(raw) == 0 {
		return netip.Addr{}, nil
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
