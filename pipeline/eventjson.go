package pipeline

import (
	"encoding/base64"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON encoding of Event: one object with nested ECS field sets
// (Elastic Common Schema 8.11, https://www.elastic.co/guide/en/ecs/8.11/ecs-field-reference.html),
// documented field by field in docs/schema.md. AppendJSON writes it by hand
// because it runs once per event on the ingest hot path; DecodeJSON
// (eventjson_decode.go) reads it back in the consumer stages.

// facilityNames are the RFC 5424 facility codes (section 6.2.1, table 1)
// spelled as syslog.h and rsyslog name them; ECS log.syslog.facility.name
// ("local7" in its example) takes these keywords.
var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// severityNames are the RFC 5424 severity codes (section 6.2.1, table 2)
// spelled as syslog.h and rsyslog name them.
var severityNames = [...]string{
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
}

// AppendJSON appends e to dst as one JSON object (schema version
// SchemaVersion, documented field by field in the README's "Event schema"
// section, docs/schema.md) and returns the extended
// buffer. It is the record value vpipe puts on Kafka and writes to NDJSON
// files, so it is written for speed: no reflection, and no allocation when
// dst has room.
//
// Field names are ECS names as nested objects ({"event":{"dataset":...}}).
// Zero values are omitted, except @timestamp (Created when Timestamp is
// zero, RFC 3339 in UTC with trailing zeros of the fraction trimmed; a time
// outside the years 0000-9999 counts as zero),
// event.kind ("event" when empty), event.original and ecs.version. Strings
// are escaped as encoding/json escapes them with HTML escaping off: '<',
// '>' and '&' stay as they are, U+2028 and U+2029 are escaped, invalid
// UTF-8 becomes U+FFFD. When Original is not valid UTF-8 its exact bytes
// are also written, base64-encoded, as vpipe.original_base64.
//
// The output never holds a duplicate key: repeated labels keep the first
// key's position and the last value (as AddLabel does), repeated SD-IDs
// are merged, and an SD-PARAM name that repeats within an element becomes
// an array of its values. Detail is embedded, compacted, when it is a JSON
// object and otherwise written as the string vmware.velocloud.detail_raw
// (unless DetailRaw is set, which then wins). AppendJSON only reads e, so
// concurrent calls on one event are safe.
func (e *Event) AppendJSON(dst []byte) []byte {
	ts := e.Timestamp
	if ts.IsZero() || !inRFC3339Range(ts) {
		ts = e.Created
		if !inRFC3339Range(ts) {
			ts = time.Time{}
		}
	}
	dst = append(dst, `{"@timestamp":"`...)
	dst = ts.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')

	dst, in := openObject(dst, `,"event":`)
	dst = appendStringMember(dst, `,"id":`, e.ID)
	kind := e.Kind
	if kind == "" {
		kind = "event"
	}
	dst = appendStringMember(dst, `,"kind":`, kind)
	dst = appendStringMember(dst, `,"dataset":`, e.Dataset)
	dst = appendStringMember(dst, `,"action":`, e.Action)
	dst = appendStringMember(dst, `,"outcome":`, e.Outcome)
	dst = appendStringMember(dst, `,"reason":`, e.Reason)
	if e.SeverityValid {
		dst = append(dst, `,"severity":`...)
		dst = strconv.AppendInt(dst, int64(e.Severity), 10)
	}
	dst = append(dst, `,"original":`...)
	dst = appendJSONString(dst, e.Original)
	dst = appendTimeMember(dst, `,"created":`, e.Created)
	dst = closeObject(dst, in, `,"event":`)

	dst = appendStringMember(dst, `,"message":`, e.Message)
	if e.Error != "" {
		dst = append(dst, `,"error":{"message":`...)
		dst = appendJSONString(dst, e.Error)
		dst = append(dst, '}')
	}
	dst = e.appendLog(dst)

	o := &e.Observer
	dst, in = openObject(dst, `,"observer":`)
	dst = appendStringMember(dst, `,"hostname":`, o.Hostname)
	dst = appendIPMember(dst, `,"ip":`, o.IP)
	dst = appendStringMember(dst, `,"type":`, o.Type)
	dst = appendStringMember(dst, `,"vendor":`, o.Vendor)
	dst = appendStringMember(dst, `,"product":`, o.Product)
	dst = closeObject(dst, in, `,"observer":`)

	if e.Host.Hostname != "" {
		dst = append(dst, `,"host":{"hostname":`...)
		dst = appendJSONString(dst, e.Host.Hostname)
		dst = append(dst, '}')
	}
	dst = appendEndpoint(dst, `,"source":`, &e.Source)
	dst = appendEndpoint(dst, `,"destination":`, &e.Destination)

	n := &e.Network
	dst, in = openObject(dst, `,"network":`)
	dst = appendStringMember(dst, `,"transport":`, n.Transport)
	dst = appendStringMember(dst, `,"iana_number":`, n.IANANumber)
	dst = appendStringMember(dst, `,"type":`, n.Type)
	dst = appendStringMember(dst, `,"direction":`, n.Direction)
	dst = closeObject(dst, in, `,"network":`)

	dst, in = openObject(dst, `,"rule":`)
	dst = appendStringMember(dst, `,"id":`, e.Rule.ID)
	dst = appendStringMember(dst, `,"ruleset":`, e.Rule.Ruleset)
	dst = appendStringMember(dst, `,"name":`, e.Rule.Name)
	dst = closeObject(dst, in, `,"rule":`)

	dst, in = openObject(dst, `,"organization":`)
	dst = appendStringMember(dst, `,"id":`, e.Organization.ID)
	dst = appendStringMember(dst, `,"name":`, e.Organization.Name)
	dst = closeObject(dst, in, `,"organization":`)

	dst, in = openObject(dst, `,"user":`)
	dst = appendStringMember(dst, `,"name":`, e.User.Name)
	dst = appendStringMember(dst, `,"domain":`, e.User.Domain)
	dst = closeObject(dst, in, `,"user":`)

	if len(e.Labels) > 0 {
		dst = append(dst, `,"labels":`...)
		dst = appendLabels(dst, e.Labels)
	}
	dst = e.VMware.appendJSON(dst)

	if !utf8.Valid(e.Original) {
		dst = append(dst, `,"vpipe":{"original_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Original)
		dst = append(dst, `"}`...)
	}
	dst = append(dst, `,"ecs":{"version":"`+ECSVersion+`"}}`...)
	return dst
}

// appendLog appends the log.* field set.
func (e *Event) appendLog(dst []byte) []byte {
	dst, in := openObject(dst, `,"log":`)
	dst = appendStringMember(dst, `,"level":`, e.LogLevel)
	if e.LogSource != "" {
		dst = append(dst, `,"source":{"address":`...)
		dst = appendJSONString(dst, e.LogSource)
		dst = append(dst, '}')
	}
	s := &e.Syslog
	dst, sin := openObject(dst, `,"syslog":`)
	if s.PriorityValid {
		dst = appendCode(dst, `,"facility":{"code":`, s.Facility, facilityNames[:])
		dst = appendCode(dst, `,"severity":{"code":`, s.Severity, severityNames[:])
		dst = append(dst, `,"priority":`...)
		dst = strconv.AppendUint(dst, uint64(s.Priority), 10)
	}
	dst = appendStringMember(dst, `,"hostname":`, s.Hostname)
	dst = appendStringMember(dst, `,"appname":`, s.AppName)
	dst = appendStringMember(dst, `,"procid":`, s.ProcID)
	dst = appendStringMember(dst, `,"msgid":`, s.MsgID)
	if s.Version != 0 {
		dst = append(dst, `,"version":"`...)
		dst = strconv.AppendUint(dst, uint64(s.Version), 10)
		dst = append(dst, '"')
	}
	if len(s.StructuredData) > 0 {
		dst = append(dst, `,"structured_data":`...)
		dst = appendStructuredData(dst, s.StructuredData)
	}
	dst = closeObject(dst, sin, `,"syslog":`)
	return closeObject(dst, in, `,"log":`)
}

// appendCode appends `,"facility":{"code":N,"name":"..."}` (key holds the
// opening part); the name is left out for codes outside the table.
func appendCode(dst []byte, key string, code uint8, names []string) []byte {
	dst = append(dst, key...)
	dst = strconv.AppendUint(dst, uint64(code), 10)
	if int(code) < len(names) {
		dst = append(dst, `,"name":"`...)
		dst = append(dst, names[code]...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// appendEndpoint appends source.* or destination.*.
func appendEndpoint(dst []byte, key string, p *Endpoint) []byte {
	dst, in := openObject(dst, key)
	dst = appendIPMember(dst, `,"ip":`, p.IP)
	if p.PortValid {
		dst = append(dst, `,"port":`...)
		dst = strconv.AppendUint(dst, uint64(p.Port), 10)
	}
	dst = appendStringMember(dst, `,"domain":`, p.Domain)
	if p.CountersValid {
		dst = append(dst, `,"packets":`...)
		dst = strconv.AppendUint(dst, p.Packets, 10)
		dst = append(dst, `,"bytes":`...)
		dst = strconv.AppendUint(dst, p.Bytes, 10)
	}
	return closeObject(dst, in, key)
}

// appendJSON appends the vmware.* field set.
func (v *VMware) appendJSON(dst []byte) []byte {
	dst, in := openObject(dst, `,"vmware":`)
	dst = v.NSX.appendJSON(dst, `,"nsx":`, `,"log_label":`)
	dst = v.NSXV.appendJSON(dst, `,"nsxv":`, `,"rule_tag":`)

	c := &v.VCenter
	dst, cin := openObject(dst, `,"vcenter":`)
	dst = appendStringMember(dst, `,"server":`, c.Server)
	dst = appendStringMember(dst, `,"event_type":`, c.EventType)
	dst = appendIntMember(dst, `,"key":`, c.Key)
	dst = appendIntMember(dst, `,"chain_id":`, c.ChainID)
	dst, oin := openObject(dst, `,"object":`)
	dst = appendStringMember(dst, `,"name":`, c.ObjectName)
	dst = appendStringMember(dst, `,"type":`, c.ObjectType)
	dst = appendStringMember(dst, `,"ref":`, c.ObjectRef)
	dst = closeObject(dst, oin, `,"object":`)
	dst = appendStringMember(dst, `,"tag":`, c.Tag)
	dst = appendStringMember(dst, `,"category":`, c.Category)
	dst = appendStringMember(dst, `,"datacenter":`, c.Datacenter)
	dst = appendStringMember(dst, `,"change_tag":`, c.ChangeTag)
	dst = closeObject(dst, cin, `,"vcenter":`)

	vc := &v.VeloCloud
	dst, vin := openObject(dst, `,"velocloud":`)
	dst = appendIntMember(dst, `,"event_id":`, vc.EventID)
	dst = appendStringMember(dst, `,"event":`, vc.Event)
	dst = appendStringMember(dst, `,"category":`, vc.Category)
	dst = appendStringMember(dst, `,"severity":`, vc.Severity)
	dst = appendIntMember(dst, `,"enterprise_id":`, vc.EnterpriseID)
	dst = appendStringMember(dst, `,"enterprise_name":`, vc.EnterpriseName)
	dst = appendStringMember(dst, `,"enterprise_username":`, vc.EnterpriseUsername)
	dst = appendStringMember(dst, `,"edge_name":`, vc.EdgeName)
	dst = appendStringMember(dst, `,"segment_name":`, vc.SegmentName)
	raw := vc.DetailRaw
	if len(vc.Detail) > 0 {
		mark := len(dst)
		dst = append(dst, `,"detail":`...)
		var ok bool
		if dst, ok = appendCompactObject(dst, vc.Detail); !ok {
			dst = dst[:mark]
			if raw == "" {
				dst = append(dst, `,"detail_raw":`...)
				dst = appendJSONString(dst, vc.Detail)
			}
		}
	}
	dst = appendStringMember(dst, `,"detail_raw":`, raw)
	dst = closeObject(dst, vin, `,"velocloud":`)
	return closeObject(dst, in, `,"vmware":`)
}

// appendJSON appends vmware.nsx.* or vmware.nsxv.* under key, with the
// log label under labelKey.
func (n *NSX) appendJSON(dst []byte, key, labelKey string) []byte {
	dst, in := openObject(dst, key)
	dst = appendStringMember(dst, labelKey, n.LogLabel)
	dst = appendStringMember(dst, `,"filter_hash":`, n.FilterHash)
	dst = appendStringMember(dst, `,"reason":`, n.Reason)
	if n.PacketLength != 0 {
		dst = append(dst, `,"packet_length":`...)
		dst = strconv.AppendUint(dst, uint64(n.PacketLength), 10)
	}
	dst = appendStringMember(dst, `,"tcp_flags":`, n.TCPFlags)
	dst = appendStringMember(dst, `,"term_reason":`, n.TermReason)
	dst = appendStringMember(dst, `,"vrf_id":`, n.VRF)
	dst = appendStringMember(dst, `,"interface_id":`, n.InterfaceID)
	return closeObject(dst, in, key)
}

// openObject starts an object member whose key is written as `,"name":`.
// Members are then appended each with a leading comma, and closeObject
// turns the first member's comma into the opening brace, or removes the
// key again when no member followed, so that empty objects are omitted
// without looking at the fields twice.
func openObject(dst []byte, key string) ([]byte, int) {
	dst = append(dst, key...)
	return dst, len(dst)
}

// closeObject ends the object that openObject started at in.
func closeObject(dst []byte, in int, key string) []byte {
	if len(dst) == in {
		return dst[:in-len(key)]
	}
	dst[in] = '{'
	return append(dst, '}')
}

// appendStringMember appends `,"name":"s"` (key holds `,"name":`) unless s
// is empty.
func appendStringMember(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendJSONString(dst, s)
}

// appendIntMember appends a number member unless v is zero.
func appendIntMember(dst []byte, key string, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = append(dst, key...)
	return strconv.AppendInt(dst, v, 10)
}

// appendTimeMember appends a timestamp member unless t is zero or cannot
// be written in RFC 3339.
func appendTimeMember(dst []byte, key string, t time.Time) []byte {
	if t.IsZero() || !inRFC3339Range(t) {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// inRFC3339Range reports whether t falls in the years 0000-9999 (UTC) that
// RFC 3339 can write. A time outside them (a parser's misreading) counts
// as unknown, so that every encoded event decodes again and SIEMs do not
// reject the document over its date.
func inRFC3339Range(t time.Time) bool {
	const first, last = -62167219200, 253402300799 // 0000-01-01T00:00:00Z, 9999-12-31T23:59:59Z
	s := t.Unix()
	return first <= s && s <= last
}

// appendIPMember appends an address member unless ip is the zero Addr.
func appendIPMember(dst []byte, key string, ip netip.Addr) []byte {
	if !ip.IsValid() {
		return dst
	}
	dst = append(dst, key...)
	if ip.Zone() != "" {
		// A zone is free text: escape it.
		var buf [64]byte
		return appendJSONString(dst, ip.AppendTo(buf[:0]))
	}
	dst = append(dst, '"')
	dst = ip.AppendTo(dst)
	return append(dst, '"')
}

// appendLabels appends the labels object. A key that repeats is written
// once, where it first appears, with its last value (AddLabel's rule).
// Keys are compared as written, so two keys that differ only in invalid
// UTF-8 (both written as U+FFFD) are the same key.
func appendLabels(dst []byte, labels []Label) []byte {
	dst = append(dst, '{')
	if len(labels) > smallSet || !labelKeysValid(labels) {
		// Rare: a map over the keys as written.
		index := make(map[string]int, len(labels))
		out := make([]Label, 0, len(labels))
		for _, l := range labels {
			k := toValidUTF8(l.Key)
			if j, ok := index[k]; ok {
				out[j].Value = l.Value
				continue
			}
			index[k] = len(out)
			out = append(out, l)
		}
		for _, l := range out {
			dst = appendLabel(dst, l.Key, l.Value)
		}
	} else {
	next:
		for i := range labels {
			k, v := labels[i].Key, labels[i].Value
			for j := range i {
				if labels[j].Key == k {
					continue next
				}
			}
			for j := i + 1; j < len(labels); j++ {
				if labels[j].Key == k {
					v = labels[j].Value
				}
			}
			dst = appendLabel(dst, k, v)
		}
	}
	dst[len(dst)-1] = '}' // over the comma after the last label
	return dst
}

func appendLabel(dst []byte, k, v string) []byte {
	dst = appendJSONString(dst, k)
	dst = append(dst, ':')
	dst = appendJSONString(dst, v)
	return append(dst, ',')
}

func labelKeysValid(labels []Label) bool {
	for i := range labels {
		if !utf8.ValidString(labels[i].Key) {
			return false
		}
	}
	return true
}

// toValidUTF8 replaces each byte of invalid UTF-8 in s with U+FFFD, as
// appendJSONString does: s as written, for comparing keys.
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// sameKey reports whether a and b are written as the same JSON text: equal
// once each byte of invalid UTF-8 is taken as U+FFFD.
func sameKey(a, b string) bool {
	if a == b {
		return true
	}
	for len(a) > 0 && len(b) > 0 {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) == len(b)
}

// smallSet is the size up to which repeated keys are found by comparing
// each key with the ones before it, without allocating; larger sets use a
// map, so that a hostile record cannot make encoding quadratic.
const smallSet = 32

// appendStructuredData appends log.syslog.structured_data:
// {"sd-id":{"name":"value","repeated":["v1","v2"]}}.
func appendStructuredData(dst []byte, sd []SDElement) []byte {
	if !isCanonicalSD(sd) {
		sd = canonicalSD(cloneSD(sd))
	}
	dst = append(dst, '{')
	for i := range sd {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, sd[i].ID)
		dst = append(dst, ":{"...)
		p := sd[i].Params
		for j := 0; j < len(p); {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, p[j].Name)
			dst = append(dst, ':')
			k := j + 1
			for k < len(p) && sameKey(p[k].Name, p[j].Name) {
				k++
			}
			if k == j+1 {
				dst = appendJSONString(dst, p[j].Value)
			} else {
				dst = append(dst, '[')
				for m := j; m < k; m++ {
					if m > j {
						dst = append(dst, ',')
					}
					dst = appendJSONString(dst, p[m].Value)
				}
				dst = append(dst, ']')
			}
			j = k
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// isCanonicalSD reports whether no SD-ID repeats and, in each element, the
// params of one name are adjacent: the form appendStructuredData writes
// directly and DecodeJSON produces.
func isCanonicalSD(sd []SDElement) bool {
	if len(sd) > smallSet {
		seen := make(map[string]bool, len(sd))
		for i := range sd {
			id := toValidUTF8(sd[i].ID)
			if seen[id] {
				return false
			}
			seen[id] = true
		}
	} else {
		for i := range sd {
			for j := range i {
				if sameKey(sd[j].ID, sd[i].ID) {
					return false
				}
			}
		}
	}
	for i := range sd {
		if !paramsGrouped(sd[i].Params) {
			return false
		}
	}
	return true
}

// paramsGrouped reports whether the params of each name are adjacent.
func paramsGrouped(p []SDParam) bool {
	if len(p) > smallSet {
		seen := make(map[string]bool, len(p))
		for i := range p {
			if i > 0 && sameKey(p[i].Name, p[i-1].Name) {
				continue
			}
			name := toValidUTF8(p[i].Name)
			if seen[name] {
				return false
			}
			seen[name] = true
		}
		return true
	}
	for i := 1; i < len(p); i++ {
		if sameKey(p[i].Name, p[i-1].Name) {
			continue
		}
		for j := range i - 1 {
			if sameKey(p[j].Name, p[i].Name) {
				return false
			}
		}
	}
	return true
}

// cloneSD copies sd and its params, so that canonicalSD can reorder them
// without touching the event.
func cloneSD(sd []SDElement) []SDElement {
	out := make([]SDElement, len(sd))
	for i := range sd {
		out[i].ID = sd[i].ID
		out[i].Params = append([]SDParam(nil), sd[i].Params...)
	}
	return out
}

// canonicalSD merges the elements that share an SD-ID into the first one
// and groups each element's params by name, keeping first-appearance order,
// in place. Removed elements are swapped to the tail beyond the returned
// length, so that no two elements share a params array.
func canonicalSD(sd []SDElement) []SDElement {
	var index map[string]int
	if len(sd) > smallSet {
		index = make(map[string]int, len(sd))
	}
	w := 0
	for r := range sd {
		k := -1
		if index != nil {
			if j, ok := index[toValidUTF8(sd[r].ID)]; ok {
				k = j
			}
		} else {
			for j := range w {
				if sameKey(sd[j].ID, sd[r].ID) {
					k = j
					break
				}
			}
		}
		if k >= 0 {
			sd[k].Params = append(sd[k].Params, sd[r].Params...)
			sd[r].Params = sd[r].Params[:0]
			continue
		}
		if index != nil {
			index[toValidUTF8(sd[r].ID)] = w
		}
		sd[w], sd[r] = sd[r], sd[w]
		w++
	}
	sd = sd[:w]
	for i := range sd {
		groupParams(sd[i].Params)
	}
	return sd
}

// groupParams reorders p in place so that the params of one name are
// adjacent, at the position of that name's first param, keeping the order
// of values.
func groupParams(p []SDParam) {
	if paramsGrouped(p) {
		return
	}
	if len(p) <= smallSet {
		for i := 1; i < len(p); i++ {
			for j := i - 1; j >= 0; j-- {
				if sameKey(p[j].Name, p[i].Name) {
					if j != i-1 {
						v := p[i]
						copy(p[j+2:i+1], p[j+1:i])
						p[j+1] = v
					}
					break
				}
			}
		}
		return
	}
	byName := make(map[string][]SDParam, len(p))
	var order []string
	for _, q := range p {
		name := toValidUTF8(q.Name)
		if _, ok := byName[name]; !ok {
			order = append(order, name)
		}
		byName[name] = append(byName[name], q)
	}
	out := p[:0:0]
	for _, name := range order {
		out = append(out, byName[name]...)
	}
	copy(p, out)
}

// jsonSafe marks the ASCII bytes that encoding/json writes unescaped when
// HTML escaping is off.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// specialBytes returns, for the eight bytes of x (little endian), a mask
// whose lowest set bit is the high bit of the first byte that a JSON string
// scanner must look at: below 0x20, '"', '\\' or non-ASCII; zero when there
// is none. Each test is the classic "has a byte less than n" bit trick;
// borrows can flag bytes after a real match but never before one, so the
// lowest flag is exact.
func specialBytes(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ ('"' * ones)
	backslash := x ^ ('\\' * ones)
	return (((x-0x20*ones)|(quote-ones)|(backslash-ones))&^x | x) & highs
}

// appendJSONString appends s as a JSON string, escaped exactly as
// encoding/json escapes it with SetEscapeHTML(false): \" \\ \b \f \n \r \t,
// other control characters as \u00XX, U+2028 and U+2029 as \u2028 and
// \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip plain ASCII eight bytes at a time, up to the first byte
		// that may need escaping.
		for i+8 <= len(s) {
			w := s[i : i+8]
			m := specialBytes(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56)
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if n := len(s) - i; n > 0 && n < 8 && len(s) >= 8 {
			// The last few bytes: read the last eight and drop the
			// flags of those already passed (a flag there can only
			// come from a byte before i, and at worst sends a plain
			// byte down the slow path below).
			w := s[len(s)-8:]
			m := specialBytes(uint64(w[0])|uint64(w[1])<<8|uint64(w[2])<<16|uint64(w[3])<<24|
				uint64(w[4])<<32|uint64(w[5])<<40|uint64(w[6])<<48|uint64(w[7])<<56) >> (8 * (8 - n))
			if m == 0 {
				break
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		c, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
